"""Private input checks (inline: this package depends on torch only, not on pose-geometry).

The wording matches pose-geometry's `check_trailing_shape` so every package reports a wrong
shape the same way: "`images` must have shape (..., 3, H, W), got (8, 224, 224)".
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_input(
    name: str, x: object, trailing: tuple[int | str, ...], module: nn.Module | None = None
) -> Tensor:
    """Return `x` if it is a floating-point tensor ending with `trailing`; raise otherwise.

    `trailing` holds sizes (int, checked) and letters (str, any size accepted). With `module`,
    `x` must also have the dtype and device of its parameters (the wording matches
    pose-geometry's `check_module_input`).

    Raises:
        TypeError: if `x` is not a tensor, not floating point, or not of `module`'s dtype.
        ValueError: "`name` must have shape (..., 3, H, W), got (8, 224, 224)", or `x` is on
            another device than `module`.
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
    reference = None if module is None else next(module.parameters(), None)
    if reference is not None and x.dtype != reference.dtype:
        raise TypeError(
            f"`{name}` must have the dtype of the module's parameters ({reference.dtype}), "
            f"got {x.dtype}; convert the input or the module with .to(...)"
        )
    if reference is not None and x.device != reference.device:
        raise ValueError(
            f"`{name}` must be on the device of the module's parameters ({reference.device}), "
            f"got {x.device}; move the input or the module with .to(...)"
        )
    return x
