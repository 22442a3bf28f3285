"""Rotation conversions: axis-angle, quaternions (w, x, y, z), rotation matrices and ProHMR's 6D.

All functions take any leading batch dimensions, work in float32 and float64, keep the input's
device and dtype, and are differentiable with finite gradients at the singular points (the zero
rotation and rotations by pi), where they use series expansions or branch-free selections.

Rotation matrices act on column vectors (x' = R x). Axis-angle vectors are axis × angle (radians).
The 6D representation (Zhou et al., "On the Continuity of Rotation Representations in Neural
Networks", CVPR 2019) is stored in ProHMR's layout: the first two COLUMNS of R,
(R00, R10, R20, R01, R11, R21). pytorch3d stores rows instead; the two are not interchangeable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pose_geometry._batch import flatten_leading, restore_leading
from pose_geometry.checks import check_floating, check_trailing_shape

__all__ = [
    "axis_angle_to_quat_wxyz",
    "axis_angle_to_rotmat",
    "quat_wxyz_to_axis_angle",
    "quat_wxyz_to_rotmat",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quat_wxyz",
    "rotmat_to_rot6d",
]

# Below this squared angle (rad^2) the closed forms are replaced by their Taylor series, whose
# truncation error (~theta^6) is below float64 round-off there.
_SMALL_ANGLE_SQ = 1e-6


def _skew(v: Tensor) -> Tensor:
    """(M, 3) vectors -> (M, 3, 3) cross-product matrices [v]_x."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_rotmat(axis_angle: Tensor) -> Tensor:
    """Convert axis-angle vectors to rotation matrices (Rodrigues' formula).

    R = I + a·[v]_x + b·[v]_x² with a = sin θ / θ and b = (1 - cos θ) / θ², θ = ‖v‖. Near θ = 0
    both coefficients come from their Taylor series, so the value and the gradient are exact and
    finite at the zero rotation.

    Args:
        axis_angle: (..., 3) rotation vectors (unit axis × angle in radians).

    Returns:
        (..., 3, 3) rotation matrices acting on column vectors.

    Raises:
        ValueError: if `axis_angle` does not end with 3.
        TypeError: if it is not a floating-point tensor.
    """
    check_trailing_shape("axis_angle", axis_angle, 3)
    check_floating("axis_angle", axis_angle)
    v, leading = flatten_leading(axis_angle, 1)
    theta_sq = (v * v).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    # Evaluate the closed form on a safe angle so the unused branch never produces NaN gradients.
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    safe_theta = safe_sq.sqrt()
    a = torch.where(small, 1 - theta_sq / 6 + theta_sq**2 / 120, safe_theta.sin() / safe_theta)
    b = torch.where(
        small, 0.5 - theta_sq / 24 + theta_sq**2 / 720, (1 - safe_theta.cos()) / safe_sq
    )
    K = _skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(K)
    R = eye + a[:, None, None] * K + b[:, None, None] * (K @ K)
    return restore_leading(R, leading)


def axis_angle_to_quat_wxyz(axis_angle: Tensor) -> Tensor:
    """Convert axis-angle vectors to unit quaternions (w, x, y, z) with w >= 0 for θ <= π.

    Args:
        axis_angle: (..., 3) rotation vectors (radians).

    Returns:
        (..., 4) unit quaternions (w, x, y, z).
    """
    check_trailing_shape("axis_angle", axis_angle, 3)
    check_floating("axis_angle", axis_angle)
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    half = 0.5 * safe_sq.sqrt()
    # sin(θ/2)/θ and cos(θ/2), with series near 0.
    k = torch.where(small, 0.5 - theta_sq / 48 + theta_sq**2 / 3840, half.sin() / (2 * half))
    w = torch.where(small, 1 - theta_sq / 8 + theta_sq**2 / 384, half.cos())
    return torch.cat([w, k * axis_angle], dim=-1)


