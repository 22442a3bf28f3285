"""Adapter from SPIN-layout npz files (and their 17-joint relatives) to the ProHMR npz layout.

SPIN's preprocessed files store ``imgname``, ``center``, ``scale`` (box side / 200), ``part``
(n, J, 3) 2D keypoints in pixels with confidence, ``S`` (n, J, 4) 3D keypoints (metres, camera
frame, confidence), optionally ``pose`` (n, 72), ``shape`` (n, 10), ``has_smpl`` (n,),
``openpose`` (n, 25, 3) detections and ``gender``. ProHMR's layout (docs/data.md#the-image-npz)
differs:

- ``scale`` is multiplied by 200 (pixels);
- ``joint_layout="spin24"`` (J = 24: 14 LSP joints, pelvis, thorax, spine, jaw, head, then
  nose, left eye, right eye, left ear, right ear): the first 19 joints are ProHMR's 19 extra
  keypoints; the 5 face points go to the OpenPose nose/eye/ear slots (``face_to_openpose``);
- ``joint_layout="mpi_inf_3dhp17"`` (J = 17, the MPI-INF-3DHP test-set order used by mmpose:
  head top, neck, right shoulder, elbow, wrist, left shoulder, elbow, wrist, right hip, knee,
  ankle, left hip, knee, ankle, pelvis, spine, head): mapped to extra 13, 12, 8, 7, 6, 9, 10,
  11, 2, 1, 0, 3, 4, 5, 14, 16, 17 (head -> extra 17, the slot ProHMR's MPI-INF evaluation list
  ``MPI_INF17_IDX_44`` uses; **inferred** from that list);
- ``pose``/``shape``/``has_smpl`` become ``body_pose``/``betas``/``has_body_pose``/``has_betas``
  (flags 1 when ``pose`` exists without ``has_smpl``); ``openpose`` becomes
  ``body_keypoints_2d``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pose_data._convert import finish, string_array
from pose_data.image_dataset import _decode_names, _load_source

__all__ = ["SPIN_JOINT_LAYOUTS", "spin_npz_to_prohmr"]

#: Extra-keypoint index (0..18) of each source joint, per supported layout; -1 = not an extra
#: keypoint.
SPIN_JOINT_LAYOUTS: dict[str, tuple[int, ...]] = {
    "spin24": (*range(19), -1, -1, -1, -1, -1),
    "mpi_inf_3dhp17": (13, 12, 8, 7, 6, 9, 10, 11, 2, 1, 0, 3, 4, 5, 14, 16, 17),
}
#: OpenPose BODY_25 slot of SPIN joints 19..23 (nose, left eye, right eye, left ear, right ear).
_SPIN_FACE_TO_BODY25 = {19: 0, 20: 16, 21: 15, 22: 18, 23: 17}


def _numeric(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...], name: str):
    value = arrays[key]
    if value.dtype.kind not in "biuf":
        raise ValueError(f"`{key}` in {name} must be numeric, got dtype {value.dtype}")
    if value.shape != shape:
        raise ValueError(f"`{key}` in {name} must have shape {shape}, got {value.shape}")
    return value.astype(np.float32)


def spin_npz_to_prohmr(
    source: str | os.PathLike[str] | Mapping[str, Any],
    output_path: str | os.PathLike[str] | None = None,
    *,
    joint_layout: str | None = None,
    face_to_openpose: bool = True,
    imgname_map: Callable[[str], str] | None = None,
) -> dict[str, np.ndarray]:
    """Convert a SPIN-layout npz (path or arrays) to ProHMR npz arrays (optionally written).

    Args:
        source: the SPIN ``.npz`` or a mapping of its arrays.
        output_path: write the ProHMR npz here (atomically) if given.
        joint_layout: ``"spin24"`` or ``"mpi_inf_3dhp17"``; None picks ``"spin24"`` for 24
            joints and refuses other counts (17-joint files exist in several orders).
        face_to_openpose: put SPIN's 5 face points into the OpenPose face slots
            (``spin24`` only); they override ``openpose`` detections there.
        imgname_map: rewrite each image name (e.g. to add sub-folders).

    Returns:
        npz-layout arrays: ``imgname``, ``center``, ``scale`` (pixels), ``body_keypoints_2d``,
        ``extra_keypoints_2d``, ``body_keypoints_3d``, ``extra_keypoints_3d`` and, when the
        source has them, ``body_pose``, ``has_body_pose``, ``betas``, ``has_betas``, ``gender``.

    Raises:
        ValueError: for missing keys, wrong shapes or an unknown/ambiguous joint layout.
    """
    arrays, name = _load_source(source)
    missing = [key for key in ("imgname", "center", "scale") if key not in arrays]
    if "part" not in arrays and "S" not in arrays:
        missing.append("part or S")
    if missing:
        raise ValueError(f"{name} lacks key(s) {missing}")
    names = _decode_names("imgname", arrays["imgname"], name)
    if imgname_map is not None:
        names = string_array([imgname_map(str(n)) for n in names])
    n = len(names)
    joints = arrays["part"].shape[1] if "part" in arrays else arrays["S"].shape[1]
    if joint_layout is None:
        if joints != 24:
            raise ValueError(
                f"{name} has {joints} joints per row; pass joint_layout (one of "
                f"{sorted(SPIN_JOINT_LAYOUTS)}) to say which order they are in"
            )
        joint_layout = "spin24"
    if joint_layout not in SPIN_JOINT_LAYOUTS:
        raise ValueError(
            f"unknown joint_layout {joint_layout!r}; expected one of {sorted(SPIN_JOINT_LAYOUTS)}"
        )
    layout = np.asarray(SPIN_JOINT_LAYOUTS[joint_layout])
    if joints != len(layout):
        raise ValueError(
            f"joint_layout {joint_layout!r} has {len(layout)} joints but {name} has {joints}"
        )
    center = _numeric(arrays, "center", (n, 2), name)
    scale = arrays["scale"]
    if scale.dtype.kind not in "biuf":
        raise ValueError(f"`scale` in {name} must be numeric, got dtype {scale.dtype}")
    scale = scale.astype(np.float32)
    if scale.ndim == 2 and scale.shape[0] == n:
        scale = scale.max(axis=1)
    if scale.shape != (n,):
        raise ValueError(f"`scale` in {name} must have shape ({n},), got {scale.shape}")

    source_idx = np.flatnonzero(layout >= 0)
    target_idx = layout[source_idx]
    out: dict[str, np.ndarray] = {
        "imgname": names,
        "center": center,
        "scale": 200.0 * scale,
        "body_keypoints_2d": np.zeros((n, 25, 3), dtype=np.float32),
        "extra_keypoints_2d": np.zeros((n, 19, 3), dtype=np.float32),
        "body_keypoints_3d": np.zeros((n, 25, 4), dtype=np.float32),
        "extra_keypoints_3d": np.zeros((n, 19, 4), dtype=np.float32),
    }
    if "openpose" in arrays:
        out["body_keypoints_2d"] = _numeric(arrays, "openpose", (n, 25, 3), name)
    for key, target_key, body_key, channels in (
        ("part", "extra_keypoints_2d", "body_keypoints_2d", 3),
        ("S", "extra_keypoints_3d", "body_keypoints_3d", 4),
    ):
        if key not in arrays:
            continue
        values = _numeric(arrays, key, (n, joints, channels), name)
        out[target_key][:, target_idx] = values[:, source_idx]
        if joint_layout == "spin24" and face_to_openpose:
            for spin_joint, slot in _SPIN_FACE_TO_BODY25.items():
                annotated = values[:, spin_joint, -1] > 0
                out[body_key][annotated, slot] = values[annotated, spin_joint]
    if "pose" in arrays:
        out["body_pose"] = _numeric(arrays, "pose", (n, 72), name)
        flags = (
            _numeric(arrays, "has_smpl", (n,), name)
            if "has_smpl" in arrays
            else np.ones(n, dtype=np.float32)
        )
        out["has_body_pose"] = flags
        if "shape" in arrays:
            out["betas"] = _numeric(arrays, "shape", (n, 10), name)
            out["has_betas"] = flags.copy()
    if "gender" in arrays:
        out["gender"] = _decode_names("gender", arrays["gender"], name)
    return finish(out, output_path=output_path, image_dir=None, check_images=False, listed_in="")
