"""Temporal metrics of joint sequences: accelerations and the acceleration error.

A sequence is (..., T, J, 3): T frames of J joints, in metres unless `mm_per_unit` says
otherwise. The acceleration of a joint at frame t is the second finite difference
``x[t+1] - 2 x[t] + x[t-1]`` (units per frame², defined for the T - 2 inner frames). The
acceleration error (Kanazawa et al. 2019, "Learning 3D Human Dynamics from Video"; used by
VIBE and later video methods) is the mean over the inner frames and the joints of the norm of
the difference between predicted and ground-truth accelerations, in mm/frame²: a jittery
prediction of a smooth motion has a large one even when its per-frame errors are small.

With `root_idx`, both sequences are expressed relative to that joint first (as MPJPE), so the
error measures the motion of the body, not of its root in the camera.
"""

from __future__ import annotations

from torch import Tensor

from pose_metrics._inputs import (
    JointIndex,
    check_index,
    check_mm_per_unit,
    check_poses,
    check_same_joints,
)

__all__ = ["acceleration_error", "acceleration_errors", "joint_accelerations"]


def _sequence(name: str, x: object) -> Tensor:
    points = check_poses(name, x, layout="(..., T, J, 3)")
    if points.shape[-3] < 3:
        raise ValueError(
            f"`{name}` must have at least 3 frames T in (..., T, J, 3) for an acceleration, "
            f"got T = {points.shape[-3]} (shape {tuple(points.shape)})"
        )
    return points


def joint_accelerations(points: Tensor) -> Tensor:
    """Second finite differences over the frames: ``x[t+1] - 2 x[t] + x[t-1]``.

    Args:
        points: (..., T, J, 3) joint positions over T >= 3 frames.

    Returns:
        (..., T - 2, J, 3) accelerations of the inner frames 1..T-2, in the units of
        `points` per frame².

    Raises:
        ValueError: if `points` is not (..., T, J, 3) with T >= 3.
    """
    points = _sequence("points", points)
    return points[..., 2:, :, :] - 2.0 * points[..., 1:-1, :, :] + points[..., :-2, :, :]


def acceleration_errors(
    prediction: Tensor,
    target: Tensor,
    *,
    root_idx: int | None = None,
    joint_idx: JointIndex = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Per-frame acceleration errors: mean over joints of ``‖a_pred - a_target‖``.

    Args:
        prediction: (..., T, J, 3) predicted joints over T >= 3 frames (metres by default).
        target: (..., T, J, 3) ground truth, same shape.
        root_idx: joint subtracted from both in every frame first (39 = pelvis of the
            44-keypoint layout); None compares the positions as given.
        joint_idx: joints to average over (default all).
        mm_per_unit: millimetres per input unit (1000 for metres).

    Returns:
        (..., T - 2) errors of the inner frames in mm/frame².

    Raises:
        ValueError: for shapes other than (..., T, J, 3), T < 3, different shapes of the two,
            a root or joint index outside [0, J), or a bad `mm_per_unit`.
    """
    pred = _sequence("prediction", prediction)
    gt = _sequence("target", target)
    check_same_joints("prediction", pred, "target", gt)
    if pred.shape != gt.shape:
        raise ValueError(
            f"`prediction` and `target` must have the same shape (..., T, J, 3), got "
            f"{tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    scale = check_mm_per_unit(mm_per_unit)
    if root_idx is not None:
        root = check_index("root_idx", root_idx, pred.shape[-2])
        pred = pred - pred[..., root : root + 1, :]
        gt = gt - gt[..., root : root + 1, :]
    difference = joint_accelerations(pred) - joint_accelerations(gt)
    if joint_idx is not None:
        index = [check_index("joint_idx", int(j), pred.shape[-2]) for j in joint_idx]
        if not index:
            raise ValueError("`joint_idx` must select at least one joint, got an empty list")
        difference = difference[..., index, :]
    return difference.norm(dim=-1).mean(dim=-1) * scale


def acceleration_error(
    prediction: Tensor,
    target: Tensor,
    *,
    root_idx: int | None = None,
    joint_idx: JointIndex = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Acceleration error of sequences: `acceleration_errors` averaged over the inner frames.

    Args: as `acceleration_errors`.

    Returns:
        (...) one error per sequence in mm/frame².
    """
    return acceleration_errors(
        prediction, target, root_idx=root_idx, joint_idx=joint_idx, mm_per_unit=mm_per_unit
    ).mean(dim=-1)
