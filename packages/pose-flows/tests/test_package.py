from importlib.metadata import PackageNotFoundError, version

import pytest

import pose_flows


def test_every_public_name_is_importable():
    for name in pose_flows.__all__:
        assert hasattr(pose_flows, name), name
    assert sorted(pose_flows.__all__) == sorted(set(pose_flows.__all__))


def test_reports_its_installed_version():
    try:
        installed = version("pose-flows")
    except PackageNotFoundError:
        pytest.skip("pose-flows is not installed (running from the source tree)")
    assert pose_flows.__version__ == installed
