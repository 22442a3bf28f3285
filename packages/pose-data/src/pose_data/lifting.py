"""Datasets for the probabilistic 2D-to-3D lifting model (docs/data.md#lifting-files).

Files: a standard image npz whose ``extra_keypoints_2d`` (n, 19, 3) hold the 17
2D joints in pixels and whose ``extra_keypoints_3d`` (n, 19, 4) hold the joints in metres,
ROOT-RELATIVE (pelvis = extra 14 at the origin), confidence 1; plus a statistics npz with
``mean`` and ``std`` (17, 2) of the 2D joints of the TRAINING split. The model reads:

- 2D: extra indices [0..12, 14, 16, 17, 18] (17 joints incl. the pelvis,
  ``pose_geometry.LIFTING_2D_IDX_44``), normalised per joint and coordinate as
  (x - mean) / std, confidence kept;
- 3D: extra indices [0..12, 16, 17, 18] (16 joints, pelvis excluded,
  ``pose_geometry.LIFTING_3D_IDX_44``).

Sources: Human3.6M (VideoPose3D's npz files, ground-truth 2D projected with the calibrations or
a 2D detections file) and CMU motion capture seen by random virtual cameras. Every row also
stores ``sequence``, ``camera``, ``frame``, ``pelvis_3d`` (n, 3) camera-axis metres, and the
camera's ``focal_px`` / ``center_px`` (n, 2), so absolute joints can be re-projected.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pose_data.h36m_layout import (
    H36M17_FROM_32,
    H36M17_TO_44,
    H36M_CAMERA_IDS,
    H36M_PROTOCOL2_CAMERA,
    H36M_TEST_SUBJECTS,
    H36M_TRAIN_SUBJECTS,
)
from pose_data.io import atomic_write_npz, read_npz, write_prohmr_npz
from pose_data.lifting_cameras import (
    PinholeCamera,
    sample_look_at_cameras,
    square_boxes_from_keypoints,
)
from pose_data.mocap_skeleton import MocapClip, mocap_to_h36m17
from pose_geometry import LIFTING_2D_IDX_44, LIFTING_3D_IDX_44

__all__ = [
    "LIFTING_2D_EXTRA_IDX",
    "LIFTING_3D_EXTRA_IDX",
    "LiftingDataset",
    "LiftingDatasetFiles",
    "compute_lifting_stats",
    "make_cmu_lifting_dataset",
    "make_h36m_lifting_dataset",
    "read_lifting_stats",
    "write_lifting_npz",
    "write_lifting_stats",
]

#: Extra indices of the 17 2D input joints (pelvis included).
LIFTING_2D_EXTRA_IDX: tuple[int, ...] = tuple(i - 25 for i in LIFTING_2D_IDX_44)
#: Extra indices of the 16 root-relative 3D joints (pelvis excluded).
LIFTING_3D_EXTRA_IDX: tuple[int, ...] = tuple(i - 25 for i in LIFTING_3D_IDX_44)
_H36M17_TO_EXTRA = [i - 25 for i in H36M17_TO_44]


def _as_array(
    name: str, value: object, trailing: tuple[int | None, ...], source: str | None = None
) -> np.ndarray:
    where = f"`{name}`" if source is None else f"`{name}` in {source}"
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{where} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    ok = array.ndim == len(trailing) + 1 and all(
        t is None or a == t for a, t in zip(array.shape[1:], trailing, strict=True)
    )
    if not ok:
        shape = ", ".join(["n", *("C" if t is None else str(t) for t in trailing)])
        raise ValueError(f"{where} must have shape ({shape}), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where} contains NaN or infinite values")
    return array


def write_lifting_npz(
    path: str | os.PathLike[str],
    *,
    keypoints_2d: np.ndarray,
    keypoints_3d: np.ndarray,
    imgname: Sequence[str] | np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
    box_rescale: float = 1.2,
) -> Path:
    """Write H36M-17 joints as a lifting dataset in the image npz layout (atomically).

    Args:
        keypoints_2d: (n, 17, 2) pixels, or (n, 17, 3) with a confidence, H36M-17 order.
        keypoints_3d: (n, 17, 3) metres (camera axes), H36M-17 order; stored relative to the
            pelvis (joint 0), which is stored as ``pelvis_3d`` (n, 3).
        imgname: (n,) image names (any unique names where there is no image).
        extra: further per-row arrays (``sequence``, ``camera``, ``frame``, ``focal_px``, ...).
        box_rescale: ``center`` / ``scale`` are the box around the 2D joints, side
            box_rescale x extent.

    Returns:
        The written path.
    """
    points_2d = _as_array("keypoints_2d", keypoints_2d, (17, None))
    points_3d = _as_array("keypoints_3d", keypoints_3d, (17, 3))
    if points_2d.shape[2] not in (2, 3):
        raise ValueError(f"`keypoints_2d` must have 2 or 3 channels, got {points_2d.shape}")
    if points_2d.shape[0] != points_3d.shape[0]:
        raise ValueError(
            f"`keypoints_2d` has {points_2d.shape[0]} rows but `keypoints_3d` has "
            f"{points_3d.shape[0]}"
        )
    num = points_2d.shape[0]
    confidence = points_2d[..., 2] if points_2d.shape[2] == 3 else np.ones((num, 17))
    extra_2d = np.zeros((num, 19, 3))
    extra_2d[:, _H36M17_TO_EXTRA, :2] = points_2d[..., :2]
    extra_2d[:, _H36M17_TO_EXTRA, 2] = confidence
    pelvis = points_3d[:, 0]
    extra_3d = np.zeros((num, 19, 4))
    extra_3d[:, _H36M17_TO_EXTRA, :3] = points_3d - pelvis[:, None]
    extra_3d[:, _H36M17_TO_EXTRA, 3] = 1.0
    center, scale = square_boxes_from_keypoints(
        np.concatenate([points_2d[..., :2], np.ones((num, 17, 1))], -1), rescale=box_rescale
    )
    arrays = dict(extra or {})
    arrays["pelvis_3d"] = pelvis
    return write_prohmr_npz(
        path,
        imgname=imgname,
        center=center,
        scale=scale,
        extra_keypoints_2d=extra_2d,
        extra_keypoints_3d=extra_3d,
        extra=arrays,
    )


def _load_extra_2d(source: str | os.PathLike[str] | np.ndarray) -> np.ndarray:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        data = read_npz(path, what="lifting npz")
        if "extra_keypoints_2d" not in data:
            raise ValueError(f"{path}: field 'extra_keypoints_2d' is missing")
        return _as_array("extra_keypoints_2d", data["extra_keypoints_2d"], (19, 3), str(path))
    return _as_array("extra_keypoints_2d", source, (19, 3))


def compute_lifting_stats(
    source: str | os.PathLike[str] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint mean and standard deviation of the 17 lifting 2D joints.

    Args:
        source: a training npz path, or its ``extra_keypoints_2d`` (n, 19, 3) pixels.

    Returns:
        mean (17, 2) and std (17, 2) in pixels, joints in LIFTING_2D_EXTRA_IDX order (std of
        a constant coordinate is set to 1 so normalising never divides by 0).
    """
    keypoints = _load_extra_2d(source)[:, list(LIFTING_2D_EXTRA_IDX), :2]
    if keypoints.shape[0] == 0:
        raise ValueError("cannot compute statistics of an empty training set")
    mean = keypoints.mean(axis=0)
    std = keypoints.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return mean, std


