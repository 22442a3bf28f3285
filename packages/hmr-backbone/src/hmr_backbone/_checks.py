"""Private input checks (inline: this package depends on torch only, not on pose-geometry).

The wording matches pose-geometry's `check_trailing_shape` so every package reports a wrong
shape the same way: "`images` must have shape (..., 3, H, W), got (8, 224, 224)".
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_input(name: str, x: object, trailing: tuple[int | str, ...]) -> Tensor:
    """Return `x` if it is a floating-point tensor ending with `trailing`; raise otherwise.

    `trailing` holds sizes (int, checked) and letters (str, any size accepted).

    Raises:
        TypeError: if `x` is not a tensor or not floating point.
        ValueError: "`name` must have shape (..., 3, H, W), got (8, 224, 224)".
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    n = len(trailing)
    actual = tuple(x.shape[x.ndim - n :]) if x.ndim >= n else None
    if actual is None or any(
        isinstance(t, int) and a != t for a, t in zip(actual, trailing, strict=True)
    ):
        expected = ", ".join(["...", *map(str, trailing)])
        raise ValueError(f"`{name}` must have shape ({expected}), got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")
    return x
