from importlib.metadata import version

import pose_body


def test_imports_and_reports_its_installed_version():
    assert pose_body.__version__ == version("pose-body")
    assert pose_body.__all__ == ["__version__"]
