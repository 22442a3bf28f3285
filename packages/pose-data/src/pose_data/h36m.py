"""Human3.6M: original files -> ProHMR npz, camera calibrations, multiview grouping.

Expected layout of the original dataset (as downloaded, one folder per subject)::

    <root>/S1/MyPoseFeatures/D3_Positions_mono/Directions 1.54138969.cdf   3D, camera axes, mm
    <root>/S1/MyPoseFeatures/D2_Positions/Directions 1.54138969.cdf        2D joints, pixels
    <root>/S1/MySegmentsMat/ground_truth_bb/Directions 1.54138969.mat      masks (box_source)
    <root>/S1/Videos/Directions 1.54138969.mp4                              video (for frames)

File names are "<Action>.<camera id>.<ext>"; the action becomes "Directions_1" (spaces -> "_"),
and "_ALL" files are skipped, as in ProHMR's ``preprocess_h36m.py``. The CDF
variable ``Pose`` holds (1, T, 96) (3D) or (1, T, 64) (2D) numbers: 32 joints per frame.

Output rows (one per kept frame and camera; docs/data.md#the-image-npz): ``imgname``,
``center``, ``scale`` (box side in pixels), ``extra_keypoints_2d`` (n, 19, 3) and
``extra_keypoints_3d`` (n, 19, 4) (17 joints via ``pose_geometry.H36M32_TO_44``, metres,
root-centred on the pelvis, confidence 1; extra 13 and 15 stay 0), plus ``subject``, ``action``,
``camera``, ``frame`` (0-based pose frame), ``pelvis_3d`` (n, 3) (the subtracted pelvis, camera
axes, metres, so absolute joints can be recovered) and, when calibrations are given,
``focal_px``, ``center_px``, ``radial``, ``tangential``.

Differences from ProHMR's script (docs/original-quirks.md#human36m-preprocessing): splits are
chosen by explicit subject and camera lists; the output file's folder is created, not a folder
with the file's name; masks are read with the current h5py API; extracted image i is video
frame i (ProHMR wrote frame i + 1 for pose i); the multiview grouping keeps every frame and
includes ``body_keypoints_3d`` (zeros) so ProHMR's batched reader loads the 3D joints.
The default box comes from the 17 mapped 2D joints (side 1.2 x their extent, the rule of the
public SPIN/mmpose Human3.6M files, reproduced exactly on the real samples); ProHMR's
``0.9 x mask box`` is ``box_source="masks"`` and needs the optional ``h5py`` package.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pose_data.h36m_layout import H36M_CAMERA_IDS
from pose_data.io import (
    ConversionReport,
    extract_video_frames,
    read_npz,
    restricted_pickle_load,
    write_multiview_pickle,
    write_prohmr_npz,
)
from pose_data.lifting_cameras import PinholeCamera, square_boxes_from_keypoints
from pose_geometry import H36M32_TO_44

__all__ = [
    "H36M_DEFAULT_IMGNAME",
    "H36MSequence",
    "convert_h36m",
    "find_h36m_sequences",
    "group_h36m_multiview",
    "parse_h36m_imgname",
    "read_h36m_cameras",
    "read_h36m_cdf",
    "read_h36m_mask_boxes",
]

#: ProHMR's image name; fields: subject, action, camera, frame (1-based, = pose frame + 1).
H36M_DEFAULT_IMGNAME = "images/{subject}_{action}.{camera}_{frame:06d}.jpg"

_NUM_JOINTS = 32
_PELVIS_32 = H36M32_TO_44[0][0]
_SOURCES_32 = [source for source, _ in H36M32_TO_44]
_TARGETS_EXTRA = [target - 25 for _, target in H36M32_TO_44]


@dataclass(frozen=True)
class H36MSequence:
    """The files of one (subject, action, camera) sequence.

    Attributes:
        subject: e.g. "S9". action: e.g. "Directions_1". camera: e.g. "54138969".
        poses_3d: the ``D3_Positions_mono`` CDF. poses_2d: the ``D2_Positions`` CDF.
        masks: the ``ground_truth_bb`` .mat file. video: the ``.mp4`` file.
        (Paths may not exist; the converter reports missing ones it needs.)
    """

    subject: str
    action: str
    camera: str
    poses_3d: Path
    poses_2d: Path
    masks: Path
    video: Path


def find_h36m_sequences(
    root: str | os.PathLike[str],
    *,
    subjects: Sequence[str],
    cameras: Sequence[str] | None = None,
) -> list[H36MSequence]:
    """List the sequences of `subjects` (and `cameras`, default all four), sorted.

    Raises:
        FileNotFoundError: if a subject's ``MyPoseFeatures/D3_Positions_mono`` folder is missing.
        ValueError: if a camera id is not a Human3.6M camera.
    """
    root = Path(root)
    wanted = tuple(cameras) if cameras is not None else H36M_CAMERA_IDS
    unknown = [c for c in wanted if c not in H36M_CAMERA_IDS]
    if unknown:
        raise ValueError(f"unknown camera id(s) {unknown}; expected some of {H36M_CAMERA_IDS}")
    sequences = []
    for subject in subjects:
        folder = root / subject / "MyPoseFeatures" / "D3_Positions_mono"
        if not folder.is_dir():
            raise FileNotFoundError(f"Human3.6M folder not found: {folder}")
        for path in sorted(folder.glob("*.cdf")):
            stem = path.name[: -len(".cdf")]
            action_text, _, camera = stem.rpartition(".")
            if not action_text or camera not in wanted:
                continue
            if action_text.startswith("_ALL"):
                continue
            sequences.append(
                H36MSequence(
                    subject=subject,
                    action=action_text.replace(" ", "_"),
                    camera=camera,
                    poses_3d=path,
                    poses_2d=root / subject / "MyPoseFeatures" / "D2_Positions" / path.name,
                    masks=root / subject / "MySegmentsMat" / "ground_truth_bb" / f"{stem}.mat",
                    video=root / subject / "Videos" / f"{stem}.mp4",
                )
            )
    return sequences


def read_h36m_cdf(path: str | os.PathLike[str], *, dims: int) -> np.ndarray:
    """Read the ``Pose`` variable of a Human3.6M CDF file.

    Args:
        path: a ``D3_Positions*`` (dims=3, millimetres) or ``D2_Positions`` (dims=2, pixels)
            file.
        dims: 3 or 2.

    Returns:
        (T, 32, dims) float64, in the file's units.

    Raises:
        FileNotFoundError, ValueError: naming the file and the field ``Pose``.
    """
    import cdflib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Human3.6M CDF file not found: {path}")
    try:
        data = np.asarray(cdflib.CDF(str(path)).varget("Pose"), dtype=np.float64)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"{path}: cannot read CDF variable 'Pose': {error}") from None
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    expected = _NUM_JOINTS * dims
    if data.ndim != 2 or data.shape[1] != expected:
        raise ValueError(
            f"{path}: field 'Pose' must have shape (1, T, {expected}) ({_NUM_JOINTS} joints x "
            f"{dims}), got {data.shape}"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: field 'Pose' contains NaN or infinite values")
    return data.reshape(data.shape[0], _NUM_JOINTS, dims)


def read_h36m_mask_boxes(path: str | os.PathLike[str]) -> list[np.ndarray | None]:
    """Per-frame person boxes from a ``ground_truth_bb`` .mat file (MATLAB v7.3 / HDF5).

    Needs the optional ``h5py`` package.

    Returns:
        One (4,) array per frame: [min x, min y, max x + 1, max y + 1] of the mask pixels, or
        None for an empty mask.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Human3.6M mask file not found: {path}")
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "reading Human3.6M masks (MATLAB v7.3 files) needs h5py: pip install h5py, or use "
            "box_source='keypoints'"
        ) from None
    boxes: list[np.ndarray | None] = []
    with h5py.File(path, "r") as file:
        if "Masks" not in file:
            raise ValueError(f"{path}: field 'Masks' not found; keys {list(file.keys())}")
        references = np.asarray(file["Masks"]).reshape(-1)
        for reference in references:
            mask = np.asarray(file[reference]).T
            ys, xs = np.nonzero(mask == 1)
            boxes.append(
                None if xs.size == 0 else np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            )
    return boxes


