from importlib.metadata import version

import pose_flows


def test_imports_and_reports_its_installed_version():
    assert pose_flows.__version__ == version("pose-flows")
    assert pose_flows.__all__ == ["__version__"]
