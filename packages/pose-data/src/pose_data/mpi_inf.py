"""MPI-INF-3DHP: original annotations -> ProHMR npz (17 joints).

Expected layout of the original dataset::

    <root>/S1/Seq1/annot.mat              training annotations (MATLAB v5)
    <root>/S1/Seq1/camera.calibration     the 14 cameras of the sequence (text)
    <root>/S1/Seq1/imageSequence/video_0.avi ... video_13.avi
    <root>/mpi_inf_3dhp_test_set/TS1/annot_data.mat          test annotations (MATLAB v7.3)
    <root>/mpi_inf_3dhp_test_set/TS1/imageSequence/img_000001.jpg ...

Training ``annot.mat`` fields (one cell per camera c = 0..13, N frames): ``annot2`` (N, 56)
2D joints in pixels, ``annot3`` (N, 84) 3D joints in the camera's axes, millimetres,
``univ_annot3`` (N, 84) the same skeleton rescaled to a universal height, ``cameras`` and
``frames``; 28 joints (`MPI_INF28_NAMES`). Test ``annot_data.mat``: ``annot2`` / ``annot3`` /
``univ_annot3`` for 17 joints (`MPI_INF17_NAMES`) and ``valid_frame``; it is an HDF5 file,
read with the optional ``h5py`` package (MATLAB v5 files are read with scipy).

``annot3`` (projects onto ``annot2`` with the camera) or ``univ_annot3`` (rescaled; the usual
choice for test-set evaluation) must be chosen explicitly with `annot3_key`.

Output rows: ``imgname``, ``center`` / ``scale`` (box around the 17 2D joints, side 1.2 x
extent, pixels, as SPIN), ``extra_keypoints_2d`` (n, 19, 3) and ``extra_keypoints_3d``
(n, 19, 4) (metres, root-centred on the pelvis, confidence 1) at the 17 extra slots of
``pose_geometry.MPI_INF17_IDX_44`` (head top -> extra 13 "Top of Head (LSP)", head -> extra
17 "Jaw (H36M)", spine -> extra 16), plus ``sequence``, ``camera``, ``frame`` (0-based),
``pelvis_3d`` (n, 3) and, when known, ``focal_px`` / ``center_px``. Training defaults follow
SPIN (which ProHMR's MPI-INF npz comes from): the 8 cameras 0, 1, 2, 4, 5, 6, 7, 8, every 10th
frame, frames with a joint outside the 2048 x 2048 image left out.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.io

from pose_data.io import (
    ConversionReport,
    extract_video_frames,
    restricted_pickle_load,
    write_prohmr_npz,
)
from pose_data.lifting_cameras import PinholeCamera, square_boxes_from_keypoints

__all__ = [
    "MPI_INF17_FROM_28",
    "MPI_INF17_NAMES",
    "MPI_INF17_TO_44",
    "MPI_INF28_NAMES",
    "MPI_INF_TEST_IMGNAME",
    "MPI_INF_TRAIN_CAMERAS",
    "MPI_INF_TRAIN_IMGNAME",
    "convert_mpi_inf_test",
    "convert_mpi_inf_train",
    "read_mpi_inf_calibration",
    "read_mpi_inf_cameras_pickle",
    "read_mpi_inf_test_annotations",
    "read_mpi_inf_train_annotations",
]

#: The 28 joints of the training annotations.
MPI_INF28_NAMES: tuple[str, ...] = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe",
)  # fmt: skip

#: The 17 joints of the test annotations, in their order.
MPI_INF17_NAMES: tuple[str, ...] = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "pelvis", "spine", "head",
)  # fmt: skip

#: Test joint i is training joint MPI_INF17_FROM_28[i].
MPI_INF17_FROM_28: tuple[int, ...] = tuple(MPI_INF28_NAMES.index(n) for n in MPI_INF17_NAMES)

#: Test joint i goes to 44-layout index MPI_INF17_TO_44[i] (25 + extra index).
MPI_INF17_TO_44: tuple[int, ...] = tuple(
    25 + k for k in (13, 12, 8, 7, 6, 9, 10, 11, 2, 1, 0, 3, 4, 5, 14, 16, 17)
)

#: SPIN's training cameras (the VNect set).
MPI_INF_TRAIN_CAMERAS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)

#: SPIN's image names; fields subject, sequence, camera (ints), frame (1-based).
MPI_INF_TRAIN_IMGNAME = "S{subject}/Seq{sequence}/imageFrames/video_{camera}/frame_{frame:06d}.jpg"
#: Fields sequence (1..6), frame (1-based).
MPI_INF_TEST_IMGNAME = "mpi_inf_3dhp_test_set/TS{sequence}/imageSequence/img_{frame:06d}.jpg"

_PELVIS_17 = MPI_INF17_NAMES.index("pelvis")
_TARGETS_EXTRA = [i - 25 for i in MPI_INF17_TO_44]


def read_mpi_inf_calibration(path: str | os.PathLike[str]) -> dict[int, PinholeCamera]:
    """Parse a training ``camera.calibration`` file.

    Each camera block has ``name`` (index), ``size`` (width height), ``intrinsic`` (4 x 4
    row-major: fx 0 cx 0 / 0 fy cy 0 / ...) and ``extrinsic`` (4 x 4 row-major world-to-camera
    with the translation in millimetres).

    Returns:
        {camera index: camera} (translation converted to metres).

    Raises:
        FileNotFoundError, ValueError: naming the file, the camera and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MPI-INF-3DHP calibration file not found: {path}")
    blocks: list[dict[str, list[str]]] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        tokens = raw.split()
        if not tokens:
            continue
        if tokens[0] == "name":
            blocks.append({"name": tokens[1:]})
        elif blocks:
            blocks[-1][tokens[0]] = tokens[1:]
    if not blocks:
        raise ValueError(f"{path}: no 'name' camera blocks")
    cameras = {}
    for block in blocks:
        label = " ".join(block["name"])
        try:
            index = int(block["name"][0])
            intrinsic = np.array([float(v) for v in block["intrinsic"]]).reshape(4, 4)
            extrinsic = np.array([float(v) for v in block["extrinsic"]]).reshape(4, 4)
            size = [int(float(v)) for v in block.get("size", ["0", "0"])]
        except KeyError as error:
            raise ValueError(f"{path}: camera '{label}' lacks field {error}") from None
        except ValueError as error:
            raise ValueError(
                f"{path}: camera '{label}': 'intrinsic'/'extrinsic' must be 16 numbers: {error}"
            ) from None
        cameras[index] = PinholeCamera(
            rotation=extrinsic[:3, :3],
            translation=extrinsic[:3, 3] / 1000.0,
            focal_px=(intrinsic[0, 0], intrinsic[1, 1]),
            center_px=(intrinsic[0, 2], intrinsic[1, 2]),
            width=size[0],
            height=size[1],
            name=str(index),
        )
    return cameras


