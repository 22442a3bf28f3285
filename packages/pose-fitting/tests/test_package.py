from importlib.metadata import version

import pose_fitting


def test_imports_and_reports_its_installed_version():
    assert pose_fitting.__version__ == version("pose-fitting")
    assert pose_fitting.__all__ == ["__version__"]
