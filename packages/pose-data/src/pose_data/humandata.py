"""mmhuman3d's HumanData npz: read it without running code, convert it, write predictions as it.

HumanData is the annotation format of mmhuman3d (docs/data.md#humandata): an ``.npz`` whose
members are, per person instance (N rows):

- ``image_path`` (N,) image paths relative to the dataset's image folder;
- ``bbox_xywh`` (N, 4) or (N, 5) boxes: top-left corner x, y, width, height in pixels (and a
  score);
- ``keypoints2d`` (N, K, 3) / ``keypoints3d`` (N, K, 4) with ``keypoints2d_mask`` (K,) (0 where
  the convention's joint is not annotated) and ``keypoints2d_convention`` (the name of the
  K-joint layout, e.g. "coco", "openpose_25", "human_data");
- ``smpl``: a dict of ``global_orient`` (N, 3), ``body_pose`` (N, 23, 3), ``betas`` (N, 10)
  and optionally ``transl`` (N, 3), axis-angle in radians, metres;
- ``meta``: a dict of per-row metadata, e.g. ``gender``; ``config``: the dataset's name;
- ``__key_strict__``, ``__data_len__`` (N) and ``__keypoints_compressed__`` (when true, every
  ``keypoints*`` array holds only the joints its mask keeps: (N, mask.sum(), C)).

``smpl`` and ``meta`` (and, in some files, ``image_path``) are NumPy object arrays, which
``np.load`` only reads by unpickling, and an unpickled file may run code. :func:`read_humandata`
therefore parses every member's ``.npy`` header itself (``numpy.lib.format``) and unpickles
object members with :func:`pose_data.io.restricted_pickle_load`, which rebuilds arrays, strings
and containers only. :func:`convert_humandata` writes this project's npz
(docs/data.md#the-image-npz); :func:`write_humandata` writes predictions (or any SMPL bodies)
as HumanData, pickling only on write.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from pose_data._convert import string_array, write_arrays
from pose_data.image_dataset import check_images_exist
from pose_data.io import ConversionReport, atomic_write, restricted_pickle_load
from pose_geometry import BODY25_TO_44, COCO17_TO_44

__all__ = [
    "HUMANDATA_KEYPOINT_CONVENTIONS",
    "convert_humandata",
    "read_humandata",
    "write_humandata",
]

#: HumanData keypoint conventions this project can place into the 44-keypoint layout:
#: convention name -> 44-index of each of its joints (in the convention's order).
HUMANDATA_KEYPOINT_CONVENTIONS: dict[str, tuple[int, ...]] = {
    "openpose_25": BODY25_TO_44,
    "coco": COCO17_TO_44,
}

#: The convention :func:`write_humandata` stores keypoints in (the BODY_25 part of the 44 layout).
_OPENPOSE_25 = "openpose_25"

_GENDERS = {"m": "m", "male": "m", "f": "f", "female": "f", "n": "n", "neutral": "n"}


# -- reading ---------------------------------------------------------------------------------


def _read_member(data: bytes, source: Path, key: str) -> Any:
    """One ``.npy`` member: a plain array, or an object array unpickled restrictedly."""
    stream = io.BytesIO(data)
    where = f"array '{key}' in HumanData file {source}"
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _fortran, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _fortran, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as error:
        raise ValueError(f"{where} has no readable .npy header: {error}") from None
    if dtype.hasobject:
        value = restricted_pickle_load(data[stream.tell() :], name=where)
        if not isinstance(value, np.ndarray) or value.shape != tuple(shape):
            raise ValueError(
                f"{where}: its pickle holds {type(value).__name__} "
                f"{getattr(value, 'shape', '')}, not the object array of shape {shape} "
                "its header announces"
            )
        return value
    stream.seek(0)
    try:
        return npy_format.read_array(stream, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{where} is truncated or corrupt: {error}") from None


def _unwrap(value: Any) -> Any:
    """0-d arrays become their item (dict, str, bool, int); object arrays of strings become str
    arrays and object arrays of numbers float64 arrays, also inside a dict (``smpl``, ``meta``)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, dict):
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == object and value.size:
        items = value.reshape(-1).tolist()
        if all(isinstance(v, (str, bytes)) for v in items):
            decoded = [v.decode() if isinstance(v, bytes) else v for v in items]
            return np.asarray(decoded).reshape(value.shape)
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in items):
            return value.astype(np.float64)
    return value


