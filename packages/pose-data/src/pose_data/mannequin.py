"""Mannequin Challenge: per-frame SMPL annotations -> ProHMR's multiview pickle.

Output format: docs/data.md#multiview-pickle.

In the Mannequin Challenge videos people hold still while the camera moves, so the frames of
one person are views of one pose: ProHMR evaluates multiview refinement on them. Each element
of the output pickle is one person of one sequence seen in V frames: ``imgname`` (V,),
``center`` (V, 2), ``scale`` (V,) (box side, pixels), ``body_pose`` (V, 72) (global orientation
in each frame's camera), ``betas`` (V, 10), ``has_body_pose`` / ``has_betas`` (V,) = 1, plus
``frame`` (V,) and ``person`` (V,).

Expected layout (ASSUMED: the SMPL annotations ProHMR used, from the SMPLy benchmark, are not
public here, so the annotation pickle's layout below is this package's, documented so a
converter from the authors' files can target it)::

    <root>/annotations.pkl            list of records, one per person and frame (below)
    <root>/trajectories/<sequence>.txt  the dataset's camera trajectories (public format)
    <root>/images/<sequence>/...        frames, named by the records' imgname

A record is a dict with ``sequence`` (str), ``person`` (int or str), ``frame`` (int, the row
of the trajectory file, 0-based), ``imgname`` (str), ``center`` (2,), ``scale`` (box side in
pixels), ``betas`` (10,), ``body_pose`` (72,) SMPL axis-angle whose first 3 values are the
global orientation in the frame's camera, or (69,) body joints plus ``global_orient_world``
(3,) in world axes, which is rotated into each camera with the trajectory.

Trajectory files (the dataset's format, as RealEstate10K): line 1 is the video URL; then one
line per frame: ``timestamp_us fx fy cx cy 0 0`` followed by the 3 x 4 world-to-camera matrix
row-major; intrinsics are normalised by the image width (fx, cx) and height (fy, cy).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pose_data.io import ConversionReport, restricted_pickle_load, write_multiview_pickle
from pose_data.lifting_cameras import PinholeCamera
from pose_geometry import axis_angle_to_rotmat, rotmat_to_axis_angle

__all__ = [
    "MannequinTrajectory",
    "convert_mannequin",
    "group_mannequin_views",
    "read_mannequin_annotations",
    "read_mannequin_trajectory",
]


@dataclass(frozen=True, eq=False)
class MannequinTrajectory:
    """A camera trajectory file (F frames).

    Attributes:
        url: the video URL (first line).
        timestamps_us: (F,) int timestamps, microseconds.
        focal_normalized: (F, 2) (fx / width, fy / height).
        center_normalized: (F, 2) (cx / width, cy / height).
        rotations: (F, 3, 3) world-to-camera. translations: (F, 3) world-to-camera (the
            dataset's arbitrary scale; SLAM reconstructions have no metric scale).
        source: the file.
    """

    url: str
    timestamps_us: np.ndarray
    focal_normalized: np.ndarray
    center_normalized: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    source: str = ""

    def camera(self, frame: int, *, width: int, height: int) -> PinholeCamera:
        """The pinhole camera of `frame` for an image of `width` x `height` pixels."""
        size = np.array([width, height], dtype=np.float64)
        return PinholeCamera(
            rotation=self.rotations[frame],
            translation=self.translations[frame],
            focal_px=self.focal_normalized[frame] * size,
            center_px=self.center_normalized[frame] * size,
            width=width,
            height=height,
            name=f"{Path(self.source).stem}:{frame}",
        )


def read_mannequin_trajectory(path: str | os.PathLike[str]) -> MannequinTrajectory:
    """Parse a Mannequin Challenge camera-trajectory ``.txt`` file.

    Raises:
        FileNotFoundError, ValueError: naming the file and line of a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trajectory file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a URL line and at least one camera line")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            values = np.array([float(v) for v in line.split()])
        except ValueError:
            raise ValueError(f"{path}, line {number}: non-numeric value") from None
        if values.shape != (19,) or not np.all(np.isfinite(values)):
            raise ValueError(
                f"{path}, line {number}: expected 19 finite numbers (timestamp, fx fy cx cy, "
                f"0 0, 3 x 4 pose), got {values.size}"
            )
        rows.append(values)
    table = np.stack(rows)
    pose = table[:, 7:].reshape(-1, 3, 4)
    rotations = pose[:, :, :3]
    orthogonal = np.abs(rotations @ rotations.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    bad = np.flatnonzero(orthogonal > 1e-3)
    if bad.size:
        raise ValueError(f"{path}, line {bad[0] + 2}: the 3 x 3 part is not a rotation")
    return MannequinTrajectory(
        url=lines[0],
        timestamps_us=table[:, 0].astype(np.int64),
        focal_normalized=table[:, 1:3],
        center_normalized=table[:, 3:5],
        rotations=rotations,
        translations=pose[:, :, 3],
        source=str(path),
    )


_REQUIRED = ("sequence", "person", "frame", "imgname", "center", "scale", "betas", "body_pose")


def _vector(where: str, record: Mapping[str, Any], key: str, size: int) -> np.ndarray:
    array = np.asarray(record[key], dtype=np.float64).reshape(-1)
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise ValueError(
            f"{where}: field '{key}' must be {size} finite numbers, got {np.shape(record[key])}"
        )
    return array


def _check_record(where: str, record: Any) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a dict, got {type(record).__name__}")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ValueError(f"{where}: field(s) {missing} missing")
    pose = np.asarray(record["body_pose"], dtype=np.float64).reshape(-1)
    if pose.size == 69:
        if "global_orient_world" not in record:
            raise ValueError(
                f"{where}: field 'body_pose' has 69 values, so 'global_orient_world' is required"
            )
        world = _vector(where, record, "global_orient_world", 3)
    elif pose.size == 72:
        world = None
    else:
        raise ValueError(f"{where}: field 'body_pose' must have 72 (or 69) values, got {pose.size}")
    if not np.all(np.isfinite(pose)):
        raise ValueError(f"{where}: field 'body_pose' has NaN or infinite values")
    scale = float(np.asarray(record["scale"]).reshape(-1).max())
    if not scale > 0:
        raise ValueError(f"{where}: field 'scale' must be a positive box side in pixels")
    return {
        "sequence": str(record["sequence"]),
        "person": str(record["person"]),
        "frame": int(record["frame"]),
        "imgname": str(record["imgname"]),
        "center": _vector(where, record, "center", 2),
        "scale": scale,
        "betas": _vector(where, record, "betas", 10),
        "body_pose": pose,
        "global_orient_world": world,
    }


def read_mannequin_annotations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read and validate an annotation pickle (a list of records, see the module docstring).

    Raises:
        FileNotFoundError, ValueError: naming the file, the record index and the field.
    """
    data = restricted_pickle_load(path, encoding="latin1")
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"{path}: expected a list of records, got {type(data).__name__}")
    return [_check_record(f"{path}: record {index}", record) for index, record in enumerate(data)]


def group_mannequin_views(
    records: Sequence[Mapping[str, Any]],
    *,
    trajectories: Mapping[str, MannequinTrajectory] | None = None,
    max_views: int | None = None,
    min_views: int = 2,
) -> tuple[list[dict[str, np.ndarray]], list[str]]:
    """Group per-frame records of the same person into multiview elements.

    Frames are sorted by index; a person with more than `max_views` frames gives several
    elements of consecutive frames; groups smaller than `min_views` are left out (reported).
    Records with ``global_orient_world`` need the sequence's trajectory.

    Returns:
        (elements, problems): the elements for `write_multiview_pickle` and one line per
        left-out group.
    """
    if max_views is not None and max_views < 1:
        raise ValueError(f"`max_views` must be positive or None, got {max_views}")
    checked = [_check_record(f"record {index}", record) for index, record in enumerate(records)]
    people: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in checked:
        people[(record["sequence"], record["person"])].append(record)
    elements, problems = [], []
    for (sequence, person), items in sorted(people.items()):
        items = sorted(items, key=lambda r: r["frame"])
        frames = [r["frame"] for r in items]
        if len(set(frames)) != len(frames):
            raise ValueError(f"sequence {sequence!r} person {person!r}: repeated frame numbers")
        poses = []
        for record in items:
            pose = record["body_pose"]
            if record["global_orient_world"] is not None:
                if trajectories is None or sequence not in trajectories:
                    raise ValueError(
                        f"sequence {sequence!r}: records give 'global_orient_world' but no "
                        "trajectory was provided for it"
                    )
                trajectory = trajectories[sequence]
                if not 0 <= record["frame"] < len(trajectory.timestamps_us):
                    raise ValueError(
                        f"sequence {sequence!r} person {person!r}: frame {record['frame']} "
                        f"outside the trajectory's {len(trajectory.timestamps_us)} frames"
                    )
                R_world = axis_angle_to_rotmat(torch.from_numpy(record["global_orient_world"]))
                R_camera = torch.from_numpy(trajectory.rotations[record["frame"]]) @ R_world
                orient = rotmat_to_axis_angle(R_camera).numpy()
                pose = np.concatenate([orient, pose])
            poses.append(pose)
        size = len(items) if max_views is None else max_views
        for start in range(0, len(items), size):
            chunk = slice(start, start + size)
            group = items[chunk]
            if len(group) < min_views:
                problems.append(
                    f"sequence {sequence!r} person {person!r}: {len(group)} view(s) from frame "
                    f"{group[0]['frame']} left out (min_views={min_views})"
                )
                continue
            num = len(group)
            elements.append(
                {
                    "imgname": np.asarray([r["imgname"] for r in group]),
                    "center": np.stack([r["center"] for r in group]),
                    "scale": np.asarray([r["scale"] for r in group]),
                    "body_pose": np.stack(poses[chunk]),
                    "has_body_pose": np.ones(num),
                    "betas": np.stack([r["betas"] for r in group]),
                    "has_betas": np.ones(num),
                    "frame": np.asarray([r["frame"] for r in group]),
                    "person": np.asarray([person] * num),
                }
            )
    return elements, problems


def convert_mannequin(
    annotation_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    trajectory_dir: str | os.PathLike[str] | None = None,
    max_views: int | None = None,
    min_views: int = 2,
) -> ConversionReport:
    """Annotation pickle (+ trajectories) -> multiview pickle, written atomically.

    Args:
        annotation_path: the records (see the module docstring).
        output_path: the pickle to write.
        trajectory_dir: folder with ``<sequence>.txt`` trajectory files (needed only for
            records with ``global_orient_world``).
        max_views, min_views: see `group_mannequin_views`.
    """
    records = read_mannequin_annotations(annotation_path)
    trajectories = None
    if trajectory_dir is not None:
        folder = Path(trajectory_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"trajectory folder not found: {folder}")
        wanted = sorted({r["sequence"] for r in records if r["global_orient_world"] is not None})
        trajectories = {name: read_mannequin_trajectory(folder / f"{name}.txt") for name in wanted}
    elements, problems = group_mannequin_views(
        records, trajectories=trajectories, max_views=max_views, min_views=min_views
    )
    if not elements:
        raise ValueError(f"{annotation_path}: no group with >= {min_views} views")
    output = write_multiview_pickle(output_path, elements)
    return ConversionReport(output, len(elements), tuple(problems))
