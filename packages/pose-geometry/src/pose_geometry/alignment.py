"""Batched similarity (or rigid) Procrustes alignment of point sets.

Used for PA-MPJPE ("reconstruction error"): the prediction is aligned onto the ground truth with
the rotation (det = +1), isotropic scale and translation minimising the (weighted) squared
distance, as in Umeyama (1991). With uniform weights this is the formula of the ProHMR evaluator:
centre both sets, K = X1·X2ᵀ, K = U S Vᵀ, R = V·diag(1, 1, sign det(V Uᵀ))·Uᵀ,
s = trace(R K) / ‖X1‖²_F, t = μ2 − s R μ1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pose_geometry.checks import check_floating, check_trailing_shape

__all__ = ["ProcrustesResult", "apply_similarity", "procrustes_align"]


@dataclass(frozen=True)
class ProcrustesResult:
    """Result of `procrustes_align` for source points (..., N, 3).

    Attributes:
        aligned: (..., N, 3) the source points after the transform, s·R·x + t.
        rotation: (..., 3, 3) rotation R with det = +1.
        scale: (...,) isotropic scale s (1 when scaling is disabled).
        translation: (..., 3) translation t.
    """

    aligned: Tensor
    rotation: Tensor
    scale: Tensor
    translation: Tensor


def apply_similarity(
    points: Tensor, rotation: Tensor, scale: Tensor, translation: Tensor
) -> Tensor:
    """Apply x -> s·R·x + t to every point.

    Args:
        points: (..., N, 3) points.
        rotation: (..., 3, 3) rotations acting on column vectors.
        scale: (...,) isotropic scales.
        translation: (..., 3) translations.

    Returns:
        (..., N, 3) transformed points.
    """
    check_trailing_shape("points", points, None, 3)
    check_trailing_shape("rotation", rotation, 3, 3)
    check_trailing_shape("translation", translation, 3)
    rotated = points @ rotation.transpose(-1, -2)
    return scale[..., None, None] * rotated + translation[..., None, :]


def procrustes_align(
    source: Tensor,
    target: Tensor,
    *,
    weights: Tensor | None = None,
    with_scale: bool = True,
    eps: float = 1e-12,
) -> ProcrustesResult:
    """Align `source` onto `target` with the best similarity (or rigid) transform, batched.

    Minimises Σ_n w_n ‖s·R·x_n + t − y_n‖² over R ∈ SO(3) (det +1, reflections excluded),
    s > 0 (if `with_scale`) and t, for every batch element independently, in one batched SVD on
    the inputs' device.

    Args:
        source: (..., N, 3) points to move (e.g. predicted joints), N >= 1.
        target: (..., N, 3) points to align to (e.g. ground-truth joints), same shape as `source`.
        weights: optional (..., N) non-negative per-point weights (e.g. confidences); points with
            weight 0 do not influence the transform but are still transformed. Default: uniform.
        with_scale: estimate the scale (similarity Procrustes, PA-MPJPE); False gives a rigid
            alignment with s = 1.
        eps: guards the divisions by the total weight and by the source's spread, so degenerate
            inputs (all points equal, all weights zero) return finite values instead of NaN.

    Returns:
        ProcrustesResult with the aligned source (..., N, 3), rotation (..., 3, 3), scale (...,)
        and translation (..., 3).

    Raises:
        ValueError: if a shape differs from the one documented.
        TypeError: if an input is not a floating-point tensor.
    """
    check_trailing_shape("source", source, None, 3)
    check_trailing_shape("target", target, None, 3)
    check_floating("source", source)
    check_floating("target", target)
    if source.shape != target.shape:
        raise ValueError(
            f"`source` and `target` must have the same shape (..., N, 3), got "
            f"{tuple(source.shape)} and {tuple(target.shape)}"
        )
    if weights is None:
        w = torch.ones(source.shape[:-1], dtype=source.dtype, device=source.device)
    else:
        check_floating("weights", weights)
        if weights.shape != source.shape[:-1]:
            raise ValueError(
                f"`weights` must have shape (..., N) = {tuple(source.shape[:-1])} to match "
                f"`source` {tuple(source.shape)}, got {tuple(weights.shape)}"
            )
        w = weights.to(source.dtype)

    w3 = w[..., None]  # (..., N, 1)
    total = w3.sum(-2, keepdim=True).clamp_min(eps)  # (..., 1, 1)
    mu_source = (w3 * source).sum(-2, keepdim=True) / total  # (..., 1, 3)
    mu_target = (w3 * target).sum(-2, keepdim=True) / total
    x = source - mu_source
    y = target - mu_target
    # K = Σ w x yᵀ (3x3), the covariance of the ProHMR formula with points as columns.
    K = (w3 * x).transpose(-1, -2) @ y
    U, S, Vh = torch.linalg.svd(K)
    V = Vh.transpose(-1, -2)
    # Reflection fix: flip the axis of the smallest singular value if det(V Uᵀ) < 0.
    d = torch.linalg.det(V @ U.transpose(-1, -2))
    sign = torch.where(d < 0, -torch.ones_like(d), torch.ones_like(d))
    ones = torch.ones_like(sign)
    Z = torch.diag_embed(torch.stack([ones, ones, sign], dim=-1))
    R = V @ Z @ U.transpose(-1, -2)
    if with_scale:
        # trace(R K) = Σ_i S_i z_i
        trace = (S * torch.stack([ones, ones, sign], dim=-1)).sum(-1)
        spread = (w3 * x * x).sum((-1, -2))
        scale = trace / spread.clamp_min(eps)
    else:
        scale = torch.ones(source.shape[:-2], dtype=source.dtype, device=source.device)
    rotated_mean = (mu_source @ R.transpose(-1, -2))[..., 0, :]  # R·μ_source
    translation = mu_target[..., 0, :] - scale[..., None] * rotated_mean
    aligned = apply_similarity(source, R, scale, translation)
    return ProcrustesResult(aligned=aligned, rotation=R, scale=scale, translation=translation)
