from importlib.metadata import PackageNotFoundError, version

import pytest

import pose_body


def test_imports_and_reports_its_installed_version():
    try:
        installed = version("pose-body")
    except PackageNotFoundError:
        pytest.skip("pose-body is not installed (running from the source tree)")
    assert pose_body.__version__ == installed


def test_public_api_is_exported():
    expected = {
        "BodyModel", "BodyOutput", "JointsOutput", "SMPLModelData", "MeanParams",
        "load_smpl_model", "load_joint_regressor", "load_mean_params", "safe_load_pickle",
        "write_mean_params", "procedural_body_model", "write_procedural_model",
        "ProceduralBodyModel", "ProceduralModelFiles", "Mesh", "render_meshes", "side_view",
        "draw_keypoints", "UnsafePickleError",
    }  # fmt: skip
    assert expected <= set(pose_body.__all__)
    assert all(hasattr(pose_body, name) for name in pose_body.__all__)
