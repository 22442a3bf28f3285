"""PCK and AUC of 3D joint errors, as reported on MPI-INF-3DHP.

3D PCK is the percentage of joints whose error is below a threshold (150 mm); AUC is the mean
PCK over the thresholds 0, 5, ..., 150 mm (31 values). Both take per-joint errors in
millimetres, e.g. from `joint_position_errors` (root-aligned) or `pa_joint_position_errors`, so
the alignment protocol stays the caller's choice. A joint counts as correct when its error is
strictly below the threshold. Results are percentages in [0, 100]; averaging per-image values
over images with the same joint count gives the dataset's PCK.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_geometry import check_floating, check_tensor
from pose_metrics._inputs import check_mask

__all__ = ["auc", "pck", "pck_curve"]


def _check_thresholds(thresholds_mm: Tensor) -> None:
    check_tensor("thresholds_mm", thresholds_mm)
    if thresholds_mm.ndim != 1 or thresholds_mm.numel() == 0:
        raise ValueError(
            f"`thresholds_mm` must have shape (T,) with T >= 1, got {tuple(thresholds_mm.shape)}"
        )


def pck_curve(
    joint_errors_mm: Tensor, thresholds_mm: Tensor, *, mask: Tensor | None = None
) -> Tensor:
    """Percentage of correct joints at each of T thresholds.

    Args:
        joint_errors_mm: (..., J) per-joint errors in millimetres.
        thresholds_mm: (T,) thresholds in millimetres.
        mask: optional (..., J) bool or 0/1 mask; joints with 0 are left out. A pose with no
            joint left gets NaN.

    Returns:
        (..., T) percentage in [0, 100] of joints with error < threshold; NaN for a pose with a
        non-finite error in a used joint (never counted as a miss).

    Raises:
        ValueError: for errors that are not (..., J), thresholds that are not (T,), or a mask
            whose shape does not match.
        TypeError: for non-floating-point errors.
    """
    check_tensor("joint_errors_mm", joint_errors_mm)
    if joint_errors_mm.ndim < 1:
        raise ValueError(
            f"`joint_errors_mm` must have shape (..., J), got {tuple(joint_errors_mm.shape)}"
        )
    check_floating("joint_errors_mm", joint_errors_mm)
    _check_thresholds(thresholds_mm)
    errors = joint_errors_mm
    thresholds = thresholds_mm.to(device=errors.device, dtype=errors.dtype)
    used = torch.ones((), dtype=torch.bool, device=errors.device)
    if mask is not None:
        m = check_mask(
            mask, errors.shape[-1], tuple(errors.shape[:-1]), ("joint_errors_mm", errors)
        )
        used = (m != 0).to(errors.device)
    used = used.expand(errors.shape)
    correct = (errors[..., None] < thresholds) & used[..., None]  # (..., J, T)
    count = used.sum(-1, keepdim=True).to(errors.dtype)  # (..., 1)
    percent = 100.0 * correct.sum(-2).to(errors.dtype) / count
    bad = (~torch.isfinite(errors) & used).any(-1, keepdim=True)
    return torch.where(bad, percent.new_full((), float("nan")), percent)


def pck(
    joint_errors_mm: Tensor, *, threshold_mm: float = 150.0, mask: Tensor | None = None
) -> Tensor:
    """3D PCK: percentage of joints with error below `threshold_mm` (150 mm on MPI-INF-3DHP).

    Args:
        joint_errors_mm: (..., J) per-joint errors in millimetres.
        threshold_mm: the threshold in millimetres.
        mask: optional (..., J) mask of the joints to count.

    Returns:
        (...) percentage in [0, 100]; NaN for a pose with a non-finite error.

    Raises:
        ValueError, TypeError: as `pck_curve`.
    """
    thresholds = torch.tensor([float(threshold_mm)])
    return pck_curve(joint_errors_mm, thresholds, mask=mask)[..., 0]


def auc(
    joint_errors_mm: Tensor,
    *,
    max_threshold_mm: float = 150.0,
    num_thresholds: int = 31,
    mask: Tensor | None = None,
) -> Tensor:
    """Area under the PCK curve: mean PCK over evenly spaced thresholds 0..max (MPI-INF-3DHP).

    Args:
        joint_errors_mm: (..., J) per-joint errors in millimetres.
        max_threshold_mm: the largest threshold (150 mm).
        num_thresholds: thresholds in [0, max], both ends included (31: a 5 mm step).
        mask: optional (..., J) mask of the joints to count.

    Returns:
        (...) AUC as a percentage in [0, 100]; NaN for a pose with a non-finite error.

    Raises:
        ValueError: for `num_thresholds` < 2 or a non-positive maximum, and as `pck_curve`.
    """
    if int(num_thresholds) < 2:
        raise ValueError(f"`num_thresholds` must be at least 2, got {num_thresholds}")
    if not float(max_threshold_mm) > 0:
        raise ValueError(f"`max_threshold_mm` must be positive, got {max_threshold_mm}")
    thresholds = torch.linspace(
        0.0, float(max_threshold_mm), int(num_thresholds), dtype=torch.float64
    )
    return pck_curve(joint_errors_mm, thresholds, mask=mask).mean(-1)