def quat_wxyz_to_rotmat(quat_wxyz: Tensor) -> Tensor:
    """Convert quaternions (w, x, y, z) to rotation matrices.

    The quaternion is normalised first, so any non-zero quaternion is accepted; q and -q give the
    same matrix.

    Args:
        quat_wxyz: (..., 4) quaternions, scalar part first.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    check_trailing_shape("quat_wxyz", quat_wxyz, 4)
    check_floating("quat_wxyz", quat_wxyz)
    q = F.normalize(quat_wxyz, dim=-1)
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    R = torch.stack(
        [
            1 - 2 * (yy + zz),
            2 * (xy - wz),
            2 * (xz + wy),
            2 * (xy + wz),
            1 - 2 * (xx + zz),
            2 * (yz - wx),
            2 * (xz - wy),
            2 * (yz + wx),
            1 - 2 * (xx + yy),
        ],
        dim=-1,
    )
    return R.reshape(*q.shape[:-1], 3, 3)


def rotmat_to_quat_wxyz(rotmat: Tensor) -> Tensor:
    """Convert rotation matrices to unit quaternions (w, x, y, z) with w >= 0.

    Uses the numerically stable branch per matrix (the largest of w², x², y², z², as in
    Shepperd's method), so rotations by π are handled exactly and gradients stay finite.

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 4) unit quaternions, scalar part first, canonicalised to w >= 0.
    """
    check_trailing_shape("rotmat", rotmat, 3, 3)
    check_floating("rotmat", rotmat)
    R, leading = flatten_leading(rotmat, 2)
    r00, r01, r02 = R[:, 0, 0], R[:, 0, 1], R[:, 0, 2]
    r10, r11, r12 = R[:, 1, 0], R[:, 1, 1], R[:, 1, 2]
    r20, r21, r22 = R[:, 2, 0], R[:, 2, 1], R[:, 2, 2]
    # 4·(w², x², y², z²); the largest one is bounded away from zero (>= 1 for a rotation).
    sq = torch.stack(
        [1 + r00 + r11 + r22, 1 + r00 - r11 - r22, 1 - r00 + r11 - r22, 1 - r00 - r11 + r22],
        dim=-1,
    )
    # Each candidate row is 4·q_i·q for one choice of i (i = w, x, y, z).
    candidates = torch.stack(
        [
            torch.stack([sq[:, 0], r21 - r12, r02 - r20, r10 - r01], dim=-1),
            torch.stack([r21 - r12, sq[:, 1], r10 + r01, r02 + r20], dim=-1),
            torch.stack([r02 - r20, r10 + r01, sq[:, 2], r21 + r12], dim=-1),
            torch.stack([r10 - r01, r20 + r02, r21 + r12, sq[:, 3]], dim=-1),
        ],
        dim=-2,
    )
    best = sq.argmax(dim=-1)
    denom = 2 * sq.gather(-1, best[:, None]).clamp_min(1e-12).sqrt()  # = 4·|q_i|
    q = candidates[torch.arange(R.shape[0], device=R.device), best] / denom
    q = torch.where(q[:, :1] < 0, -q, q)
    q = F.normalize(q, dim=-1)
    return restore_leading(q, leading)


def quat_wxyz_to_axis_angle(quat_wxyz: Tensor) -> Tensor:
    """Convert quaternions (w, x, y, z) to axis-angle vectors with angle in [0, π].

    The quaternion is normalised and put in the hemisphere w >= 0 first. Near the zero rotation a
    series keeps the value and gradient finite.

    Args:
        quat_wxyz: (..., 4) quaternions, scalar part first.

    Returns:
        (..., 3) rotation vectors (radians).
    """
    check_trailing_shape("quat_wxyz", quat_wxyz, 4)
    check_floating("quat_wxyz", quat_wxyz)
    q = F.normalize(quat_wxyz, dim=-1)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, xyz = q[..., :1], q[..., 1:]
    n_sq = (xyz * xyz).sum(-1, keepdim=True)
    small = n_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(n_sq), n_sq)
    safe_n = safe_sq.sqrt()
    # θ / n with θ = 2·atan2(n, w); for small n: (2/w)(1 - n²/(3w²)) to second order.
    safe_w = torch.where(small, w, torch.ones_like(w))
    scale = torch.where(
        small,
        2 / safe_w * (1 - n_sq / (3 * safe_w * safe_w)),
        2 * torch.atan2(safe_n, w) / safe_n,
    )
    return scale * xyz


def rotmat_to_axis_angle(rotmat: Tensor) -> Tensor:
    """Convert rotation matrices to axis-angle vectors (angle in [0, π]).

    Goes through the stable quaternion conversion, so it is accurate near 0 and near π (where
    the arccos of the trace would lose precision).

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 3) rotation vectors (radians). For an angle of exactly π the sign of the axis is
        one of the two equivalent choices.
    """
    return quat_wxyz_to_axis_angle(rotmat_to_quat_wxyz(rotmat))


def rot6d_to_rotmat(rot6d: Tensor) -> Tensor:
    """Convert ProHMR 6D rotations to rotation matrices by Gram–Schmidt (Zhou et al. 2019).

    The six numbers are the first two COLUMNS of R (ProHMR's layout): a1 = (v0, v1, v2),
    a2 = (v3, v4, v5). Then b1 = a1/‖a1‖, b2 = normalise(a2 - (b1·a2) b1), b3 = b1 × b2 and
    R = [b1 | b2 | b3] (columns). Norms are clamped at 1e-12 as in the original.

    Args:
        rot6d: (..., 6) unconstrained 6D rotations.

    Returns:
        (..., 3, 3) rotation matrices with det = +1.
    """
    check_trailing_shape("rot6d", rot6d, 6)
    check_floating("rot6d", rot6d)
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_rot6d(rotmat: Tensor) -> Tensor:
    """Convert rotation matrices to ProHMR 6D: the first two columns (R00, R10, R20, R01, R11, R21).

    Args:
        rotmat: (..., 3, 3) rotation matrices.

    Returns:
        (..., 6) 6D rotations; `rot6d_to_rotmat` inverts this exactly for rotation matrices.
    """
    check_trailing_shape("rotmat", rotmat, 3, 3)
    check_floating("rotmat", rotmat)
    return rotmat[..., :, :2].transpose(-1, -2).reshape(*rotmat.shape[:-2], 6)
