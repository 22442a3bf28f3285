"""ProHMR's SMPL pose head (flow + FC head) and the lifting model's skeleton head.

See docs/model.md#pose-head and docs/model.md#the-lifting-model.

Both heads return N samples per image with sample 0 = the mode (z = 0) when asked for
"mode + N−1 samples", as the original orders them (docs/model.md#the-mode). In training mode
they make the original's two flow calls (the N−1 random samples first, then the mode) so that
batch norm uses and updates the same per-call batch statistics as the original; in eval mode one
call suffices (batch norm uses running statistics) and gives the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from pose_flows.glow import ConditionalGlow, FlowConfig, FlowLogProb, FlowSample
from pose_geometry import rot6d_to_rotmat

__all__ = [
    "FCHead",
    "PoseHeadOutput",
    "SMPLFlowHead",
    "SkeletonFlowHead",
    "SkeletonHeadOutput",
    "sample_with_mode",
]

NUM_SMPL_JOINTS = 24  # global orientation + 23 body joints
NUM_BETAS = 10
NUM_CAMERA = 3


def _mean_buffer(name: str, value: Tensor | np.ndarray | None, size: int) -> Tensor:
    if value is None:
        return torch.zeros(1, 1, size)
    tensor = torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(-1)
    if tensor.numel() != size:
        raise ValueError(f"`{name}` must have {size} values, got shape {tuple(tensor.shape)}")
    return tensor.view(1, 1, size).clone()


class FCHead(nn.Module):
    """Regresses betas and the weak-perspective camera from the image features.

    layers = Sequential(Linear(C → F), ReLU, Linear(F → 13)); the last Linear's weight is
    Xavier-uniform with gain 0.02. Output = layers(features) + [init_betas, init_cam]; every
    sample of an image shares the same betas and camera.

    Args:
        in_features: C (2048 in ProHMR).
        hidden_features: F (1024 in ProHMR).
        mean_betas: (10,) `init_betas`; None gives zeros.
        mean_camera: (3,) `init_cam` (s, tx, ty); None gives zeros. ProHMR loads both from
            `smpl_mean_params.npz` (read it with `pose_body.load_mean_params`; its camera
            is (0.9, 0, 0)).
    """

    def __init__(
        self,
        *,
        in_features: int = 2048,
        hidden_features: int = 1024,
        mean_betas: Tensor | np.ndarray | None = None,
        mean_camera: Tensor | np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden_features),
            nn.ReLU(),
            nn.Linear(hidden_features, NUM_BETAS + NUM_CAMERA),
        )
        nn.init.xavier_uniform_(self.layers[2].weight, gain=0.02)
        self.register_buffer("init_cam", _mean_buffer("mean_camera", mean_camera, NUM_CAMERA))
        self.register_buffer("init_betas", _mean_buffer("mean_betas", mean_betas, NUM_BETAS))

    def forward(self, features: Tensor, num_samples: int = 1) -> tuple[Tensor, Tensor]:
        """(B, C) features -> betas (B, N, 10) and camera (B, N, 3) = (s, tx, ty)."""
        offset = self.layers(features).unsqueeze(1).repeat(1, num_samples, 1)
        betas = offset[..., :NUM_BETAS] + self.init_betas
        camera = offset[..., NUM_BETAS:] + self.init_cam
        return betas, camera


@dataclass(frozen=True)
class PoseHeadOutput:
    """Samples of the SMPL pose head (sample 0 = mode when requested).

    Attributes:
        global_orient: (B, N, 1, 3, 3) root rotation matrices.
        body_pose: (B, N, 23, 3, 3) body joint rotation matrices.
        pose_6d: (B, N, 144) raw flow output, joint-major 6D (not orthonormalised).
        betas: (B, N, 10) shape coefficients (equal over N).
        camera: (B, N, 3) weak-perspective camera (s, tx, ty) in the crop (equal over N).
        log_prob: (B, N) log p(pose_6d | features) in nats.
        z: (B, N, 144) latents.
    """

    global_orient: Tensor
    body_pose: Tensor
    pose_6d: Tensor
    betas: Tensor
    camera: Tensor
    log_prob: Tensor
    z: Tensor


@dataclass(frozen=True)
class SkeletonHeadOutput:
    """Samples of the skeleton head (sample 0 = mode when requested).

    Attributes:
        keypoints_3d: (B, N, J, 3) root-relative 3D joints in metres (J = 16 in ProHMR).
        log_prob: (B, N) log p in nats.
        z: (B, N, 3·J) latents.
    """

    keypoints_3d: Tensor
    log_prob: Tensor
    z: Tensor


def _check_features(features: object, context_features: int) -> Tensor:
    if not isinstance(features, Tensor):
        raise TypeError(f"`features` must be a torch.Tensor, got {type(features).__name__}")
    if features.ndim != 2 or features.shape[1] != context_features:
        raise ValueError(
            f"`features` must have shape (B, {context_features}), got {tuple(features.shape)}"
        )
    return features


def sample_with_mode(
    flow: ConditionalGlow,
    context: Tensor,
    num_samples: int = 1,
    *,
    z: Tensor | None = None,
    generator: torch.Generator | None = None,
    include_mode: bool = True,
) -> FlowSample:
    """Samples with the mode first, as ProHMR's heads draw them (docs/model.md#the-mode).

    - `z` given: pushes exactly those latents (B, N, D); `num_samples` must be 1 or N.
    - `include_mode` False: N random samples.
    - otherwise: sample 0 is the mode (z = 0), samples 1..N−1 random. In training mode this is
      the original's two flow calls, random samples (drawn as one (B, N−1, D) tensor) first, then
      the mode, so each call's batch-norm statistics and running-statistics updates (and dropout
      draws) are the original's; in eval mode one call with z = [0, random] (same values).

    Returns:
        FlowSample(x (B, N, D), log_prob (B, N), z (B, N, D)).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}")
    if z is not None:
        if z.ndim == 3 and num_samples not in (1, z.shape[1]):
            raise ValueError(
                f"`num_samples` ({num_samples}) disagrees with `z` of shape {tuple(z.shape)}; "
                "leave it at 1 when passing z"
            )
        return flow.sample(context, z=z)
    if not include_mode:
        return flow.sample(context, num_samples, generator=generator)
    batch_size = context.shape[0]
    mode_z = context.new_zeros(batch_size, 1, flow.features)
    if num_samples == 1:
        return flow.sample(context, z=mode_z)
    random_z = torch.randn(
        batch_size,
        num_samples - 1,
        flow.features,
        generator=generator,
        dtype=context.dtype,
        device=context.device,
    )
    if not flow.training:
        return flow.sample(context, z=torch.cat((mode_z, random_z), dim=1))
    random = flow.sample(context, z=random_z)
    mode = flow.sample(context, z=mode_z)
    return FlowSample(*(torch.cat(pair, dim=1) for pair in zip(mode, random, strict=True)))