def write_lifting_stats(path: str | os.PathLike[str], *, mean: np.ndarray, std: np.ndarray) -> Path:
    """Write the statistics npz (``mean``, ``std`` (17, 2)) atomically."""
    mean = _as_array("mean", np.asarray(mean)[None], (17, 2))[0]
    std = _as_array("std", np.asarray(std)[None], (17, 2))[0]
    if np.any(std <= 0):
        raise ValueError("`std` must be positive")
    return atomic_write_npz(path, {"mean": mean, "std": std})


def read_lifting_stats(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read ``mean`` and ``std`` from a statistics npz, broadcast to (17, 2)."""
    path = Path(path)
    data = read_npz(path, what="lifting statistics file")
    missing = [key for key in ("mean", "std") if key not in data]
    if missing:
        raise ValueError(f"{path}: field(s) {missing} missing; expected 'mean' and 'std'")
    for key in ("mean", "std"):
        if data[key].dtype.kind not in "biuf":
            raise ValueError(f"{path}: field '{key}' must be numeric, got dtype {data[key].dtype}")
    try:
        mean = np.broadcast_to(data["mean"].astype(np.float64), (17, 2)).copy()
        std = np.broadcast_to(data["std"].astype(np.float64), (17, 2)).copy()
    except ValueError:
        raise ValueError(
            f"{path}: fields 'mean' / 'std' must broadcast to (17, 2), got "
            f"{data['mean'].shape} / {data['std'].shape}"
        ) from None
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(f"{path}: fields 'mean' / 'std' contain NaN or infinite values")
    if np.any(std <= 0):
        raise ValueError(f"{path}: field 'std' must be positive")
    return mean, std


class LiftingDataset(Dataset):
    """ProHMR's skeleton dataset: normalised 17 2D joints and 16 root-relative 3D joints.

    Args:
        npz_path: an image npz with ``extra_keypoints_2d`` and ``extra_keypoints_3d``.
        stats_path: the statistics npz of the TRAINING split (``mean``, ``std``).

    Items: {'keypoints_2d': (17, 3) float32 ((x - mean) / std, y likewise, confidence),
    'keypoints_3d': (16, 4) float32 (metres, confidence)}. No augmentation (as ProHMR).
    """

    def __init__(self, npz_path: str | os.PathLike[str], *, stats_path: str | os.PathLike[str]):
        path = Path(npz_path)
        data = read_npz(path, what="lifting npz")
        for key in ("extra_keypoints_2d", "extra_keypoints_3d"):
            if key not in data:
                raise ValueError(f"{path}: field '{key}' is missing")
        name = str(path)
        keypoints_2d = _as_array("extra_keypoints_2d", data["extra_keypoints_2d"], (19, 3), name)
        keypoints_3d = _as_array("extra_keypoints_3d", data["extra_keypoints_3d"], (19, 4), name)
        if len(keypoints_2d) != len(keypoints_3d):
            raise ValueError(
                f"{path}: fields 'extra_keypoints_2d' and 'extra_keypoints_3d' must have the same "
                f"number of rows, got {len(keypoints_2d)} and {len(keypoints_3d)}"
            )
        mean, std = read_lifting_stats(stats_path)
        points = keypoints_2d[:, list(LIFTING_2D_EXTRA_IDX)].copy()
        points[..., :2] = (points[..., :2] - mean) / std
        self.keypoints_2d = torch.from_numpy(points.astype(np.float32))
        self.keypoints_3d = torch.from_numpy(
            keypoints_3d[:, list(LIFTING_3D_EXTRA_IDX)].astype(np.float32)
        )

    def __len__(self) -> int:
        return int(self.keypoints_2d.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"keypoints_2d": self.keypoints_2d[index], "keypoints_3d": self.keypoints_3d[index]}


@dataclass(frozen=True)
class LiftingDatasetFiles:
    """The files a lifting-dataset maker wrote.

    Attributes:
        train, test, stats: the training npz, the test npz and the statistics npz (from train).
        num_train, num_test: rows written.
        train_sequences, test_sequences: sequence (clip or subject/action) names per split.
        problems: inputs left out, one line each (file or sequence, field, reason).
    """

    train: Path
    test: Path
    stats: Path
    num_train: int
    num_test: int
    train_sequences: tuple[str, ...]
    test_sequences: tuple[str, ...]
    problems: tuple[str, ...] = ()


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _write_split(
    path: Path, parts: list[dict[str, np.ndarray]], box_rescale: float
) -> tuple[Path, int, np.ndarray]:
    if not parts:
        raise ValueError(f"no rows for {path}: every sequence of this split was left out")
    arrays = _concat(parts)
    named = ("keypoints_2d", "keypoints_3d", "imgname")
    written = write_lifting_npz(
        path,
        keypoints_2d=arrays["keypoints_2d"],
        keypoints_3d=arrays["keypoints_3d"],
        imgname=arrays["imgname"],
        extra={k: v for k, v in arrays.items() if k not in named},
        box_rescale=box_rescale,
    )
    with np.load(written, allow_pickle=False) as data:
        extra_2d = data["extra_keypoints_2d"]
    return written, len(arrays["imgname"]), extra_2d


def _view_rows(
    joints_world: np.ndarray,
    camera: PinholeCamera,
    *,
    sequence: str,
    frames: np.ndarray,
    imgname_template: str,
    keypoints_2d: np.ndarray | None = None,
    distort: bool = True,
    min_depth_m: float = 0.1,
    frame_offset: int = 0,
) -> tuple[dict[str, np.ndarray] | None, int]:
    """Rows of one sequence seen by one camera; frames with a joint too close are dropped."""
    joints_camera = camera.world_to_camera(joints_world)
    keep = joints_camera[..., 2].min(axis=1) > min_depth_m
    dropped = int((~keep).sum())
    if not keep.any():
        return None, dropped
    joints_camera = joints_camera[keep]
    kept_frames = frames[keep]
    if keypoints_2d is None:
        points_2d = camera.project_camera_points(joints_camera, distort=distort)
    else:
        points_2d = keypoints_2d[keep]
    num = len(kept_frames)
    names = [
        imgname_template.format(sequence=sequence, camera=camera.name, frame=int(f) + frame_offset)
        for f in kept_frames
    ]
    return {
        "keypoints_2d": points_2d,
        "keypoints_3d": joints_camera,
        "imgname": np.asarray(names),
        "sequence": np.full(num, sequence),
        "camera": np.full(num, camera.name),
        "frame": kept_frames.astype(np.int64),
        "focal_px": np.tile(camera.focal_px, (num, 1)),
        "center_px": np.tile(camera.center_px, (num, 1)),
    }, dropped


def _finish(
    output_dir: Path,
    train_parts: list[dict[str, np.ndarray]],
    test_parts: list[dict[str, np.ndarray]],
    *,
    prefix: str,
    train_sequences: Sequence[str],
    test_sequences: Sequence[str],
    problems: list[str],
    box_rescale: float,
) -> LiftingDatasetFiles:
    train_path, num_train, train_2d = _write_split(
        output_dir / f"{prefix}_train.npz", train_parts, box_rescale
    )
    test_path, num_test, _ = _write_split(
        output_dir / f"{prefix}_test.npz", test_parts, box_rescale
    )
    mean, std = compute_lifting_stats(train_2d)
    stats_path = write_lifting_stats(output_dir / f"{prefix}_stats.npz", mean=mean, std=std)
    return LiftingDatasetFiles(
        train=train_path,
        test=test_path,
        stats=stats_path,
        num_train=num_train,
        num_test=num_test,
        train_sequences=tuple(train_sequences),
        test_sequences=tuple(test_sequences),
        problems=tuple(problems),
    )


def make_cmu_lifting_dataset(
    clips: Mapping[str, MocapClip],
    output_dir: str | os.PathLike[str],
    *,
    test_clips: Sequence[str] | None = None,
    test_fraction: float = 0.2,
    num_cameras: int = 4,
    step: int = 1,
    up: Sequence[float] = (0.0, 1.0, 0.0),
    distance_m: tuple[float, float] = (4.0, 6.0),
    elevation_deg: tuple[float, float] = (-5.0, 25.0),
    focal_px: tuple[float, float] = (1100.0, 1200.0),
    image_size: tuple[int, int] = (1000, 1000),
    joint_map: Mapping[str, str | Sequence[str]] | None = None,
    generator: torch.Generator | None = None,
) -> LiftingDatasetFiles:
    """A lifting dataset from motion capture seen by random virtual cameras.

    Every clip gets `num_cameras` fixed cameras looking at its mean pelvis from random
    azimuths (evenly spread), elevations, distances and focal lengths; the H36M-17 joints
    (`mocap_to_h36m17`) are projected without distortion. The split is by clip: `test_clips`,
    or a random `test_fraction` of the clips (at least one each when there are >= 2 clips).

    Writes ``cmu_train.npz``, ``cmu_test.npz`` and ``cmu_stats.npz`` in `output_dir`; image
    names are "cmu/<clip>/<camera>/<frame:06d>" (there are no images).

    Args:
        clips: clip name -> clip (from `read_amc` / `read_bvh`), world axes with `up` up.
        output_dir: destination folder (created).
        test_clips: names of the test clips; default a random `test_fraction` of them.
        num_cameras: virtual cameras per clip.
        step: use every `step`-th frame.
        up, distance_m, elevation_deg, focal_px, image_size: camera sampling, see
            `sample_look_at_cameras`; image_size = (width, height).
        joint_map: see `mocap_to_h36m17`.
        generator: torch random generator for the split and the cameras.

    Returns:
        A :class:`LiftingDatasetFiles`.
    """
    names = sorted(clips)
    if len(names) < 2:
        raise ValueError(f"`clips` needs at least 2 clips (train and test), got {len(names)}")
    if test_clips is None:
        if not 0 < test_fraction < 1:
            raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction}")
        order = torch.randperm(len(names), generator=generator).tolist()
        num_test = min(len(names) - 1, max(1, math.ceil(test_fraction * len(names))))
        test_set = {names[i] for i in order[:num_test]}
    else:
        unknown = [name for name in test_clips if name not in clips]
        if unknown:
            raise ValueError(f"`test_clips` names unknown clip(s) {unknown}; clips: {names}")
        test_set = set(test_clips)
        if not test_set or test_set == set(names):
            raise ValueError("`test_clips` must leave at least one clip for each split")
    output_dir = Path(output_dir)
    train_parts: list[dict[str, np.ndarray]] = []
    test_parts: list[dict[str, np.ndarray]] = []
    problems: list[str] = []
    for name in names:
        clip = clips[name]
        joints = mocap_to_h36m17(clip, joint_map=joint_map)[::step]
        frames = np.arange(0, clip.num_frames, step)
        cameras = sample_look_at_cameras(
            num_cameras,
            target=joints[:, 0].mean(axis=0),
            up=up,
            distance_m=distance_m,
            elevation_deg=elevation_deg,
            focal_px=focal_px,
            width=image_size[0],
            height=image_size[1],
            generator=generator,
        )
        for camera in cameras:
            rows, dropped = _view_rows(
                joints,
                camera,
                sequence=name,
                frames=frames,
                imgname_template="cmu/{sequence}/{camera}/{frame:06d}",
                distort=False,
                min_depth_m=0.5,
            )
            if dropped:
                problems.append(
                    f"clip {name!r} ({clip.source}), camera {camera.name}: {dropped} frame(s) "
                    "left out (a joint closer than 0.5 m to the camera)"
                )
            if rows is not None:
                (test_parts if name in test_set else train_parts).append(rows)
    return _finish(
        output_dir,
        train_parts,
        test_parts,
        prefix="cmu",
        train_sequences=[n for n in names if n not in test_set],
        test_sequences=[n for n in names if n in test_set],
        problems=problems,
        box_rescale=1.2,
    )


def make_h36m_lifting_dataset(
    positions_3d: Mapping[str, Mapping[str, np.ndarray]],
    cameras: Mapping[tuple[str, str], PinholeCamera],
    output_dir: str | os.PathLike[str],
    *,
    positions_2d: Mapping[str, Mapping[str, Sequence[np.ndarray]]] | None = None,
    train_subjects: Sequence[str] = H36M_TRAIN_SUBJECTS,
    test_subjects: Sequence[str] = H36M_TEST_SUBJECTS,
    train_cameras: Sequence[str] | None = None,
    test_cameras: Sequence[str] | None = (H36M_PROTOCOL2_CAMERA,),
    step: int = 5,
    prefix: str = "h36m",
) -> LiftingDatasetFiles:
    """A lifting dataset from Human3.6M in VideoPose3D's layout.

    3D: the 32 world joints of `positions_3d` (``read_videopose3d_3d``) moved into each
    camera and reduced to H36M-17. 2D: `positions_2d` (``read_videopose3d_2d``: ground truth
    or detections, H36M-17, per camera) or, if None, the 3D joints projected with the
    calibrations including lens distortion (as VideoPose3D's ``gt`` file). When a 2D sequence
    is longer than the 3D one it is cut (VideoPose3D does the same), shorter is an error.
    Defaults follow ProHMR: train on S1, S5, S6, S7, S8 with all cameras, test on S9, S11
    with camera 60457274 (Protocol 2), every 5th frame; image names follow ProHMR's H36M
    npz ("images/S9_Directions_1.54138969_000001.jpg").

    Writes ``<prefix>_train.npz``, ``<prefix>_test.npz`` and ``<prefix>_stats.npz``.

    Args:
        positions_3d: {subject: {action: (T, 32, 3) world metres}}.
        cameras: {(subject, camera id): camera} (``read_h36m_cameras``).
        output_dir: destination folder.
        positions_2d: optional 2D file contents; cameras in ``H36M_CAMERA_IDS`` order.
        train_subjects, test_subjects: subject splits.
        train_cameras, test_cameras: camera ids per split (None = all four).
        step: keep frames with index % step == 0.
        prefix: output file prefix.

    Returns:
        A :class:`LiftingDatasetFiles`.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    overlap = set(train_subjects) & set(test_subjects)
    if overlap:
        raise ValueError(f"subjects {sorted(overlap)} are in both splits")
    parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "test": []}
    sequences: dict[str, list[str]] = {"train": [], "test": []}
    problems: list[str] = []
    splits = (("train", train_subjects, train_cameras), ("test", test_subjects, test_cameras))
    for split, subjects, camera_ids in splits:
        wanted = H36M_CAMERA_IDS if camera_ids is None else tuple(camera_ids)
        for subject in subjects:
            if subject not in positions_3d:
                problems.append(f"subject {subject!r}: not in `positions_3d`")
                continue
            for action in sorted(positions_3d[subject]):
                world = positions_3d[subject][action][:, list(H36M17_FROM_32)]
                action_name = action.replace(" ", "_")
                sequence = f"{subject}_{action_name}"
                for camera_index, camera_id in enumerate(H36M_CAMERA_IDS):
                    if camera_id not in wanted:
                        continue
                    camera = cameras.get((subject, camera_id))
                    if camera is None:
                        problems.append(f"{sequence}: no calibration for camera {camera_id}")
                        continue
                    detected = None
                    if positions_2d is not None:
                        try:
                            detected = np.asarray(positions_2d[subject][action][camera_index])
                        except (KeyError, IndexError):
                            problems.append(f"{sequence}.{camera_id}: no 2D keypoints")
                            continue
                        if detected.shape[0] < world.shape[0]:
                            problems.append(
                                f"{sequence}.{camera_id}: 2D has {detected.shape[0]} frames, "
                                f"3D has {world.shape[0]}; left out"
                            )
                            continue
                        detected = detected[: world.shape[0]][::step]
                    frames = np.arange(0, world.shape[0], step)
                    rows, dropped = _view_rows(
                        world[::step],
                        camera,
                        sequence=sequence,
                        frames=frames,
                        imgname_template="images/{sequence}.{camera}_{frame:06d}.jpg",
                        keypoints_2d=detected,
                        frame_offset=1,  # ProHMR numbers images from 1
                    )
                    if dropped:
                        problems.append(f"{sequence}.{camera_id}: {dropped} frame(s) behind camera")
                    if rows is not None:
                        parts[split].append(rows)
                sequences[split].append(sequence)
    return _finish(
        Path(output_dir),
        parts["train"],
        parts["test"],
        prefix=prefix,
        train_sequences=sequences["train"],
        test_sequences=sequences["test"],
        problems=problems,
        box_rescale=1.2,
    )
