"""3DPW: the original ``sequenceFiles/*.pkl`` -> ProHMR npz (docs/data.md#converters).

Expected layout of the original dataset::

    <root>/sequenceFiles/{train,validation,test}/<sequence>.pkl    Python 2 pickles (latin-1)
    <root>/imageFiles/<sequence>/image_00000.jpg ...              1080 x 1920 (or 1920 x 1080)

Fields of a sequence pickle (the dataset's readme; P actors, N frames): ``sequence`` (name),
``genders`` (P, 'm'/'f'), ``betas`` (P arrays, the first 10 are SMPL's), ``poses`` (P x
(N, 72) SMPL axis-angle, world axes), ``trans`` (P x (N, 3)), ``poses2d`` (P x (N, 3, 18):
COCO-18 / OpenPose order x, y, confidence), ``jointPositions`` (P x (N, 72): 24 SMPL joints,
world, metres), ``cam_poses`` (N, 4, 4) world-to-camera extrinsics, ``cam_intrinsics``
(3, 3), ``campose_valid`` (P x (N,)), ``img_frame_ids`` (N,). Pickles are read with
:func:`~pose_data.io.restricted_pickle_load` (numpy and builtins only).

Output rows, one per actor and frame with a valid camera pose (ProHMR): ``imgname``
("imageFiles/<sequence>/image_<frame:05d>.jpg"), ``center`` / ``scale`` (box around the 2D
keypoints with confidence > 0, side 1.2 x extent, pixels), ``body_pose`` (72; the global
orientation rotated into the camera: R <- R_cam R), ``has_body_pose`` = 1, ``betas`` (10),
``has_betas`` = 1, ``body_keypoints_2d`` (COCO-18 rows at BODY_25 slots
[0..7, 9..18]; MidHip and feet stay 0), ``gender``; and, beyond ProHMR, ``sequence``,
``person``, ``frame``, ``focal_px`` / ``center_px`` (from ``cam_intrinsics``) and
``smpl_joints_3d`` (n, 24, 3): ``jointPositions`` in camera axes, metres, which project onto
the image with ``focal_px`` / ``center_px``.

No SMPL model here (this package does not depend on pose-body): ProHMR's
``extra_keypoints_3d`` (the gendered model's 19 extra joints at the camera-frame pose, no
translation) are written only if a callable ``smpl_keypoints(global_orient (n, 3), body_pose
(n, 69), betas (n, 10), gender 'm'/'f') -> (n, 44, 3)`` is passed (e.g. pose-body's model);
otherwise the SMPL parameters and 2D keypoints are stored and the 3D keypoints can be
computed later from them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pose_data.io import ConversionReport, restricted_pickle_load, write_prohmr_npz
from pose_data.lifting_cameras import square_boxes_from_keypoints
from pose_geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

__all__ = [
    "COCO18_TO_BODY25",
    "PW3D_DEFAULT_IMGNAME",
    "PW3DSequence",
    "SmplKeypointsFn",
    "convert_3dpw",
    "read_3dpw_sequence",
]

#: OpenPose COCO-18 keypoint i goes to BODY_25 slot COCO18_TO_BODY25[i] (ProHMR's map).
COCO18_TO_BODY25: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

#: ProHMR's image name; fields: sequence, frame (0-based frame index).
PW3D_DEFAULT_IMGNAME = "imageFiles/{sequence}/image_{frame:05d}.jpg"

#: smpl_keypoints(global_orient (n, 3), body_pose (n, 69), betas (n, 10), gender) -> (n, 44, 3)
SmplKeypointsFn = Callable[[np.ndarray, np.ndarray, np.ndarray, str], np.ndarray]


@dataclass(frozen=True, eq=False)
class PW3DSequence:
    """A validated 3DPW sequence file (P actors, N frames).

    Attributes:
        name: sequence name. source: the file.
        genders: (P,) 'm' / 'f'.
        betas: (P, 10). poses: (P, N, 72) world axis-angle. trans: (P, N, 3) metres.
        keypoints_2d: (P, N, 18, 3) COCO-18 (x, y, confidence) pixels.
        joint_positions: (P, N, 24, 3) world metres, or None if the file has none.
        cam_poses: (N, 4, 4) world-to-camera. cam_intrinsics: (3, 3).
        campose_valid: (P, N) bool. img_frame_ids: (N,) int.
    """

    name: str
    source: str
    genders: tuple[str, ...]
    betas: np.ndarray
    poses: np.ndarray
    trans: np.ndarray
    keypoints_2d: np.ndarray
    joint_positions: np.ndarray | None
    cam_poses: np.ndarray
    cam_intrinsics: np.ndarray
    campose_valid: np.ndarray
    img_frame_ids: np.ndarray

    @property
    def num_people(self) -> int:
        return len(self.genders)

    @property
    def num_frames(self) -> int:
        return int(self.cam_poses.shape[0])


def _field(path: Path, data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise ValueError(f"{path}: field '{key}' is missing; fields: {sorted(data)}")
    return data[key]


def _per_person(
    path: Path, data: dict[str, Any], key: str, num_people: int, shape: tuple[int, ...]
) -> np.ndarray:
    """Stack a per-person list of arrays, checking each one's shape (N from the first)."""
    value = _field(path, data, key)
    if len(value) != num_people:
        raise ValueError(f"{path}: field '{key}' has {len(value)} entries, expected {num_people}")
    arrays = []
    for person, item in enumerate(value):
        array = np.asarray(item, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(
                f"{path}: field '{key}'[{person}] must have shape {shape}, got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: field '{key}'[{person}] has NaN or infinite values")
        arrays.append(array)
    return np.stack(arrays)


def read_3dpw_sequence(path: str | os.PathLike[str]) -> PW3DSequence:
    """Read and validate one 3DPW ``sequenceFiles`` pickle.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: naming the file and the field (and actor) that is missing or malformed.
    """
    path = Path(path)
    data = restricted_pickle_load(path, encoding="latin1")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict, got {type(data).__name__}")
    genders = tuple(str(g) for g in _field(path, data, "genders"))
    bad = [g for g in genders if g not in ("m", "f")]
    if bad or not genders:
        raise ValueError(f"{path}: field 'genders' must list 'm'/'f' per actor, got {genders}")
    num_people = len(genders)
    cam_poses = np.asarray(_field(path, data, "cam_poses"), dtype=np.float64)
    if cam_poses.ndim != 3 or cam_poses.shape[1:] != (4, 4):
        raise ValueError(
            f"{path}: field 'cam_poses' must have shape (N, 4, 4), got {cam_poses.shape}"
        )
    num_frames = cam_poses.shape[0]
    intrinsics = np.asarray(_field(path, data, "cam_intrinsics"), dtype=np.float64)
    if intrinsics.shape != (3, 3):
        raise ValueError(
            f"{path}: field 'cam_intrinsics' must have shape (3, 3), got {intrinsics.shape}"
        )
    betas_list = _field(path, data, "betas")
    if len(betas_list) != num_people:
        raise ValueError(
            f"{path}: field 'betas' has {len(betas_list)} entries, expected {num_people}"
        )
    betas = []
    for person, item in enumerate(betas_list):
        array = np.asarray(item, dtype=np.float64).reshape(-1)
        if array.size < 10:
            raise ValueError(
                f"{path}: field 'betas'[{person}] has {array.size} values, expected >= 10"
            )
        betas.append(array[:10])
    poses = _per_person(path, data, "poses", num_people, (num_frames, 72))
    trans = _per_person(path, data, "trans", num_people, (num_frames, 3))
    poses_2d = _per_person(path, data, "poses2d", num_people, (num_frames, 3, 18))
    joints = None
    if "jointPositions" in data:
        joints = _per_person(path, data, "jointPositions", num_people, (num_frames, 72))
        joints = joints.reshape(num_people, num_frames, 24, 3)
    valid_list = _field(path, data, "campose_valid")
    if len(valid_list) != num_people:
        raise ValueError(
            f"{path}: field 'campose_valid' has {len(valid_list)} entries, expected {num_people}"
        )
    valid = []
    for person, item in enumerate(valid_list):
        array = np.asarray(item).reshape(-1)
        if array.shape != (num_frames,):
            raise ValueError(
                f"{path}: field 'campose_valid'[{person}] must have shape ({num_frames},), "
                f"got {array.shape}"
            )
        valid.append(array.astype(bool))
    frame_ids = np.asarray(data.get("img_frame_ids", np.arange(num_frames))).reshape(-1)
    if frame_ids.shape != (num_frames,):
        raise ValueError(
            f"{path}: field 'img_frame_ids' must have shape ({num_frames},), got {frame_ids.shape}"
        )
    return PW3DSequence(
        name=str(data.get("sequence", path.stem)),
        source=str(path),
        genders=genders,
        betas=np.stack(betas),
        poses=poses,
        trans=trans,
        keypoints_2d=poses_2d.transpose(0, 1, 3, 2),
        joint_positions=joints,
        cam_poses=cam_poses,
        cam_intrinsics=intrinsics,
        campose_valid=np.stack(valid),
        img_frame_ids=frame_ids.astype(np.int64),
    )


def _sequence_rows(
    sequence: PW3DSequence,
    smpl_keypoints: SmplKeypointsFn | None,
    imgname_template: str,
) -> tuple[dict[str, Any], list[str]]:
    rows: dict[str, list[Any]] = defaultdict(list)
    problems = []
    focal = np.array([sequence.cam_intrinsics[0, 0], sequence.cam_intrinsics[1, 1]])
    center_px = sequence.cam_intrinsics[:2, 2]
    for person in range(sequence.num_people):
        frames = np.flatnonzero(sequence.campose_valid[person])
        keypoints = sequence.keypoints_2d[person, frames]
        visible = (keypoints[..., 2] > 0).any(axis=1)
        if not visible.all():
            problems.append(
                f"{sequence.source}: field 'poses2d'[{person}]: {int((~visible).sum())} valid "
                "frame(s) without any 2D keypoint left out"
            )
        frames, keypoints = frames[visible], keypoints[visible]
        if frames.size == 0:
            continue
        num = frames.size
        center, scale = square_boxes_from_keypoints(keypoints, rescale=1.2)
        R_cam = sequence.cam_poses[frames, :3, :3]
        t_cam = sequence.cam_poses[frames, :3, 3]
        pose = sequence.poses[person, frames].copy()
        R_global = axis_angle_to_rotmat(torch.from_numpy(pose[:, :3])).numpy()
        pose[:, :3] = rotmat_to_axis_angle(torch.from_numpy(R_cam @ R_global)).numpy()
        betas = np.tile(sequence.betas[person], (num, 1))
        body_2d = np.zeros((num, 25, 3))
        body_2d[:, list(COCO18_TO_BODY25)] = keypoints
        rows["imgname"] += [
            imgname_template.format(sequence=sequence.name, frame=int(f)) for f in frames
        ]
        rows["center"].append(center)
        rows["scale"].append(scale)
        rows["body_pose"].append(pose)
        rows["betas"].append(betas)
        rows["body_keypoints_2d"].append(body_2d)
        rows["gender"] += [sequence.genders[person]] * num
        rows["sequence"] += [sequence.name] * num
        rows["person"].append(np.full(num, person))
        rows["frame"].append(frames)
        rows["focal_px"].append(np.tile(focal, (num, 1)))
        rows["center_px"].append(np.tile(center_px, (num, 1)))
        if sequence.joint_positions is not None:
            world = sequence.joint_positions[person, frames]
            rows["smpl_joints_3d"].append(np.einsum("nij,nkj->nki", R_cam, world) + t_cam[:, None])
        if smpl_keypoints is not None:
            keypoints_3d = np.asarray(
                smpl_keypoints(pose[:, :3], pose[:, 3:], betas, sequence.genders[person]),
                dtype=np.float64,
            )
            if keypoints_3d.shape != (num, 44, 3):
                raise ValueError(
                    f"`smpl_keypoints` must return shape ({num}, 44, 3), got {keypoints_3d.shape}"
                )
            extra = np.ones((num, 19, 4))
            extra[..., :3] = keypoints_3d[:, 25:]
            rows["extra_keypoints_3d"].append(extra)
    return rows, problems


def convert_3dpw(
    sequence_files: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    smpl_keypoints: SmplKeypointsFn | None = None,
    imgname_template: str = PW3D_DEFAULT_IMGNAME,
    on_error: Literal["raise", "skip"] = "raise",
) -> ConversionReport:
    """Convert 3DPW sequence pickles to one ProHMR npz (see the module docstring).

    Args:
        sequence_files: pickle paths, or a folder (e.g. ``sequenceFiles/test``) whose ``*.pkl``
            are all converted, sorted by name.
        output_path: the npz to write (atomically).
        smpl_keypoints: optional gendered SMPL keypoint function (fills extra_keypoints_3d).
        imgname_template: image name; fields sequence, frame (0-based).
        on_error: "raise" stops at the first bad file, "skip" lists it in the report.

    Returns:
        A :class:`ConversionReport`.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(sequence_files, (str, os.PathLike)):
        folder = Path(sequence_files)
        if not folder.is_dir():
            raise FileNotFoundError(f"3DPW sequence folder not found: {folder}")
        files = sorted(folder.glob("*.pkl"))
        if not files:
            raise ValueError(f"{folder}: no .pkl sequence files")
    else:
        files = [Path(f) for f in sequence_files]
    rows: dict[str, list[Any]] = defaultdict(list)
    problems: list[str] = []
    for file in files:
        try:
            sequence_rows, sequence_problems = _sequence_rows(
                read_3dpw_sequence(file), smpl_keypoints, imgname_template
            )
        except (FileNotFoundError, ValueError) as error:
            if on_error == "raise":
                raise
            problems.append(str(error))
            continue
        problems += sequence_problems
        for key, value in sequence_rows.items():
            rows[key] += value
    if not rows:
        raise ValueError("no 3DPW sequence could be converted:\n" + "\n".join(problems))
    arrays = {
        key: np.asarray(value) if isinstance(value[0], str) else np.concatenate(value)
        for key, value in rows.items()
    }
    num = len(arrays["imgname"])
    if "smpl_joints_3d" in arrays and len(arrays["smpl_joints_3d"]) != num:
        del arrays["smpl_joints_3d"]  # some files lacked jointPositions
        problems.append("field 'jointPositions' missing in some files: smpl_joints_3d not written")
    named = (
        "imgname", "center", "scale", "body_pose", "betas", "body_keypoints_2d", "gender",
        "extra_keypoints_3d",
    )  # fmt: skip
    output = write_prohmr_npz(
        output_path,
        **{key: arrays[key] for key in named if key in arrays},
        has_body_pose=np.ones(num),
        has_betas=np.ones(num),
        extra={key: value for key, value in arrays.items() if key not in named},
    )
    return ConversionReport(output, num, tuple(problems))
