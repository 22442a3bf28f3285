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
- ``joint_layout="h36m17"`` (J = 17, Human3.6M's 17 joints in the order of VideoPose3D and
  mmpose, ``pose_data.H36M17_NAMES``: pelvis, right hip, knee, ankle, left hip, knee, ankle,
  spine, thorax, neck/nose, head, left shoulder, elbow, wrist, right shoulder, elbow, wrist):
  mapped with ``pose_data.H36M17_TO_44`` (thorax -> extra 12 "Neck (LSP)", neck/nose -> extra 17
  "Jaw (H36M)", head -> extra 18 "Head (H36M)"); mmpose's ``test_h36m_body3d.npz`` is such a
  file;

A 17-joint file must say its layout (``joint_layout``): the two 17-joint orders have the same
shape. The choice is checked on the file's geometry (``S``, else ``part``): in the right
layout the pelvis lies between the two hips; a file of one 17-joint layout converted as the
other is refused with the layout its geometry fits.

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
from pose_data.h36m_layout import H36M17_TO_44
from pose_data.image_dataset import _decode_names, _load_source

__all__ = ["SPIN_JOINT_LAYOUTS", "spin_npz_to_prohmr"]

#: Extra-keypoint index (0..18) of each source joint, per supported layout; -1 = not an extra
#: keypoint.
SPIN_JOINT_LAYOUTS: dict[str, tuple[int, ...]] = {
    "spin24": (*range(19), -1, -1, -1, -1, -1),
    "mpi_inf_3dhp17": (13, 12, 8, 7, 6, 9, 10, 11, 2, 1, 0, 3, 4, 5, 14, 16, 17),
    "h36m17": tuple(index - 25 for index in H36M17_TO_44),
}
#: (pelvis, right hip, left hip) joint indices of each 17-joint layout, for the geometry check.
_PELVIS_AND_HIPS = {"mpi_inf_3dhp17": (14, 8, 11), "h36m17": (0, 1, 4)}
#: In the right layout the pelvis is within this fraction of the hip width of the hips'
#: midpoint (about 0 on real files; a wrong layout gives about 1 or more).
_PELVIS_TOLERANCE = 0.35
#: OpenPose BODY_25 slot of SPIN joints 19..23 (nose, left eye, right eye, left ear, right ear).
_SPIN_FACE_TO_BODY25 = {19: 0, 20: 16, 21: 15, 22: 18, 23: 17}


def _numeric(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...], name: str):
    value = arrays[key]
    if value.dtype.kind not in "biuf":
        raise ValueError(f"`{key}` in {name} must be numeric, got dtype {value.dtype}")
    if value.shape != shape:
        raise ValueError(f"`{key}` in {name} must have shape {shape}, got {value.shape}")
    return value.astype(np.float32)


def _pelvis_offset(values: np.ndarray, layout: str) -> float | None:
    """Median over rows of |pelvis - mid-hip| / |right hip - left hip| of (n, 17, C) joints
    (last channel a confidence) in ``layout``; None if no row has the three joints."""
    pelvis, right, left = _PELVIS_AND_HIPS[layout]
    points = values[:, [pelvis, right, left], :-1].astype(np.float64)
    seen = (values[:, [pelvis, right, left], -1] > 0).all(axis=1)
    width = np.linalg.norm(points[:, 1] - points[:, 2], axis=-1)
    seen &= width > 0
    if not seen.any():
        return None
    offset = np.linalg.norm(points[:, 0] - (points[:, 1] + points[:, 2]) / 2, axis=-1)
    return float(np.median(offset[seen] / width[seen]))


def check_17_joint_layout(values: np.ndarray, joint_layout: str, name: str) -> None:
    """Refuse 17-joint keypoints whose geometry does not fit ``joint_layout``.

    Args:
        values: (n, 17, C) keypoints, the last channel a confidence (``S`` or ``part``).
        joint_layout: "h36m17" or "mpi_inf_3dhp17".
        name: the file, for the message.

    Raises:
        ValueError: naming the file, the layout given and the one the geometry fits.
    """
    offsets = {layout: _pelvis_offset(values, layout) for layout in _PELVIS_AND_HIPS}
    given = offsets[joint_layout]
    if given is None or given <= _PELVIS_TOLERANCE:
        return
    fits = [k for k, v in offsets.items() if v is not None and v <= _PELVIS_TOLERANCE]
    hint = f"; its geometry fits {fits[0]!r}" if fits else ""
    raise ValueError(
        f"{name} does not look like joint_layout {joint_layout!r}: its pelvis lies "
        f"{given:.2f} hip widths from the middle of its hips (expected <= {_PELVIS_TOLERANCE})"
        f"{hint}; pass the file's real layout, or check_layout=False to convert it anyway"
    )


def spin_npz_to_prohmr(
    source: str | os.PathLike[str] | Mapping[str, Any],
    output_path: str | os.PathLike[str] | None = None,
    *,
    joint_layout: str | None = None,
    face_to_openpose: bool = True,
    imgname_map: Callable[[str], str] | None = None,
    check_layout: bool = True,
) -> dict[str, np.ndarray]:
    """Convert a SPIN-layout npz (path or arrays) to ProHMR npz arrays (optionally written).

    Args:
        source: the SPIN ``.npz`` or a mapping of its arrays.
        output_path: write the ProHMR npz here (atomically) if given.
        joint_layout: ``"spin24"``, ``"mpi_inf_3dhp17"`` or ``"h36m17"``; None picks
            ``"spin24"`` for 24 joints and refuses other counts (17-joint files exist in
            several orders; the message names the one the file's geometry fits).
        face_to_openpose: put SPIN's 5 face points into the OpenPose face slots
            (``spin24`` only); they override ``openpose`` detections there.
        imgname_map: rewrite each image name (e.g. to add sub-folders).
        check_layout: check a 17-joint layout on the file's geometry (``S``, else ``part``):
            the pelvis must lie between the hips.

    Returns:
        npz-layout arrays: ``imgname``, ``center``, ``scale`` (pixels), ``body_keypoints_2d``,
        ``extra_keypoints_2d``, ``body_keypoints_3d``, ``extra_keypoints_3d`` and, when the
        source has them, ``body_pose``, ``has_body_pose``, ``betas``, ``has_betas``, ``gender``.

    Raises:
        ValueError: for missing keys, wrong shapes, an unknown/ambiguous joint layout, or a
            17-joint layout the file's geometry does not fit.
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
            hint = ""
            geometry = arrays.get("S", arrays.get("part"))
            if joints == 17 and geometry is not None and geometry.ndim == 3:
                fits = [
                    layout
                    for layout in _PELVIS_AND_HIPS
                    if (offset := _pelvis_offset(np.asarray(geometry), layout)) is not None
                    and offset <= _PELVIS_TOLERANCE
                ]
                hint = f" (its geometry fits {fits})" if fits else ""
            raise ValueError(
                f"{name} has {joints} joints per row; pass joint_layout (one of "
                f"{sorted(SPIN_JOINT_LAYOUTS)}) to say which order they are in{hint}"
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

    if check_layout and joint_layout in _PELVIS_AND_HIPS:
        key = "S" if "S" in arrays else "part"
        channels = 4 if key == "S" else 3
        check_17_joint_layout(
            _numeric(arrays, key, (n, joints, channels), name), joint_layout, name
        )
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
