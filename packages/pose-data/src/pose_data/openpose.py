"""OpenPose JSON keypoints: reader, boxes, conversion to the npz format and the demo dataset.

OpenPose writes one JSON per image (``<image stem>_keypoints.json``) with a ``people`` list.
Key variants handled by :func:`read_openpose_json`:

- v1.1 and later (v1.2 in SPIN's demo, v1.3 in ProHMR's): ``pose_keypoints_2d``; v1.3 adds
  ``person_id``;
- v1.0: ``pose_keypoints``;
- pre-1.0 files: ``body_parts`` in ``people``, or ``bodies`` with ``joints``.

The body may be BODY_25 (75 numbers) or COCO-18 (54 numbers, placed at the BODY_25 slots of the
same joints; MidHip and the feet stay zero). Undetected joints are zeros (confidence 0). A file
with no people is a valid, empty result.

Boxes (docs/data.md#openpose-files): centre of the min/max box of the valid keypoints, side = 1.2 x
its larger extent. The original demo calls a keypoint valid when **y > 0**; here the default is
**confidence > 0**, which is what "detected" means in OpenPose's output (undetected joints are
written as (0, 0, 0), so the two agree on real files except for a detection exactly on the top image
row). ``valid_by="y_positive"`` restores the original rule. People with fewer than two valid
keypoints have no box and are skipped (the original crashed on images without people).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pose_data._convert import finish, string_array
from pose_data.augment import IMAGENET_MEAN, IMAGENET_STD
from pose_data.image_dataset import ImageDataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "OpenPoseDataset",
    "OpenPoseFrame",
    "openpose_boxes",
    "openpose_to_npz",
    "read_openpose_json",
]

#: File extensions (lower case) listed as images by :func:`openpose_to_npz`.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

#: BODY_25 slot of each COCO-18 OpenPose keypoint (the original's 3DPW preprocessing map).
_COCO18_TO_BODY25 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
_PERSON_KEYS = ("pose_keypoints_2d", "pose_keypoints", "body_parts", "joints")


@dataclass(frozen=True)
class OpenPoseFrame:
    """The people of one OpenPose JSON file.

    Attributes:
        keypoints: (P, 25, 3) float32 BODY_25 (x_px, y_px, confidence); P may be 0.
        person_ids: P ids (v1.3 ``person_id``; -1 when absent).
        version: the file's ``version`` (None if absent).
        source: the file path.
    """

    keypoints: np.ndarray
    person_ids: tuple[int, ...]
    version: float | None
    source: str

    def __len__(self) -> int:
        return len(self.keypoints)


def _body25(values: Any, where: str) -> np.ndarray:
    try:
        flat = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: keypoints must be numbers") from None
    if not np.all(np.isfinite(flat)):
        raise ValueError(
            f"{where}: keypoints must be finite, got {int(np.sum(~np.isfinite(flat)))} NaN or "
            "infinite value(s)"
        )
    if flat.size == 0:
        return np.zeros((25, 3), dtype=np.float32)
    if flat.size == 75:
        return flat.reshape(25, 3).astype(np.float32)
    if flat.size == 54:
        out = np.zeros((25, 3), dtype=np.float32)
        out[list(_COCO18_TO_BODY25)] = flat.reshape(18, 3)
        return out
    raise ValueError(
        f"{where}: expected 75 numbers (BODY_25) or 54 (COCO-18) as (x, y, confidence) "
        f"triples, got {flat.size}"
    )


def read_openpose_json(path: str | os.PathLike[str]) -> OpenPoseFrame:
    """Read the body keypoints of every person in an OpenPose JSON file (v1.0–v1.3 keys).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it is not JSON, has no ``people`` (or ``bodies``) list, or a person's
            keypoints are missing, of the wrong length or not finite (person index named).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"OpenPose JSON not found: {file}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(data).__name__}")
    people = data.get("people", data.get("bodies"))
    if people is None:
        raise ValueError(f"OpenPose file {file} has no 'people' list")
    if not isinstance(people, list):
        raise ValueError(f"'people' in {file} must be a list, got {type(people).__name__}")
    keypoints, ids = [], []
    for p, person in enumerate(people):
        where = f"person {p} of {file}"
        if not isinstance(person, dict):
            raise ValueError(f"{where} must be an object, got {type(person).__name__}")
        key = next((k for k in _PERSON_KEYS if k in person), None)
        if key is None:
            raise ValueError(f"{where} has none of the keypoint keys {list(_PERSON_KEYS)}")
        keypoints.append(_body25(person[key], where))
        raw_id = person.get("person_id", -1)
        if isinstance(raw_id, list):
            raw_id = raw_id[0] if raw_id else -1
        try:
            ids.append(int(raw_id))
        except (TypeError, ValueError):
            ids.append(-1)
    version = data.get("version")
    try:
        version = None if version is None else float(version)
    except (TypeError, ValueError):
        version = None
    array = (
        np.stack(keypoints).astype(np.float32)
        if keypoints
        else np.zeros((0, 25, 3), dtype=np.float32)
    )
    return OpenPoseFrame(keypoints=array, person_ids=tuple(ids), version=version, source=str(file))


