"""The mocap npz of SMPL parameters read by the discriminator's data loader.

See docs/data.md#mocap-npz.

File: ``body_pose`` (n, 72) SMPL axis-angle (global orientation first, dropped here) and
``betas`` (n, 10). Write one with :func:`pose_data.write_mocap_npz`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from pose_data.image_dataset import _index, _load_source

__all__ = ["MocapDataset"]


class MocapDataset(torch.utils.data.Dataset):
    """SMPL poses and shapes for the adversarial prior.

    Items: ``{'body_pose': (69,) float32 axis-angle of the 23 body joints, 'betas': (10,)
    float32}``; items are deterministic (shuffle with a sampler, e.g.
    :class:`pose_data.StreamSampler`).

    Args:
        npz_path: the ``.npz`` file or a mapping with the same arrays.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if a key is missing or has the wrong shape or dtype, or values are not
            finite.
    """

    def __init__(self, npz_path: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        super().__init__()
        arrays, name = _load_source(npz_path)
        missing = [key for key in ("body_pose", "betas") if key not in arrays]
        if missing:
            raise ValueError(f"{name} lacks required key(s) {missing}")
        pose, betas = arrays["body_pose"], arrays["betas"]
        for key, value in (("body_pose", pose), ("betas", betas)):
            if value.dtype.kind not in "biuf":
                raise ValueError(f"`{key}` in {name} must be numeric, got dtype {value.dtype}")
        if pose.ndim != 2 or pose.shape[1] != 72:
            raise ValueError(f"`body_pose` in {name} must have shape (n, 72), got {pose.shape}")
        if betas.shape != (pose.shape[0], 10):
            raise ValueError(
                f"`betas` in {name} must have shape ({pose.shape[0]}, 10), got {betas.shape}"
            )
        self.body_pose = np.ascontiguousarray(pose[:, 3:], dtype=np.float32)
        self.betas = np.ascontiguousarray(betas, dtype=np.float32)
        if not (np.all(np.isfinite(self.body_pose)) and np.all(np.isfinite(self.betas))):
            raise ValueError(f"`body_pose` and `betas` in {name} must be finite")

    def __len__(self) -> int:
        return len(self.body_pose)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        i = _index(index, len(self))
        return {"body_pose": self.body_pose[i].copy(), "betas": self.betas[i].copy()}
