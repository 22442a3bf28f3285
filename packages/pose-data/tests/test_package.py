from importlib.metadata import version

import pose_data


def test_imports_and_reports_its_installed_version():
    assert pose_data.__version__ == version("pose-data")
    assert pose_data.__all__ == ["__version__"]
