"""Rotations, cameras, similarity alignment and keypoint layouts for batched PyTorch tensors.

Conventions: rotation matrices act on column vectors (x' = R x); quaternions are (w, x, y, z);
axis-angle vectors are axis × angle in radians; the 6D rotation representation is ProHMR's: the
first two COLUMNS of R, (R00, R10, R20, R01, R11, R21) (Zhou et al. 2019). Lengths in metres,
image coordinates in pixels unless a name says "normalized". Every function accepts any leading
batch dimensions, float32 or float64, follows the input's device and is differentiable.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_geometry.alignment import ProcrustesResult, apply_similarity, procrustes_align
from pose_geometry.cameras import (
    crop_camera_to_full_frame_translation,
    crop_normalized_to_image_pixels,
    crop_normalized_to_pixels,
    crop_pixels_to_normalized,
    full_frame_translation_to_crop_camera,
    image_pixels_to_crop_normalized,
    project_points,
    translation_to_weak_perspective,
    weak_perspective_to_translation,
)
from pose_geometry.checks import (
    check_floating,
    check_module_input,
    check_non_negative,
    check_positive,
    check_same_device,
    check_same_dtype,
    check_same_leading_shape,
    check_tensor,
    check_trailing_shape,
)
from pose_geometry.keypoints import (
    BODY25_TO_44,
    COCO17_NAMES,
    COCO17_TO_44,
    FLIP_PERMUTATION_44,
    H36M17_IDX_44,
    H36M32_TO_44,
    KEYPOINT_NAMES_44,
    LIFTING_2D_IDX_44,
    LIFTING_3D_IDX_44,
    LSP14_IDX_44,
    MPI_INF17_IDX_44,
    MPII16_NAMES,
    MPII16_TO_44,
    NUM_KEYPOINTS_44,
    OPENPOSE_BODY25_NAMES,
    PELVIS_IDX_44,
    SMPL_FLIP_PERMUTATION,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    SMPLX_JOINTS_TO_BODY25,
    flip_keypoints,
    remap_keypoints,
)
from pose_geometry.rotations import (
    axis_angle_to_quat_wxyz,
    axis_angle_to_rotmat,
    quat_wxyz_to_axis_angle,
    quat_wxyz_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat_wxyz,
    rotmat_to_rot6d,
)

try:
    __version__ = version("pose-geometry")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BODY25_TO_44",
    "COCO17_NAMES",
    "COCO17_TO_44",
    "FLIP_PERMUTATION_44",
    "H36M17_IDX_44",
    "H36M32_TO_44",
    "KEYPOINT_NAMES_44",
    "LIFTING_2D_IDX_44",
    "LIFTING_3D_IDX_44",
    "LSP14_IDX_44",
    "MPII16_NAMES",
    "MPII16_TO_44",
    "MPI_INF17_IDX_44",
    "NUM_KEYPOINTS_44",
    "OPENPOSE_BODY25_NAMES",
    "PELVIS_IDX_44",
    "SMPLX_JOINTS_TO_BODY25",
    "SMPL_FLIP_PERMUTATION",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "ProcrustesResult",
    "__version__",
    "apply_similarity",
    "axis_angle_to_quat_wxyz",
    "axis_angle_to_rotmat",
    "check_floating",
    "check_module_input",
    "check_non_negative",
    "check_positive",
    "check_same_device",
    "check_same_dtype",
    "check_same_leading_shape",
    "check_tensor",
    "check_trailing_shape",
    "crop_camera_to_full_frame_translation",
    "crop_normalized_to_image_pixels",
    "crop_normalized_to_pixels",
    "crop_pixels_to_normalized",
    "flip_keypoints",
    "full_frame_translation_to_crop_camera",
    "image_pixels_to_crop_normalized",
    "procrustes_align",
    "project_points",
    "quat_wxyz_to_axis_angle",
    "quat_wxyz_to_rotmat",
    "remap_keypoints",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quat_wxyz",
    "rotmat_to_rot6d",
    "translation_to_weak_perspective",
    "weak_perspective_to_translation",
]
