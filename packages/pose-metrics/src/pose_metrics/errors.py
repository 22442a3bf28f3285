"""Joint position errors: MPJPE and PA-MPJPE, per joint or averaged, in millimetres.

MPJPE (mean per-joint position error) is measured after root alignment: the root joint (the
pelvis, index 39 of the 44-keypoint layout, or 0 for the lifting model) is subtracted from the
prediction and from the target, then the chosen joints are compared. PA-MPJPE (ProHMR's
"reconstruction error") first aligns the prediction onto the target with the similarity
Procrustes transform of `pose_geometry.procrustes_align` (rotation, isotropic scale,
translation), computed on the chosen joints only; root alignment does not change it, since the
translation is estimated anyway.

Poses come in any length unit (metres for ProHMR); errors come out in millimetres through
`mm_per_unit` (1000 for metres, 1 for poses already in millimetres).

Inputs: prediction and target may differ in dtype (the errors are computed in their promotion,
at least float32, so float16 poses are evaluated in float32) but not in device (ValueError
naming both). Joint indices lie in [0, J): negative indices are refused, not wrapped. NaN or
inf in a pose propagates as NaN to that pose's errors only (documented, not an error: a
pipeline counts them); at a joint with mask 0 it is ignored. An empty batch gives an empty
result; J = 0 is an error. PA needs at least 3 joints: fewer selected joints is a ValueError,
and a pose whose mask leaves fewer than 3 joints gets NaN.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_metrics._inputs import (
    MIN_PA_JOINTS,
    JointIndex,
    check_index,
    check_mm_per_unit,
    check_poses,
    mean_over_joints,
    pa_joint_errors,
    prepare_pair,
)

__all__ = [
    "joint_position_errors",
    "mpjpe",
    "pa_joint_position_errors",
    "pa_mpjpe",
    "root_align",
]


def root_align(points: Tensor, *, root_idx: int) -> Tensor:
    """Express joints relative to a root joint.

    Args:
        points: (..., J, 3) joint positions.
        root_idx: index of the root joint in J (e.g. `pose_geometry.PELVIS_IDX_44` = 39).

    Returns:
        (..., J, 3) positions minus the root's position; the root becomes (0, 0, 0).

    Raises:
        ValueError: if `points` is not (..., J, 3) or `root_idx` is outside [0, J).
    """
    points = check_poses("points", points)
    root = check_index("root_idx", root_idx, points.shape[-2])
    return points - points[..., root : root + 1, :]


def joint_position_errors(
    prediction: Tensor,
    target: Tensor,
    *,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Per-joint Euclidean errors after root alignment.

    Args:
        prediction: (..., J, 3) predicted joints, in input units (metres by default).
        target: (..., J, 3) ground-truth joints, same J; batch dimensions broadcast against
            `prediction` (e.g. (B, N, J, 3) samples against (B, 1, J, 3) ground truth).
        root_idx: root joint subtracted from both before comparing (39 = pelvis of the
            44-keypoint layout, 0 for the lifting model); None compares the poses as given.
            The root need not be among `joint_idx`.
        joint_idx: the J' joints to evaluate, e.g. `pose_geometry.LSP14_IDX_44`; None = all.
        mm_per_unit: millimetres per input unit (1000 for metres, 1 for millimetres).

    Returns:
        (..., J') distances in millimetres (NaN where a coordinate is NaN).

    Raises:
        ValueError: for shapes other than (..., J, 3), J = 0, different J, batch dimensions
            that do not broadcast, an index outside [0, J) (negative included), or tensors on
            different devices ("`target` must be on the device of `prediction` (cpu), got
            cuda:0").
        TypeError: for non-tensor or non-floating-point inputs.
    """
    scale = check_mm_per_unit(mm_per_unit)
    p, t, _ = prepare_pair(prediction, target, root_idx=root_idx, joint_idx=joint_idx, mask=None)
    return torch.linalg.vector_norm(p - t, dim=-1) * scale


