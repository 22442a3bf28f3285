"""COCO person-keypoint annotations -> the ProHMR npz format (read with pycocotools).

Each non-crowd person annotation with enough labelled keypoints becomes one row:

- ``imgname`` = ``image_prefix`` + the image's ``file_name``;
- box from the annotation's ``bbox`` [x, y, w, h]: ``center`` = (x + w/2, y + h/2),
  ``scale`` = ``rescale`` x max(w, h) pixels (1.2 as SPIN's COCO preprocessing);
- the 17 keypoints go to their OpenPose slots of the 44 layout
  (``pose_geometry.COCO17_TO_44``) in ``body_keypoints_2d``; confidence 1 where the COCO
  visibility flag is > 0 (labelled, visible or not), else 0 with zero coordinates;
- no 3D keypoints and no SMPL parameters (zeros / has flags 0 when read).

Extra columns ``image_id`` and ``annotation_id`` are kept (the readers ignore them).

Checks beyond pycocotools': the person category's ``keypoints`` names, when the file lists
them, must be the 17 COCO names in COCO order (``pose_geometry.COCO17_NAMES``), otherwise the
keypoints would be read under the wrong labels (ValueError naming the file and the first
mismatch); person annotations whose ``image_id`` is not among the file's ``images`` cannot be
placed and are skipped with a warning that gives their count and first ids.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pose_data._convert import finish, string_array
from pose_geometry import COCO17_NAMES, COCO17_TO_44

__all__ = ["convert_coco"]


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    missing = [key for key in ("images", "annotations", "categories") if key not in data]
    if missing:
        raise ValueError(f"COCO file {path} lacks key(s) {missing}")
    return data


def _check_keypoint_names(category: dict[str, Any], path: Path) -> None:
    names = category.get("keypoints")
    if names is None:
        return  # nothing to check: the annotations are taken to be COCO-17
    if not isinstance(names, list) or len(names) != len(COCO17_NAMES):
        count = len(names) if isinstance(names, list) else type(names).__name__
        raise ValueError(
            f"COCO file {path}: category {category.get('id')} ('person') must list the "
            f"{len(COCO17_NAMES)} COCO keypoint names, got {count}"
        )
    for index, (name, expected) in enumerate(zip(names, COCO17_NAMES, strict=True)):
        if name != expected:
            raise ValueError(
                f"COCO file {path}: keypoint {index} of category {category.get('id')} "
                f"('person') is {name!r}, expected {expected!r} (COCO-17 names in COCO order)"
            )


def _warn_orphans(coco: Any, person_ids: list[int], path: Path) -> None:
    wanted = set(person_ids)
    orphans = [
        ann.get("image_id")
        for ann in coco.dataset["annotations"]
        if ann.get("category_id") in wanted and ann.get("image_id") not in coco.imgs
    ]
    if orphans:
        ids = sorted(set(orphans), key=str)
        shown = ", ".join(str(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
        warnings.warn(
            f"COCO file {path}: {len(orphans)} person annotation(s) refer to image id(s) not "
            f"in 'images' and are skipped (ids: {shown})",
            stacklevel=3,
        )


def convert_coco(
    annotation_json: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    image_dir: str | os.PathLike[str] | None = None,
    image_prefix: str = "",
    rescale: float = 1.2,
    min_keypoints: int = 1,
    min_body_keypoints: int = 0,
    include_crowd: bool = False,
    check_images: bool = True,
) -> dict[str, np.ndarray]:
    """Convert a COCO person-keypoints JSON to the ProHMR npz arrays (optionally written).

    Args:
        annotation_json: e.g. ``person_keypoints_train2014.json``.
        output_path: write the npz here (atomically) if given.
        image_dir: folder that ``image_prefix + file_name`` is relative to; used only to check
            that the images exist.
        image_prefix: prepended to every file name (e.g. ``"train2014/"``).
        rescale: box side = rescale x max(bbox width, height).
        min_keypoints: skip people with fewer labelled keypoints (of 17).
        min_body_keypoints: skip people with fewer labelled keypoints among the 12 non-face
            ones (SPIN's COCO preprocessing used 12, i.e. all of them).
        include_crowd: keep ``iscrowd`` annotations (skipped by default).
        check_images: with ``image_dir``, raise FileNotFoundError (count of missing files)
            unless every image exists.

    Returns:
        Arrays in the npz layout: ``imgname`` (n,), ``center`` (n, 2), ``scale`` (n,),
        ``body_keypoints_2d`` (n, 25, 3), ``extra_keypoints_2d`` (n, 19, 3) zeros, plus
        ``image_id`` (n,) and ``annotation_id`` (n,) int64. Rows are ordered by image id, then
        annotation id.

    Raises:
        FileNotFoundError: missing JSON or images. ValueError: malformed JSON or annotation
            (the annotation id is named), or person keypoint names other than COCO-17's in
            COCO order (the first mismatch is named).

    Warns:
        UserWarning: person annotations whose ``image_id`` is not in ``images`` are skipped;
            the warning names the file, their count and the first ids.
    """
    from pycocotools.coco import COCO

    path = Path(annotation_json)
    data = _load_json(path)
    if not rescale > 0:
        raise ValueError(f"`rescale` must be positive, got {rescale!r}")
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            coco.createIndex()
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"malformed COCO file {path}: {type(error).__name__} {error}"
            ) from None
    person_ids = coco.getCatIds(catNms=["person"])
    if not person_ids:
        raise ValueError(f"COCO file {path} has no 'person' category")
    for category in coco.loadCats(person_ids):
        _check_keypoint_names(category, path)
    _warn_orphans(coco, person_ids, path)
    target = np.asarray(COCO17_TO_44)
    names: list[str] = []
    centers, scales, keypoints, image_ids, annotation_ids = [], [], [], [], []
    for image_id in sorted(coco.getImgIds()):
        image = coco.imgs[image_id]
        if "file_name" not in image:
            raise ValueError(f"image {image_id} in {path} lacks 'file_name'")
        annotation_list = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=person_ids))
        for ann in sorted(annotation_list, key=lambda a: a.get("id", 0)):
            if ann.get("iscrowd", 0) and not include_crowd:
                continue
            where = f"annotation {ann.get('id')} (image {image_id}) in {path}"
            if "keypoints" not in ann or "bbox" not in ann:
                raise ValueError(f"{where} lacks 'keypoints' or 'bbox'")
            points = np.asarray(ann["keypoints"], dtype=np.float64)
            if points.shape != (51,):
                raise ValueError(f"{where}: 'keypoints' must have 51 numbers, got {points.shape}")
            points = points.reshape(17, 3)
            labelled = points[:, 2] > 0
            if labelled.sum() < min_keypoints or labelled[5:].sum() < min_body_keypoints:
                continue
            bbox = np.asarray(ann["bbox"], dtype=np.float64)
            if bbox.shape != (4,):
                raise ValueError(f"{where}: 'bbox' must have 4 numbers, got {bbox.shape}")
            x, y, w, h = bbox
            if not (w > 0 and h > 0):
                continue
            body = np.zeros((25, 3), dtype=np.float32)
            body[target[labelled], :2] = points[labelled, :2]
            body[target[labelled], 2] = 1.0
            names.append(image_prefix + str(image["file_name"]))
            centers.append((x + w / 2.0, y + h / 2.0))
            scales.append(rescale * max(w, h))
            keypoints.append(body)
            image_ids.append(image_id)
            annotation_ids.append(ann.get("id", -1))
    n = len(names)
    arrays = {
        "imgname": string_array(names),
        "center": np.asarray(centers, dtype=np.float32).reshape(n, 2),
        "scale": np.asarray(scales, dtype=np.float32).reshape(n),
        "body_keypoints_2d": np.asarray(keypoints, dtype=np.float32).reshape(n, 25, 3),
        "extra_keypoints_2d": np.zeros((n, 19, 3), dtype=np.float32),
        "image_id": np.asarray(image_ids, dtype=np.int64).reshape(n),
        "annotation_id": np.asarray(annotation_ids, dtype=np.int64).reshape(n),
    }
    return finish(
        arrays,
        output_path=output_path,
        image_dir=image_dir,
        check_images=check_images,
        listed_in=str(path),
    )
