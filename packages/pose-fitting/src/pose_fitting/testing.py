"""Toy models for tests, examples and smoke runs (no SMPL, no flow, no files).

- `ToyKinematicBody`: a body-model callable with SMPL's 24-joint kinematic tree
  (`pose_geometry.SMPL_PARENTS`), bone lengths changed linearly by the betas, and 44 keypoints
  (the 24 joints plus 20 markers rigidly attached to joints, so that every joint rotation is
  visible). The 44 keypoints do not carry the semantics of ProHMR's 44 layout.
- `LinearPoseDecoder`: a decoder callable ``z -> (global_orient, body_pose)`` through a fixed
  linear map to ProHMR 6D rotations (z = 0 gives a fixed base pose), standing in for the flow.
- `synthetic_gaussian_mixture`: arrays shaped like SMPLify's ``gmm_08.pkl``.
- `toy_keypoint_problem`: a batch of known poses, shapes and cameras with their exact 2D
  keypoints, to fit with the toy models.

Everything follows the dtype and device of its inputs; randomness takes a `generator`. The toy
models are *batch-invariant*: they use elementwise products and per-row sums instead of matrix
kernels, so an item's numbers are bitwise the same whatever the batch it is in (matrix-multiply
kernels may round differently for different batch sizes). That lets tests check that fitting a
batch equals fitting each item alone exactly.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pose_geometry import (
    SMPL_PARENTS,
    check_floating,
    check_trailing_shape,
    project_points,
    rot6d_to_rotmat,
)

__all__ = [
    "LinearPoseDecoder",
    "ToyKeypointProblem",
    "ToyKinematicBody",
    "cxx_compiler",
    "synthetic_gaussian_mixture",
    "toy_keypoint_problem",
]

# Rest positions of the 24 SMPL joints of a rough 1.7 m person (metres; x left, y up, z forward).
_REST_JOINTS: tuple[tuple[float, float, float], ...] = (
    (0.00, 0.00, 0.00),  # 0 pelvis
    (0.07, -0.09, 0.00),  # 1 left hip
    (-0.07, -0.09, 0.00),  # 2 right hip
    (0.00, 0.11, -0.02),  # 3 spine1
    (0.11, -0.47, 0.01),  # 4 left knee
    (-0.11, -0.47, 0.01),  # 5 right knee
    (0.00, 0.25, 0.00),  # 6 spine2
    (0.09, -0.87, -0.04),  # 7 left ankle
    (-0.09, -0.87, -0.04),  # 8 right ankle
    (0.00, 0.30, 0.02),  # 9 spine3
    (0.12, -0.93, 0.08),  # 10 left foot
    (-0.12, -0.93, 0.08),  # 11 right foot
    (0.00, 0.51, -0.01),  # 12 neck
    (0.08, 0.42, 0.00),  # 13 left collar
    (-0.08, 0.42, 0.00),  # 14 right collar
    (0.01, 0.58, 0.05),  # 15 head
    (0.17, 0.45, -0.01),  # 16 left shoulder
    (-0.17, 0.45, -0.01),  # 17 right shoulder
    (0.43, 0.44, -0.03),  # 18 left elbow
    (-0.43, 0.44, -0.03),  # 19 right elbow
    (0.68, 0.45, -0.02),  # 20 left wrist
    (-0.68, 0.45, -0.02),  # 21 right wrist
    (0.76, 0.44, -0.03),  # 22 left hand
    (-0.76, 0.44, -0.03),  # 23 right hand
)

# Joints that carry a marker (keypoints 24..43), and the marker offsets in the joint's frame.
_MARKER_JOINTS: tuple[int, ...] = (
    0,
    1,
    2,
    4,
    5,
    7,
    8,
    9,
    10,
    11,
    12,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
)


def _matvec(matrix: Tensor, vector: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3) with an elementwise product and a sum (batch-invariant)."""
    return (matrix * vector.unsqueeze(-2)).sum(dim=-1)


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    """(..., 3, 3) @ (..., 3, 3) with an elementwise product and a sum (batch-invariant)."""
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(dim=-2)


def _marker_offsets() -> list[tuple[float, float, float]]:
    out = []
    for i in range(len(_MARKER_JOINTS)):
        a = 0.9 * i + 0.3
        out.append((0.05 * math.cos(a), 0.04 * math.sin(1.3 * a), 0.06 * math.cos(0.7 * a + 1.0)))
    return out


