"""The multiview (batched) pickle of ProHMR: all views of one instant as one item.

Format: docs/data.md#multiview-pickle.

The file is a pickled list; each element is a dict whose values all have a leading view
dimension V: ``imgname`` (V,), ``center`` (V, 2), ``scale`` (V,), optionally ``body_pose``
(V, 72), ``betas`` (V, 10), ``has_body_pose`` (V,), ``has_betas`` (V,), ``body_keypoints_3d``
(V, 25, 4), ``extra_keypoints_3d`` (V, 19, 4). Other keys are ignored.

Pickles come from outside, so they are read with :func:`pose_data.io.restricted_pickle_load`,
which only rebuilds NumPy arrays, dtypes and scalars (and Python containers): a hostile file
cannot run code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pose_data.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentationConfig,
    AugmentationParams,
    crop_and_augment,
    read_image,
    sample_augmentation,
)
from pose_data.image_dataset import _check_seed, _decode_names, _index, check_images_exist
from pose_data.io import restricted_pickle_load

__all__ = ["MultiviewDataset", "read_multiview_pickle"]

_FRAME_SHAPES: dict[str, tuple[int, ...]] = {
    "center": (2,),
    "body_pose": (72,),
    "betas": (10,),
    "has_body_pose": (),
    "has_betas": (),
    "body_keypoints_3d": (25, 4),
    "extra_keypoints_3d": (19, 4),
}
#: Optional per-view 2D keypoints (pixels) that the format may carry; checked when present, not
#: returned (the crops have no 2D annotations).
_OPTIONAL_SHAPES: dict[str, tuple[int, ...]] = {
    "body_keypoints_2d": (25, 3),
    "extra_keypoints_2d": (19, 3),
}


def read_multiview_pickle(
    source: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
) -> list[dict[str, np.ndarray]]:
    """Read and validate a multiview pickle (or the list it holds).

    Returns:
        One dict per frame with float32 arrays: ``imgname`` (V,) str, ``center`` (V, 2),
        ``scale`` (V,) (row max if 2-D), ``body_pose`` (V, 72), ``betas`` (V, 10),
        ``has_body_pose`` (V,), ``has_betas`` (V,), ``keypoints_3d`` (V, 44, 4) (zeros where
        neither 3D key is present).

    Raises:
        ValueError: for a malformed file, a frame lacking a required key (frame and key named)
            or a value of the wrong shape, dtype or non-finite (named, expected and received;
            the optional 2D keypoints ``body_keypoints_2d`` (V, 25, 3) and
            ``extra_keypoints_2d`` (V, 19, 3) are checked too).
    """
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        frames = restricted_pickle_load(source)
    else:
        name = "<frames>"
        frames = source
    if not isinstance(frames, (list, tuple)):
        raise ValueError(f"{name} must hold a list of frames, got {type(frames).__name__}")
    out = []
    for f, frame in enumerate(frames):
        where = f"frame {f} of {name}"
        if not isinstance(frame, Mapping):
            raise ValueError(f"{where} must be a dict, got {type(frame).__name__}")
        missing = [key for key in ("imgname", "center", "scale") if key not in frame]
        if missing:
            raise ValueError(f"{where} lacks required key(s) {missing}")
        imgname = _decode_names("imgname", np.asarray(frame["imgname"]).reshape(-1), where)
        views = len(imgname)
        if views == 0:
            raise ValueError(f"{where} has no views")
        arrays: dict[str, np.ndarray] = {"imgname": imgname}
        scale = np.asarray(frame["scale"])
        if scale.dtype.kind not in "biuf":
            raise ValueError(f"`scale` in {where} must be numeric, got dtype {scale.dtype}")
        scale = scale.astype(np.float32)
        if scale.ndim == 2 and scale.shape[0] == views:
            scale = scale.max(axis=1)
        if scale.shape != (views,) or np.any(~np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError(
                f"`scale` in {where} must be ({views},) positive box sizes, got shape {scale.shape}"
            )
        arrays["scale"] = scale
        for key, trailing in {**_FRAME_SHAPES, **_OPTIONAL_SHAPES}.items():
            if key not in frame:
                if key in _FRAME_SHAPES:
                    arrays[key] = np.zeros((views, *trailing), dtype=np.float32)
                continue
            value = np.asarray(frame[key])
            if value.dtype.kind not in "biuf":
                raise ValueError(f"`{key}` in {where} must be numeric, got dtype {value.dtype}")
            if value.shape != (views, *trailing):
                raise ValueError(
                    f"`{key}` in {where} must have shape {(views, *trailing)}, got {value.shape}"
                )
            value = value.astype(np.float32)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"`{key}` in {where} contains NaN or infinite values")
            if key in _FRAME_SHAPES:
                arrays[key] = value
        arrays["keypoints_3d"] = np.concatenate(
            [arrays.pop("body_keypoints_3d"), arrays.pop("extra_keypoints_3d")], axis=1
        )
        out.append(arrays)
    return out


class MultiviewDataset(torch.utils.data.Dataset):
    """All views of one instant per item, from a multiview pickle (docs/data.md#multiview-pickle).

    Item (V views):

    ==========================  ================  ==============================================
    key                         shape             content
    ==========================  ================  ==============================================
    img                         (V, 3, S, S) f32  normalised RGB crops
    keypoints_2d                (V, 44, 3) f32    zeros (the format has no 2D annotations)
    keypoints_3d                (V, 44, 4) f32    ``body_keypoints_3d`` + ``extra_keypoints_3d``
    box_center                  (V, 2) f32        box centres (pixels)
    box_size                    (V,) f32          crop sides: ``box_scale_factor`` x scale
    img_size                    (V, 2) f32        (width, height) of each image
    smpl_params                 dict              global_orient (V, 3), body_pose (V, 69),
                                                  betas (V, 10)
    has_smpl_params             dict              same keys, (V,) f32 0/1
    smpl_params_is_axis_angle   dict              global_orient True, body_pose True, betas False
    idx                         int               frame index
    ==========================  ================  ==============================================

    Deliberate differences from the original: its 3D keypoints are loaded only when
    ``body_keypoints_3d`` exists (so H36M multiview files, which carry only the extra part,
    gave zeros); here each part is used when present and the other is zeros. ``box_center``,
    ``box_size`` and ``img_size`` are added. As in the original there is no 3D-confidence
    zeroing and the crop side is 1.2 x scale (``box_scale_factor``).

    Args:
        pickle_path: the pickle, or the list of frame dicts.
        image_dir: folder the ``imgname`` paths are relative to (None: used as they are).
        train: augment every view independently (the original always used False).
        augmentation, image_size, mean, std, seed, check_images: as for
            :class:`pose_data.ImageDataset`.
        box_scale_factor: crop side = factor x ``scale`` (1.2 in the original).
    """

    def __init__(
        self,
        pickle_path: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
        *,
        image_dir: str | os.PathLike[str] | None,
        train: bool = False,
        augmentation: AugmentationConfig | None = None,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        box_scale_factor: float = 1.2,
        seed: int = 0,
        check_images: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ValueError(f"`image_size` must be a positive integer, got {image_size!r}")
        if not box_scale_factor > 0:
            raise ValueError(f"`box_scale_factor` must be positive, got {box_scale_factor!r}")
        self.frames = read_multiview_pickle(pickle_path)
        self.image_dir = None if image_dir is None else str(image_dir)
        self.train = bool(train)
        self.augmentation = (
            (AugmentationConfig() if augmentation is None else augmentation)
            if self.train
            else AugmentationConfig.none()
        )
        self.image_size = image_size
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.box_scale_factor = float(box_scale_factor)
        self.seed = _check_seed("seed", seed)
        self.epoch = 0
        if check_images:
            check_images_exist(
                (self._path(name) for frame in self.frames for name in frame["imgname"]),
                listed_in=f"the multiview file (image_dir={self.image_dir})",
            )

    def _path(self, name: object) -> str:
        text = str(name)
        return text if self.image_dir is None else os.path.join(self.image_dir, text)

    def __len__(self) -> int:
        return len(self.frames)

    def total_length(self) -> int:
        """Total number of images (views summed over frames)."""
        return sum(len(frame["imgname"]) for frame in self.frames)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch`` (only used when ``train``)."""
        self.epoch = _check_seed("epoch", epoch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = _index(index, len(self))
        return self.get_item(i, rng=np.random.default_rng([self.seed, self.epoch, i]))

    def get_item(self, index: int, *, rng: np.random.Generator | None) -> dict[str, Any]:
        """Frame ``index``; views augmented from ``rng`` when ``train`` (None: no augmentation)."""
        frame = self.frames[_index(index, len(self))]
        views = len(frame["imgname"])
        images, keypoints_3d, orients, poses, sizes = [], [], [], [], []
        zeros_2d = np.zeros((44, 3), dtype=np.float32)
        for v in range(views):
            image = read_image(self._path(frame["imgname"][v]))
            sizes.append((image.shape[1], image.shape[0]))
            augment = rng is not None and not self.augmentation.is_identity
            params = (
                sample_augmentation(self.augmentation, rng) if augment else AugmentationParams()
            )
            example = crop_and_augment(
                image,
                center=frame["center"][v],
                box_size=self.box_scale_factor * float(frame["scale"][v]),
                keypoints_2d=zeros_2d,
                keypoints_3d=frame["keypoints_3d"][v],
                global_orient=frame["body_pose"][v, :3],
                body_pose=frame["body_pose"][v, 3:],
                params=params,
                output_size=self.image_size,
                mean=self.mean,
                std=self.std,
            )
            images.append(example.image)
            keypoints_3d.append(example.keypoints_3d)
            orients.append(example.global_orient)
            poses.append(example.body_pose)
        has_pose = frame["has_body_pose"].astype(np.float32)
        return {
            "img": np.stack(images),
            "keypoints_2d": np.zeros((views, 44, 3), dtype=np.float32),
            "keypoints_3d": np.stack(keypoints_3d),
            "box_center": frame["center"].copy(),
            "box_size": (self.box_scale_factor * frame["scale"]).astype(np.float32),
            "img_size": np.asarray(sizes, dtype=np.float32),
            "smpl_params": {
                "global_orient": np.stack(orients),
                "body_pose": np.stack(poses),
                "betas": frame["betas"].copy(),
            },
            "has_smpl_params": {
                "global_orient": has_pose,
                "body_pose": has_pose.copy(),
                "betas": frame["has_betas"].astype(np.float32),
            },
            "smpl_params_is_axis_angle": {
                "global_orient": True,
                "body_pose": True,
                "betas": False,
            },
            "idx": int(index),
        }