class SMPLFlowHead(nn.Module):
    """ProHMR's SMPL head: ConditionalGlow over 24 joints × 6D plus the FC head.

    Attributes `flow` (ConditionalGlow, D = 144) and `fc_head` (FCHead), so the state dict's keys
    are the original's `flow.*` keys minus the fork's dummy buffers. `log_prob` and `forward` run
    with autocast disabled and the features cast to the flow's dtype (float32), as the original.

    Args:
        flow: the flow's options; `features` must be 144, `context_features` is the image
            feature size C, which the FC head takes too (None: ProHMR's, C = 2048).
        fc_hidden_features: the FC head's hidden width (1024).
        mean_betas: (10,) mean betas for the FC head (None: zeros).
        mean_camera: (3,) mean camera (s, tx, ty) for the FC head (None: zeros).
    """

    def __init__(
        self,
        flow: FlowConfig | None = None,
        *,
        fc_hidden_features: int = 1024,
        mean_betas: Tensor | np.ndarray | None = None,
        mean_camera: Tensor | np.ndarray | None = None,
    ) -> None:
        super().__init__()
        flow = _flow_config(flow, FlowConfig(features=6 * NUM_SMPL_JOINTS, context_features=2048))
        if flow.features != 6 * NUM_SMPL_JOINTS:
            raise ValueError(
                f"`flow.features` must be {6 * NUM_SMPL_JOINTS} (24 joints, 6D each) for the SMPL "
                f"head, got {flow.features}"
            )
        self.num_joints = NUM_SMPL_JOINTS
        self.flow = ConditionalGlow(flow)
        self.fc_head = FCHead(
            in_features=flow.context_features,
            hidden_features=fc_hidden_features,
            mean_betas=mean_betas,
            mean_camera=mean_camera,
        )

    def _features(self, features: object) -> Tensor:
        features = _check_features(features, self.flow.context_features)
        return features.to(self.flow._transform._transforms[0].log_scale.dtype)

    def log_prob(self, pose_6d: Tensor, features: Tensor) -> FlowLogProb:
        """log p(pose | features) of 6D poses.

        Args:
            pose_6d: (B, N, 144) (or (B, 144)) joint-major 6D: global orientation first, then
                the 23 body joints ([global_orient (6), body_pose (138)] in the original).
            features: (B, C) image features.

        Returns:
            FlowLogProb(log_prob (B, N), z (B, N, 144)) (no N axis for (B, 144) input).
        """
        if not isinstance(pose_6d, Tensor):
            raise TypeError(f"`pose_6d` must be a torch.Tensor, got {type(pose_6d).__name__}")
        with torch.autocast(device_type=pose_6d.device.type, enabled=False):
            features = self._features(features)
            return self.flow.log_prob(pose_6d.to(features.dtype), features)

    def forward(
        self,
        features: Tensor,
        num_samples: int = 1,
        *,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        include_mode: bool = True,
    ) -> PoseHeadOutput:
        """Sample poses (sample 0 = mode unless `include_mode` is False or `z` is given).

        Args:
            features: (B, C) image features (any float dtype; cast to float32).
            num_samples: N.
            z: (B, N, 144) latents to decode instead of sampling (z = 0 is the mode).
            generator: random generator for the latents (global generator if None).
            include_mode: put the mode at sample 0 (ProHMR's behaviour).

        Returns:
            PoseHeadOutput with (B, N, ...) tensors (see its docstring).
        """
        with torch.autocast(device_type=_device_type(features), enabled=False):
            features = self._features(features)
            sample = sample_with_mode(
                self.flow,
                features,
                num_samples,
                z=z,
                generator=generator,
                include_mode=include_mode,
            )
            batch_size, n = sample.x.shape[:2]
            rotmat = rot6d_to_rotmat(sample.x.reshape(batch_size, n, self.num_joints, 6))
            betas, camera = self.fc_head(features, n)
        return PoseHeadOutput(
            global_orient=rotmat[:, :, :1],
            body_pose=rotmat[:, :, 1:],
            pose_6d=sample.x,
            betas=betas,
            camera=camera,
            log_prob=sample.log_prob,
            z=sample.z,
        )


