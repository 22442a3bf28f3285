from importlib.metadata import PackageNotFoundError, version

import pytest

import pose_fitting


def test_every_public_name_is_importable():
    for name in pose_fitting.__all__:
        assert hasattr(pose_fitting, name), name
    assert sorted(pose_fitting.__all__) == sorted(set(pose_fitting.__all__))
    assert "__version__" in pose_fitting.__all__


def test_reports_its_installed_version():
    try:
        installed = version("pose-fitting")
    except PackageNotFoundError:
        pytest.skip("pose-fitting is not installed (running from the source tree)")
    assert pose_fitting.__version__ == installed


def test_imports_no_sibling_but_pose_geometry():
    import sys

    forbidden = ("pose_flows", "pose_body", "pose_losses", "pose_metrics", "pose_data")
    # Importing pose_fitting (already done above) must not pull in a forbidden sibling.
    source = [m for m in sys.modules if m.startswith("pose_fitting")]
    for module_name in source:
        module = sys.modules[module_name]
        path = getattr(module, "__file__", None)
        if path is None:
            continue
        text = open(path, encoding="utf-8").read()
        for name in forbidden:
            assert f"import {name}" not in text and f"from {name}" not in text, (module_name, name)
