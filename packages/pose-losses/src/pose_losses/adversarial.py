"""HMR-style pose/shape discriminator and the least-squares GAN losses.

See docs/training.md#discriminator and docs/training.md#adversarial-loss.

The discriminator scores SMPL body poses (rotation matrices, global orientation excluded) and
betas with 25 outputs: one per joint, one for the betas and one for the whole pose (Kanazawa et
al., "End-to-end Recovery of Human Shape and Pose", CVPR 2018). Real = 1, fake = 0 (LSGAN).

Reductions, as in ProHMR (the defaults):

- generator: L_adv = Σ (D(fake) - 1)² / B, summed over all B·N·25 scores but divided by the
  number of IMAGES B, not of pose sets B·N;
- discriminator: L_D = Σ D(fake)² / M + Σ (D(real) - 1)² / M with M the number of FAKE pose
  sets (B·N), for both sums (ProHMR's real mocap batch has the same size, 128).

`reduction="mean"` averages over all scores instead (each sum over its own count).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from pose_geometry import (
    check_floating,
    check_module_input,
    check_same_leading_shape,
    check_trailing_shape,
)
from pose_losses._shapes import check_reduction

__all__ = ["PoseDiscriminator", "lsgan_discriminator_loss", "lsgan_generator_loss"]


class PoseDiscriminator(nn.Module):
    """Per-joint, betas and whole-pose discriminator with ProHMR's parameter names.

    - pose branch: each joint's matrix flattened row-major to 9 values, as a (M, 9, J, 1) map;
      `D_conv1` and `D_conv2` 1x1 convolutions (9 -> F -> F) with ReLU give per-joint features;
    - per-joint scores: `pose_out.{j}` Linear(F -> 1) on joint j's features;
    - betas: `betas_fc1` Linear(S -> 10), ReLU, `betas_fc2` Linear(10 -> 5), ReLU,
      `betas_out` Linear(5 -> 1);
    - whole pose: the (M, F, J, 1) features flattened channel-major (index = channel·J + joint)
      -> `D_alljoints_fc1` Linear(F·J -> H), ReLU, `D_alljoints_fc2` Linear(H -> H), ReLU,
      `D_alljoints_out` Linear(H -> 1).

    Weights Xavier-uniform, biases zero. Defaults are ProHMR's (J = 23, S = 10, F = 32,
    H = 1024; 62 state-dict entries).

    Args:
        num_joints: J, body joints scored (SMPL body pose without the global orientation: 23).
        num_betas: S, shape coefficients.
        joint_features: F, channels of the per-joint features.
        hidden_features: H, width of the whole-pose branch.
    """

    def __init__(
        self,
        *,
        num_joints: int = 23,
        num_betas: int = 10,
        joint_features: int = 32,
        hidden_features: int = 1024,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.num_betas = num_betas
        self.D_conv1 = nn.Conv2d(9, joint_features, kernel_size=1)
        self.D_conv2 = nn.Conv2d(joint_features, joint_features, kernel_size=1)
        self.pose_out = nn.ModuleList(nn.Linear(joint_features, 1) for _ in range(num_joints))
        self.betas_fc1 = nn.Linear(num_betas, 10)
        self.betas_fc2 = nn.Linear(10, 5)
        self.betas_out = nn.Linear(5, 1)
        self.D_alljoints_fc1 = nn.Linear(joint_features * num_joints, hidden_features)
        self.D_alljoints_fc2 = nn.Linear(hidden_features, hidden_features)
        self.D_alljoints_out = nn.Linear(hidden_features, 1)
        self.relu = nn.ReLU()
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def num_outputs(self) -> int:
        """Scores per pose: J per-joint + 1 betas + 1 whole-pose (25 by default)."""
        return self.num_joints + 2

    def forward(self, body_pose: Tensor, betas: Tensor) -> Tensor:
        """Score body poses and shapes (high = looks real).

        Args:
            body_pose: (..., J, 3, 3) body-joint rotation matrices (no global orientation).
            betas: (..., S) shape coefficients.

        Returns:
            (..., J + 2) scores: [J per-joint, betas, whole pose]; an empty batch (e.g. B = 0)
            gives an empty (..., J + 2) result.

        Raises:
            ValueError: if a shape does not match, the batch dimensions differ, or an input is
                on another device than the discriminator (the message names both).
            TypeError: if an input is not a floating-point tensor or has another dtype than
                the discriminator's parameters.
        """
        check_trailing_shape("body_pose", body_pose, self.num_joints, 3, 3)
        check_trailing_shape("betas", betas, self.num_betas)
        check_floating("body_pose", body_pose)
        check_floating("betas", betas)
        check_same_leading_shape("body_pose", body_pose, 3, "betas", betas, 1)
        check_module_input("body_pose", body_pose, self)
        check_module_input("betas", betas, self)
        leading = betas.shape[:-1]
        num_poses = leading.numel()
        pose = body_pose.reshape(num_poses, self.num_joints, 9)
        # (M, J, 9) -> (M, 9, J, 1): the 9 matrix entries are the channels.
        x = pose.transpose(1, 2).unsqueeze(-1)
        features = self.relu(self.D_conv2(self.relu(self.D_conv1(x))))  # (M, F, J, 1)
        features = features.squeeze(-1)  # (M, F, J)
        # Per-joint Linear(F -> 1) for every joint at once.
        weight = torch.cat([layer.weight for layer in self.pose_out], dim=0)  # (J, F)
        bias = torch.cat([layer.bias for layer in self.pose_out], dim=0)  # (J,)
        joint_scores = torch.einsum("mfj,jf->mj", features, weight) + bias
        shape = self.relu(
            self.betas_fc2(self.relu(self.betas_fc1(betas.reshape(-1, self.num_betas))))
        )
        betas_score = self.betas_out(shape)
        whole = features.flatten(1)  # channel-major: channel·J + joint
        whole = self.relu(self.D_alljoints_fc2(self.relu(self.D_alljoints_fc1(whole))))
        whole_score = self.D_alljoints_out(whole)
        scores = torch.cat([joint_scores, betas_score, whole_score], dim=-1)
        return scores.reshape(*leading, self.num_outputs)


def _check_scores(name: str, scores: Tensor, min_ndim: int) -> None:
    check_floating(name, scores)
    dims = "(B, ..., K)" if min_ndim == 2 else "(..., K)"
    if scores.ndim < min_ndim:
        raise ValueError(f"`{name}` must have shape {dims}, got {tuple(scores.shape)}")
    if scores.numel() == 0:
        raise ValueError(
            f"`{name}` must hold at least one set of scores {dims}, got shape "
            f"{tuple(scores.shape)} (an empty batch has no loss; skip the term)"
        )


def lsgan_generator_loss(
    fake_scores: Tensor, *, reduction: Literal["sum_per_image", "mean"] = "sum_per_image"
) -> Tensor:
    """Least-squares generator loss: push the discriminator's scores of predictions to 1.

    Args:
        fake_scores: (B, ..., K) scores of the predicted poses, B images first, e.g. (B, N, 25)
            for N samples per image.
        reduction: "sum_per_image" = Σ (s - 1)² / B (ProHMR) or "mean" over all scores.

    Returns:
        () loss.

    Raises:
        ValueError: if `fake_scores` has fewer than 2 dimensions or is empty (B = 0: the mean
            would be NaN), or `reduction` is unknown.
        TypeError: if it is not a floating-point tensor.
    """
    check_reduction(reduction, ("sum_per_image", "mean"))
    _check_scores("fake_scores", fake_scores, 2)
    squared = (fake_scores - 1) ** 2
    if reduction == "mean":
        return squared.mean()
    return squared.sum() / fake_scores.shape[0]


def lsgan_discriminator_loss(
    real_scores: Tensor,
    fake_scores: Tensor,
    *,
    reduction: Literal["sum_per_fake_sample", "mean"] = "sum_per_fake_sample",
) -> Tensor:
    """Least-squares discriminator loss: real scores to 1, fake scores to 0.

    Compute `fake_scores` on detached predictions. ProHMR scales this loss by the adversarial
    weight (0.0005) for the backward pass and logs it unweighted.

    Args:
        real_scores: (..., K) scores of real poses (e.g. a mocap batch, (128, 25)).
        fake_scores: (..., K) scores of predicted poses (e.g. (B, N, 25)).
        reduction: "sum_per_fake_sample" = (Σ fake² + Σ (real - 1)²) / M with M the number of
            fake pose sets (ProHMR), or "mean" = mean(fake²) + mean((real - 1)²).

    Returns:
        () loss.

    Raises:
        ValueError: if the score sizes K differ, either is empty (B = 0), or `reduction` is
            unknown.
        TypeError: if an input is not a floating-point tensor.
    """
    check_reduction(reduction, ("sum_per_fake_sample", "mean"))
    _check_scores("real_scores", real_scores, 1)
    _check_scores("fake_scores", fake_scores, 1)
    if real_scores.shape[-1] != fake_scores.shape[-1]:
        raise ValueError(
            f"`real_scores` and `fake_scores` must have the same number of scores K, got "
            f"{tuple(real_scores.shape)} and {tuple(fake_scores.shape)}"
        )
    fake_term = fake_scores**2
    real_term = (real_scores - 1) ** 2
    if reduction == "mean":
        return fake_term.mean() + real_term.mean()
    num_fake = fake_scores.numel() // fake_scores.shape[-1]
    return (fake_term.sum() + real_term.sum()) / num_fake
