"""Negative log-likelihood of ground truth under the flow, and the target jitter used in training.

ProHMR: for the images with a body-pose annotation, L_NLL = -mean log p(x_gt | c) with x_gt the
ground-truth pose in 6D, (B', 144) (global orientation first); the lifting model uses the
root-relative 3D joints, (B, 48). In training both add i.i.d. Gaussian noise of std 0.005 to the
targets first (`add_target_noise`); in validation they do not. When no image is annotated the
loss is 0. See docs/training.md#negative-log-likelihood.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_geometry import check_floating, check_same_device, check_tensor

__all__ = ["add_target_noise", "negative_log_likelihood"]


def negative_log_likelihood(log_prob: Tensor, *, valid: Tensor | None = None) -> Tensor:
    """Mean negative log-likelihood over the valid entries.

    Args:
        log_prob: (...) log-density of each ground-truth target under the model (nats), e.g.
            (B, 1) from the flow's `log_prob` of one target per image.
        valid: bool mask with the shape of `log_prob` or of its leading dimensions (e.g. (B,)
            for (B, 1)): which targets exist (ProHMR: has_smpl_params['body_pose'] > 0; the
            betas flag is ignored). None = all valid. Invalid entries are excluded even if they
            hold NaN or inf.

    Returns:
        () -mean of `log_prob` over the valid entries; exactly 0 (attached to the graph) if
        none is valid.

    Raises:
        ValueError: if `valid` does not match `log_prob`'s shape or device.
        TypeError: if `log_prob` is not floating point or `valid` is not a bool tensor.
    """
    check_floating("log_prob", log_prob)
    if valid is None:
        return -log_prob.mean() if log_prob.numel() > 0 else log_prob.sum()
    check_tensor("valid", valid)
    check_same_device("log_prob", log_prob, "valid", valid)
    if valid.dtype != torch.bool:
        raise TypeError(f"`valid` must be a bool tensor, got dtype {valid.dtype}")
    if tuple(log_prob.shape[: valid.ndim]) != tuple(valid.shape):
        raise ValueError(
            f"`valid` must have the shape of `log_prob` {tuple(log_prob.shape)} or of its "
            f"leading dimensions, got {tuple(valid.shape)}"
        )
    mask = valid.reshape(*valid.shape, *([1] * (log_prob.ndim - valid.ndim))).expand_as(log_prob)
    selected = log_prob.where(mask, log_prob.new_zeros(()))
    count = mask.sum()
    return -selected.sum() / count.clamp(min=1).to(log_prob.dtype)


def add_target_noise(
    target: Tensor, *, std: float, generator: torch.Generator | None = None
) -> Tensor:
    """Return `target` plus i.i.d. Gaussian noise N(0, std²) (ProHMR: std 0.005 in training).

    ProHMR adds it to the 6D pose targets of the NLL (SMPL_PARAM_NOISE_RATIO) and to the lifting
    model's 3D targets (POSE_3D_NOISE_RATIO); it also perturbs the unused betas, which changes
    nothing and is not needed here.

    Args:
        target: (...) targets, any floating dtype; the noise follows its device and dtype.
        std: standard deviation of the noise, in the targets' units (>= 0).
        generator: random generator on `target`'s device, or None for the global one.

    Returns:
        (...) noisy copy of `target`.

    Raises:
        ValueError: if `std` is negative.
        TypeError: if `target` is not a floating-point tensor.
    """
    check_floating("target", target)
    if std < 0:
        raise ValueError(f"`std` must be >= 0, got {std}")
    noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
    return target + std * noise
