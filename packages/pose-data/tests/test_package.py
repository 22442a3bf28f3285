from importlib.metadata import PackageNotFoundError, version

import pytest

import pose_data


def test_every_public_name_is_importable():
    for name in pose_data.__all__:
        assert hasattr(pose_data, name), name
    assert sorted(pose_data.__all__) == sorted(set(pose_data.__all__))


def test_reports_its_installed_version():
    try:
        installed = version("pose-data")
    except PackageNotFoundError:
        pytest.skip("pose-data is not installed (running from the source tree)")
    assert pose_data.__version__ == installed
