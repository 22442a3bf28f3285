"""Objective terms of the fittings, as pure per-item functions.

Every function returns one value per item (or per item and view) and leaves the weighting to the
caller; the fitting functions square their weights as the originals do (``weight**2 · term``).
Units: 2D keypoints and residuals in pixels, translations in metres, angles in radians.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_geometry import check_floating, check_trailing_shape

__all__ = [
    "ANGLE_PRIOR_AXES",
    "ANGLE_PRIOR_BODY_JOINT_IDX",
    "ANGLE_PRIOR_SIGNS",
    "ANGLE_PRIOR_SMPL_JOINTS",
    "acceleration_term",
    "angle_prior",
    "depth_deviation",
    "geman_mcclure",
    "image_size_weight",
    "reprojection_term",
    "rotation_consistency",
    "squared_norm",
]

#: SMPL joints (SMPL numbering, 0 = pelvis) penalised by SMPLify's angle prior: left elbow,
#: right elbow, left knee, right knee.
ANGLE_PRIOR_SMPL_JOINTS: tuple[int, ...] = (18, 19, 4, 5)

#: The same joints as indices into the 23 body-pose joints (``body_pose[..., j - 1, :]``).
ANGLE_PRIOR_BODY_JOINT_IDX: tuple[int, ...] = (17, 18, 3, 4)

#: Axis-angle component of each joint used by the prior: y (1) for the elbows, x (0) for the
#: knees. In SMPLify's 72-vector (global orientation first) these are entries 55, 58, 12, 15.
ANGLE_PRIOR_AXES: tuple[int, ...] = (1, 1, 0, 0)

#: Sign applied before the exponential: bending in the natural direction is cheap, the unnatural
#: direction (hyper-extension) grows exponentially.
ANGLE_PRIOR_SIGNS: tuple[float, ...] = (1.0, -1.0, -1.0, -1.0)


def geman_mcclure(residual: Tensor, *, sigma: float) -> Tensor:
    """Geman–McClure robust penalty ``ρ(x) = σ²x² / (σ² + x²)``, elementwise.

    Behaves like ``x²`` for ``|x| << σ`` and saturates at ``σ²`` for ``|x| >> σ``.

    Args:
        residual: (...) residuals (pixels for keypoint fitting).
        sigma: scale ``σ`` in the units of `residual` (ProHMR and SMPLify: 100 px).

    Returns:
        (...) penalties, same shape as `residual`.
    """
    check_floating("residual", residual)
    if not sigma > 0:
        raise ValueError(f"`sigma` must be positive, got {sigma!r}")
    sq = residual * residual
    s2 = float(sigma) ** 2
    return s2 * sq / (s2 + sq)


def image_size_weight(image_size_px: Tensor, *, reference_px: float) -> Tensor:
    """ProHMR's per-image data-term weight ``(reference / max(W, H))²``.

    ProHMR's keypoint fitting uses ``reference = 1000``: the reprojection error is measured as if
    the image's longer side were 1000 px, so the balance against the priors does not depend on
    the image resolution.

    Args:
        image_size_px: (..., 2) image sizes ``(W, H)`` in pixels.
        reference_px: the reference size in pixels.

    Returns:
        (...) weights.
    """
    check_trailing_shape("image_size_px", image_size_px, 2)
    check_floating("image_size_px", image_size_px)
    return (reference_px / image_size_px.amax(dim=-1)) ** 2


def reprojection_term(
    projected_px: Tensor,
    keypoints_2d: Tensor,
    *,
    sigma_px: float,
    weight: Tensor | float = 1.0,
) -> Tensor:
    """Confidence-weighted robust reprojection error per item.

    ``weight · Σ_k conf_k² · Σ_c ρ(projected_kc - target_kc)`` with ρ = `geman_mcclure`,
    applied per coordinate, as ProHMR's keypoint fitting and SMPLify.

    Args:
        projected_px: (..., K, 2) projected model keypoints in pixels.
        keypoints_2d: (..., K, 3) target keypoints: pixels ``(u, v)`` and confidence.
        sigma_px: Geman–McClure scale in pixels.
        weight: float or (...) per-item weights (e.g. `image_size_weight`).

    Returns:
        (...) per-item data terms.
    """
    check_trailing_shape("projected_px", projected_px, None, 2)
    check_trailing_shape("keypoints_2d", keypoints_2d, None, 3)
    if projected_px.shape[:-1] != keypoints_2d.shape[:-1]:
        raise ValueError(
            f"`projected_px` {tuple(projected_px.shape)} and `keypoints_2d` "
            f"{tuple(keypoints_2d.shape)} must agree in every dimension but the last"
        )
    residual = projected_px - keypoints_2d[..., :2]
    conf = keypoints_2d[..., 2]
    per_keypoint = geman_mcclure(residual, sigma=sigma_px).sum(dim=-1)
    return weight * (conf * conf * per_keypoint).sum(dim=-1)


def squared_norm(x: Tensor, *, num_batch_dims: int = 1) -> Tensor:
    """Sum of squares over every dimension after the first `num_batch_dims` (‖z‖², ‖β‖²).

    Args:
        x: (*batch, ...) values.
        num_batch_dims: how many leading dimensions are batch dimensions.

    Returns:
        (*batch) sums of squares.
    """
    check_floating("x", x)
    if x.ndim < num_batch_dims:
        raise ValueError(
            f"`x` must have at least num_batch_dims = {num_batch_dims} dimensions, "
            f"got {tuple(x.shape)}"
        )
    return (x * x).reshape(*x.shape[:num_batch_dims], -1).sum(dim=-1)


def rotation_consistency(rotmats: Tensor) -> Tensor:
    """Multiview consistency of joint rotations (ProHMR Eq. 12), per view.

    ``Σ_j ‖R_vj - R̄_j‖_F²`` with ``R̄_j = mean_v R_vj``, the plain element-wise mean over the
    views (not re-orthonormalised), as ProHMR's multiview refinement.

    Args:
        rotmats: (..., V, J, 3, 3) rotation matrices of J joints seen from V views.

    Returns:
        (..., V) per-view terms; sum over V for the total.
    """
    check_trailing_shape("rotmats", rotmats, None, None, 3, 3)
    check_floating("rotmats", rotmats)
    mean = rotmats.mean(dim=-4, keepdim=True)
    diff = rotmats - mean
    return (diff * diff).sum(dim=(-1, -2, -3))


def angle_prior(body_pose_axis_angle: Tensor) -> Tensor:
    """SMPLify's angle prior on elbows and knees (Bogo et al. 2016).

    ``Σ_i exp(s_i · θ_i)²`` over the four components named by `ANGLE_PRIOR_BODY_JOINT_IDX`,
    `ANGLE_PRIOR_AXES` and `ANGLE_PRIOR_SIGNS`: left elbow +y, right elbow -y, left knee -x,
    right knee -x (axis-angle components in radians).

    Args:
        body_pose_axis_angle: (..., 23, 3) SMPL body-pose axis-angle vectors (joints 1..23).

    Returns:
        (...) per-item priors.
    """
    check_trailing_shape("body_pose_axis_angle", body_pose_axis_angle, 23, 3)
    check_floating("body_pose_axis_angle", body_pose_axis_angle)
    joints = torch.tensor(ANGLE_PRIOR_BODY_JOINT_IDX, device=body_pose_axis_angle.device)
    axes = torch.tensor(ANGLE_PRIOR_AXES, device=body_pose_axis_angle.device)
    signs = torch.tensor(
        ANGLE_PRIOR_SIGNS, dtype=body_pose_axis_angle.dtype, device=body_pose_axis_angle.device
    )
    angles = body_pose_axis_angle[..., joints, axes]
    return torch.exp(signs * angles).pow(2).sum(dim=-1)


def depth_deviation(translation: Tensor, reference_translation: Tensor) -> Tensor:
    """Squared change of camera depth ``(t_z - t_z,ref)²`` (SMPLify-style camera regulariser).

    Args:
        translation: (..., 3) camera translations in metres.
        reference_translation: (..., 3) reference (initial) translations in metres.

    Returns:
        (...) squared depth differences in m².
    """
    check_trailing_shape("translation", translation, 3)
    check_trailing_shape("reference_translation", reference_translation, 3)
    return (translation[..., 2] - reference_translation[..., 2]) ** 2


def acceleration_term(points: Tensor) -> Tensor:
    """Squared accelerations of a point sequence: ``Σ_t Σ_k ‖p[t+1] - 2 p[t] + p[t-1]‖²``.

    The smoothness term of sequence fitting (`fit_keypoints_sequence`); zero for points moving
    at constant velocity.

    Args:
        points: (..., T, K, 3) points over T >= 3 frames (metres for body keypoints).

    Returns:
        (...) sums over the T - 2 inner frames and the K points, in squared units per frame⁴
        (m²/frame⁴).
    """
    check_floating("points", points)
    if points.ndim < 3 or points.shape[-1] != 3 or points.shape[-3] < 3:
        raise ValueError(
            f"`points` must have shape (..., T, K, 3) with T >= 3 frames, got {tuple(points.shape)}"
        )
    second = points[..., 2:, :, :] - 2.0 * points[..., 1:-1, :, :] + points[..., :-2, :, :]
    return (second * second).sum(dim=(-1, -2, -3))
