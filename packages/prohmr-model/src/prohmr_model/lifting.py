"""The probabilistic 2D-to-3D lifting model (ProSkeleton).

17 normalised 2D joints (flattened joint-major to 34) -> FC-ResNet (1024 wide, 2 residual blocks)
-> conditional Glow over 16 root-relative 3D joints (48 numbers). State-dict names follow the
original (``backbone.fc_layers.*``, ``flow.flow.*``, ``initialized``). Its loss is
``prohmr_model.losses.lifting_loss``, its evaluation ``prohmr_model.evaluation.evaluate_lifting``;
see ``docs/model.md#the-lifting-model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hmr_backbone import FCResNet
from pose_flows import FlowConfig, SkeletonFlowHead

from .config import LiftingModelConfig

__all__ = [
    "LiftingOutput",
    "ProSkeleton",
    "build_lifting_model",
    "lifting_batch",
    "prepend_zero_pelvis",
]


@dataclass(frozen=True)
class LiftingOutput:
    """keypoints_3d (B, N, 16, 3) metres root-relative (sample 0 = mode), log_prob (B, N),
    z (B, N, 48), target_log_prob (B, 1) or None."""

    keypoints_3d: Tensor
    log_prob: Tensor
    z: Tensor
    target_log_prob: Tensor | None


class ProSkeleton(nn.Module):
    """FC-ResNet context + skeleton flow head."""

    def __init__(self, *, backbone: FCResNet, head: SkeletonFlowHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.flow = head
        self.register_buffer("initialized", torch.tensor(False))

    def features(self, keypoints_2d: Tensor) -> Tensor:
        """(B, 17, 2|3) normalised 2D joints -> (B, C); confidences are not used."""
        return self.backbone(keypoints_2d[..., :2].reshape(keypoints_2d.shape[0], -1))

    def forward(
        self,
        keypoints_2d: Tensor,
        *,
        num_samples: int,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        target: Tensor | None = None,
        include_mode: bool = True,
    ) -> LiftingOutput:
        """N hypotheses per input (sample 0 = mode), and log p of ``target`` (B, 16, 3)."""
        features = self.features(keypoints_2d)
        if z is not None:
            head = self.flow(features, z=z)
        else:
            head = self.flow(features, num_samples, generator=generator, include_mode=include_mode)
        target_log_prob = None
        if target is not None:
            target_log_prob, _ = self.flow.log_prob(target[:, None], features)
        return LiftingOutput(head.keypoints_3d, head.log_prob.detach(), head.z, target_log_prob)

    def initialize_flow(self, keypoints_2d: Tensor, target: Tensor) -> None:
        """ActNorm initialisation on the first batch's ground truth (docs/model.md)."""
        if bool(self.initialized):
            return
        if self.training:
            with torch.no_grad():
                features = self.features(keypoints_2d)
            self.flow.flow.initialize(target.reshape(len(target), -1), features)
        self.initialized.fill_(True)


def build_lifting_model(config: LiftingModelConfig | None = None) -> ProSkeleton:
    """The model of ``config`` (None: the published sizes)."""
    config = config or LiftingModelConfig()
    backbone = FCResNet(
        in_features=34,
        hidden_features=config.hidden_features,
        out_features=config.hidden_features,
        num_blocks=config.num_res_blocks,
    )
    flow = FlowConfig(
        features=3 * 16,
        context_features=config.hidden_features,
        hidden_features=config.flow_hidden_features,
        num_layers=config.flow_num_layers,
        num_blocks_per_layer=config.flow_num_blocks,
        dropout_probability=config.flow_dropout,
        use_batch_norm=config.flow_batch_norm,
    )
    head = SkeletonFlowHead(flow)
    return ProSkeleton(backbone=backbone, head=head)


def prepend_zero_pelvis(keypoints: Tensor) -> Tensor:
    """(..., 16, C) -> (..., 17, C) with an all-zero joint 0.

    See docs/evaluation.md#lifting-evaluation.
    """
    zeros = keypoints.new_zeros((*keypoints.shape[:-2], 1, keypoints.shape[-1]))
    return torch.cat([zeros, keypoints], dim=-2)


def lifting_batch(batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """A lifting batch's (B, 17, 2|3) 2D joints and (B, 16, 3) root-relative 3D joints, float."""
    return batch["keypoints_2d"].float(), batch["keypoints_3d"][..., :3].float()
