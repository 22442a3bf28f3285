"""The training losses of both models, assembled from pose-losses' terms.

``prohmr_loss`` gives every generator term of ProHMR (2D and 3D keypoints, SMPL parameters, 6D
orthonormality, each split into the mode's and the other samples' share; the NLL of the
ground-truth pose; the adversarial term when a discriminator is passed) and combines them once
with the loss weights. ``lifting_loss`` does the same for the lifting model. The reductions and
weights are described in ``docs/training.md``. To add a loss term: compute it here, add its weight
to ``pose_losses.LossWeights`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import pose_geometry as pg
import pose_losses as pl

from .lifting import LiftingOutput
from .model import ProHMROutput

__all__ = [
    "discriminator_inputs",
    "gt_pose_6d",
    "lifting_loss",
    "nll_targets",
    "prohmr_loss",
]


def gt_pose_6d(smpl_params: dict[str, Tensor]) -> Tensor:
    """(B, 3) + (B, 69) axis-angle ground truth -> (B, 144) 6D, joint-major.

    See docs/conventions.md#6d-rotations.
    """
    global_orient = smpl_params["global_orient"].reshape(-1, 1, 3)
    body_pose = smpl_params["body_pose"].reshape(-1, 23, 3)
    rotmats = pg.axis_angle_to_rotmat(torch.cat([global_orient, body_pose], dim=1))
    return pg.rotmat_to_rot6d(rotmats).reshape(-1, 144)


def nll_targets(
    batch: dict[str, Any], *, noise_std: float, generator: torch.Generator | None = None
) -> Tensor:
    """(B, 144) ground-truth 6D poses (+ N(0, noise_std²) noise), NaN rows where not annotated.

    Only images with ``has_smpl_params['body_pose'] > 0`` enter the NLL; in training
    Gaussian noise of std 0.005 is added in the 6D space.
    """
    smpl = batch["smpl_params"]
    target = gt_pose_6d({k: v.float() for k, v in smpl.items()})
    if noise_std > 0:
        target = pl.add_target_noise(target, std=noise_std, generator=generator)
    valid = batch["has_smpl_params"]["body_pose"].bool()
    return torch.where(valid[:, None], target, torch.full_like(target, float("nan")))


def discriminator_inputs(output: ProHMROutput) -> tuple[Tensor, Tensor]:
    """The discriminator's inputs from every hypothesis: body-pose rotation matrices (M, 23, 3, 3)
    and betas (M, 10), M = B·N."""
    body_pose = output.body_pose.reshape(-1, 23, 3, 3)
    betas = output.betas.reshape(-1, output.betas.shape[-1])
    return body_pose, betas


def prohmr_loss(
    batch: dict[str, Any],
    output: ProHMROutput,
    *,
    weights: pl.LossWeights,
    discriminator: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> tuple[pl.CombinedLoss, dict[str, Tensor]]:
    """Every generator term (docs/training.md#objective), combined once with ``weights``.

    The adversarial term is included when ``discriminator`` (body pose (M, 23, 3, 3), betas
    (M, 10) -> (M, 1) scores) is given.

    Returns the combined loss and the raw terms.
    """
    keypoints_2d = batch["keypoints_2d"].float()
    keypoints_3d = batch["keypoints_3d"].float()
    terms: dict[str, Tensor] = {}
    loss_2d = pl.keypoint_2d_loss(
        output.keypoints_2d, keypoints_2d[..., :2], confidence=keypoints_2d[..., 2]
    )
    loss_3d = pl.keypoint_3d_loss(
        output.keypoints_3d, keypoints_3d[..., :3], confidence=keypoints_3d[..., 3]
    )
    for name, value in (("keypoints_2d", loss_2d), ("keypoints_3d", loss_3d)):
        split = pl.split_mode_expectation(value)
        terms[f"{name}_mode"] = split.mode
        terms[f"{name}_expectation"] = split.expectation
    smpl = batch["smpl_params"]
    has = batch["has_smpl_params"]
    gt_global = pg.axis_angle_to_rotmat(smpl["global_orient"].float().reshape(-1, 1, 3))
    gt_body = pg.axis_angle_to_rotmat(smpl["body_pose"].float().reshape(-1, 23, 3))
    for name, pred, target, flag in (
        ("global_orient", output.global_orient, gt_global, has["global_orient"]),
        ("body_pose", output.body_pose, gt_body, has["body_pose"]),
        ("betas", output.betas, smpl["betas"].float(), has["betas"]),
    ):
        value = pl.smpl_parameter_loss(pred, target, flag.float())
        split = pl.split_mode_expectation(value)
        terms[f"{name}_mode"] = split.mode
        terms[f"{name}_expectation"] = split.expectation
    ortho = pl.rot6d_orthonormality_loss(output.pose_6d.reshape(*output.pose_6d.shape[:2], 24, 6))
    terms["orthonormal_mode"] = ortho[:, 0].mean()
    terms["orthonormal_expectation"] = (
        ortho[:, 1:].mean() if ortho.shape[1] > 1 else ortho.new_zeros(())
    )
    if output.target_log_prob is not None and output.target_log_prob.numel() > 0:
        terms["nll"] = pl.negative_log_likelihood(output.target_log_prob)
    else:
        terms["nll"] = output.pose_6d.sum() * 0.0
    if discriminator is not None:
        body_pose, betas = discriminator_inputs(output)
        scores = discriminator(body_pose, betas).reshape(*output.betas.shape[:2], -1)
        terms["adversarial"] = pl.lsgan_generator_loss(scores)
    return pl.combine_losses(terms, weights), terms


def lifting_loss(output: LiftingOutput, target: Tensor) -> pl.CombinedLoss:
    """The lifting loss with ``LossWeights.lifting()``; ``target`` (B, 16, 3) root-relative metres.

    See docs/training.md#lifting-model-training.
    """
    per_sample = pl.keypoint_3d_loss(output.keypoints_3d, target, pelvis_idx=None)
    split = pl.split_mode_expectation(per_sample)
    terms = {"keypoints_3d_mode": split.mode, "keypoints_3d_expectation": split.expectation}
    if output.target_log_prob is not None:
        terms["nll"] = pl.negative_log_likelihood(output.target_log_prob)
    return pl.combine_losses(terms, pl.LossWeights.lifting())
