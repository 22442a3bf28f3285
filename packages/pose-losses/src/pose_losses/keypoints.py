"""Confidence-weighted L1 keypoint losses, per sample (docs/training.md#keypoint-losses).

    L2D[..., n] = Σ_k Σ_{c∈{x,y}}   w[..., k] · |p̂[..., n, k, c] - p[..., k, c]|
    L3D[..., n] = Σ_k Σ_{c∈{x,y,z}} w[..., k] · |ĵ'[..., n, k, c] - j'[..., k, c]|

with ĵ' = ĵ - ĵ[pelvis] and j' = j - j[pelvis] (each set made relative to its own pelvis).

Both return one value per batch element and sample; reduce them with
`split_mode_expectation`. ProHMR sums over all 44 keypoints and the coordinates (the default,
`reduction="sum"`); `reduction="mean"` divides by K·C instead.

Missing keypoints: a target keypoint with confidence 0 contributes nothing, even when its
coordinates are NaN or inf (they are replaced by 0 before the difference, so neither the loss nor
its gradient sees them). NaN or inf in a target keypoint with confidence > 0 (or anywhere without
a confidence, or at the pelvis of an item that uses any keypoint) is a ValueError naming the
argument; predictions are not checked (a non-finite prediction gives a non-finite loss, which
the training loop reports). Confidences must be finite and >= 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from pose_geometry import PELVIS_IDX_44, check_non_negative, check_trailing_shape
from pose_losses._shapes import (
    check_reduction,
    check_samples_shape,
    check_weights_shape,
)

__all__ = ["keypoint_2d_loss", "keypoint_3d_loss"]


def _weighted_l1(pred: Tensor, target: Tensor, confidence: Tensor | None, reduction: str) -> Tensor:
    """(..., N, K, C) vs (..., K, C) with (..., K) weights -> (..., N)."""
    lead = target.ndim - 2
    error = (pred - target.unsqueeze(lead)).abs()
    if confidence is not None:
        error = error * confidence.to(error.dtype).unsqueeze(lead).unsqueeze(-1)
    per_sample = error.sum(dim=(-2, -1))
    if reduction == "mean":
        per_sample = per_sample / (target.shape[-2] * target.shape[-1])
    return per_sample


def _check_confidence(confidence: Tensor | None, name: str, target: Tensor) -> None:
    if confidence is not None:
        check_weights_shape("confidence", confidence, tuple(target.shape[:-1]), (name, target))
        check_non_negative("confidence", confidence)


def _clean_target(
    name: str, target: Tensor, confidence: Tensor | None, pelvis_idx: int | None = None
) -> Tensor:
    """`target` with non-finite keypoints of confidence 0 set to 0; raise for any other."""
    missing = ~torch.isfinite(target).all(dim=-1)  # (..., K)
    if not bool(missing.any()):
        return target
    used = torch.ones_like(missing) if confidence is None else confidence != 0
    bad = missing & used
    if pelvis_idx is not None:  # the pelvis aligns every used keypoint of its item
        bad = bad.clone()
        bad[..., pelvis_idx] |= missing[..., pelvis_idx] & used.any(dim=-1)
    if bool(bad.any()):
        index = tuple(torch.nonzero(bad)[0].tolist())
        where = "the pelvis used for alignment" if index[-1] == pelvis_idx else "a keypoint"
        raise ValueError(
            f"`{name}` must be finite where the confidence is > 0 (everywhere without a "
            f"`confidence`), got "
            f"{target[index].tolist()} at {where} (index {index}); give missing keypoints "
            f"confidence 0"
        )
    return torch.where(missing[..., None], target.new_zeros(()), target)


def keypoint_2d_loss(
    pred_keypoints_2d: Tensor,
    target_keypoints_2d: Tensor,
    *,
    confidence: Tensor | None = None,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """Confidence-weighted L1 distance between predicted and target 2D keypoints, per sample.

    ProHMR's keypoint arrays store the confidence in the last column: pass
    `target_keypoints_2d=gt[..., :2], confidence=gt[..., 2]`.

    Args:
        pred_keypoints_2d: (..., N, K, 2) predicted keypoints for N samples per image, in
            normalised crop units (u_px / 224 - 0.5 in ProHMR).
        target_keypoints_2d: (..., K, 2) ground-truth keypoints, same units.
        confidence: (..., K) non-negative weight per keypoint (0 = missing: its target
            coordinates may be NaN); None = all 1.
        reduction: "sum" over keypoints and coordinates (ProHMR) or "mean" over them.

    Returns:
        (..., N) loss per batch element and sample.

    Raises:
        ValueError: if a shape does not match, `reduction` is unknown, a confidence is
            negative or non-finite, a target keypoint with confidence > 0 is non-finite, or
            the tensors are on different devices.
        TypeError: if an input is not a floating-point tensor, or prediction and target
            differ in dtype.
    """
    check_reduction(reduction)
    check_trailing_shape("target_keypoints_2d", target_keypoints_2d, None, 2)
    check_samples_shape(
        "pred_keypoints_2d",
        pred_keypoints_2d,
        "target_keypoints_2d",
        target_keypoints_2d,
        target_keypoints_2d.ndim - 2,
    )
    _check_confidence(confidence, "target_keypoints_2d", target_keypoints_2d)
    target = _clean_target("target_keypoints_2d", target_keypoints_2d, confidence)
    return _weighted_l1(pred_keypoints_2d, target, confidence, reduction)


def keypoint_3d_loss(
    pred_keypoints_3d: Tensor,
    target_keypoints_3d: Tensor,
    *,
    confidence: Tensor | None = None,
    pelvis_idx: int | None = PELVIS_IDX_44,
    reduction: Literal["sum", "mean"] = "sum",
) -> Tensor:
    """Confidence-weighted L1 distance between pelvis-aligned 3D keypoints, per sample.

    Prediction and target are each made relative to their own keypoint `pelvis_idx` (39 in the
    44-keypoint layout, as in ProHMR) before comparing. For the lifting model (its
    root-relative 16 joints, no confidences, no re-alignment) pass `pelvis_idx=None` and no
    confidence.

    Args:
        pred_keypoints_3d: (..., N, K, 3) predicted keypoints for N samples, metres.
        target_keypoints_3d: (..., K, 3) ground-truth keypoints, metres.
        confidence: (..., K) non-negative weight per keypoint (0 = missing: its target
            coordinates may be NaN, except at the pelvis); None = all 1.
        pelvis_idx: index in [0, K) of the keypoint subtracted from both, or None for no
            alignment.
        reduction: "sum" over keypoints and coordinates (ProHMR) or "mean" over them.

    Returns:
        (..., N) loss per batch element and sample (metres, summed).

    Raises:
        ValueError: if a shape does not match, `pelvis_idx` is outside [0, K) (negative
            included), `reduction` is unknown, a confidence is negative or non-finite, a
            target keypoint with confidence > 0 (or the pelvis) is non-finite, or the tensors
            are on different devices.
        TypeError: if an input is not a floating-point tensor, or prediction and target
            differ in dtype.
    """
    check_reduction(reduction)
    check_trailing_shape("target_keypoints_3d", target_keypoints_3d, None, 3)
    check_samples_shape(
        "pred_keypoints_3d",
        pred_keypoints_3d,
        "target_keypoints_3d",
        target_keypoints_3d,
        target_keypoints_3d.ndim - 2,
    )
    _check_confidence(confidence, "target_keypoints_3d", target_keypoints_3d)
    if pelvis_idx is not None:
        num_keypoints = target_keypoints_3d.shape[-2]
        if not 0 <= pelvis_idx < num_keypoints:
            raise ValueError(
                f"`pelvis_idx` must lie in [0, {num_keypoints}) for {num_keypoints} keypoints, "
                f"got {pelvis_idx}; pass pelvis_idx=None for keypoints that are already "
                "root-relative"
            )
    target_keypoints_3d = _clean_target(
        "target_keypoints_3d", target_keypoints_3d, confidence, pelvis_idx
    )
    if pelvis_idx is not None:
        idx = pelvis_idx
        pred_keypoints_3d = pred_keypoints_3d - pred_keypoints_3d[..., idx : idx + 1, :]
        target_keypoints_3d = target_keypoints_3d - target_keypoints_3d[..., idx : idx + 1, :]
    return _weighted_l1(pred_keypoints_3d, target_keypoints_3d, confidence, reduction)