class SkeletonFlowHead(nn.Module):
    """The lifting model's head: ConditionalGlow over J root-relative 3D joints.

    Attribute `flow` (D = 3·J, joint-major xyz), so state-dict keys equal the original's `flow.*`
    keys minus the dummy buffers. No autocast handling (the original has none; it trains in fp32).

    Args:
        flow: the flow's options; `features` = 3·J, a multiple of 3 (None: the original's,
            J = 16 root-relative joints without the pelvis and C = 1024, the FC-ResNet's output).
    """

    def __init__(self, flow: FlowConfig | None = None) -> None:
        super().__init__()
        flow = _flow_config(flow, FlowConfig(features=3 * 16, context_features=1024))
        if flow.features % 3:
            raise ValueError(
                f"`flow.features` must be 3·J (xyz per joint) for the skeleton head, "
                f"got {flow.features}"
            )
        self.num_joints = flow.features // 3
        self.flow = ConditionalGlow(flow)

    def log_prob(self, keypoints_3d: Tensor, features: Tensor) -> FlowLogProb:
        """log p(joints | features).

        Args:
            keypoints_3d: (B, N, J, 3) or (B, N, 3·J) root-relative joints in metres.
            features: (B, C) lifting features.

        Returns:
            FlowLogProb(log_prob (B, N), z (B, N, 3·J)).
        """
        features = _check_features(features, self.flow.context_features)
        if not isinstance(keypoints_3d, Tensor):
            raise TypeError(
                f"`keypoints_3d` must be a torch.Tensor, got {type(keypoints_3d).__name__}"
            )
        d = 3 * self.num_joints
        if keypoints_3d.ndim == 4 and keypoints_3d.shape[2:] == (self.num_joints, 3):
            keypoints_3d = keypoints_3d.flatten(2)
        if keypoints_3d.ndim != 3 or keypoints_3d.shape[2] != d:
            raise ValueError(
                f"`keypoints_3d` must have shape (B, N, {self.num_joints}, 3) or (B, N, {d}), "
                f"got {tuple(keypoints_3d.shape)}"
            )
        return self.flow.log_prob(keypoints_3d, features)

    def forward(
        self,
        features: Tensor,
        num_samples: int = 1,
        *,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        include_mode: bool = True,
    ) -> SkeletonHeadOutput:
        """Sample skeletons (sample 0 = mode unless `include_mode` is False or `z` is given).

        Args:
            features: (B, C) lifting features.
            num_samples: N.
            z: (B, N, 3·J) latents to decode instead of sampling.
            generator: random generator for the latents.
            include_mode: put the mode at sample 0.

        Returns:
            SkeletonHeadOutput(keypoints_3d (B, N, J, 3), log_prob (B, N), z (B, N, 3·J)).
        """
        features = _check_features(features, self.flow.context_features)
        sample = sample_with_mode(
            self.flow,
            features,
            num_samples,
            z=z,
            generator=generator,
            include_mode=include_mode,
        )
        batch_size, n = sample.x.shape[:2]
        return SkeletonHeadOutput(
            keypoints_3d=sample.x.view(batch_size, n, self.num_joints, 3),
            log_prob=sample.log_prob,
            z=sample.z,
        )


def _flow_config(flow: object, default: FlowConfig) -> FlowConfig:
    if flow is None:
        return default
    if not isinstance(flow, FlowConfig):
        raise TypeError(f"`flow` must be a FlowConfig, got {type(flow).__name__}")
    return flow


def _device_type(x: object) -> str:
    return x.device.type if isinstance(x, Tensor) else "cpu"
