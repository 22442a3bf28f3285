"""Atomic writers for the ProHMR file formats.

Every writer validates its arrays first and then writes to a temporary file in the destination
folder, which is renamed over the destination only when the write succeeded. An interrupted run
therefore leaves either the previous file or no file, never a half-written one.

Formats (docs/data.md):

- image dataset npz: one row per person instance (:func:`write_prohmr_npz`);
- multiview pickle: a list of frames, every value with a leading view dimension
  (:func:`write_multiview_pickle`);
- mocap npz: ``body_pose`` (n, 72) axis-angle and ``betas`` (n, 10) (:func:`write_mocap_npz`).

Pickles from outside (multiview pickles, 3DPW sequence files, camera pickles, object arrays
inside VideoPose3D's npz files) are read with :func:`restricted_pickle_load`, which rebuilds
NumPy arrays, dtypes and scalars and Python containers but refuses every other global, so a
hostile file cannot run code. :func:`extract_video_frames` writes video frames atomically and
:class:`ConversionReport` is what the converters of the original datasets return.
"""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

__all__ = [
    "PROHMR_NPZ_SHAPES",
    "ConversionReport",
    "atomic_write",
    "atomic_write_npz",
    "atomic_write_pickle",
    "extract_video_frames",
    "read_npz",
    "restricted_pickle_load",
    "write_mocap_npz",
    "write_multiview_pickle",
    "write_prohmr_npz",
]

#: Trailing shape of every per-example array of the image dataset npz format
#: (docs/data.md#the-image-npz).
#: ``scale`` may also be (n, k); the reader then takes the row maximum.
PROHMR_NPZ_SHAPES: dict[str, tuple[int, ...]] = {
    "imgname": (),
    "center": (2,),
    "scale": (),
    "body_pose": (72,),
    "has_body_pose": (),
    "betas": (10,),
    "has_betas": (),
    "body_keypoints_2d": (25, 3),
    "extra_keypoints_2d": (19, 3),
    "body_keypoints_3d": (25, 4),
    "extra_keypoints_3d": (19, 4),
    "gender": (),
}


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The parent folder is created if needed. On any exception the temporary file is removed and
    ``path`` is left untouched.
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    try:
        # mkstemp creates the file private (0600); give it the mode an ordinary open() would
        # (0666 less the umask), so results are readable as any other file the user writes.
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def atomic_write_npz(
    path: str | os.PathLike[str], arrays: Mapping[str, Any], *, compressed: bool = False
) -> Path:
    """Write ``arrays`` to an ``.npz`` file atomically (see :func:`atomic_write`).

    Object arrays are refused, so the file always loads with ``np.load(allow_pickle=False)``.
    """
    converted = {}
    for key, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(
                f"array '{key}' has dtype object; store strings as a fixed-width str array"
            )
        converted[key] = array
    saver = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda file: saver(file, **converted))


def atomic_write_pickle(path: str | os.PathLike[str], obj: Any) -> Path:
    """Pickle ``obj`` to ``path`` atomically (protocol 4, readable by Python >= 3.4)."""
    return atomic_write(path, lambda file: pickle.dump(obj, file, protocol=4))


def _check_rows(name: str, array: np.ndarray, num_rows: int, trailing: tuple[int, ...]) -> None:
    expected = (num_rows, *trailing)
    if name == "scale" and array.ndim == 2 and array.shape[0] == num_rows:
        return
    if array.shape != expected:
        raise ValueError(f"`{name}` must have shape {expected}, got {array.shape}")