def read_mpi_inf_cameras_pickle(path: str | os.PathLike[str]) -> dict[str, PinholeCamera]:
    """Read mmpose's MPI-INF-3DHP camera pickles (``cameras_train.pkl`` / ``cameras_test.pkl``).

    Keys are "S1_Seq1_Cam0" (with ``R``, ``T`` world-to-camera, metres) or "TS1" (intrinsics
    only: identity rotation). Heights are taken from the key's image size where the file's is
    implausible (the upstream training entries carry h = 204 for 2048).
    """
    data = restricted_pickle_load(path)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a dict of cameras, got {type(data).__name__}")
    cameras = {}
    for key, entry in data.items():
        try:
            width = int(np.asarray(entry.get("w", 0)).reshape(-1)[0])
            height = int(np.asarray(entry.get("h", 0)).reshape(-1)[0])
            cameras[str(key)] = PinholeCamera(
                rotation=np.asarray(entry.get("R", np.eye(3)), dtype=np.float64).reshape(3, 3),
                translation=np.asarray(entry.get("T", np.zeros(3)), dtype=np.float64).reshape(3),
                focal_px=np.asarray(entry["f"], dtype=np.float64).reshape(2),
                center_px=np.asarray(entry["c"], dtype=np.float64).reshape(2),
                width=width,
                height=width if height * 5 < width else height,
                name=str(key),
            )
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: camera {key!r}: bad or missing field: {error}") from None
    return cameras


def _cell(path: Path, data: Mapping[str, Any], key: str) -> list[np.ndarray]:
    if key not in data:
        raise ValueError(f"{path}: field '{key}' is missing")
    value = np.asarray(data[key])
    if value.dtype != object:
        raise ValueError(f"{path}: field '{key}' must be a cell array (one per camera)")
    return [np.asarray(item, dtype=np.float64) for item in value.reshape(-1)]


