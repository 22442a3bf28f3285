from importlib.metadata import PackageNotFoundError, version

import pytest

import pose_losses


def test_every_public_name_is_importable():
    for name in pose_losses.__all__:
        assert hasattr(pose_losses, name), name
    assert sorted(pose_losses.__all__) == sorted(set(pose_losses.__all__))


def test_reports_its_installed_version():
    try:
        installed = version("pose-losses")
    except PackageNotFoundError:
        pytest.skip("pose-losses is not installed (running from the source tree)")
    assert pose_losses.__version__ == installed
