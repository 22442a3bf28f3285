"""Orthonormality penalty on raw 6D rotation outputs (docs/training.md#orthonormality).

The flow predicts unconstrained 6D vectors; Gram–Schmidt turns them into rotations, and this term
keeps the raw vectors close to orthonormal. For each 6-tuple in ProHMR's layout (the first two
columns of R, a1 = v[0:3], a2 = v[3:6]) with A = [a1 a2] (3 x 2):

    E = AᵀA - I₂,   values = the 4 entries of E² (elementwise),

i.e. (a1·a1 - 1)², (a1·a2)² twice and (a2·a2 - 1)². ProHMR takes the MEAN over all entries
(a per-sample mean here, then `split_mode_expectation`); all its other terms are sums.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from pose_geometry import check_floating, check_trailing_shape
from pose_losses._shapes import check_reduction

__all__ = ["rot6d_orthonormality_loss"]


def rot6d_orthonormality_loss(
    rot6d: Tensor, *, reduction: Literal["sum", "mean"] = "mean"
) -> Tensor:
    """Squared deviation of each 6D rotation's two columns from an orthonormal pair.

    Args:
        rot6d: (..., J, 6) raw 6D outputs, first two columns of R (ProHMR: reshape the
            (B, N, 144) `pred_pose_6d` to (B, N, 24, 6)).
        reduction: "mean" over the J·4 entries of E² (ProHMR) or "sum" over them.

    Returns:
        (...) loss per leading position (per batch element and sample for (B, N, J, 6)).

    Raises:
        ValueError: if `rot6d` does not end with (J, 6), or `reduction` is unknown.
        TypeError: if it is not a floating-point tensor.
    """
    check_reduction(reduction)
    check_trailing_shape("rot6d", rot6d, None, 6)
    check_floating("rot6d", rot6d)
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    e11 = (a1 * a1).sum(-1) - 1
    e12 = (a1 * a2).sum(-1)
    e22 = (a2 * a2).sum(-1) - 1
    per_rotation = e11**2 + 2 * e12**2 + e22**2  # sum of the 4 entries of E², (..., J)
    total = per_rotation.sum(-1)
    if reduction == "mean":
        total = total / (4 * rot6d.shape[-2])
    return total