def read_mpi_inf_train_annotations(
    path: str | os.PathLike[str], *, annot3_key: Literal["annot3", "univ_annot3"]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read a training ``annot.mat``.

    Returns:
        (joints_2d, joints_3d): per camera (N, 28, 2) pixels and (N, 28, 3) millimetres.

    Raises:
        FileNotFoundError, ValueError: naming the file, the field and the camera.
    """
    path = Path(path)
    if annot3_key not in ("annot3", "univ_annot3"):
        raise ValueError(f"`annot3_key` must be 'annot3' or 'univ_annot3', got {annot3_key!r}")
    if not path.is_file():
        raise FileNotFoundError(f"MPI-INF-3DHP annotation file not found: {path}")
    try:
        data = scipy.io.loadmat(str(path))
    except (ValueError, NotImplementedError, OSError) as error:
        raise ValueError(f"{path}: cannot read as a MATLAB v5 file: {error}") from None
    cells_2d = _cell(path, data, "annot2")
    cells_3d = _cell(path, data, annot3_key)
    if len(cells_2d) != len(cells_3d):
        raise ValueError(
            f"{path}: fields 'annot2' and '{annot3_key}' list {len(cells_2d)} and "
            f"{len(cells_3d)} cameras"
        )
    joints_2d, joints_3d = [], []
    for camera, (a2, a3) in enumerate(zip(cells_2d, cells_3d, strict=True)):
        if a2.ndim != 2 or a2.shape[1] != 56:
            raise ValueError(
                f"{path}: field 'annot2' camera {camera} must have shape (N, 56), got {a2.shape}"
            )
        if a3.shape != (a2.shape[0], 84):
            raise ValueError(
                f"{path}: field '{annot3_key}' camera {camera} must have shape "
                f"({a2.shape[0]}, 84), got {a3.shape}"
            )
        if not (np.all(np.isfinite(a2)) and np.all(np.isfinite(a3))):
            raise ValueError(f"{path}: camera {camera} has NaN or infinite joints")
        joints_2d.append(a2.reshape(-1, 28, 2))
        joints_3d.append(a3.reshape(-1, 28, 3))
    return joints_2d, joints_3d


def _matlab_joints(
    path: Path, key: str, value: np.ndarray, dims: int, from_hdf5: bool
) -> np.ndarray:
    """(N, 17, dims) from MATLAB's dims x 17 x 1 x N (scipy) or N x 1 x 17 x dims (h5py)."""
    array = np.asarray(value, dtype=np.float64)
    if from_hdf5:
        if array.size % (17 * dims):
            raise ValueError(
                f"{path}: field '{key}' has shape {array.shape}, not (N, 1, 17, {dims})"
            )
        return array.reshape(-1, 17, dims)
    if array.shape[:2] != (dims, 17) or array.size % (17 * dims):
        raise ValueError(
            f"{path}: field '{key}' must have MATLAB shape ({dims}, 17, 1, N), got {array.shape}"
        )
    return array.reshape(dims, 17, -1).transpose(2, 1, 0)


def read_mpi_inf_test_annotations(
    path: str | os.PathLike[str], *, annot3_key: Literal["annot3", "univ_annot3"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a test ``annot_data.mat`` (HDF5 via h5py, or MATLAB v5 via scipy).

    Returns:
        joints_2d (N, 17, 2) pixels, joints_3d (N, 17, 3) millimetres, valid (N,) bool.
    """
    path = Path(path)
    if annot3_key not in ("annot3", "univ_annot3"):
        raise ValueError(f"`annot3_key` must be 'annot3' or 'univ_annot3', got {annot3_key!r}")
    if not path.is_file():
        raise FileNotFoundError(f"MPI-INF-3DHP annotation file not found: {path}")
    try:
        data: Mapping[str, Any] = scipy.io.loadmat(str(path))
        from_hdf5 = False
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        try:
            import h5py
        except ImportError:
            raise ImportError(
                f"{path} is a MATLAB v7.3 (HDF5) file; reading it needs h5py (pip install h5py)"
            ) from None
        with h5py.File(path, "r") as file:
            data = {key: np.asarray(file[key]) for key in file.keys() if key != "#refs#"}
        from_hdf5 = True
    for key in ("annot2", annot3_key, "valid_frame"):
        if key not in data:
            raise ValueError(f"{path}: field '{key}' is missing; fields: {sorted(data)}")
    joints_2d = _matlab_joints(path, "annot2", data["annot2"], 2, from_hdf5)
    joints_3d = _matlab_joints(path, annot3_key, data[annot3_key], 3, from_hdf5)
    valid = np.asarray(data["valid_frame"]).reshape(-1).astype(bool)
    if not joints_2d.shape[0] == joints_3d.shape[0] == valid.shape[0]:
        raise ValueError(
            f"{path}: 'annot2', '{annot3_key}' and 'valid_frame' have {joints_2d.shape[0]}, "
            f"{joints_3d.shape[0]} and {valid.shape[0]} frames"
        )
    return joints_2d, joints_3d, valid


def _rows(
    joints_2d: np.ndarray, joints_3d_mm: np.ndarray, names: list[str]
) -> dict[str, np.ndarray]:
    """Rows from 17-joint (test order) arrays."""
    num = joints_2d.shape[0]
    joints_3d = joints_3d_mm / 1000.0
    pelvis = joints_3d[:, _PELVIS_17]
    extra_2d = np.zeros((num, 19, 3))
    extra_2d[:, _TARGETS_EXTRA, :2] = joints_2d
    extra_2d[:, _TARGETS_EXTRA, 2] = 1.0
    extra_3d = np.zeros((num, 19, 4))
    extra_3d[:, _TARGETS_EXTRA, :3] = joints_3d - pelvis[:, None]
    extra_3d[:, _TARGETS_EXTRA, 3] = 1.0
    center, scale = square_boxes_from_keypoints(joints_2d, rescale=1.2)
    return {
        "imgname": np.asarray(names),
        "center": center,
        "scale": scale,
        "extra_keypoints_2d": extra_2d,
        "extra_keypoints_3d": extra_3d,
        "pelvis_3d": pelvis,
    }


def _write(
    output_path: str | os.PathLike[str], parts: dict[str, list[np.ndarray]], problems: list[str]
) -> ConversionReport:
    if not parts:
        raise ValueError("nothing could be converted:\n" + "\n".join(problems))
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    named = ("imgname", "center", "scale", "extra_keypoints_2d", "extra_keypoints_3d")
    output = write_prohmr_npz(
        output_path,
        **{key: arrays[key] for key in named},
        extra={key: value for key, value in arrays.items() if key not in named},
    )
    return ConversionReport(output, len(arrays["imgname"]), tuple(problems))


def convert_mpi_inf_train(
    root: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    annot3_key: Literal["annot3", "univ_annot3"],
    subjects: Sequence[int] = tuple(range(1, 9)),
    sequences: Sequence[int] = (1, 2),
    cameras: Sequence[int] = MPI_INF_TRAIN_CAMERAS,
    step: int = 10,
    image_size: tuple[int, int] = (2048, 2048),
    drop_outside: bool = True,
    imgname_template: str = MPI_INF_TRAIN_IMGNAME,
    image_root: str | os.PathLike[str] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
) -> ConversionReport:
    """Convert the MPI-INF-3DHP training set (see the module docstring).

    Args:
        root: dataset folder (``S1/Seq1/annot.mat`` ...).
        output_path: npz to write (atomically).
        annot3_key: "annot3" (camera-true 3D) or "univ_annot3" (height-normalised 3D).
        subjects, sequences, cameras: which data to convert.
        step: keep frames with index % step == 0.
        image_size: (width, height), for `drop_outside`.
        drop_outside: leave out frames with a 2D joint outside the image (SPIN).
        imgname_template: fields subject, sequence, camera, frame (1-based).
        image_root: if given, extract the kept video frames to ``image_root / imgname``.
        on_error: "raise" or "skip" (problems listed in the report).

    Returns:
        A :class:`ConversionReport`; rows carry ``focal_px`` / ``center_px`` from
        ``camera.calibration``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}")
    if annot3_key not in ("annot3", "univ_annot3"):
        raise ValueError(f"`annot3_key` must be 'annot3' or 'univ_annot3', got {annot3_key!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"`step` must be a positive int, got {step!r}")
    root = Path(root)
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    problems: list[str] = []
    for subject in subjects:
        for sequence in sequences:
            folder = root / f"S{subject}" / f"Seq{sequence}"
            try:
                joints_2d, joints_3d = read_mpi_inf_train_annotations(
                    folder / "annot.mat", annot3_key=annot3_key
                )
                calibration = read_mpi_inf_calibration(folder / "camera.calibration")
                for camera in cameras:
                    if camera >= len(joints_2d) or camera not in calibration:
                        raise ValueError(
                            f"{folder}: camera {camera} missing from annot.mat or "
                            "camera.calibration"
                        )
                    points_2d = joints_2d[camera][:, list(MPI_INF17_FROM_28)]
                    points_3d = joints_3d[camera][:, list(MPI_INF17_FROM_28)]
                    frames = np.arange(0, points_2d.shape[0], step)
                    if drop_outside:
                        xy = points_2d[frames]
                        inside = (
                            (xy[..., 0] >= 0)
                            & (xy[..., 0] < image_size[0])
                            & (xy[..., 1] >= 0)
                            & (xy[..., 1] < image_size[1])
                        ).all(axis=1)
                        frames = frames[inside]
                    if frames.size == 0:
                        continue
                    names = [
                        imgname_template.format(
                            subject=subject, sequence=sequence, camera=camera, frame=int(f) + 1
                        )
                        for f in frames
                    ]
                    rows = _rows(points_2d[frames], points_3d[frames], names)
                    if image_root is not None:
                        extract_video_frames(
                            folder / "imageSequence" / f"video_{camera}.avi",
                            {
                                int(f): Path(image_root) / n
                                for f, n in zip(frames, names, strict=True)
                            },
                        )
                    num = frames.size
                    cam = calibration[camera]
                    rows["sequence"] = np.full(num, f"S{subject}_Seq{sequence}")
                    rows["camera"] = np.full(num, camera)
                    rows["frame"] = frames
                    rows["focal_px"] = np.tile(cam.focal_px, (num, 1))
                    rows["center_px"] = np.tile(cam.center_px, (num, 1))
                    for key, value in rows.items():
                        parts[key].append(value)
            except (FileNotFoundError, ValueError) as error:
                if on_error == "raise":
                    raise
                problems.append(str(error))
    return _write(output_path, parts, problems)


def convert_mpi_inf_test(
    root: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    annot3_key: Literal["annot3", "univ_annot3"],
    sequences: Sequence[int] = (1, 2, 3, 4, 5, 6),
    cameras: Mapping[str, PinholeCamera] | None = None,
    imgname_template: str = MPI_INF_TEST_IMGNAME,
    on_error: Literal["raise", "skip"] = "raise",
) -> ConversionReport:
    """Convert the MPI-INF-3DHP test set (``mpi_inf_3dhp_test_set/TS*/annot_data.mat``).

    Frames with ``valid_frame`` = 0 are left out. The test set ships no calibration file:
    pass `cameras` ({"TS1": camera, ...}, e.g. from `read_mpi_inf_cameras_pickle`) to store
    ``focal_px`` / ``center_px``.

    Args:
        root: dataset folder (containing ``mpi_inf_3dhp_test_set``).
        output_path: npz to write (atomically).
        annot3_key: "annot3" or "univ_annot3".
        sequences: test sequences 1..6.
        cameras: optional intrinsics per "TS<n>".
        imgname_template: fields sequence (int), frame (1-based).
        on_error: "raise" or "skip".
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"`on_error` must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    problems: list[str] = []
    for sequence in sequences:
        path = root / "mpi_inf_3dhp_test_set" / f"TS{sequence}" / "annot_data.mat"
        try:
            joints_2d, joints_3d, valid = read_mpi_inf_test_annotations(path, annot3_key=annot3_key)
            frames = np.flatnonzero(valid)
            if frames.size == 0:
                raise ValueError(f"{path}: field 'valid_frame' marks no frame valid")
            names = [imgname_template.format(sequence=sequence, frame=int(f) + 1) for f in frames]
            rows = _rows(joints_2d[frames], joints_3d[frames], names)
            num = frames.size
            rows["sequence"] = np.full(num, f"TS{sequence}")
            rows["frame"] = frames
            if cameras is not None:
                camera = cameras.get(f"TS{sequence}")
                if camera is None:
                    raise ValueError(f"`cameras` has no entry 'TS{sequence}'")
                rows["focal_px"] = np.tile(camera.focal_px, (num, 1))
                rows["center_px"] = np.tile(camera.center_px, (num, 1))
        except (FileNotFoundError, ValueError) as error:
            if on_error == "raise":
                raise
            problems.append(str(error))
            continue
        for key, value in rows.items():
            parts[key].append(value)
    return _write(output_path, parts, problems)
