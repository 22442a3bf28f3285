"""Squared-error loss on SMPL parameters with per-image annotation masks.

See docs/training.md#smpl-parameter-loss.

ProHMR compares global orientation and body pose as rotation matrices (convert ground-truth
axis-angle with `pose_geometry.axis_angle_to_rotmat`) and betas directly:

    L[..., n] = has[...] · Σ_p (θ̂[..., n, p] - θ[..., p])²

summed over all parameter entries p (9 per joint for rotation matrices). Reduce the (..., N)
result with `split_mode_expectation`.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor

from pose_geometry import check_tensor
from pose_losses._shapes import check_reduction, check_samples_shape, check_weights_shape

__all__ = ["smpl_parameter_loss"]


def smpl_parameter_loss(
    pred: Tensor,
    target: Tensor,
    has_target: Tensor,
    *,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """Masked squared error between predicted and target parameters, per sample.

    The batch dimensions (...) are those of `has_target`; the parameter dimensions (*P) are the
    rest of `target`, e.g. (23, 3, 3) for body-pose rotation matrices or (10,) for betas.

    Args:
        pred: (..., N, *P) predicted parameters for N samples per image.
        target: (..., *P) ground-truth parameters (any value where `has_target` is 0).
        has_target: (...) annotation flag per image, bool or float (1 = annotated; 0 zeroes
            the image's loss, as ProHMR's `has_smpl_params`).
        reduction: "sum" over the parameter entries (ProHMR) or "mean" over them.

    Returns:
        (..., N) loss per batch element and sample.

    Raises:
        ValueError: if the shapes do not match, or `reduction` is unknown.
        TypeError: if `pred` or `target` is not a floating-point tensor.
    """
    check_reduction(reduction)
    check_tensor("has_target", has_target)
    num_batch_dims = has_target.ndim
    check_samples_shape("pred", pred, "target", target, num_batch_dims)
    check_weights_shape("has_target", has_target, tuple(target.shape[:num_batch_dims]))
    param_shape = target.shape[num_batch_dims:]
    mask = has_target.to(target.dtype).reshape(*has_target.shape, *([1] * len(param_shape)))
    # Unannotated targets are replaced by 0 first, so that garbage (even NaN) there can reach
    # neither the loss nor its gradient; annotated ones are weighted by the flag, as in ProHMR.
    target = target.where(mask != 0, target.new_zeros(()))
    squared = (pred - target.unsqueeze(num_batch_dims)) ** 2 * mask.unsqueeze(num_batch_dims)
    dims = tuple(range(num_batch_dims + 1, squared.ndim))
    per_sample = squared.sum(dim=dims) if dims else squared
    if reduction == "mean":
        per_sample = per_sample / math.prod(param_shape)
    return per_sample