class ToyKinematicBody:
    """A 24-joint kinematic chain with 44 keypoints: a stand-in for SMPL in tests.

    ``keypoints = body(global_orient, body_pose, betas)``: forward kinematics on
    `pose_geometry.SMPL_PARENTS` with the root at the origin; bone j has rest offset
    ``o_j · (1 + Σ_s A_js β_s)`` (A fixed, entries up to 0.05, so betas change bone lengths
    linearly). Keypoints 0..23 are the joints, 24..43 markers rigidly attached to 20 joints.

    Args:
        num_betas: number of shape coefficients S (default 10).
    """

    num_keypoints = 44
    num_body_joints = 23

    def __init__(self, *, num_betas: int = 10) -> None:
        if num_betas < 0:
            raise ValueError(f"`num_betas` must be >= 0, got {num_betas}")
        self.num_betas = num_betas
        rest = torch.tensor(_REST_JOINTS, dtype=torch.float64)
        parents = torch.tensor([max(p, 0) for p in SMPL_PARENTS])
        offsets = rest - rest[parents]
        offsets[0] = 0.0
        self._offsets = offsets
        j = torch.arange(24, dtype=torch.float64).unsqueeze(1)
        s = torch.arange(num_betas, dtype=torch.float64).unsqueeze(0)
        self._shape_dirs = 0.05 * torch.sin(1.7 * j + 0.9 * s + 0.3)
        self._markers = torch.tensor(_marker_offsets(), dtype=torch.float64)

    def __call__(self, global_orient: Tensor, body_pose: Tensor, betas: Tensor) -> Tensor:
        """Keypoints of the posed toy body.

        Args:
            global_orient: (B, 1, 3, 3) root rotation.
            body_pose: (B, 23, 3, 3) rotations of joints 1..23 relative to their parents.
            betas: (B, S) shape coefficients.

        Returns:
            (B, 44, 3) keypoints in metres, root at the origin.
        """
        check_trailing_shape("global_orient", global_orient, 1, 3, 3)
        check_trailing_shape("body_pose", body_pose, 23, 3, 3)
        check_trailing_shape("betas", betas, self.num_betas)
        check_floating("body_pose", body_pose)
        kw = {"dtype": body_pose.dtype, "device": body_pose.device}
        rot = torch.cat([global_orient.to(**kw), body_pose], dim=1)  # (B, 24, 3, 3)
        dirs = self._shape_dirs.to(**kw)
        scale = 1.0 + (betas.to(**kw).unsqueeze(-2) * dirs).sum(dim=-1)  # (B, 24)
        offsets = self._offsets.to(**kw) * scale.unsqueeze(-1)  # (B, 24, 3)
        frames: list[Tensor] = [rot[:, 0]]
        positions: list[Tensor] = [torch.zeros_like(offsets[:, 0])]
        for j in range(1, 24):
            p = SMPL_PARENTS[j]
            positions.append(positions[p] + _matvec(frames[p], offsets[:, j]))
            frames.append(_matmul(frames[p], rot[:, j]))
        joints = torch.stack(positions, dim=1)
        frame = torch.stack(frames, dim=1)
        idx = list(_MARKER_JOINTS)
        markers = joints[:, idx] + _matvec(frame[:, idx], self._markers.to(**kw))
        return torch.cat([joints, markers], dim=1)