def _decompress_keypoints(content: dict[str, Any], source: Path) -> None:
    """Scatter mask-compressed ``keypoints*`` arrays back to the full convention."""
    for key in list(content):
        if not key.startswith("keypoints") or key.endswith(("_mask", "_convention")):
            continue
        mask_key = f"{key}_mask"
        if mask_key not in content:
            continue
        mask = np.asarray(content[mask_key]).reshape(-1) > 0
        values = np.asarray(content[key])
        if values.ndim != 3:
            continue
        if values.shape[1] == mask.size:
            continue  # stored uncompressed
        if values.shape[1] != int(mask.sum()):
            raise ValueError(
                f"HumanData file {source}: compressed '{key}' has {values.shape[1]} joints but "
                f"'{mask_key}' keeps {int(mask.sum())} of {mask.size}"
            )
        full = np.zeros((values.shape[0], mask.size, values.shape[2]), dtype=values.dtype)
        full[:, mask] = values
        content[key] = full


def read_humandata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every key of a HumanData ``.npz``, read without running code.

    Plain arrays are read as ``np.load(allow_pickle=False)`` would; object arrays (``smpl``,
    ``meta``, lists of strings) are unpickled with :func:`~pose_data.io.restricted_pickle_load`
    (NumPy arrays, strings, numbers and containers only). 0-d values come back as Python
    objects (``smpl`` and ``meta`` as dicts, ``config`` as str, the ``__*__`` flags as bool /
    int); string arrays as ``str`` arrays; ``keypoints*`` arrays compressed by their masks
    (``__keypoints_compressed__``) are expanded back to (N, K, C) with zeros where the mask is
    0.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file (and the key) if it is not an npz archive, a member is
            truncated or corrupt, or an object member references anything else than data
            (e.g. a function such as ``os.system``: refused before it is looked up).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"HumanData file not found: {source}")
    content: dict[str, Any] = {}
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(
            f"HumanData file {source} is not an npz file (a zip archive of .npy arrays): {error}"
        ) from None
    with archive:
        for member in archive.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
                raise ValueError(
                    f"array '{key}' in HumanData file {source} is truncated or corrupt: "
                    f"{type(error).__name__}: {error}"
                ) from None
            content[key] = _unwrap(_read_member(data, source, key))
    if content.get("__keypoints_compressed__"):
        _decompress_keypoints(content, source)
    return content


# -- conversion ------------------------------------------------------------------------------


