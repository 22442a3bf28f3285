"""Input checks shared by every package: shapes, dtypes and broadcastable batch dimensions.

Every public function of the project validates its tensors at the boundary with these helpers,
so that a wrong shape fails with a message naming the argument, the expected shape and the shape
that arrived, e.g. "`rotmat` must have shape (..., 3, 3), got (8, 3)".
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_floating",
    "check_same_leading_shape",
    "check_tensor",
    "check_trailing_shape",
]


def check_tensor(name: str, x: object) -> Tensor:
    """Raise TypeError unless `x` is a torch.Tensor; return it unchanged."""
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_trailing_shape(name: str, x: Tensor, *trailing: int | None) -> None:
    """Raise ValueError unless `x` ends with the dimensions `trailing`.

    A `None` in `trailing` accepts any size in that position, e.g.
    ``check_trailing_shape("points", x, None, 3)`` accepts (..., N, 3).

    Raises:
        TypeError: if `x` is not a tensor.
        ValueError: "`name` must have shape (..., 3, 3), got (8, 3)".
    """
    check_tensor(name, x)
    n = len(trailing)
    actual = tuple(x.shape[x.ndim - n :]) if x.ndim >= n else None
    mismatch = actual is None or any(
        t is not None and a != t for a, t in zip(actual, trailing, strict=True)
    )
    if mismatch:
        expected = ", ".join(["...", *("N" if t is None else str(t) for t in trailing)])
        raise ValueError(f"`{name}` must have shape ({expected}), got {tuple(x.shape)}")


def check_floating(name: str, x: Tensor) -> None:
    """Raise TypeError unless `x` is a floating-point tensor (float16/bfloat16/32/64)."""
    check_tensor(name, x)
    if not torch.is_floating_point(x):
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")


def check_same_leading_shape(
    name_a: str, a: Tensor, num_trailing_a: int, name_b: str, b: Tensor, num_trailing_b: int
) -> None:
    """Raise ValueError unless the batch dimensions of `a` and `b` are equal.

    The batch (leading) dimensions are everything but the last `num_trailing_*` dimensions.
    """
    lead_a = tuple(a.shape[: a.ndim - num_trailing_a])
    lead_b = tuple(b.shape[: b.ndim - num_trailing_b])
    if lead_a != lead_b:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch dimensions, got "
            f"{tuple(a.shape)} and {tuple(b.shape)} (batch {lead_a} vs {lead_b})"
        )