def read_h36m_cameras(path: str | os.PathLike[str]) -> dict[tuple[str, str], PinholeCamera]:
    """Read a Human3.6M camera pickle in the mmpose layout (``cameras.pkl``).

    The file maps (subject, camera id) to a dict with ``R`` (3, 3), ``T`` (3, 1), ``f``
    (2, 1), ``c`` (2, 1), ``k`` (3, 1), ``p`` (2, 1), ``w``, ``h``. In that file ``R`` is the
    camera-to-world rotation and ``T`` the camera centre in metres (checked on the real file:
    every camera's optical axis ``R[:, 2]`` points at the capture volume), so the returned
    camera has world-to-camera rotation ``Rᵀ`` and translation ``-Rᵀ T``.

    Raises:
        FileNotFoundError, ValueError: naming the file, the camera and the field.
    """
    data = restricted_pickle_load(path)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a dict of cameras, got {type(data).__name__}")
    cameras = {}
    for key, entry in data.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"{path}: camera key must be (subject, camera id), got {key!r}")
        try:
            R = np.asarray(entry["R"], dtype=np.float64).reshape(3, 3)
            T = np.asarray(entry["T"], dtype=np.float64).reshape(3)
            cameras[(str(key[0]), str(key[1]))] = PinholeCamera(
                rotation=R.T,
                translation=-R.T @ T,
                focal_px=np.asarray(entry["f"], dtype=np.float64).reshape(2),
                center_px=np.asarray(entry["c"], dtype=np.float64).reshape(2),
                radial=np.asarray(entry.get("k", np.zeros(3)), dtype=np.float64).reshape(3),
                tangential=np.asarray(entry.get("p", np.zeros(2)), dtype=np.float64).reshape(2),
                width=int(np.asarray(entry.get("w", 0)).reshape(-1)[0]),
                height=int(np.asarray(entry.get("h", 0)).reshape(-1)[0]),
                name=str(key[1]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: camera {key}: bad or missing field: {error}") from None
    return cameras


def _sequence_rows(
    sequence: H36MSequence,
    *,
    step: int,
    box_source: str,
    box_rescale: float,
    imgname_template: str,
) -> dict[str, Any]:
    poses_3d = read_h36m_cdf(sequence.poses_3d, dims=3)
    poses_2d = read_h36m_cdf(sequence.poses_2d, dims=2)
    if poses_3d.shape[0] != poses_2d.shape[0]:
        raise ValueError(
            f"{sequence.poses_2d}: {poses_2d.shape[0]} frames but {sequence.poses_3d} has "
            f"{poses_3d.shape[0]}"
        )
    frames = np.arange(0, poses_3d.shape[0], step)
    joints_3d = poses_3d[frames][:, _SOURCES_32] / 1000.0
    joints_2d = poses_2d[frames][:, _SOURCES_32]
    if box_source == "masks":
        boxes = read_h36m_mask_boxes(sequence.masks)
        if len(boxes) < poses_3d.shape[0]:
            raise ValueError(
                f"{sequence.masks}: field 'Masks' has {len(boxes)} frames, poses have "
                f"{poses_3d.shape[0]}"
            )
        keep = np.array([boxes[f] is not None for f in frames], dtype=bool)
        frames, joints_3d, joints_2d = frames[keep], joints_3d[keep], joints_2d[keep]
        box = np.stack([boxes[f] for f in frames]) if frames.size else np.zeros((0, 4))
        center = (box[:, :2] + box[:, 2:]) / 2
        scale = box_rescale * (box[:, 2:] - box[:, :2]).max(axis=1)
    else:
        center, scale = square_boxes_from_keypoints(joints_2d, rescale=box_rescale)
    pelvis = joints_3d[:, :1]
    num = frames.size
    extra_2d = np.zeros((num, 19, 3))
    extra_2d[:, _TARGETS_EXTRA, :2] = joints_2d
    extra_2d[:, _TARGETS_EXTRA, 2] = 1.0
    extra_3d = np.zeros((num, 19, 4))
    extra_3d[:, _TARGETS_EXTRA, :3] = joints_3d - pelvis
    extra_3d[:, _TARGETS_EXTRA, 3] = 1.0
    names = [
        imgname_template.format(
            subject=sequence.subject, action=sequence.action, camera=sequence.camera, frame=f + 1
        )
        for f in frames
    ]
    return {
        "imgname": names,
        "center": center,
        "scale": scale,
        "extra_keypoints_2d": extra_2d,
        "extra_keypoints_3d": extra_3d,
        "pelvis_3d": pelvis[:, 0],
        "frame": frames,
    }


def convert_h36m(
    root: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    subjects: Sequence[str],
    cameras: Sequence[str] | None = None,
    step: int = 5,
    box_source: Literal["keypoints", "masks"] = "keypoints",
    box_rescale: float | None = None,
    imgname_template: str = H36M_DEFAULT_IMGNAME,
    image_root: str | os.PathLike[str] | None = None,
    camera_parameters: Mapping[tuple[str, str], PinholeCamera] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> ConversionReport:
    """Convert original Human3.6M sequences to one ProHMR npz (see the module docstring).

    ProHMR's splits: train = subjects S1, S5, S6, S7, S8, all cameras; val = S9, S11, all
    cameras; val-p2 (Protocol 2) = S9, S11, camera "60457274"; always every 5th frame.

    Args:
        root: the dataset folder (one subfolder per subject).
        output_path: the npz to write (atomically).
        subjects: e.g. ("S9", "S11").
        cameras: camera ids to keep; default all four.
        step: keep pose frames with index % step == 0.
        box_source: "keypoints" (box around the 17 mapped 2D joints) or "masks" (ProHMR's
            ground-truth mask boxes; needs h5py).
        box_rescale: box side / extent; default 1.2 for keypoints, 0.9 for masks.
        imgname_template: image name; fields subject, action, camera, frame (1-based).
        image_root: if given, extract the kept video frames to ``image_root / imgname``.
        camera_parameters: calibrations from `read_h36m_cameras`; adds per-row
            ``focal_px``, ``center_px``, ``radial``, ``tangential``.
        on_error: "raise" stops at the first bad file; "skip" leaves the sequence out and
            lists the problem in the report.

    Returns:
        A :class:`ConversionReport`.

    Raises:
        FileNotFoundError, ValueError: naming the file and field (with on_error="raise"), or
            if no sequence could be converted.
    """
    if box_source not in ("keypoints", "masks"):
        raise ValueError(f"`box_source` must be 'keypoints' or 'masks', got {box_source!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    rescale = (
        box_rescale if box_rescale is not None else (1.2 if box_source == "keypoints" else 0.9)
    )
    sequences = find_h36m_sequences(root, subjects=subjects, cameras=cameras)
    if not sequences:
        raise ValueError(f"no Human3.6M sequences for subjects {list(subjects)} under {root}")
    parts: dict[str, list[Any]] = defaultdict(list)
    problems: list[str] = []
    for sequence in sequences:
        try:
            rows = _sequence_rows(
                sequence,
                step=step,
                box_source=box_source,
                box_rescale=rescale,
                imgname_template=imgname_template,
            )
            camera = None
            if camera_parameters is not None:
                camera = camera_parameters.get((sequence.subject, sequence.camera))
                if camera is None:
                    raise ValueError(
                        f"`camera_parameters` has no camera ({sequence.subject!r}, "
                        f"{sequence.camera!r})"
                    )
            if image_root is not None:
                extract_video_frames(
                    sequence.video,
                    {
                        int(f): Path(image_root) / name
                        for f, name in zip(rows["frame"], rows["imgname"], strict=True)
                    },
                )
        except (FileNotFoundError, ValueError) as error:
            if on_error == "raise":
                raise
            problems.append(str(error))
            continue
        num = len(rows["imgname"])
        for key, value in rows.items():
            parts[key].append(np.asarray(value))
        parts["subject"].append(np.full(num, sequence.subject))
        parts["action"].append(np.full(num, sequence.action))
        parts["camera"].append(np.full(num, sequence.camera))
        if camera is not None:
            parts["focal_px"].append(np.tile(camera.focal_px, (num, 1)))
            parts["center_px"].append(np.tile(camera.center_px, (num, 1)))
            parts["radial"].append(np.tile(camera.radial, (num, 1)))
            parts["tangential"].append(np.tile(camera.tangential, (num, 1)))
    if not parts:
        raise ValueError("no Human3.6M sequence could be converted:\n" + "\n".join(problems))
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    named = ("imgname", "center", "scale", "extra_keypoints_2d", "extra_keypoints_3d")
    output = write_prohmr_npz(
        output_path,
        **{key: arrays[key] for key in named},
        extra={key: value for key, value in arrays.items() if key not in named},
    )
    return ConversionReport(output, len(arrays["imgname"]), tuple(problems))


_FLAT_NAME = re.compile(r"(S\d+)_(.+)\.(\d{8})_(\d+)\.\w+$")


def parse_h36m_imgname(imgname: str) -> tuple[str, str, str, int]:
    """(subject, action, camera, 0-based frame) from a Human3.6M image name.

    Accepts ProHMR's ``images/S9_Directions_1.54138969_000001.jpg`` and the nested
    ``S9/S9_Directions_1.54138969/S9_Directions_1.54138969_000001.jpg``.

    Raises:
        ValueError: if the name does not follow either pattern.
    """
    match = _FLAT_NAME.search(Path(str(imgname)).name)
    if match is None:
        raise ValueError(
            f"image name {imgname!r} does not look like '<S>_<Action>.<camera>_<frame>.jpg'"
        )
    subject, action, camera, frame = match.groups()
    return subject, action, camera, int(frame) - 1


def group_h36m_multiview(
    npz_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    min_views: int = 2,
) -> ConversionReport:
    """Group a converted Human3.6M npz by instant into ProHMR's multiview pickle.

    Rows with the same subject, action and frame (from the npz's ``subject`` / ``action`` /
    ``frame`` arrays, or parsed from ``imgname`` for ProHMR's own files) form one element,
    views sorted by camera id. Unlike ProHMR's script no frame is dropped, and each element
    carries ``body_keypoints_3d`` (zeros) so ProHMR's batched reader uses
    ``extra_keypoints_3d``. Instants seen by fewer than `min_views` cameras are left out.

    Returns:
        A :class:`ConversionReport` (num_rows = number of instants).
    """
    npz_path = Path(npz_path)
    arrays = read_npz(npz_path)
    for key in ("imgname", "center", "scale"):
        if key not in arrays:
            raise ValueError(f"{npz_path}: field '{key}' is missing")
    names = [str(n) for n in arrays["imgname"]]
    parsed = [parse_h36m_imgname(n) for n in names]
    subjects = arrays.get("subject", np.array([p[0] for p in parsed]))
    actions = arrays.get("action", np.array([p[1] for p in parsed]))
    frames = arrays.get("frame", np.array([p[3] for p in parsed]))
    cameras = arrays.get("camera", np.array([p[2] for p in parsed]))
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for row in range(len(names)):
        groups[(str(subjects[row]), str(actions[row]), int(frames[row]))].append(row)
    num_rows = len(names)
    per_row = {key: value for key, value in arrays.items() if value.shape[:1] == (num_rows,)}
    elements = []
    skipped = 0
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda r: str(cameras[r]))
        if len(rows) < min_views:
            skipped += 1
            continue
        element = {name: value[rows] for name, value in per_row.items()}
        element.setdefault("camera", np.asarray([str(cameras[r]) for r in rows]))
        if "body_keypoints_3d" not in element:
            element["body_keypoints_3d"] = np.zeros((len(rows), 25, 4))
        elements.append(element)
    problems = (f"{npz_path}: {skipped} instant(s) with fewer than {min_views} views left out",)
    output = write_multiview_pickle(output_path, elements)
    return ConversionReport(output, len(elements), problems if skipped else ())
