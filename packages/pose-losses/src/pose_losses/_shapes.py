"""Private checks shared by the loss functions (the generic ones come from pose-geometry)."""

from __future__ import annotations

from torch import Tensor

from pose_geometry import check_floating, check_same_device, check_same_dtype, check_tensor

REDUCTIONS = ("sum", "mean")


def check_reduction(reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise ValueError unless `reduction` is one of `allowed`."""
    if reduction not in allowed:
        expected = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {expected}")


def check_samples_shape(
    pred_name: str, pred: Tensor, target_name: str, target: Tensor, num_batch_dims: int
) -> None:
    """Check that `pred` is `target` with a sample axis N inserted after the batch dimensions.

    With the first `num_batch_dims` dimensions of `target` as the batch dimensions (...),
    `target` is (..., *P) and `pred` must be (..., N, *P).

    Raises:
        TypeError: if either is not a floating-point tensor, or their dtypes differ ("`pred`
            must have the dtype of `target` (torch.float32), got torch.float64").
        ValueError: "`pred_keypoints_2d` must have shape (4, N, 44, 2) to match
            `target_keypoints_2d` (4, 44, 2), got (4, 44, 2)", or the devices differ.
    """
    check_floating(pred_name, pred)
    check_floating(target_name, target)
    check_same_dtype(target_name, target, pred_name, pred)
    check_same_device(target_name, target, pred_name, pred)
    lead = tuple(target.shape[:num_batch_dims])
    rest = tuple(target.shape[num_batch_dims:])
    ok = (
        pred.ndim == target.ndim + 1
        and tuple(pred.shape[:num_batch_dims]) == lead
        and tuple(pred.shape[num_batch_dims + 1 :]) == rest
    )
    if not ok:
        expected = ", ".join([*map(str, lead), "N", *map(str, rest)])
        raise ValueError(
            f"`{pred_name}` must have shape ({expected}) to match `{target_name}` "
            f"{tuple(target.shape)}, got {tuple(pred.shape)}"
        )


def check_weights_shape(
    name: str, weights: Tensor, expected: tuple[int, ...], like: tuple[str, Tensor] | None = None
) -> None:
    """Raise ValueError unless `weights` (confidences, masks) has exactly the shape `expected`.

    With `like` (name, tensor), `weights` must also be on that tensor's device.
    """
    check_tensor(name, weights)
    if tuple(weights.shape) != expected:
        raise ValueError(f"`{name}` must have shape {expected}, got {tuple(weights.shape)}")
    if like is not None:
        check_same_device(like[0], like[1], name, weights)