def write_prohmr_npz(
    path: str | os.PathLike[str],
    *,
    imgname: Sequence[str] | np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    body_pose: np.ndarray | None = None,
    has_body_pose: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    has_betas: np.ndarray | None = None,
    body_keypoints_2d: np.ndarray | None = None,
    extra_keypoints_2d: np.ndarray | None = None,
    body_keypoints_3d: np.ndarray | None = None,
    extra_keypoints_3d: np.ndarray | None = None,
    gender: Sequence[str] | np.ndarray | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Validate and atomically write an image dataset in the ProHMR npz format.

    The format: docs/data.md#the-image-npz.

    Args:
        path: destination ``.npz``.
        imgname: (n,) image paths relative to the dataset's image folder.
        center: (n, 2) box centres (x, y) in original-image pixels.
        scale: (n,) box side lengths in **pixels** (not SPIN's pixels / 200).
        body_pose: (n, 72) SMPL axis-angle, global orientation first (camera frame).
        has_body_pose: (n,) 1 where ``body_pose`` is valid.
        betas: (n, 10) SMPL shape. has_betas: (n,) validity.
        body_keypoints_2d: (n, 25, 3) OpenPose BODY_25 (x_px, y_px, confidence).
        extra_keypoints_2d: (n, 19, 3) the 19 extra keypoints (x_px, y_px, confidence).
        body_keypoints_3d: (n, 25, 4) BODY_25 (x, y, z metres, confidence), camera frame.
        extra_keypoints_3d: (n, 19, 4) extra keypoints (metres, confidence).
        gender: (n,) 'm' / 'f' / 'n'.
        extra: further per-example arrays with leading dimension n (e.g. ``action``,
            ``subject``, ``sequence``, ``camera``); stored under their own names.

    Returns:
        The written path.

    Raises:
        ValueError: if an array has the wrong shape, a value is not finite, or ``extra``
            reuses a reserved key.
    """
    names = np.asarray([str(name) for name in np.asarray(imgname).reshape(-1).tolist()])
    num_rows = len(names)
    if np.asarray(imgname).ndim != 1:
        raise ValueError(f"`imgname` must have shape ({num_rows},), got {np.shape(imgname)}")
    arrays: dict[str, np.ndarray] = {"imgname": names}
    given = {
        "center": center,
        "scale": scale,
        "body_pose": body_pose,
        "has_body_pose": has_body_pose,
        "betas": betas,
        "has_betas": has_betas,
        "body_keypoints_2d": body_keypoints_2d,
        "extra_keypoints_2d": extra_keypoints_2d,
        "body_keypoints_3d": body_keypoints_3d,
        "extra_keypoints_3d": extra_keypoints_3d,
    }
    for name, value in given.items():
        if value is None:
            continue
        array = np.asarray(value, dtype=np.float64 if not name.startswith("has_") else None)
        _check_rows(name, array, num_rows, PROHMR_NPZ_SHAPES[name])
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` contains NaN or infinite values")
        if name.startswith("has_"):
            array = array.astype(np.float64)
        arrays[name] = array
    if gender is not None:
        genders = np.asarray([str(g) for g in np.asarray(gender).reshape(-1).tolist()])
        _check_rows("gender", genders, num_rows, ())
        arrays["gender"] = genders
    for name, value in (extra or {}).items():
        if name in PROHMR_NPZ_SHAPES:
            raise ValueError(f"`extra` key '{name}' is a reserved npz key; pass it by name")
        array = np.asarray(value)
        if array.ndim == 0 or array.shape[0] != num_rows:
            raise ValueError(
                f"`extra['{name}']` must have leading dimension {num_rows}, got {array.shape}"
            )
        arrays[name] = array
    return atomic_write_npz(path, arrays)


def write_mocap_npz(
    path: str | os.PathLike[str], *, body_pose: np.ndarray, betas: np.ndarray
) -> Path:
    """Write the mocap npz of the discriminator (docs/data.md#mocap-npz) atomically.

    Args:
        body_pose: (n, 72) SMPL axis-angle, global orientation first (the reader drops it).
        betas: (n, 10) SMPL shape.
    """
    pose = np.asarray(body_pose, dtype=np.float32)
    shape = np.asarray(betas, dtype=np.float32)
    if pose.ndim != 2 or pose.shape[1] != 72:
        raise ValueError(f"`body_pose` must have shape (n, 72), got {pose.shape}")
    _check_rows("betas", shape, pose.shape[0], (10,))
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(shape))):
        raise ValueError("`body_pose` and `betas` must be finite")
    return atomic_write_npz(path, {"body_pose": pose, "betas": shape})


_MULTIVIEW_REQUIRED = ("imgname", "center", "scale")


def write_multiview_pickle(
    path: str | os.PathLike[str], frames: Sequence[Mapping[str, Any]]
) -> Path:
    """Write the multiview (batched) pickle (docs/data.md#multiview-pickle) atomically.

    Args:
        frames: one mapping per instant; every value has a leading view dimension V (the same
            within a frame). Required keys: ``imgname`` (V,), ``center`` (V, 2), ``scale`` (V,);
            optional keys follow the npz format with a leading V (``body_pose`` (V, 72),
            ``betas`` (V, 10), ``has_body_pose`` (V,), ``has_betas`` (V,),
            ``body_keypoints_3d`` (V, 25, 4), ``extra_keypoints_3d`` (V, 19, 4)).
    """
    cleaned: list[dict[str, np.ndarray]] = []
    for index, frame in enumerate(frames):
        missing = [key for key in _MULTIVIEW_REQUIRED if key not in frame]
        if missing:
            raise ValueError(f"frame {index} is missing key(s) {missing}")
        names = np.asarray([str(n) for n in np.asarray(frame["imgname"]).reshape(-1)])
        num_views = len(names)
        out = {"imgname": names}
        for key, value in frame.items():
            if key == "imgname":
                continue
            array = np.asarray(value)
            trailing = PROHMR_NPZ_SHAPES.get(key)
            if trailing is not None:
                try:
                    _check_rows(key, array, num_views, trailing)
                except ValueError as error:
                    raise ValueError(f"frame {index}: {error}") from None
            elif array.ndim == 0 or array.shape[0] != num_views:
                raise ValueError(
                    f"frame {index}: `{key}` must have leading dimension {num_views}, "
                    f"got {array.shape}"
                )
            out[key] = array
        cleaned.append(out)
    return atomic_write_pickle(path, cleaned)


def read_npz(path: str | os.PathLike[str], *, what: str = "npz file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``; clear errors.

    Object arrays are refused by name: they would need unpickling, which may run code.

    Args:
        path: the ``.npz`` file.
        what: how messages call the file (e.g. "lifting npz").

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file if it is empty, not a zip archive (a single ``.npy`` array,
            a text file, ...), truncated or corrupt (with the array named where one is), or
            holds an object array (named).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{what} not found: {source}")
    with open(source, "rb") as file:
        head = file.read(6)
    if not head:
        raise ValueError(f"{what} {source} is empty (0 bytes)")
    if head == b"\x93NUMPY":
        raise ValueError(
            f"{what} {source} holds a single .npy array, not an npz archive of named arrays"
        )
    if not head.startswith(b"PK"):
        raise ValueError(
            f"{what} {source} is not an npz file (a zip archive of .npy arrays); it starts "
            f"with {head!r}"
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        data = np.load(source, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(
            f"{what} {source} is truncated or corrupt (not a readable zip archive: {error})"
        ) from None
    with data:
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError as error:
                if "allow_pickle" in str(error):
                    raise ValueError(
                        f"array '{key}' in {what} {source} has dtype object, which would need "
                        "unpickling (refused); store strings as a fixed-width str array"
                    ) from None
                raise ValueError(
                    f"array '{key}' in {what} {source} is truncated or corrupt: {error}"
                ) from None
            except Exception as error:  # zlib.error, BadZipFile, EOFError on a damaged member
                raise ValueError(
                    f"array '{key}' in {what} {source} is truncated or corrupt: "
                    f"{type(error).__name__}: {error}"
                ) from None
    return arrays


#: The only globals a data pickle may reference: NumPy arrays, dtypes and scalars (in the
#: module paths of NumPy 1 and 2) and the helpers their pickles use. Lists, dicts, tuples,
#: sets, strings, bytes and numbers need no global.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
        ("builtins", "slice"),
        ("collections", "OrderedDict"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles (and protocols < 3) name the builtins module "__builtin__".
        if ("builtins" if module == "__builtin__" else module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': only NumPy arrays, dtypes, scalars "
            "and Python containers are allowed in data pickles"
        )


def restricted_pickle_load(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    encoding: str = "latin1",
    name: str | None = None,
) -> Any:
    """Unpickle data allowing only NumPy arrays/dtypes/scalars and Python containers.

    Every other global (classes, functions such as ``os.system``) is refused before it is
    looked up, so a hostile pickle cannot run code.

    Args:
        source: a pickle file's path, or the pickle's bytes (e.g. an object array inside an
            npz).
        encoding: how Python 2 ``str`` objects are decoded ("latin1" reads the Python 2
            pickles of 3DPW and NumPy arrays pickled by Python 2).
        name: how error messages name bytes ``source`` (default "<bytes>"); a path names
            itself.

    Raises:
        FileNotFoundError: if a path does not exist.
        TypeError: if ``source`` is neither a path nor bytes.
        ValueError: naming the file if it is not a readable pickle or references a refused
            global (named too).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"pickle file not found: {path}")
        label = str(path)
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = "<bytes>" if name is None else name
        data = bytes(source)
    else:
        raise TypeError(f"`source` must be a path or bytes, got {type(source).__name__}")
    try:
        return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except pickle.UnpicklingError as error:
        raise ValueError(f"cannot read pickle {label}: {error}") from None
    except (
        EOFError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
    ) as error:
        raise ValueError(f"cannot read pickle {label}: {type(error).__name__}: {error}") from None


@dataclass(frozen=True)
class ConversionReport:
    """What a converter wrote and which inputs it skipped.

    Attributes:
        output: the written file (npz or pickle).
        num_rows: rows (or multiview frames) written.
        problems: one line per skipped input: the file, the field and what was wrong.
    """

    output: Path
    num_rows: int
    problems: tuple[str, ...] = ()


def extract_video_frames(
    video: str | os.PathLike[str], frames: Mapping[int, str | os.PathLike[str]]
) -> None:
    """Write the video frames `frames` (0-based index -> destination .jpg) atomically.

    Frames are counted from 0 as OpenCV decodes them (for Human3.6M, frame i of the video is
    pose frame i of the CDF files; ProHMR's script was one frame late).

    Raises:
        FileNotFoundError: if the video is missing.
        ValueError: if it cannot be opened or ends before the last wanted frame.
    """
    video = Path(video)
    if not video.is_file():
        raise FileNotFoundError(f"video not found: {video}")
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"{video}: OpenCV cannot open the video")
    try:
        last = max(frames) if frames else -1
        index = 0
        while index <= last:
            ok, image = capture.read()
            if not ok:
                raise ValueError(
                    f"{video}: video ends after {index} frames; frame {last} needs {last + 1}"
                )
            if index in frames:
                ok, encoded = cv2.imencode(".jpg", image)
                if not ok:
                    raise ValueError(f"{video}: cannot encode frame {index} as JPEG")
                atomic_write(frames[index], lambda file, data=encoded: file.write(data.tobytes()))
            index += 1
    finally:
        capture.release()
