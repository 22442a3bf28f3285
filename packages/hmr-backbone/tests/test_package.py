from importlib.metadata import PackageNotFoundError, version

import pytest

import hmr_backbone


def test_every_public_name_is_importable():
    for name in hmr_backbone.__all__:
        assert hasattr(hmr_backbone, name), name
    assert sorted(hmr_backbone.__all__) == sorted(set(hmr_backbone.__all__))


def test_reports_its_installed_version():
    try:
        installed = version("hmr-backbone")
    except PackageNotFoundError:
        pytest.skip("hmr-backbone is not installed (running from the source tree)")
    assert hmr_backbone.__version__ == installed
