"""Datasets in the ProHMR npz format: readers, converters, crops and augmentation, mixing.

Conventions: image coordinates in pixels (x right, y down) unless a name says "normalised"
(crop-normalised = u / S - 0.5 in [-0.5, 0.5]); 3D keypoints in metres, camera frame (x right,
y down, z forward); keypoints in the 44 layout of ``pose_geometry`` with a trailing confidence
channel; SMPL poses as axis-angle, global orientation first; box sizes are sides in pixels.
Randomness comes from ``numpy.random.Generator`` objects keyed by (seed, epoch or stream
position, index), never from global generators.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_data.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SMPL_BODY_POSE_FLIP_INDEX_69,
    AugmentationConfig,
    AugmentationParams,
    CroppedExample,
    box_from_keypoints,
    check_image_complete,
    crop_affine_matrix,
    crop_and_augment,
    crop_box,
    crop_image,
    decode_reduction,
    extreme_crop_box,
    flip_keypoints_2d_pixels,
    flip_keypoints_3d,
    flip_smpl_pose,
    image_size_from_header,
    in_plane_rotation_matrix,
    normalize_image,
    read_image,
    rotate_global_orient,
    rotate_keypoints_3d,
    sample_augmentation,
    transform_points_2d,
)
from pose_data.coco import convert_coco
from pose_data.image_dataset import (
    ImageAnnotations,
    ImageDataset,
    check_images_exist,
    read_prohmr_npz,
)
from pose_data.io import (
    PROHMR_NPZ_SHAPES,
    ConversionReport,
    atomic_write,
    atomic_write_npz,
    atomic_write_pickle,
    extract_video_frames,
    read_npz,
    restricted_pickle_load,
    write_mocap_npz,
    write_multiview_pickle,
    write_prohmr_npz,
)
from pose_data.mixing import (
    PROHMR_TRAIN_WEIGHTS,
    PROHMR_VAL_WEIGHTS,
    MixedDataset,
    MixedSampler,
    StreamSampler,
)
from pose_data.mpii import convert_mpii_json, convert_mpii_mat
from pose_data.multiview import MultiviewDataset, read_multiview_pickle
from pose_data.openpose import (
    IMAGE_EXTENSIONS,
    OpenPoseDataset,
    OpenPoseFrame,
    openpose_boxes,
    openpose_to_npz,
    read_openpose_json,
)
from pose_data.smpl_mocap import MocapDataset
from pose_data.spin import SPIN_JOINT_LAYOUTS, spin_npz_to_prohmr

try:
    __version__ = version("pose-data")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "PROHMR_NPZ_SHAPES",
    "PROHMR_TRAIN_WEIGHTS",
    "PROHMR_VAL_WEIGHTS",
    "SMPL_BODY_POSE_FLIP_INDEX_69",
    "SPIN_JOINT_LAYOUTS",
    "AugmentationConfig",
    "AugmentationParams",
    "CroppedExample",
    "ImageAnnotations",
    "ImageDataset",
    "MixedDataset",
    "MixedSampler",
    "MocapDataset",
    "MultiviewDataset",
    "OpenPoseDataset",
    "OpenPoseFrame",
    "StreamSampler",
    "__version__",
    "atomic_write",
    "atomic_write_npz",
    "atomic_write_pickle",
    "box_from_keypoints",
    "check_image_complete",
    "check_images_exist",
    "convert_coco",
    "convert_mpii_json",
    "convert_mpii_mat",
    "crop_affine_matrix",
    "crop_and_augment",
    "crop_box",
    "crop_image",
    "decode_reduction",
    "extreme_crop_box",
    "flip_keypoints_2d_pixels",
    "flip_keypoints_3d",
    "flip_smpl_pose",
    "image_size_from_header",
    "in_plane_rotation_matrix",
    "normalize_image",
    "openpose_boxes",
    "openpose_to_npz",
    "read_image",
    "read_multiview_pickle",
    "read_npz",
    "read_openpose_json",
    "read_prohmr_npz",
    "restricted_pickle_load",
    "rotate_global_orient",
    "rotate_keypoints_3d",
    "sample_augmentation",
    "spin_npz_to_prohmr",
    "transform_points_2d",
    "write_mocap_npz",
    "write_multiview_pickle",
    "write_prohmr_npz",
]

# --- pose-data (2/2): motion capture, Human3.6M, 3DPW, MPI-INF-3DHP, Mannequin, lifting ------
from pose_data.asf_amc import AsfBone, AsfSkeleton, read_amc, read_asf
from pose_data.bvh import read_bvh
from pose_data.h36m import (
    H36MSequence,
    convert_h36m,
    find_h36m_sequences,
    group_h36m_multiview,
    parse_h36m_imgname,
    read_h36m_cameras,
    read_h36m_cdf,
    read_h36m_mask_boxes,
)
from pose_data.h36m_layout import (
    H36M17_FROM_32,
    H36M17_NAMES,
    H36M17_PARENTS,
    H36M17_TO_44,
    H36M32_NAMES,
    H36M_CAMERA_IDS,
    H36M_PROTOCOL2_CAMERA,
    H36M_TEST_SUBJECTS,
    H36M_TRAIN_SUBJECTS,
)
from pose_data.h36m_videopose3d import read_videopose3d_2d, read_videopose3d_3d
from pose_data.humandata import (
    HUMANDATA_KEYPOINT_CONVENTIONS,
    convert_humandata,
    read_humandata,
    write_humandata,
)
from pose_data.lifting import (
    LIFTING_2D_EXTRA_IDX,
    LIFTING_3D_EXTRA_IDX,
    LiftingDataset,
    LiftingDatasetFiles,
    compute_lifting_stats,
    make_cmu_lifting_dataset,
    make_h36m_lifting_dataset,
    read_lifting_stats,
    write_lifting_npz,
    write_lifting_stats,
)
from pose_data.lifting_cameras import (
    PinholeCamera,
    look_at_camera,
    sample_look_at_cameras,
    square_boxes_from_keypoints,
)
from pose_data.mannequin import (
    MannequinTrajectory,
    convert_mannequin,
    group_mannequin_views,
    read_mannequin_annotations,
    read_mannequin_trajectory,
)
from pose_data.mocap_skeleton import (
    CMU_ASF_TO_H36M17,
    CMU_BVH_TO_H36M17,
    CMU_UNIT_TO_METRES,
    MocapClip,
    bone_lengths,
    euler_to_rotmat,
    forward_kinematics,
    mocap_to_h36m17,
    subsample_clip,
)
from pose_data.mpi_inf import (
    MPI_INF17_NAMES,
    MPI_INF28_NAMES,
    convert_mpi_inf_test,
    convert_mpi_inf_train,
    read_mpi_inf_calibration,
    read_mpi_inf_cameras_pickle,
    read_mpi_inf_test_annotations,
    read_mpi_inf_train_annotations,
)
from pose_data.pw3d import PW3DSequence, convert_3dpw, read_3dpw_sequence

__all__ += [
    "CMU_ASF_TO_H36M17",
    "CMU_BVH_TO_H36M17",
    "CMU_UNIT_TO_METRES",
    "H36M17_FROM_32",
    "H36M17_NAMES",
    "H36M17_PARENTS",
    "H36M17_TO_44",
    "H36M32_NAMES",
    "H36M_CAMERA_IDS",
    "H36M_PROTOCOL2_CAMERA",
    "H36M_TEST_SUBJECTS",
    "H36M_TRAIN_SUBJECTS",
    "HUMANDATA_KEYPOINT_CONVENTIONS",
    "LIFTING_2D_EXTRA_IDX",
    "LIFTING_3D_EXTRA_IDX",
    "MPI_INF17_NAMES",
    "MPI_INF28_NAMES",
    "AsfBone",
    "AsfSkeleton",
    "ConversionReport",
    "H36MSequence",
    "LiftingDataset",
    "LiftingDatasetFiles",
    "MannequinTrajectory",
    "MocapClip",
    "PW3DSequence",
    "PinholeCamera",
    "bone_lengths",
    "compute_lifting_stats",
    "convert_3dpw",
    "convert_h36m",
    "convert_humandata",
    "convert_mannequin",
    "convert_mpi_inf_test",
    "convert_mpi_inf_train",
    "euler_to_rotmat",
    "extract_video_frames",
    "find_h36m_sequences",
    "forward_kinematics",
    "group_h36m_multiview",
    "group_mannequin_views",
    "look_at_camera",
    "make_cmu_lifting_dataset",
    "make_h36m_lifting_dataset",
    "mocap_to_h36m17",
    "parse_h36m_imgname",
    "read_3dpw_sequence",
    "read_amc",
    "read_asf",
    "read_bvh",
    "read_h36m_cameras",
    "read_h36m_cdf",
    "read_h36m_mask_boxes",
    "read_humandata",
    "read_lifting_stats",
    "read_mannequin_annotations",
    "read_mannequin_trajectory",
    "read_mpi_inf_calibration",
    "read_mpi_inf_cameras_pickle",
    "read_mpi_inf_test_annotations",
    "read_mpi_inf_train_annotations",
    "read_videopose3d_2d",
    "read_videopose3d_3d",
    "sample_look_at_cameras",
    "square_boxes_from_keypoints",
    "subsample_clip",
    "write_humandata",
    "write_lifting_npz",
    "write_lifting_stats",
]
