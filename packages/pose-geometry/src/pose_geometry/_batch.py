"""Private helpers: flatten any leading batch dimensions once, restore them on the way out."""

from __future__ import annotations

from torch import Tensor


def flatten_leading(x: Tensor, num_trailing: int) -> tuple[Tensor, tuple[int, ...]]:
    """Reshape (..., *T) to (M, *T) and return it with the leading shape `...`."""
    leading = tuple(x.shape[: x.ndim - num_trailing])
    return x.reshape(-1, *x.shape[x.ndim - num_trailing :]), leading


def restore_leading(x: Tensor, leading: tuple[int, ...]) -> Tensor:
    """Inverse of `flatten_leading`: reshape (M, *T) back to (*leading, *T)."""
    return x.reshape(*leading, *x.shape[1:])
