"""MPII Human Pose annotations -> the ProHMR npz format.

Two sources:

- the official ``mpii_human_pose_v1_u12_1.mat`` (``RELEASE`` struct: ``annolist(i).image.name``,
  ``annolist(i).annorect(r)`` with ``objpos.x/y``, ``scale``, ``annopoints.point(p)`` with
  ``id``, ``x``, ``y``, ``is_visible``; ``img_train(i)``), read with ``scipy.io.loadmat``;
- the common JSON conversion (HRNet/mmpose): a list of ``{"image", "center", "scale",
  "joints" (16 x 2), "joints_vis" (16)}``.

Both store MATLAB 1-based pixel coordinates (the JSON loaders of HRNet and mmpose subtract 1), so
by default 1 is subtracted from keypoints and centres (``one_based=True``). Rows:

- ``center`` = the person's ``objpos``; ``scale`` (box side, pixels) =
  ``box_scale_factor`` x 200 x the MPII ``scale`` (MPII's scale is the person height / 200;
  1.25 is SPIN's MPII expansion factor);
- the 16 joints go to the extra part of the 44 layout (``pose_geometry.MPII16_TO_44``: ankles,
  knees, hips, wrists, elbows, shoulders, neck, head top, pelvis, thorax); confidence 1 for an
  annotated joint (MPII's ``is_visible``, i.e. occlusion, is not used), 0 otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pose_data._convert import finish, string_array
from pose_geometry import MPII16_TO_44

__all__ = ["convert_mpii_json", "convert_mpii_mat"]


def _rows_to_arrays(
    names: Sequence[str],
    centers: Sequence[Sequence[float]],
    scales: Sequence[float],
    joints: Sequence[np.ndarray],
    *,
    box_scale_factor: float,
    one_based: bool,
) -> dict[str, np.ndarray]:
    n = len(names)
    offset = 1.0 if one_based else 0.0
    center = np.asarray(centers, dtype=np.float64).reshape(n, 2) - offset
    extra = np.zeros((n, 19, 3), dtype=np.float32)
    target = np.asarray(MPII16_TO_44) - 25
    for row, points in enumerate(joints):
        annotated = points[:, 2] > 0
        extra[row, target[annotated], :2] = points[annotated, :2] - offset
        extra[row, target[annotated], 2] = 1.0
    return {
        "imgname": string_array(names),
        "center": center.astype(np.float32),
        "scale": (box_scale_factor * 200.0 * np.asarray(scales, dtype=np.float64))
        .reshape(n)
        .astype(np.float32),
        "body_keypoints_2d": np.zeros((n, 25, 3), dtype=np.float32),
        "extra_keypoints_2d": extra,
    }


def _check_factor(box_scale_factor: float) -> None:
    if not box_scale_factor > 0:
        raise ValueError(f"`box_scale_factor` must be positive, got {box_scale_factor!r}")


def convert_mpii_json(
    json_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    image_dir: str | os.PathLike[str] | None = None,
    image_prefix: str = "",
    box_scale_factor: float = 1.25,
    one_based: bool = True,
    require_all_joints: bool = False,
    check_images: bool = True,
) -> dict[str, np.ndarray]:
    """Convert the HRNet/mmpose MPII JSON to the ProHMR npz arrays (optionally written).

    Args:
        json_path: list of entries with ``image``, ``center``, ``scale``, ``joints``,
            ``joints_vis``.
        output_path: write the npz here (atomically) if given.
        image_dir, image_prefix, check_images: as for :func:`pose_data.convert_coco`.
        box_scale_factor: box side = factor x 200 x scale.
        one_based: subtract 1 from coordinates (MATLAB convention of the sources).
        require_all_joints: skip people with a joint not annotated (SPIN's filter).

    Returns:
        npz-layout arrays: ``imgname``, ``center``, ``scale``, ``body_keypoints_2d`` (zeros),
        ``extra_keypoints_2d`` (n, 19, 3). Entries without a valid centre/scale (-1 or <= 0)
        are skipped.

    Raises:
        FileNotFoundError: missing file or images. ValueError: malformed JSON (entry named).
    """
    _check_factor(box_scale_factor)
    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII annotation file not found: {path}")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(entries, list):
        raise ValueError(f"{path} must hold a JSON list of entries, got {type(entries).__name__}")
    names, centers, scales, joints = [], [], [], []
    for e, entry in enumerate(entries):
        where = f"entry {e} of {path}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object, got {type(entry).__name__}")
        missing = [key for key in ("image", "center", "scale", "joints") if key not in entry]
        if missing:
            raise ValueError(f"{where} lacks key(s) {missing}")
        center = np.asarray(entry["center"], dtype=np.float64)
        scale = float(entry["scale"])
        if center.shape != (2,):
            raise ValueError(f"{where}: 'center' must have 2 numbers, got {center.shape}")
        if center[0] == -1 or not scale > 0:
            continue
        points = np.asarray(entry["joints"], dtype=np.float64)
        if points.shape != (16, 2):
            raise ValueError(f"{where}: 'joints' must have shape (16, 2), got {points.shape}")
        visible = np.asarray(entry.get("joints_vis", np.ones(16)), dtype=np.float64)
        if visible.shape != (16,):
            raise ValueError(f"{where}: 'joints_vis' must have 16 numbers, got {visible.shape}")
        annotated = visible > 0
        if require_all_joints and not annotated.all():
            continue
        names.append(image_prefix + str(entry["image"]))
        centers.append(center)
        scales.append(scale)
        joints.append(np.concatenate([points, annotated[:, None]], axis=1))
    arrays = _rows_to_arrays(
        names, centers, scales, joints, box_scale_factor=box_scale_factor, one_based=one_based
    )
    return finish(
        arrays,
        output_path=output_path,
        image_dir=image_dir,
        check_images=check_images,
        listed_in=str(path),
    )


def _items(value: Any) -> list[Any]:
    """A MATLAB struct array loaded with squeeze_me as a list (empty, one, or many)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return [item for item in value.reshape(-1).tolist() if item is not None]
    return [value]


def _field(struct: Any, name: str) -> Any:
    value = getattr(struct, name, None)
    if isinstance(value, np.ndarray) and value.size == 0:
        return None
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        return None
    return float(array.reshape(-1)[0])


def convert_mpii_mat(
    mat_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    image_dir: str | os.PathLike[str] | None = None,
    image_prefix: str = "",
    split: str = "train",
    box_scale_factor: float = 1.25,
    one_based: bool = True,
    require_all_joints: bool = False,
    check_images: bool = True,
) -> dict[str, np.ndarray]:
    """Convert the official MPII ``.mat`` annotation to the ProHMR npz arrays.

    Args:
        mat_path: ``mpii_human_pose_v1_u12_1.mat`` (a MATLAB v5 file with a ``RELEASE``
            struct).
        output_path: write the npz here (atomically) if given.
        split: ``"train"`` (``img_train == 1``; people with ``annopoints``), ``"test"``
            (``img_train == 0``; people with ``objpos`` and ``scale``, no keypoints) or ``"all"``.
        image_dir, image_prefix, check_images, box_scale_factor, one_based,
            require_all_joints: as for :func:`convert_mpii_json`.

    Returns:
        npz-layout arrays as :func:`convert_mpii_json`, in annotation order.

    Raises:
        FileNotFoundError: missing file or images. ValueError: not an MPII release file.
    """
    from scipy.io import loadmat

    _check_factor(box_scale_factor)
    if split not in ("train", "test", "all"):
        raise ValueError(f"`split` must be 'train', 'test' or 'all', got {split!r}")
    path = Path(mat_path)
    if not path.is_file():
        raise FileNotFoundError(f"MPII annotation file not found: {path}")
    try:
        mat = loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except Exception as error:  # scipy raises several types for unreadable files
        raise ValueError(
            f"cannot read MATLAB file {path}: {type(error).__name__}: {error}"
        ) from None
    release = mat.get("RELEASE")
    annolist = _field(release, "annolist") if release is not None else None
    img_train = _field(release, "img_train") if release is not None else None
    if annolist is None or img_train is None:
        raise ValueError(f"{path} is not an MPII release file (needs RELEASE.annolist, img_train)")
    images = _items(annolist)
    train_flags = np.atleast_1d(np.asarray(img_train)).reshape(-1)
    if len(train_flags) != len(images):
        raise ValueError(
            f"RELEASE.img_train in {path} has {len(train_flags)} entries for {len(images)} images"
        )
    names, centers, scales, joints = [], [], [], []
    for i, annotation in enumerate(images):
        is_train = bool(train_flags[i])
        if (split == "train" and not is_train) or (split == "test" and is_train):
            continue
        image = _field(annotation, "image")
        name = _field(image, "name") if image is not None else None
        if not isinstance(name, str):
            raise ValueError(f"annolist({i + 1}).image.name in {path} is missing")
        for rect in _items(_field(annotation, "annorect")):
            objpos = _field(rect, "objpos")
            scale = _number(_field(rect, "scale"))
            if objpos is None or scale is None or not scale > 0:
                continue
            x, y = _number(_field(objpos, "x")), _number(_field(objpos, "y"))
            if x is None or y is None:
                continue
            points = np.zeros((16, 3))
            annopoints = _field(rect, "annopoints")
            if annopoints is None and is_train:
                continue
            if annopoints is not None:
                for point in _items(_field(annopoints, "point")):
                    joint = _number(_field(point, "id"))
                    px, py = _number(_field(point, "x")), _number(_field(point, "y"))
                    if joint is None or px is None or py is None or not 0 <= joint < 16:
                        continue
                    points[int(joint)] = (px, py, 1.0)
            if require_all_joints and not (points[:, 2] > 0).all():
                continue
            names.append(image_prefix + name)
            centers.append((x, y))
            scales.append(scale)
            joints.append(points)
    arrays = _rows_to_arrays(
        names, centers, scales, joints, box_scale_factor=box_scale_factor, one_based=one_based
    )
    return finish(
        arrays,
        output_path=output_path,
        image_dir=image_dir,
        check_images=check_images,
        listed_in=str(path),
    )
