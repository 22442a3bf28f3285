"""Private input handling shared by the metric modules.

Validation of (…, J, 3) pose pairs, root alignment and joint selection, masks, and the
Procrustes-aligned per-joint errors that both the plain metrics and best-of-n use.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import Tensor

from pose_geometry import check_floating, check_same_device, check_tensor, procrustes_align

#: Procrustes needs at least 3 points to fix a rotation: with fewer, PA-MPJPE is 0 or
#: meaningless, so it is refused (or NaN for a pose whose mask leaves fewer).
MIN_PA_JOINTS = 3

JointIndex = Sequence[int] | Tensor | None


def check_poses(name: str, x: object, *, layout: str = "(..., J, 3)") -> Tensor:
    """Raise unless `x` is a floating-point tensor of `layout`, ending in 3; return it.

    `layout` names the dimensions for the message, e.g. "(..., N, J, 3)"; its number of named
    dimensions is the minimum number of dimensions.
    """
    tensor = check_tensor(name, x)
    min_ndim = len(layout.strip("()").split(", ")) - 1  # without the "..."
    if tensor.ndim < min_ndim or tensor.shape[-1] != 3:
        raise ValueError(f"`{name}` must have shape {layout}, got {tuple(tensor.shape)}")
    if tensor.shape[-2] < 1:
        raise ValueError(
            f"`{name}` must have at least one joint J in {layout}, got {tuple(tensor.shape)}"
        )
    check_floating(name, tensor)
    return tensor


def check_same_joints(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise ValueError unless (…, J, 3) tensors `a` and `b` have the same J."""
    if a.shape[-2] != b.shape[-2]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same number of joints J in (..., J, 3), "
            f"got {a.shape[-2]} and {b.shape[-2]} (shapes {tuple(a.shape)} and {tuple(b.shape)})"
        )


def broadcast_leading(name_a: str, a: Tensor, name_b: str, b: Tensor) -> tuple[int, ...]:
    """Return the broadcast of the batch dimensions of two (…, J, 3) tensors, or raise."""
    try:
        return tuple(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except RuntimeError:
        raise ValueError(
            f"the batch dimensions of `{name_a}` {tuple(a.shape)} and `{name_b}` "
            f"{tuple(b.shape)} do not broadcast (shapes must be (..., J, 3))"
        ) from None


def check_index(name: str, value: object, num_joints: int) -> int:
    """Return `value` as a joint index in [0, num_joints).

    Negative indices are refused: a -1 is usually a "missing" marker of a joint map, and
    Python's wrap-around would silently pick the last joint.
    """
    try:
        index = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}") from None
    if not 0 <= index < num_joints:
        raise ValueError(
            f"`{name}` must lie in [0, {num_joints}) for J = {num_joints} joints, got {index}"
        )
    return index


def joint_index_tensor(
    joint_idx: JointIndex, num_joints: int, device: torch.device
) -> Tensor | None:
    """Validate `joint_idx` and return it as a long tensor on `device` (None = all joints)."""
    if joint_idx is None:
        return None
    if isinstance(joint_idx, Tensor):
        dtype = joint_idx.dtype
        if (
            joint_idx.ndim != 1
            or dtype.is_floating_point
            or dtype.is_complex
            or dtype == torch.bool
        ):
            raise ValueError(
                f"`joint_idx` must be a 1-D integer tensor or a sequence of ints, got a tensor "
                f"of shape {tuple(joint_idx.shape)} and dtype {joint_idx.dtype}"
            )
        values = [int(v) for v in joint_idx.tolist()]
    elif isinstance(joint_idx, (str, bytes)) or not isinstance(joint_idx, Sequence):
        raise TypeError(
            f"`joint_idx` must be a sequence of ints or a 1-D integer tensor, "
            f"got {type(joint_idx).__name__}"
        )
    else:
        values = list(joint_idx)
    if not values:
        raise ValueError("`joint_idx` must select at least one joint, got an empty selection")
    values = [check_index("joint_idx", v, num_joints) for v in values]
    return torch.tensor(values, dtype=torch.long, device=device)


def check_mask(
    mask: object,
    num_joints: int,
    leading: tuple[int, ...],
    reference: tuple[str, Tensor] | None = None,
) -> Tensor:
    """Validate a (…, J) confidence mask broadcastable to `leading`; return it.

    `reference` (name, tensor): the mask must be on that tensor's device.
    """
    tensor = check_tensor("mask", mask)
    if reference is not None:
        check_same_device(reference[0], reference[1], "mask", tensor)
    if tensor.is_complex():
        raise TypeError(f"`mask` must be a bool or real tensor, got dtype {tensor.dtype}")
    if tensor.dtype != torch.bool:
        bad = ~(torch.isfinite(tensor) & (tensor >= 0))
        if bool(bad.any()):
            index = tuple(torch.nonzero(bad)[0].tolist())
            raise ValueError(
                f"`mask` must hold finite weights >= 0, got {float(tensor[index]):g} at "
                f"index {index}"
            )
    if tensor.ndim < 1 or tensor.shape[-1] != num_joints:
        raise ValueError(
            f"`mask` must have shape (..., J) with J = {num_joints} joints like the poses, "
            f"got {tuple(tensor.shape)}"
        )
    try:
        broadcasts = tuple(torch.broadcast_shapes(tensor.shape[:-1], leading)) == leading
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(
            f"the batch dimensions of `mask` {tuple(tensor.shape)} do not broadcast to the "
            f"poses' batch dimensions {leading}"
        )
    return tensor