def _rows(value: Any, name: str, shape: tuple[int, ...], source: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{source}: '{name}' must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{source}: '{name}' has NaN or infinite values")
    return array


def _place_keypoints(
    content: Mapping[str, Any], key: str, n: int, channels: int, source: str, problems: list[str]
) -> np.ndarray | None:
    """(n, 44, channels) keypoints of ``content[key]`` in the 44 layout, or None (with the
    reason in ``problems``)."""
    if key not in content:
        return None
    convention = content.get(f"{key}_convention")
    if convention is None:
        problems.append(
            f"{source}: '{key}' left out: no '{key}_convention' says which joints it holds"
        )
        return None
    convention = str(convention)
    if convention not in HUMANDATA_KEYPOINT_CONVENTIONS:
        problems.append(
            f"{source}: '{key}' left out: convention {convention!r} is not one this project "
            f"maps (known: {sorted(HUMANDATA_KEYPOINT_CONVENTIONS)})"
        )
        return None
    targets = np.asarray(HUMANDATA_KEYPOINT_CONVENTIONS[convention])
    values = _rows(content[key], key, (n, len(targets), channels), source)
    mask = content.get(f"{key}_mask")
    if mask is not None:
        mask = np.asarray(mask, dtype=np.float64).reshape(-1)
        if mask.shape != (len(targets),):
            raise ValueError(
                f"{source}: '{key}_mask' must have shape ({len(targets)},), got {mask.shape}"
            )
        values[..., -1] *= mask > 0
    placed = np.zeros((n, 44, channels))
    placed[:, targets] = values
    return placed


def _genders(meta: Any, n: int, source: str, problems: list[str]) -> np.ndarray | None:
    if not isinstance(meta, Mapping) or "gender" not in meta:
        return None
    values = [str(g).lower() for g in np.asarray(meta["gender"]).reshape(-1).tolist()]
    if len(values) == 1 and n > 1:
        values = values * n
    if len(values) != n or any(g not in _GENDERS for g in values):
        problems.append(
            f"{source}: meta['gender'] left out: expected {n} of {sorted(_GENDERS)}, got "
            f"{values[:5]}{'...' if len(values) > 5 else ''}"
        )
        return None
    return np.asarray([_GENDERS[g] for g in values])


#: smpl_keypoints(global_orient (n, 3), body_pose (n, 69), betas (n, 10), gender) -> (n, 44, 3)
SmplKeypointsFn = Callable[[np.ndarray, np.ndarray, np.ndarray, str], np.ndarray]


def convert_humandata(
    source: str | os.PathLike[str] | Mapping[str, Any],
    output_path: str | os.PathLike[str],
    *,
    rescale: float = 1.2,
    image_dir: str | os.PathLike[str] | None = None,
    smpl_keypoints: SmplKeypointsFn | None = None,
    imgname_map: Callable[[str], str] | None = None,
) -> ConversionReport:
    """Convert a HumanData file (or the dict :func:`read_humandata` returns) to this project's
    image npz (docs/data.md#the-image-npz), written atomically.

    Rows: ``imgname`` = ``image_path``; ``center`` = the box centre (x + w/2, y + h/2) and
    ``scale`` = ``rescale`` x max(w, h) pixels (the rule of the COCO converter and the demo);
    from ``smpl``: ``body_pose`` (n, 72) = global_orient then body_pose (axis-angle, taken as
    given: HumanData image sets store them in the camera frame), ``betas`` (first 10), both
    flagged valid, and ``smpl_transl`` (n, 3) when present; ``gender`` from ``meta['gender']``
    ('male'/'female'/'neutral' or 'm'/'f'/'n'); 2D/3D keypoints of a known convention
    (:data:`HUMANDATA_KEYPOINT_CONVENTIONS`) in the 44 layout, their confidence times the mask.
    Keypoints of another convention, or without one, are left out and named in the report's
    problems.

    Args:
        source: the ``.npz`` path or its content.
        output_path: the npz to write.
        rescale: box side = rescale x the box's longer side.
        image_dir: if given, check that every image exists under it.
        smpl_keypoints: optional keypoint function of a (gendered) SMPL model; fills
            ``extra_keypoints_3d`` (the evaluation's 3D targets) from the SMPL parameters, as
            the 3DPW converter does.
        imgname_map: rewrite each image name (e.g. to add a folder).

    Returns:
        A :class:`~pose_data.io.ConversionReport`.

    Raises:
        ValueError: naming the file and key for a missing ``image_path`` / ``bbox_xywh`` or a
            wrong shape.
    """
    if isinstance(source, Mapping):
        content, name = dict(source), "<HumanData>"
    else:
        content, name = read_humandata(source), str(source)
    missing = [key for key in ("image_path", "bbox_xywh") if key not in content]
    if missing:
        raise ValueError(f"HumanData file {name} lacks key(s) {missing}; keys: {sorted(content)}")
    names = [str(v) for v in np.asarray(content["image_path"]).reshape(-1).tolist()]
    if imgname_map is not None:
        names = [imgname_map(v) for v in names]
    n = len(names)
    if n == 0:
        raise ValueError(f"HumanData file {name} has no rows ('image_path' is empty)")
    boxes = np.asarray(content["bbox_xywh"], dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[0] != n or boxes.shape[1] not in (4, 5):
        raise ValueError(
            f"HumanData file {name}: 'bbox_xywh' must have shape ({n}, 4) or ({n}, 5), got "
            f"{boxes.shape}"
        )
    x, y, w, h = boxes[:, :4].T
    bad = np.flatnonzero(~(np.isfinite(boxes[:, :4]).all(axis=1) & (w > 0) & (h > 0)))
    if bad.size:
        raise ValueError(
            f"HumanData file {name}: 'bbox_xywh' rows {bad[:10].tolist()} are not finite boxes "
            "with width and height > 0"
        )
    if not rescale > 0:
        raise ValueError(f"`rescale` must be positive, got {rescale!r}")
    problems: list[str] = []
    arrays: dict[str, np.ndarray] = {
        "imgname": string_array(names),
        "center": np.stack([x + w / 2, y + h / 2], axis=1),
        "scale": rescale * np.maximum(w, h),
    }
    smpl = content.get("smpl")
    if isinstance(smpl, Mapping) and "global_orient" in smpl and "body_pose" in smpl:
        orient = _rows(smpl["global_orient"], "smpl['global_orient']", (n, 3), name)
        pose = np.asarray(smpl["body_pose"], dtype=np.float64).reshape(n, -1)
        pose = _rows(pose, "smpl['body_pose']", (n, 69), name)
        arrays["body_pose"] = np.concatenate([orient, pose], axis=1)
        arrays["has_body_pose"] = np.ones(n)
        if "betas" in smpl:
            betas = np.asarray(smpl["betas"], dtype=np.float64)
            if betas.ndim != 2 or betas.shape[0] != n or betas.shape[1] < 10:
                raise ValueError(
                    f"HumanData file {name}: smpl['betas'] must have shape ({n}, >= 10), got "
                    f"{betas.shape}"
                )
            arrays["betas"] = _rows(betas[:, :10], "smpl['betas']", (n, 10), name)
            arrays["has_betas"] = np.ones(n)
        if "transl" in smpl:
            arrays["smpl_transl"] = _rows(smpl["transl"], "smpl['transl']", (n, 3), name)
    elif smpl is not None:
        problems.append(f"{name}: 'smpl' left out: expected a dict with global_orient, body_pose")
    genders = _genders(content.get("meta"), n, name, problems)
    if genders is not None:
        arrays["gender"] = genders
    for key, channels in (("keypoints2d", 3), ("keypoints3d", 4)):
        placed = _place_keypoints(content, key, n, channels, name, problems)
        if placed is None:
            continue
        suffix = "keypoints_2d" if channels == 3 else "keypoints_3d"
        arrays[f"body_{suffix}"] = placed[:, :25]
        if placed[:, 25:, -1].any():
            arrays[f"extra_{suffix}"] = placed[:, 25:]
    if smpl_keypoints is not None and "body_pose" in arrays:
        if "betas" not in arrays:
            raise ValueError(f"HumanData file {name}: `smpl_keypoints` needs smpl['betas']")
        extra = np.zeros((n, 19, 4))
        gender = arrays.get("gender", np.full(n, "n"))
        for value in np.unique(gender):
            rows = np.flatnonzero(gender == value)
            pose = arrays["body_pose"][rows]
            keypoints = np.asarray(
                smpl_keypoints(pose[:, :3], pose[:, 3:], arrays["betas"][rows], str(value)),
                dtype=np.float64,
            )
            if keypoints.shape != (len(rows), 44, 3):
                raise ValueError(
                    f"`smpl_keypoints` must return shape ({len(rows)}, 44, 3), got "
                    f"{keypoints.shape}"
                )
            extra[rows, :, :3] = keypoints[:, 25:]
            extra[rows, :, 3] = 1.0
        arrays["extra_keypoints_3d"] = extra
    if image_dir is not None:
        check_images_exist(
            (os.path.join(str(image_dir), v) for v in names),
            listed_in=f"HumanData file {name} (image_dir={image_dir})",
        )
    output = write_arrays(output_path, arrays)
    return ConversionReport(output, n, tuple(problems))


# -- writing ---------------------------------------------------------------------------------


def _object(value: Any) -> np.ndarray:
    """A 0-d object array holding ``value`` (how HumanData stores dicts)."""
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def write_humandata(
    path: str | os.PathLike[str],
    *,
    image_path: Sequence[str],
    bbox_xywh: np.ndarray,
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    betas: np.ndarray,
    transl: np.ndarray | None = None,
    keypoints2d: np.ndarray | None = None,
    keypoints3d: np.ndarray | None = None,
    gender: Sequence[str] | None = None,
    meta: Mapping[str, Any] | None = None,
    config: str = "prohmr",
) -> Path:
    """Write SMPL bodies (e.g. predictions) as a HumanData ``.npz``, atomically.

    Args:
        path: the ``.npz`` to write.
        image_path: (N,) image paths (relative to the dataset's image folder).
        bbox_xywh: (N, 4) boxes (x, y, w, h) in pixels; stored as (N, 5) with score 1.
        global_orient: (N, 3) axis-angle, radians. body_pose: (N, 69) or (N, 23, 3).
        betas: (N, 10). transl: (N, 3) metres (zeros when None).
        keypoints2d: (N, 44, 2 or 3) pixels in the 44 layout: its BODY_25 part is stored as
            ``keypoints2d`` in the "openpose_25" convention (confidence 1 if not given) with
            an all-ones mask.
        keypoints3d: (N, 44, 3 or 4) metres, the same way.
        gender: (N,) 'm'/'f'/'n', stored as ``meta['gender']`` as given (the letters of
            mmhuman3d's 3DPW files).
        meta: more per-row metadata for ``meta``.
        config: the ``config`` string.

    Returns:
        The written path.

    Raises:
        ValueError: naming the argument whose shape does not match N.
    """
    names = np.asarray([str(v) for v in image_path])
    n = len(names)

    def rows(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
        array = np.asarray(value, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(f"`{name}` must have shape {shape}, got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"`{name}` has NaN or infinite values")
        return array

    boxes = rows("bbox_xywh", bbox_xywh, (n, 4))
    pose = np.asarray(body_pose, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 69))
    smpl = {
        "global_orient": rows("global_orient", global_orient, (n, 3)),
        "body_pose": rows("body_pose", pose, (n, 69)).reshape(n, 23, 3),
        "betas": rows("betas", betas, (n, 10)),
        "transl": np.zeros((n, 3)) if transl is None else rows("transl", transl, (n, 3)),
    }
    info: dict[str, Any] = dict(meta or {})
    if gender is not None:
        values = [str(g) for g in gender]
        if len(values) != n or any(g not in ("m", "f", "n") for g in values):
            raise ValueError(f"`gender` must list {n} of 'm', 'f', 'n', got {values[:5]}")
        info["gender"] = values
    arrays: dict[str, Any] = {
        "__key_strict__": np.asarray(False),
        "__data_len__": np.asarray(n),
        "__keypoints_compressed__": np.asarray(False),
        "image_path": names,
        "bbox_xywh": np.concatenate([boxes, np.ones((n, 1))], axis=1),
        "smpl": _object(smpl),
        "meta": _object(info),
        "config": np.asarray(config),
    }
    for key, value, channels in (("keypoints2d", keypoints2d, 3), ("keypoints3d", keypoints3d, 4)):
        if value is None:
            continue
        array = np.asarray(value, dtype=np.float64)
        if (
            array.ndim != 3
            or array.shape[:2] != (n, 44)
            or array.shape[2]
            not in (
                channels - 1,
                channels,
            )
        ):
            raise ValueError(
                f"`{key}` must have shape ({n}, 44, {channels - 1} or {channels}), got "
                f"{array.shape}"
            )
        if array.shape[2] == channels - 1:
            array = np.concatenate([array, np.ones((n, 44, 1))], axis=2)
        arrays[key] = array[:, list(BODY25_TO_44)]
        arrays[f"{key}_mask"] = np.ones(len(BODY25_TO_44))
        arrays[f"{key}_convention"] = np.asarray(_OPENPOSE_25)

    def save(file: Any) -> None:
        # object arrays are pickled here, on write only; read_humandata unpickles restrictedly
        np.savez_compressed(file, **arrays)

    return atomic_write(path, save)