def pa_joint_position_errors(
    prediction: Tensor,
    target: Tensor,
    *,
    joint_idx: JointIndex = None,
    mask: Tensor | None = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Per-joint Euclidean errors after similarity Procrustes alignment (PA).

    The prediction's selected joints are aligned onto the target's with the rotation, scale and
    translation of `pose_geometry.procrustes_align`; joints with mask 0 do not influence the
    alignment.

    Args:
        prediction: (..., J, 3) predicted joints, in input units (metres by default).
        target: (..., J, 3) ground-truth joints, same J; batch dimensions broadcast.
        joint_idx: the J' joints to align and evaluate; None = all.
        mask: optional (..., J) non-negative confidences (bool or float) over the full J, used
            as Procrustes weights; a joint with 0 is ignored by the alignment (its error is
            still returned, and NaN or inf there is replaced by 0 first).
        mm_per_unit: millimetres per input unit.

    Returns:
        (..., J') distances in millimetres after alignment. A pose whose used joints contain a
        non-finite coordinate gets NaN for all its joints.

    Raises:
        ValueError, TypeError: as `joint_position_errors`, for a `mask` that is not (..., J)
            or holds a negative or non-finite weight, and for fewer than 3 selected joints.
    """
    scale = check_mm_per_unit(mm_per_unit)
    p, t, w = prepare_pair(
        prediction, target, root_idx=None, joint_idx=joint_idx, mask=mask, min_joints=MIN_PA_JOINTS
    )
    return pa_joint_errors(p, t, w) * scale


def mpjpe(
    prediction: Tensor,
    target: Tensor,
    *,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    mask: Tensor | None = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Mean per-joint position error (MPJPE) after root alignment.

    Args:
        prediction: (..., J, 3) predicted joints, in input units (metres by default).
        target: (..., J, 3) ground-truth joints, same J; batch dimensions broadcast.
        root_idx: root joint subtracted from both (39 for the 44-keypoint layout, 0 for the
            lifting model); None compares the poses as given.
        joint_idx: the J' joints to average over; None = all.
        mask: optional (..., J) non-negative confidences; the mean is weighted by them, so
            joints with 0 are left out. A pose with no weight left gets NaN.
        mm_per_unit: millimetres per input unit.

    Returns:
        (...) MPJPE in millimetres.

    Raises:
        ValueError, TypeError: as `joint_position_errors`, and for a `mask` that is not
            (..., J) or holds a negative or non-finite weight.
    """
    scale = check_mm_per_unit(mm_per_unit)
    p, t, w = prepare_pair(prediction, target, root_idx=root_idx, joint_idx=joint_idx, mask=mask)
    return mean_over_joints(torch.linalg.vector_norm(p - t, dim=-1), w) * scale


def pa_mpjpe(
    prediction: Tensor,
    target: Tensor,
    *,
    joint_idx: JointIndex = None,
    mask: Tensor | None = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Procrustes-aligned MPJPE (PA-MPJPE, ProHMR's "reconstruction error").

    Args:
        prediction: (..., J, 3) predicted joints, in input units (metres by default).
        target: (..., J, 3) ground-truth joints, same J; batch dimensions broadcast.
        joint_idx: the J' joints to align and average over; None = all.
        mask: optional (..., J) non-negative confidences: Procrustes weights and weights of the
            mean, so joints with 0 are left out of both.
        mm_per_unit: millimetres per input unit.

    Returns:
        (...) PA-MPJPE in millimetres; NaN for a pose with a non-finite coordinate in a used
        joint.

    Raises:
        ValueError, TypeError: as `joint_position_errors`, for a `mask` that is not (..., J)
            or holds a negative or non-finite weight, and for fewer than 3 selected joints.
    """
    scale = check_mm_per_unit(mm_per_unit)
    p, t, w = prepare_pair(
        prediction, target, root_idx=None, joint_idx=joint_idx, mask=mask, min_joints=MIN_PA_JOINTS
    )
    return mean_over_joints(pa_joint_errors(p, t, w), w) * scale
