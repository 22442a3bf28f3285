"""Helpers shared by the converters (private)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pose_data.image_dataset import check_images_exist
from pose_data.io import PROHMR_NPZ_SHAPES, write_prohmr_npz

#: Keys a converter's result may hold beyond the npz format's own.
_KNOWN = set(PROHMR_NPZ_SHAPES)


def empty_keypoints(n: int, num: int, channels: int) -> np.ndarray:
    return np.zeros((n, num, channels), dtype=np.float32)


def finish(
    arrays: dict[str, np.ndarray],
    *,
    output_path: str | os.PathLike[str] | None,
    image_dir: str | os.PathLike[str] | None,
    check_images: bool,
    listed_in: str,
) -> dict[str, np.ndarray]:
    """Optionally check the images, optionally write the npz; return the arrays."""
    if check_images and image_dir is not None:
        check_images_exist(
            (os.path.join(str(image_dir), str(name)) for name in arrays["imgname"]),
            listed_in=f"{listed_in} (image_dir={image_dir})",
        )
    if output_path is not None:
        write_arrays(output_path, arrays)
    return arrays


def write_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write converter arrays with :func:`write_prohmr_npz` (unknown keys go to ``extra``)."""
    known = {key: value for key, value in arrays.items() if key in _KNOWN}
    extra = {key: value for key, value in arrays.items() if key not in _KNOWN}
    return write_prohmr_npz(path, **known, extra=extra or None)


def string_array(names: Sequence[str]) -> np.ndarray:
    return np.asarray(list(names), dtype=str) if len(names) else np.zeros(0, dtype="<U1")
