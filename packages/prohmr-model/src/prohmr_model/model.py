"""The ProHMR model assembly: backbone -> pose head (flow + FC head) -> body model -> 2D.

State-dict prefixes follow the original (docs/checkpoints.md#prohmr-keys): ``backbone.``,
``flow.`` (the pose head: ``flow.flow.*`` the ConditionalGlow, ``flow.fc_head.*``) and the
model-level ``initialized`` flag. The discriminator is a separate module (its own optimiser
and its own DDP wrapper; a checkpoint stores it under ``discriminator``, the original's
``discriminator.`` prefix). The body model is held outside the state dict (it is an input file,
not a learned weight) and is moved with the model by ``.to()``.

The camera convention is the original's whatever the network's input resolution: a virtual
224-px crop with a 5000-px focal length, projected keypoints in normalised crop units
``u_px / 224 - 0.5`` (docs/conventions.md#cameras). Training on smaller crops (the CPU default)
changes only the image the backbone sees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

import pose_geometry as pg
from hmr_backbone import ResNet, load_backbone_weights
from pose_body import BodyModel
from pose_flows import FlowConfig, SMPLFlowHead

from .config import ModelConfig
from .precision import autocast, autocast_dtype, resolve_precision

__all__ = ["VIRTUAL_CROP_PX", "ProHMR", "ProHMROutput", "build_prohmr", "project_normalized"]

VIRTUAL_CROP_PX = 224.0


@dataclass(frozen=True)
class ProHMROutput:
    """One forward step (docs/model.md#forward-step); sample 0 is the mode.

    Attributes:
        global_orient: (B, N, 1, 3, 3). body_pose: (B, N, 23, 3, 3). betas: (B, N, 10).
        pose_6d: (B, N, 144) raw flow output. camera: (B, N, 3) weak perspective (s, tx, ty).
        camera_translation: (B, N, 3) metres. log_prob: (B, N) detached. z: (B, N, 144).
        keypoints_3d: (B, N, 44, 3) metres, camera axes without translation.
        keypoints_2d: (B, N, 44, 2) normalised crop units.
        features: (B, C) backbone features.
    """

    global_orient: Tensor
    body_pose: Tensor
    betas: Tensor
    pose_6d: Tensor
    camera: Tensor
    camera_translation: Tensor
    log_prob: Tensor
    z: Tensor
    target_log_prob: Tensor | None
    keypoints_3d: Tensor
    keypoints_2d: Tensor
    features: Tensor


class ProHMR(nn.Module):
    """Backbone + SMPL flow head, with the body model attached.

    Attributes:
        precision: ``fp32`` (default), ``bf16`` or ``fp16``; set with `set_precision`. The
            backbone runs under autocast in it, and in eval mode the flow's coupling networks
            too (docs/model.md#precision). Outputs are float32 in every precision.
    """

    def __init__(
        self,
        *,
        backbone: ResNet,
        head: SMPLFlowHead,
        body_model: BodyModel,
        focal_length: float = 5000.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.flow = head
        self.focal_length = float(focal_length)
        self.register_buffer("initialized", torch.tensor(False))
        object.__setattr__(self, "body_model", body_model)
        self.precision = "fp32"

    def set_precision(self, precision: str, *, allow_emulated: bool = False) -> str:
        """Run in `precision` from now on (checked for the device the model is on: bf16 without
        native support falls back to fp32 with a warning unless `allow_emulated`); returns the
        precision in use. Move the model to its device first."""
        device = next(self.parameters()).device
        self.precision = resolve_precision(precision, device, allow_emulated=allow_emulated)
        for conditioner in self.flow.flow.conditioners:
            conditioner.inference_dtype = autocast_dtype(self.precision)
        return self.precision

    def _apply(self, fn, recurse=True):
        self.body_model._apply(fn)
        return super()._apply(fn, recurse)

    def features(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) normalised crops -> (B, C) float32 pooled backbone features.

        The backbone runs under autocast in ``self.precision``; channels-last when its weights
        are (``build_prohmr`` makes them so).
        """
        if self.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, images.device.type):
            return self.backbone(images).float()

    def initialize_flow(self, features: Tensor, pose_6d: Tensor, valid: Tensor) -> None:
        """ActNorm data-dependent initialisation on the first batch.

        See docs/model.md#actnorm-initialisation.

        Args:
            features: (B, C). pose_6d: (B, 144) ground-truth poses in 6D. valid: (B,) bool.
        """
        if bool(self.initialized):
            return
        # ActNorm needs at least two rows for a standard deviation (pose-flows raises otherwise);
        # with fewer, the flow starts from its identity ActNorm, marked as initialised (the
        # original would write NaNs), and a warning says so.
        if self.training and int(valid.sum()) >= 2:
            self.flow.flow.initialize(pose_6d[valid].float(), features[valid].float())
        else:
            warnings.warn(
                f"the first batch has {int(valid.sum())} ground-truth SMPL pose(s), fewer than "
                "the 2 ActNorm initialisation needs: the flow starts from identity ActNorm layers",
                stacklevel=2,
            )
            for actnorm in self.flow.flow.actnorms:
                actnorm.initialized.fill_(True)
        self.initialized.fill_(True)

    def forward(
        self,
        images: Tensor,
        *,
        num_samples: int,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        target_pose_6d: Tensor | None = None,
        include_mode: bool = True,
    ) -> ProHMROutput:
        """Regress N hypotheses per image; sample 0 is the mode (z = 0) unless ``z`` is given.

        Args:
            images: (B, 3, S, S) normalised crops.
            num_samples: N hypotheses per image.
            z: optional (B, N, 144) latents to decode instead of sampling.
            generator: random source for the flow samples.
            target_pose_6d: optional (B, 144) ground-truth 6D poses, NaN rows for images
                without one; their log-probabilities come back in ``target_log_prob`` (the
                NLL), computed inside forward so data-parallel wrappers see every gradient.
        """
        features = self.features(images)
        output = self.decode(
            features, num_samples=num_samples, z=z, generator=generator, include_mode=include_mode
        )
        if target_pose_6d is None:
            return output
        log_prob, _ = self.target_log_prob(features, target_pose_6d)
        return replace(output, target_log_prob=log_prob)

    def target_log_prob(self, features: Tensor, target_pose_6d: Tensor) -> tuple[Tensor, Tensor]:
        """log p(pose | image) of ground-truth 6D poses under the flow: the NLL's log-density.

        The one path of the training NLL (``forward``'s ``target_pose_6d``) and the evaluation's
        log-likelihood. It is a density over the 6D embedding in R^144 (nats), not over
        SO(3)^24: values compare only between models with the same representation.

        Args:
            features: (B, C) backbone features.
            target_pose_6d: (B, 144) ground-truth 6D poses (``losses.nll_targets``), NaN rows
                for images without one.

        Returns:
            (log_prob (V, 1) float32 of the V annotated rows in order, valid (B,) bool): the
            rows without a pose never enter the flow.
        """
        valid = torch.isfinite(target_pose_6d).all(dim=-1)
        if bool(valid.any()):
            log_prob, _ = self.flow.log_prob(
                target_pose_6d[valid][:, None].float(), features[valid].float()
            )
        else:
            log_prob = features.new_zeros((0, 1)).float()
        return log_prob, valid

    def decode(
        self,
        features: Tensor,
        *,
        num_samples: int,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        include_mode: bool = True,
    ) -> ProHMROutput:
        """Pose head + body model + projection from backbone features (B, C).

        ``include_mode``: sample 0 is the mode (z = 0) when sampling (docs/model.md#the-mode).
        """
        if z is not None:
            head = self.flow(features.float(), z=z)
        else:
            head = self.flow(
                features.float(), num_samples, generator=generator, include_mode=include_mode
            )
        batch, samples = head.pose_6d.shape[:2]
        # The network's own cameras: a scale s <= 0 (early in training) is not an error here;
        # as in the original, the depth is then negative or huge and the losses push s back.
        translation = pg.weak_perspective_to_translation(
            head.camera,
            focal_length_px=self.focal_length,
            crop_size_px=VIRTUAL_CROP_PX,
            check_scale=False,
        )
        with torch.autocast(device_type=features.device.type, enabled=False):
            joints = self.body_model.keypoints_only(
                global_orient=head.global_orient.reshape(-1, 1, 3, 3).float(),
                body_pose=head.body_pose.reshape(-1, 23, 3, 3).float(),
                betas=head.betas.reshape(-1, head.betas.shape[-1]).float(),
            ).keypoints.reshape(batch, samples, -1, 3)
            keypoints_2d = project_normalized(joints, translation.float(), self.focal_length)
        return ProHMROutput(
            global_orient=head.global_orient,
            body_pose=head.body_pose,
            betas=head.betas,
            pose_6d=head.pose_6d,
            camera=head.camera,
            camera_translation=translation,
            log_prob=head.log_prob.detach(),
            z=head.z,
            target_log_prob=None,
            keypoints_3d=joints,
            keypoints_2d=keypoints_2d,
            features=features,
        )


def project_normalized(points: Tensor, translation: Tensor, focal_length: float) -> Tensor:
    """Project (..., K, 3) points with (..., 3) translation to normalised crop units.

    Focal ``f / 224`` and principal point 0 (docs/conventions.md#cameras), so the result is
    ``u_px / 224 - 0.5``.
    """
    return pg.project_points(
        points,
        focal_px=focal_length / VIRTUAL_CROP_PX,
        center_px=torch.zeros(2, dtype=points.dtype, device=points.device),
        translation=translation,
    )


def build_prohmr(
    config: ModelConfig,
    *,
    body_model: BodyModel,
    mean_betas: np.ndarray | None = None,
    mean_camera: np.ndarray | None = None,
    load_weights: bool = True,
) -> ProHMR:
    """Build the model from a config.

    ``mean_betas`` (10,) and ``mean_camera`` (3,) (``smpl_mean_params.npz``'s 'shape' and 'cam')
    fill the FC head's ``init_betas`` / ``init_cam`` buffers, which start a model built for
    training; None gives zeros. A checkpoint's state dict holds both buffers, so a model whose
    weights are loaded next needs neither.

    The backbone starts from ``config.backbone_weights`` when it is set and ``load_weights`` is
    true (a model built for training), read strictly by ``hmr_backbone.load_backbone_weights``
    with ``config.backbone_weights_prefix``; otherwise from random weights. Pass
    ``load_weights=False`` when a checkpoint's weights are loaded next. The backbone's weights
    are channels-last (``ProHMR.features`` then feeds it channels-last images).

    Raises:
        FileNotFoundError: if ``backbone_weights`` names no file.
        ValueError: if that file cannot be read safely; ``WeightsMismatchError`` (a ValueError)
            naming the file and the keys, if its entries do not fit the backbone.
    """
    backbone = ResNet(depth=config.backbone_depth)
    if config.backbone_weights and load_weights:
        load_backbone_weights(
            backbone, config.backbone_weights, prefix=config.backbone_weights_prefix
        )
    # Channels-last convolutions: a ResNet-50 training step 1.25x faster on CPU (batch 8,
    # 2 threads), the layout autocast's convolutions prefer on GPUs; same values to rounding.
    backbone.to(memory_format=torch.channels_last)
    context = backbone.num_features
    flow = FlowConfig(
        features=144,
        context_features=context,
        hidden_features=config.flow_hidden_features,
        num_layers=config.flow_num_layers,
        num_blocks_per_layer=config.flow_num_blocks,
        coupling=config.flow_coupling,
        dropout_probability=config.flow_dropout,
        use_batch_norm=config.flow_batch_norm,
    )
    head = SMPLFlowHead(
        flow,
        fc_hidden_features=config.fc_hidden_features,
        mean_betas=None if mean_betas is None else torch.tensor(np.array(mean_betas)).float(),
        mean_camera=None if mean_camera is None else torch.tensor(np.array(mean_camera)).float(),
    )
    return ProHMR(
        backbone=backbone, head=head, body_model=body_model, focal_length=config.focal_length
    )
