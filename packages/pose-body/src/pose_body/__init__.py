"""SMPL body model with ProHMR's 44-keypoint layout, safe file loading, a procedural model.

The SMPL body model (through smplx) returning vertices, the 24 SMPL joints and the 44 keypoints
(25 OpenPose BODY_25 + 19 extra regressed joints) and optionally the 17 Human3.6M joints; a
joints-only fast path; chumpy-free, pickle-safe loading of the official model files; a
procedural body model in the exact SMPL file format (the embedded default for tests and demos);
a headless software mesh renderer.

Conventions: SMPL axes for the body model (y up, x to the body's left, z forward; metres);
rotation matrices act on column vectors; the renderer's camera is the computer-vision one
(x right, y down, z forward).
"""

from importlib.metadata import PackageNotFoundError, version

from pose_body.body_model import BodyModel, BodyOutput, JointsOutput
from pose_body.mesh_io import read_obj, write_obj
from pose_body.model_files import (
    SMPL_MODEL_KEYS,
    MeanParams,
    SMPLModelData,
    UnsafePickleError,
    load_joint_regressor,
    load_mean_params,
    load_smpl_model,
    safe_load_pickle,
    write_joint_regressor,
    write_mean_params,
    write_smpl_model_npz,
    write_smpl_model_pickle,
)
from pose_body.procedural import (
    H36M17_REGRESSOR_JOINTS,
    ProceduralBodyModel,
    ProceduralModelFiles,
    procedural_body_model,
    write_procedural_model,
)
from pose_body.render import (
    SKELETON_EDGES_44,
    Mesh,
    draw_keypoints,
    render_meshes,
    rotate_about_vertical,
    side_view,
)

try:
    __version__ = version("pose-body")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "H36M17_REGRESSOR_JOINTS",
    "SKELETON_EDGES_44",
    "SMPL_MODEL_KEYS",
    "BodyModel",
    "BodyOutput",
    "JointsOutput",
    "MeanParams",
    "Mesh",
    "ProceduralBodyModel",
    "ProceduralModelFiles",
    "SMPLModelData",
    "UnsafePickleError",
    "__version__",
    "draw_keypoints",
    "load_joint_regressor",
    "load_mean_params",
    "load_smpl_model",
    "procedural_body_model",
    "read_obj",
    "render_meshes",
    "rotate_about_vertical",
    "safe_load_pickle",
    "side_view",
    "write_joint_regressor",
    "write_mean_params",
    "write_obj",
    "write_procedural_model",
    "write_smpl_model_npz",
    "write_smpl_model_pickle",
]
