"""The ProHMR/SPIN image dataset npz format: validated reader and the PyTorch dataset.

File format (docs/data.md#the-image-npz): one row per person instance; ``imgname``, ``center``,
``scale`` are required, every other key defaults to zeros as in the original. ``scale`` is the **box
side in pixels** (SPIN files store pixels / 200: convert them with
:func:`pose_data.spin_npz_to_prohmr`). A 2-D ``scale`` (n, k) is reduced to its row maximum.

Randomness and resuming: item ``i`` of an :class:`ImageDataset` is a pure function of
``(seed, epoch, i)``: its augmentation is drawn from ``numpy.random.default_rng([seed, epoch,
i])``, never from a global generator, so DataLoader workers and processes agree and a run is
reproducible. ``set_epoch`` changes the draw (with non-persistent DataLoader workers the dataset
is sent to the workers at every epoch, so call it before creating the epoch's iterator). For an
exactly resumable training stream use :class:`pose_data.MixedDataset` (one dataset with weight
1 works) with :class:`pose_data.MixedSampler`: there the augmentation is keyed by the position
in the stream instead.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pose_data.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentationConfig,
    AugmentationParams,
    crop_and_augment,
    crop_box,
    decode_reduction,
    image_size_from_header,
    read_image,
    sample_augmentation,
)
from pose_data.io import read_npz

__all__ = [
    "ImageAnnotations",
    "ImageDataset",
    "check_images_exist",
    "read_prohmr_npz",
]

#: OpenPose body keypoints whose 3D confidence ImageDataset zeroes (docs/conventions.md#keypoints).
_ZEROED_BODY_3D = tuple(range(1, 15))

_NUMERIC_KEYS: dict[str, tuple[int, ...]] = {
    "center": (2,),
    "body_pose": (72,),
    "has_body_pose": (),
    "betas": (10,),
    "has_betas": (),
    "body_keypoints_2d": (25, 3),
    "extra_keypoints_2d": (19, 3),
    "body_keypoints_3d": (25, 4),
    "extra_keypoints_3d": (19, 4),
}
_REQUIRED = ("imgname", "center", "scale")


@dataclass(frozen=True)
class ImageAnnotations:
    """Validated arrays of an image dataset npz, missing keys filled with zeros (float32).

    Attributes:
        imgname: (n,) str image paths relative to the image folder.
        center: (n, 2) box centres (x_px, y_px).
        scale: (n,) box sides in pixels (row maximum of a 2-D ``scale``).
        body_pose: (n, 72) SMPL axis-angle (global orientation first). has_body_pose: (n,).
        betas: (n, 10) SMPL shape. has_betas: (n,).
        keypoints_2d: (n, 44, 3) BODY_25 then the 19 extra keypoints (x_px, y_px, confidence).
        keypoints_3d: (n, 44, 4) (x, y, z metres, confidence).
        gender: (n,) str or None.
        source: where the arrays came from (for messages).
    """

    imgname: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    body_pose: np.ndarray
    has_body_pose: np.ndarray
    betas: np.ndarray
    has_betas: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    gender: np.ndarray | None = None
    source: str = field(default="<arrays>", compare=False)

    def __len__(self) -> int:
        return len(self.imgname)

    @property
    def body_keypoints_2d(self) -> np.ndarray:
        """(n, 25, 3) view of the OpenPose part of ``keypoints_2d``."""
        return self.keypoints_2d[:, :25]

    @property
    def extra_keypoints_2d(self) -> np.ndarray:
        """(n, 19, 3) view of the extra part of ``keypoints_2d``."""
        return self.keypoints_2d[:, 25:]

    @property
    def body_keypoints_3d(self) -> np.ndarray:
        """(n, 25, 4) view of the OpenPose part of ``keypoints_3d``."""
        return self.keypoints_3d[:, :25]

    @property
    def extra_keypoints_3d(self) -> np.ndarray:
        """(n, 19, 4) view of the extra part of ``keypoints_3d``."""
        return self.keypoints_3d[:, 25:]

    def to_npz_arrays(self) -> dict[str, np.ndarray]:
        """The arrays under their npz keys (for :func:`pose_data.write_prohmr_npz`)."""
        arrays = {
            "imgname": self.imgname,
            "center": self.center,
            "scale": self.scale,
            "body_pose": self.body_pose,
            "has_body_pose": self.has_body_pose,
            "betas": self.betas,
            "has_betas": self.has_betas,
            "body_keypoints_2d": self.body_keypoints_2d,
            "extra_keypoints_2d": self.extra_keypoints_2d,
            "body_keypoints_3d": self.body_keypoints_3d,
            "extra_keypoints_3d": self.extra_keypoints_3d,
        }
        if self.gender is not None:
            arrays["gender"] = self.gender
        return arrays


def _decode_names(key: str, value: np.ndarray, source: str) -> np.ndarray:
    if value.ndim != 1:
        raise ValueError(f"`{key}` in {source} must have shape (n,), got {value.shape}")
    if value.dtype.kind == "U":
        return value
    if value.dtype.kind in "SO":
        names = []
        for i, item in enumerate(value.tolist()):
            if isinstance(item, bytes):
                try:
                    item = item.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"`{key}`[{i}] in {source} is not valid UTF-8") from None
            if not isinstance(item, str):
                raise ValueError(
                    f"`{key}` in {source} must hold strings, got {type(item).__name__} at {i}"
                )
            names.append(item)
        return np.asarray(names, dtype=str) if names else np.zeros(0, dtype="<U1")
    raise ValueError(f"`{key}` in {source} must hold strings (str or bytes), got {value.dtype}")


def _numeric(key: str, value: np.ndarray, source: str) -> np.ndarray:
    if value.dtype.kind not in "biuf":
        raise ValueError(f"`{key}` in {source} must be numeric, got dtype {value.dtype}")
    array = value.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{key}` in {source} contains NaN or infinite values")
    return array


def _check_shape(key: str, array: np.ndarray, expected: tuple[int, ...], source: str) -> None:
    if array.shape != expected:
        raise ValueError(f"`{key}` in {source} must have shape {expected}, got {array.shape}")


def _load_source(source: object) -> tuple[dict[str, np.ndarray], str]:
    if isinstance(source, Mapping):
        return {str(k): np.asarray(v) for k, v in source.items()}, "<arrays>"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"`npz_path` must be a path or a mapping of arrays, got {type(source).__name__}"
        )
    path = Path(source)
    arrays = read_npz(path)
    return arrays, str(path)


def read_prohmr_npz(source: str | os.PathLike[str] | Mapping[str, Any]) -> ImageAnnotations:
    """Read and validate an image dataset in the ProHMR npz format (docs/data.md#the-image-npz).

    Args:
        source: the ``.npz`` path, or a mapping of the same arrays.

    Returns:
        :class:`ImageAnnotations` with every optional key filled (zeros where missing).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if it cannot be read, a required key is missing (named), a value has the
            wrong shape or dtype (named, expected and received), or a value is not finite, or
            a box size is not positive.
    """
    arrays, name = _load_source(source)
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        hint = ""
        if "part" in arrays or "S" in arrays:
            hint = " (it looks like a SPIN-layout file: convert it with spin_npz_to_prohmr)"
        raise ValueError(f"{name} lacks required key(s) {missing}{hint}")
    imgname = _decode_names("imgname", arrays["imgname"], name)
    n = len(imgname)

    scale = _numeric("scale", arrays["scale"], name)
    if scale.ndim == 2 and scale.shape[0] == n and scale.shape[1] >= 1:
        scale = scale.max(axis=1)
    _check_shape("scale", scale, (n,), name)
    if np.any(scale <= 0):
        raise ValueError(f"`scale` in {name} must be positive (box side in pixels)")
    if n and float(np.median(scale)) < 10.0:
        warnings.warn(
            f"box sizes in {name} are below 10 pixels (median {float(np.median(scale)):.3g}): "
            "ProHMR stores the box side in pixels; SPIN files store pixels / 200 "
            "(convert with spin_npz_to_prohmr)",
            stacklevel=2,
        )

    values: dict[str, np.ndarray] = {}
    for key, trailing in _NUMERIC_KEYS.items():
        if key in arrays:
            array = _numeric(key, arrays[key], name)
            _check_shape(key, array, (n, *trailing), name)
        else:
            array = np.zeros((n, *trailing), dtype=np.float32)
        values[key] = array
    gender = None
    if "gender" in arrays:
        gender = _decode_names("gender", arrays["gender"], name)
        _check_shape("gender", gender, (n,), name)
    return ImageAnnotations(
        imgname=imgname,
        center=values["center"],
        scale=scale,
        body_pose=values["body_pose"],
        has_body_pose=values["has_body_pose"],
        betas=values["betas"],
        has_betas=values["has_betas"],
        keypoints_2d=np.concatenate(
            [values["body_keypoints_2d"], values["extra_keypoints_2d"]], axis=1
        ),
        keypoints_3d=np.concatenate(
            [values["body_keypoints_3d"], values["extra_keypoints_3d"]], axis=1
        ),
        gender=gender,
        source=name,
    )


def check_images_exist(paths: Iterable[str], *, listed_in: str = "the dataset") -> None:
    """Raise FileNotFoundError naming the count of missing files and the first few.

    Args:
        paths: image paths (duplicates are checked once).
        listed_in: where the paths come from, for the message.
    """
    unique = list(dict.fromkeys(paths))
    missing = [path for path in unique if not os.path.isfile(path)]
    if missing:
        shown = ", ".join(missing[:3])
        raise FileNotFoundError(
            f"{len(missing)} of {len(unique)} images listed in {listed_in} are missing "
            f"(first: {shown})"
        )


def _index(index: object, length: int) -> int:
    try:
        i = operator.index(index)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"index must be an integer, got {type(index).__name__}") from None
    if not 0 <= i < length:
        raise IndexError(f"index {i} out of range for a dataset of {length} examples")
    return i


def _check_seed(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return int(value)


class ImageDataset(torch.utils.data.Dataset):
    """Crops of people from an image dataset in the ProHMR npz format (docs/data.md#items).

    Each item is a dict (the default ``collate_fn`` batches it):

    ==========================  =============  =================================================
    key                         shape          content
    ==========================  =============  =================================================
    img                         (3, S, S) f32  normalised RGB crop
    keypoints_2d                (44, 3) f32    crop-normalised (x, y) in [-0.5, 0.5] + conf
    keypoints_3d                (44, 4) f32    3D keypoints (flipped/rotated if augmented) + conf
    orig_keypoints_2d           (44, 3) f32    original-image pixel keypoints, untouched
    box_center                  (2,) f32       original box centre (pixels)
    box_size                    () f32         original box side (pixels)
    img_size                    (2,) f32       (width, height) of the original image
    smpl_params                 dict           global_orient (3,), body_pose (69,), betas (10,)
    has_smpl_params             dict           same keys, f32 0/1 scalars
    smpl_params_is_axis_angle   dict           global_orient True, body_pose True, betas False
    imgname                     str            full image path
    idx                         int            row index
    ==========================  =============  =================================================

    The 3D confidences of the OpenPose body keypoints 1..14 are zeroed, as in the original
    (docs/original-quirks.md#zeroed-3d-confidences;
    ``zero_body_keypoints_3d_confidence=False`` keeps them).

    Args:
        npz_path: the ``.npz`` file, a mapping of its arrays, or :class:`ImageAnnotations`.
        image_dir: folder the ``imgname`` paths are relative to (None: used as they are).
        train: apply ``augmentation`` (False: every example is the plain crop).
        augmentation: the training augmentation (default: ``AugmentationConfig()``, ProHMR's);
            ignored when ``train`` is False.
        image_size: crop side S in pixels (224 in ProHMR; any positive size works).
        mean, std: RGB normalisation on the [0, 1] scale (ImageNet by default).
        use_hips, keypoint_list: the dataset's evaluation options (docs/data.md), stored as
            attributes for the evaluation and fitting code; they do not change the items.
        seed: non-negative seed of the per-item generators.
        check_images: check at construction that every image exists (FileNotFoundError with
            the count of missing files).
        zero_body_keypoints_3d_confidence: zero the 3D confidence of body keypoints 1..14.
        max_decode_reduction: 1 (default: always decode the full image, as the original), or
            2, 4, 8: decode JPEGs at 1/f of their size when the source square still spans at
            least ``image_size`` pixels of the reduced image (faster for large photos with
            large boxes; the crop is then an area-filtered rather than a point-sampled
            view, a small deliberate difference from the original).
    """

    def __init__(
        self,
        npz_path: str | os.PathLike[str] | Mapping[str, Any] | ImageAnnotations,
        *,
        image_dir: str | os.PathLike[str] | None,
        train: bool,
        augmentation: AugmentationConfig | None = None,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        use_hips: bool | None = None,
        keypoint_list: Sequence[int] | None = None,
        seed: int = 0,
        check_images: bool = True,
        zero_body_keypoints_3d_confidence: bool = True,
        max_decode_reduction: int = 1,
    ) -> None:
        super().__init__()
        if max_decode_reduction not in (1, 2, 4, 8):
            raise ValueError(
                f"`max_decode_reduction` must be 1, 2, 4 or 8, got {max_decode_reduction!r}"
            )
        if not isinstance(train, bool):
            raise TypeError(f"`train` must be a bool, got {type(train).__name__}")
        if augmentation is not None and not isinstance(augmentation, AugmentationConfig):
            raise TypeError(
                f"`augmentation` must be an AugmentationConfig or None, "
                f"got {type(augmentation).__name__}"
            )
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"`image_size` must be a positive integer, got {image_size!r}")
        for name, value in (("mean", mean), ("std", std)):
            if np.asarray(value).shape != (3,):
                raise ValueError(f"`{name}` must have 3 values (R, G, B), got {value!r}")
        if keypoint_list is not None:
            keypoint_list = tuple(int(k) for k in keypoint_list)
            if any(not 0 <= k < 44 for k in keypoint_list):
                raise ValueError(
                    f"`keypoint_list` must index the 44 keypoints, got {keypoint_list}"
                )
        if isinstance(npz_path, ImageAnnotations):
            annotations = npz_path
        else:
            annotations = read_prohmr_npz(npz_path)
        if zero_body_keypoints_3d_confidence:
            keypoints_3d = annotations.keypoints_3d.copy()
            keypoints_3d[:, list(_ZEROED_BODY_3D), 3] = 0.0
            annotations = replace(annotations, keypoints_3d=keypoints_3d)
        self.annotations = annotations
        self.image_dir = None if image_dir is None else str(image_dir)
        self.train = train
        self.augmentation = (
            (AugmentationConfig() if augmentation is None else augmentation)
            if train
            else AugmentationConfig.none()
        )
        self.image_size = image_size
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.use_hips = use_hips
        self.keypoint_list = keypoint_list
        self.seed = _check_seed("seed", seed)
        self.epoch = 0
        self.max_decode_reduction = max_decode_reduction
        if check_images:
            check_images_exist(
                (self.image_path(i) for i in range(len(annotations))),
                listed_in=f"{annotations.source} (image_dir={self.image_dir})",
            )

    def __len__(self) -> int:
        return len(self.annotations)

    def image_path(self, index: int) -> str:
        """Full path of the image of row ``index``."""
        name = str(self.annotations.imgname[index])
        return name if self.image_dir is None else os.path.join(self.image_dir, name)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (items are keyed by (seed, epoch, index))."""
        self.epoch = _check_seed("epoch", epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = _index(index, len(self))
        return self.get_item(i, rng=self.rng_for(i))

    def get_item(self, index: int, *, rng: np.random.Generator | None) -> dict[str, Any]:
        """Item ``index`` with its augmentation drawn from ``rng`` (None: no augmentation).

        :class:`pose_data.MixedDataset` calls this with a generator keyed by the stream
        position.
        """
        i = _index(index, len(self))
        ann = self.annotations
        path = self.image_path(i)
        if rng is None or self.augmentation.is_identity:
            params = AugmentationParams()
        else:
            params = sample_augmentation(self.augmentation, rng)
        reduction, size = 1, None
        if self.max_decode_reduction > 1:
            _, side = crop_box(ann.center[i], float(ann.scale[i]), ann.keypoints_2d[i], params)
            reduction = decode_reduction(
                side, self.image_size, max_reduction=self.max_decode_reduction
            )
            size = image_size_from_header(path) if reduction > 1 else None
            reduction = reduction if size is not None else 1
        image = read_image(path, reduction=reduction)
        width, height = size if size is not None else (image.shape[1], image.shape[0])
        pose = ann.body_pose[i]
        example = crop_and_augment(
            image,
            center=ann.center[i],
            box_size=float(ann.scale[i]),
            keypoints_2d=ann.keypoints_2d[i],
            keypoints_3d=ann.keypoints_3d[i],
            global_orient=pose[:3],
            body_pose=pose[3:],
            params=params,
            output_size=self.image_size,
            mean=self.mean,
            std=self.std,
            image_reduction=reduction,
        )
        has_pose = np.float32(ann.has_body_pose[i])
        return {
            "img": example.image,
            "keypoints_2d": example.keypoints_2d,
            "keypoints_3d": example.keypoints_3d,
            "orig_keypoints_2d": ann.keypoints_2d[i].copy(),
            "box_center": ann.center[i].copy(),
            "box_size": np.float32(ann.scale[i]),
            "img_size": np.array([width, height], dtype=np.float32),
            "smpl_params": {
                "global_orient": example.global_orient,
                "body_pose": example.body_pose,
                "betas": ann.betas[i].copy(),
            },
            "has_smpl_params": {
                "global_orient": has_pose,
                "body_pose": has_pose,
                "betas": np.float32(ann.has_betas[i]),
            },
            "smpl_params_is_axis_angle": {
                "global_orient": True,
                "body_pose": True,
                "betas": False,
            },
            "imgname": path,
            "idx": i,
        }