class LinearPoseDecoder:
    """``z -> (global_orient, body_pose)`` through a fixed linear map into ProHMR's 6D.

    ``rot6d = base + W z`` per joint (24 joints, joint 0 = global orientation), then
    `pose_geometry.rot6d_to_rotmat`. ``base`` is the identity rotation for every joint except
    the root, which gets `base_global_orient` (default: 180° about x, the upright-person
    orientation in camera axes).

    Args:
        latent_dim: D, the size of z.
        scale: standard deviation of the entries of W.
        generator: random generator for W.
        base_global_orient: (3, 3) rotation of the root at z = 0.
    """

    def __init__(
        self,
        *,
        latent_dim: int,
        scale: float = 0.3,
        generator: torch.Generator | None = None,
        base_global_orient: Tensor | None = None,
    ) -> None:
        if latent_dim < 1:
            raise ValueError(f"`latent_dim` must be >= 1, got {latent_dim}")
        self.latent_dim = latent_dim
        self.weight = scale * torch.randn(
            24 * 6, latent_dim, dtype=torch.float64, generator=generator
        )
        base_root = (
            torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
            if base_global_orient is None
            else base_global_orient.to(torch.float64)
        )
        identity6 = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
        bias = identity6.repeat(24, 1)
        bias[0] = base_root[:, :2].T.reshape(6)
        self.bias = bias.reshape(-1)

    def rot6d(self, z: Tensor) -> Tensor:
        """(B, D) latents -> (B, 24, 6) 6D rotations."""
        check_trailing_shape("z", z, self.latent_dim)
        check_floating("z", z)
        kw = {"dtype": z.dtype, "device": z.device}
        out = (z.unsqueeze(-2) * self.weight.to(**kw)).sum(dim=-1) + self.bias.to(**kw)
        return out.reshape(*z.shape[:-1], 24, 6)

    def __call__(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D) latents -> (global_orient (B, 1, 3, 3), body_pose (B, 23, 3, 3))."""
        rotmats = rot6d_to_rotmat(self.rot6d(z))
        return rotmats[..., :1, :, :], rotmats[..., 1:, :, :]


def synthetic_gaussian_mixture(
    *, num_components: int = 8, dim: int = 69, generator: torch.Generator | None = None
) -> dict[str, np.ndarray]:
    """Random arrays in the layout of SMPLify's ``gmm_08.pkl``.

    Returns:
        ``{"means": (K, D), "covars": (K, D, D) symmetric positive definite,
        "weights": (K,) positive, summing to 1}`` as float64 numpy arrays.
    """
    means = 0.1 * torch.randn(num_components, dim, dtype=torch.float64, generator=generator)
    a = torch.randn(num_components, dim, dim, dtype=torch.float64, generator=generator)
    covars = a @ a.transpose(-1, -2) / (4 * dim) + 0.02 * torch.eye(dim, dtype=torch.float64)
    raw = torch.rand(num_components, dtype=torch.float64, generator=generator) + 0.5
    weights = raw / raw.sum()
    return {"means": means.numpy(), "covars": covars.numpy(), "weights": weights.numpy()}


@dataclass(frozen=True)
class ToyKeypointProblem:
    """A batch of known toy bodies and their exact 2D keypoints.

    Attributes:
        decoder: the `LinearPoseDecoder` that made the poses.
        body_model: the `ToyKinematicBody`.
        z: (B, D) true latents.
        betas: (B, 10) true betas.
        camera_translation: (B, 3) true camera translations in metres.
        focal_px: focal length in pixels (one float for the batch).
        image_size_px: (B, 2) image sizes (W, H); the principal point is the image centre.
        keypoints_3d: (B, 44, 3) true body keypoints (metres, body frame).
        keypoints_2d: (B, 44, 3) their projections in pixels with confidence 1.
    """

    decoder: LinearPoseDecoder
    body_model: ToyKinematicBody
    z: Tensor
    betas: Tensor
    camera_translation: Tensor
    focal_px: float
    image_size_px: Tensor
    keypoints_3d: Tensor
    keypoints_2d: Tensor


def toy_keypoint_problem(
    *,
    batch_size: int,
    latent_dim: int = 8,
    pose_scale: float = 0.3,
    betas_scale: float = 0.3,
    depth_m: float = 50.0,
    focal_px: float = 5000.0,
    image_size_px: tuple[float, float] = (640.0, 480.0),
    dtype: torch.dtype = torch.float64,
    generator: torch.Generator | None = None,
) -> ToyKeypointProblem:
    """Draw a batch of toy bodies (z ~ N(0, pose_scale²)) and project them exactly.

    The camera looks at the body from about `depth_m` metres with focal `focal_px`, as ProHMR's
    fitting does (5000 px, depth ~ 2·5000 / (224·s)); the translations vary a little per item.
    """
    decoder = LinearPoseDecoder(latent_dim=latent_dim, generator=generator)
    body = ToyKinematicBody()
    kw = {"dtype": dtype}
    z = pose_scale * torch.randn(batch_size, latent_dim, generator=generator, **kw)
    betas = betas_scale * torch.randn(batch_size, 10, generator=generator, **kw)
    jitter = torch.randn(batch_size, 3, generator=generator, **kw)
    translation = torch.tensor([0.1, 0.2, depth_m], **kw) + jitter * torch.tensor(
        [0.1, 0.1, 0.05 * depth_m], **kw
    )
    size = torch.tensor(image_size_px, **kw).expand(batch_size, 2).clone()
    global_orient, body_pose = decoder(z)
    joints = body(global_orient, body_pose, betas)
    uv = project_points(joints, focal_px=focal_px, center_px=0.5 * size, translation=translation)
    keypoints_2d = torch.cat([uv, torch.ones_like(uv[..., :1])], dim=-1)
    return ToyKeypointProblem(
        decoder=decoder,
        body_model=body,
        z=z,
        betas=betas,
        camera_translation=translation,
        focal_px=focal_px,
        image_size_px=size,
        keypoints_3d=joints,
        keypoints_2d=keypoints_2d,
    )


def cxx_compiler() -> str | None:
    """Path of a C++ compiler ``torch.compile`` could use on CPU (CXX, g++, c++, clang++), or
    None: tests of the compiled fitting skip without one."""
    names = (os.environ.get("CXX", ""), "g++", "c++", "clang++")
    return next((path for path in map(shutil.which, filter(None, names)) if path), None)