def openpose_boxes(
    keypoints: np.ndarray, *, rescale: float = 1.2, valid_by: str = "confidence"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of people from their keypoints (docs/data.md#openpose-files).

    Args:
        keypoints: (P, K, 3) (x_px, y_px, confidence).
        rescale: box side = rescale x max(width, height) of the valid keypoints' extent.
        valid_by: ``"confidence"`` (confidence > 0) or ``"y_positive"`` (y > 0, the original).

    Returns:
        centres (P, 2), sides (P,) float32 and ``has_box`` (P,) bool: False where fewer than two
        keypoints are valid or the extent is zero (centre and side are then 0).
    """
    array = np.asarray(keypoints, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"`keypoints` must have shape (P, K, 3), got {array.shape}")
    if valid_by not in ("confidence", "y_positive"):
        raise ValueError(f"`valid_by` must be 'confidence' or 'y_positive', got {valid_by!r}")
    channel = 2 if valid_by == "confidence" else 1
    num = len(array)
    centers = np.zeros((num, 2), dtype=np.float32)
    sizes = np.zeros(num, dtype=np.float32)
    has_box = np.zeros(num, dtype=bool)
    for p in range(num):
        valid = array[p, :, channel] > 0
        if valid.sum() < 2:
            continue
        points = array[p, valid, :2]
        low, high = points.min(axis=0), points.max(axis=0)
        side = rescale * float((high - low).max())
        if side <= 0:
            continue
        centers[p] = (low + high) / 2.0
        sizes[p] = side
        has_box[p] = True
    return centers, sizes, has_box


def _list_images(image_dir: Path) -> list[Path]:
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    return sorted(
        p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def openpose_to_npz(
    image_dir: str | os.PathLike[str],
    keypoint_dir: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None = None,
    *,
    rescale: float = 1.2,
    max_people_per_image: int | None = None,
    valid_by: str = "confidence",
    keypoint_suffix: str = "_keypoints.json",
) -> dict[str, np.ndarray]:
    """One npz row per detected person of every image in a folder (the demo's input).

    For each image ``name.ext`` of ``image_dir`` (sorted; extensions :data:`IMAGE_EXTENSIONS`)
    reads ``keypoint_dir/name_keypoints.json``; keeps the first ``max_people_per_image`` people
    (all if None; the ProHMR demo uses 1) that have a box (:func:`openpose_boxes`).

    Returns:
        npz-layout arrays: ``imgname`` (file names relative to ``image_dir``), ``center``,
        ``scale``, ``body_keypoints_2d`` (n, 25, 3), ``extra_keypoints_2d`` zeros, plus
        ``person_index`` (n,) int64, the person's position in its JSON file.

    Raises:
        FileNotFoundError: missing folder, or images without a keypoint file (count and first
            path named).
        ValueError: malformed JSON (file named).
    """
    if max_people_per_image is not None and max_people_per_image < 1:
        raise ValueError(f"`max_people_per_image` must be >= 1 or None, got {max_people_per_image}")
    images = _list_images(Path(image_dir))
    keypoint_folder = Path(keypoint_dir)
    json_paths = [keypoint_folder / f"{image.stem}{keypoint_suffix}" for image in images]
    missing = [str(path) for path in json_paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(images)} images in {image_dir} have no keypoint file in "
            f"{keypoint_dir} (first: {missing[0]})"
        )
    names: list[str] = []
    centers, sizes, keypoints, person_index = [], [], [], []
    for image, json_path in zip(images, json_paths, strict=True):
        frame = read_openpose_json(json_path)
        box_centers, box_sizes, has_box = openpose_boxes(
            frame.keypoints, rescale=rescale, valid_by=valid_by
        )
        kept = 0
        for p in range(len(frame)):
            if max_people_per_image is not None and kept >= max_people_per_image:
                break
            if not has_box[p]:
                continue
            names.append(image.name)
            centers.append(box_centers[p])
            sizes.append(box_sizes[p])
            keypoints.append(frame.keypoints[p])
            person_index.append(p)
            kept += 1
    n = len(names)
    arrays = {
        "imgname": string_array(names),
        "center": np.asarray(centers, dtype=np.float32).reshape(n, 2),
        "scale": np.asarray(sizes, dtype=np.float32).reshape(n),
        "body_keypoints_2d": np.asarray(keypoints, dtype=np.float32).reshape(n, 25, 3),
        "extra_keypoints_2d": np.zeros((n, 19, 3), dtype=np.float32),
        "person_index": np.asarray(person_index, dtype=np.int64).reshape(n),
    }
    return finish(arrays, output_path=output_path, image_dir=None, check_images=False, listed_in="")


class OpenPoseDataset(ImageDataset):
    """Crops around the OpenPose detections of every image in a folder (the ProHMR demo).

    Built with :func:`openpose_to_npz`, then an :class:`pose_data.ImageDataset` without
    augmentation; items are those of ImageDataset (3D keypoints and SMPL parameters zero,
    has flags 0). The rows are in ``self.annotations``; ``person_index`` of each row is in
    ``self.person_index``.

    Args:
        image_dir: folder of images. keypoint_dir: folder of ``*_keypoints.json``.
        image_size, mean, std, max_decode_reduction: as for ImageDataset (here a reduction
            of 8 loads a 24-megapixel baseline JPEG about 3x faster, the progressive demo
            photo 1.5x).
        rescale, max_people_per_image, valid_by, keypoint_suffix: as for
            :func:`openpose_to_npz`.
    """

    def __init__(
        self,
        image_dir: str | os.PathLike[str],
        keypoint_dir: str | os.PathLike[str],
        *,
        image_size: int = 224,
        rescale: float = 1.2,
        max_people_per_image: int | None = None,
        valid_by: str = "confidence",
        keypoint_suffix: str = "_keypoints.json",
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        max_decode_reduction: int = 1,
    ) -> None:
        arrays = openpose_to_npz(
            image_dir,
            keypoint_dir,
            rescale=rescale,
            max_people_per_image=max_people_per_image,
            valid_by=valid_by,
            keypoint_suffix=keypoint_suffix,
        )
        self.person_index = arrays.pop("person_index")
        super().__init__(
            arrays,
            image_dir=image_dir,
            train=False,
            image_size=image_size,
            mean=mean,
            std=std,
            check_images=False,
            max_decode_reduction=max_decode_reduction,
        )