def check_mm_per_unit(mm_per_unit: float) -> float:
    """Raise ValueError unless the unit factor is a positive finite number."""
    value = float(mm_per_unit)
    if not (value > 0 and value != float("inf")):
        raise ValueError(f"`mm_per_unit` must be a positive finite number, got {mm_per_unit}")
    return value


def prepare_pair(
    prediction: object,
    target: object,
    *,
    root_idx: int | None,
    joint_idx: JointIndex,
    mask: object | None,
    prediction_name: str = "prediction",
    target_name: str = "target",
    min_joints: int = 1,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate, root-align and select joints of a prediction/target pair.

    Returns the root-aligned selected joints (…p, J', 3) and (…t, J', 3) in a common dtype (the
    promotion of both, at least float32: half-precision poses are evaluated in float32), and
    the mask (…m, J') as weights in that dtype (None when no mask was given). Coordinates of
    joints with weight 0 are set to 0 in both, so that a non-finite value at an ignored joint
    cannot reach the result. `min_joints` is the fewest J' the metric accepts (3 for PA).
    """
    prediction = check_poses(prediction_name, prediction)
    target = check_poses(target_name, target)
    check_same_device(prediction_name, prediction, target_name, target)
    check_same_joints(prediction_name, prediction, target_name, target)
    leading = broadcast_leading(prediction_name, prediction, target_name, target)
    num_joints = prediction.shape[-2]
    dtype = torch.promote_types(torch.promote_types(prediction.dtype, target.dtype), torch.float32)
    prediction = prediction.to(dtype)
    target = target.to(dtype)
    index = joint_index_tensor(joint_idx, num_joints, prediction.device)
    selected = num_joints if index is None else len(index)
    if selected < min_joints:
        what = (
            f"`{prediction_name}` has J = {num_joints} joints (shape {tuple(prediction.shape)})"
            if index is None
            else f"`joint_idx` selects {selected} joints ({index.tolist()})"
        )
        raise ValueError(
            f"{what}; Procrustes alignment (PA) needs at least {min_joints} joints to fix a "
            f"rotation, got {selected}"
        )
    weights = None
    if mask is not None:
        reference = (prediction_name, prediction)
        weights = check_mask(mask, num_joints, leading, reference).to(dtype=dtype)
        if index is not None:
            weights = weights.index_select(-1, index)
    if root_idx is not None:
        root = check_index("root_idx", root_idx, num_joints)
        prediction_root = prediction[..., root : root + 1, :]
        target_root = target[..., root : root + 1, :]
    if index is not None:
        prediction = prediction.index_select(-2, index)
        target = target.index_select(-2, index)
    if root_idx is not None:
        prediction = prediction - prediction_root
        target = target - target_root
    if weights is not None:
        keep = (weights != 0)[..., None]
        zero = prediction.new_zeros(())
        prediction = torch.where(keep, prediction, zero)
        target = torch.where(keep, target, zero)
    return prediction, target, weights


def mean_over_joints(errors: Tensor, weights: Tensor | None) -> Tensor:
    """(…, J) errors -> (…) mean, weighted by `weights` (…, J) when given (0/0 gives NaN)."""
    if weights is None:
        return errors.mean(-1)
    weights = weights.expand_as(errors)
    return (weights * errors).sum(-1) / weights.sum(-1)


def pa_joint_errors(prediction: Tensor, target: Tensor, weights: Tensor | None) -> Tensor:
    """Per-joint distances after similarity Procrustes of `prediction` onto `target`.

    Args:
        prediction: (…p, J, 3) prepared joints.
        target: (…t, J, 3) prepared joints, broadcastable to `prediction`.
        weights: optional (…m, J) weights for the alignment, broadcastable.

    Returns:
        (…, J) distances in input units; NaN for every joint of a set whose used joints hold a
        non-finite coordinate (the SVD cannot take those, so they are zeroed first), and of a
        set whose weights leave fewer than `MIN_PA_JOINTS` joints (no rotation is defined).
    """
    leading = torch.broadcast_shapes(prediction.shape[:-2], target.shape[:-2])
    shape = (*leading, *prediction.shape[-2:])
    source = prediction.expand(shape)
    goal = target.expand(shape)
    finite = torch.isfinite(source).all(-1).all(-1) & torch.isfinite(goal).all(-1).all(-1)
    if weights is not None:
        used = (weights.expand(shape[:-1]) != 0).sum(-1)
        finite = finite & (used >= MIN_PA_JOINTS)
    finite3 = finite[..., None, None]
    zero = source.new_zeros(())
    source = torch.where(finite3, source, zero)
    goal = torch.where(finite3, goal, zero)
    w = None if weights is None else weights.expand(shape[:-1])
    aligned = procrustes_align(source, goal, weights=w).aligned
    errors = torch.linalg.vector_norm(aligned - goal, dim=-1)
    return torch.where(finite[..., None], errors, errors.new_full((), float("nan")))
