"""Uncertainty metrics of a probabilistic model's samples: diversity, calibration, likelihood.

A probabilistic model gives N samples per image, (B, N, J, 3). Besides how close the best
sample comes (best-of-n), one asks how spread out the samples are and whether that spread is
honest: does the ground truth fall inside the samples' central p-region as often as p says?

- **Diversity** (:func:`sample_diversity`): per image and joint, the mean Euclidean distance
  between two different samples of the joint (all N·(N - 1) ordered pairs), after root
  alignment (the same root as MPJPE), in millimetres.
- **Central p-region** (:func:`central_region_coverage`): per image and joint, the ball around
  the samples' mean position of the joint whose radius r_p is the p-quantile of the N samples'
  distances to that mean (linear interpolation between order statistics, ``torch.quantile``'s
  default). A ground truth drawn from the same distribution as the samples lies in it with
  probability p (up to O(1/N), since the centre and the quantile are estimated from the N
  samples); the ground truth is *covered* at level p when its distance to the centre is <= r_p.
- **Calibration curve**: the fraction of (image, joint) pairs covered at each p of a grid,
  overall and per joint; its **expected calibration error** (ECE) is the mean over the grid of
  |coverage(p) - p| (unweighted, every level counts the same). Coverage below p everywhere =
  over-confident samples (too narrow), above = under-confident (too wide).
- **Spread-error rank correlation**: Spearman's rho (:func:`spearman`) between a joint's
  diversity and its mode error (the root-aligned distance of the mode, sample 0, to the ground
  truth), over all (image, joint) pairs and per joint: does the model know where it is wrong?
- **Log-likelihood** of the ground truth under the model's density, per image, is computed by
  the model (it owns the density) and collected here with the images that have none counted.

:class:`UncertaintyAccumulator` collects all of it batch by batch and summarises at the end
(:class:`UncertaintySummary`: markdown and a JSON-ready dict). The root joint is left out of
every uncertainty metric: after root alignment it is 0 in every sample and in the ground truth,
so it would have zero spread and always be covered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pose_geometry import check_same_device, check_same_leading_shape, check_tensor
from pose_metrics._inputs import (
    JointIndex,
    check_index,
    check_mask,
    check_mm_per_unit,
    check_poses,
    check_same_joints,
    joint_index_tensor,
)

__all__ = [
    "DEFAULT_LEVELS",
    "UncertaintyAccumulator",
    "UncertaintySummary",
    "average_ranks",
    "central_region_coverage",
    "sample_diversity",
    "spearman",
]

#: The default grid of levels p of the calibration curve: 0.05, 0.10, ..., 0.95.
DEFAULT_LEVELS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))

# Distances computed at once by `sample_diversity` (rows · N²): bounds its memory (128 MB).
_DISTANCES_PER_CHUNK = 1 << 24


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in levels)
    except (TypeError, ValueError):
        raise TypeError(f"`levels` must be a sequence of numbers, got {levels!r}") from None
    if not values:
        raise ValueError("`levels` must hold at least one level p in (0, 1), got none")
    bad = [p for p in values if not 0.0 < p < 1.0]
    if bad:
        raise ValueError(f"`levels` must lie in the open interval (0, 1), got {bad}")
    return values


def _root_aligned_samples(
    samples: object, root_idx: int | None, joint_idx: JointIndex
) -> tuple[Tensor, Tensor | None]:
    """(..., N, J, 3) samples -> root-aligned selected joints (..., N, J', 3), at least float32,
    and the selected indices (None = all)."""
    samples = check_poses("samples", samples, layout="(..., N, J, 3)")
    if samples.shape[-3] < 2:
        raise ValueError(
            f"`samples` must hold at least 2 samples N in (..., N, J, 3), "
            f"got {tuple(samples.shape)}"
        )
    samples = samples.to(torch.promote_types(samples.dtype, torch.float32))
    num_joints = samples.shape[-2]
    index = joint_index_tensor(joint_idx, num_joints, samples.device)
    if root_idx is not None:
        root = check_index("root_idx", root_idx, num_joints)
        samples = samples - samples[..., root : root + 1, :]
    if index is not None:
        samples = samples.index_select(-2, index)
    return samples, index


def sample_diversity(
    samples: Tensor,
    *,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    mm_per_unit: float = 1000.0,
) -> Tensor:
    """Mean pairwise distance between the samples of each joint, after root alignment.

    For each image and selected joint j: mean over the N·(N - 1) pairs of different samples
    s != t of ||x_s,j - x_t,j||, in millimetres (0 when all samples agree). The image's
    diversity is usually the mean over its joints.

    Args:
        samples: (..., N, J, 3) N >= 2 samples per image, input units (metres by default).
        root_idx: joint subtracted from every sample first (39 for the 44-keypoint layout, 0
            for the lifting model), None = none. The root itself then has diversity 0.
        joint_idx: the J' joints reported (None = all J).
        mm_per_unit: millimetres per input unit.

    Returns:
        (..., J') diversity in millimetres, dtype the samples' promotion to at least float32.

    Raises:
        ValueError: for shapes other than documented, N < 2, or a joint index outside [0, J).
        TypeError: for a non-tensor or non-floating-point input.
    """
    scale = check_mm_per_unit(mm_per_unit)
    points, _ = _root_aligned_samples(samples, root_idx, joint_idx)
    num = points.shape[-3]
    leading = points.shape[:-3]
    rows = points.movedim(-3, -2).reshape(-1, num, 3)  # (rows = images · J', N, 3)
    chunk = max(1, _DISTANCES_PER_CHUNK // (num * num))
    sums = [
        torch.cdist(part, part, compute_mode="donot_use_mm_for_euclid_dist").sum((-1, -2))
        for part in rows.split(chunk)
    ]
    total = torch.cat(sums) if sums else rows.new_zeros(0)
    return (total / (num * (num - 1)) * scale).reshape(*leading, points.shape[-2])


def central_region_coverage(
    samples: Tensor,
    target: Tensor,
    *,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
) -> Tensor:
    """Whether the ground truth lies in the samples' central p-region, per joint and level.

    The central p-region of a joint (module docstring): the ball around the mean of the N
    root-aligned samples of the joint, with radius the p-quantile (linear interpolation) of the
    N samples' distances to that mean. The target is covered when its root-aligned distance to
    the mean is at most the radius. For a target drawn from the samples' own distribution the
    probability of that is p (up to O(1/N)).

    Args:
        samples: (..., N, J, 3) N >= 2 samples per image.
        target: (..., J, 3) ground truth, same leading dimensions and J.
        root_idx: joint subtracted from samples and target (as MPJPE), None = none.
        joint_idx: the J' joints evaluated (None = all J).
        levels: the P levels p, each in (0, 1).

    Returns:
        (..., J', P) bool: covered at each level (monotone in p for increasing levels).

    Raises:
        ValueError: for shapes other than documented, N < 2, a joint index outside [0, J),
            levels outside (0, 1) or tensors on different devices.
        TypeError: for non-tensor or non-floating-point inputs.
    """
    grid = _check_levels(levels)
    points, index = _root_aligned_samples(samples, root_idx, joint_idx)
    target = check_poses("target", target)
    check_same_device("samples", points, "target", target)
    check_same_joints("samples", samples, "target", target)
    check_same_leading_shape("samples", samples, 3, "target", target, 2)
    truth = target.to(points.dtype)
    if root_idx is not None:
        truth = truth - truth[..., root_idx : root_idx + 1, :]
    if index is not None:
        truth = truth.index_select(-2, index)
    centre = points.mean(-3)  # (..., J', 3)
    distances = torch.linalg.vector_norm(points - centre[..., None, :, :], dim=-1)  # (..., N, J')
    q = torch.tensor(grid, dtype=points.dtype, device=points.device)
    radius = torch.quantile(distances, q, dim=-2).movedim(0, -1)  # (..., J', P)
    truth_distance = torch.linalg.vector_norm(truth - centre, dim=-1)  # (..., J')
    return truth_distance[..., None] <= radius


def average_ranks(values: Tensor) -> Tensor:
    """Ranks 1..n of a 1-D tensor's values, ties sharing the mean of their ranks (float64).

    Raises:
        ValueError: unless ``values`` is a 1-D tensor of finite real numbers.
    """
    values = check_tensor("values", values)
    if values.ndim != 1 or values.is_complex():
        raise ValueError(
            f"`values` must be a 1-D real tensor, got shape {tuple(values.shape)} and dtype "
            f"{values.dtype}"
        )
    values = values.to(torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("`values` must be finite to be ranked, got NaN or inf")
    order = torch.argsort(values, stable=True)
    _, group, counts = torch.unique_consecutive(
        values[order], return_inverse=True, return_counts=True
    )
    last = torch.cumsum(counts, 0).to(torch.float64)  # rank of each tie group's last member
    mean_rank = last - (counts.to(torch.float64) - 1) / 2
    ranks = torch.empty_like(values)
    ranks[order] = mean_rank[group]
    return ranks


def spearman(x: Tensor, y: Tensor) -> float:
    """Spearman's rank correlation of two 1-D samples: Pearson's r of their average ranks.

    Ties share the mean of their ranks (the usual definition, as ``scipy.stats.spearmanr``).

    Returns:
        rho in [-1, 1]; NaN for fewer than 2 pairs or when either sample is constant.

    Raises:
        ValueError: unless x and y are 1-D finite tensors of the same length.
    """
    x = check_tensor("x", x)
    y = check_tensor("y", y)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"`x` and `y` must be 1-D tensors of the same length, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if x.numel() < 2:
        return float("nan")
    rx = average_ranks(x.cpu())
    ry = average_ranks(y.cpu())
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denominator == 0.0:
        return float("nan")
    return max(-1.0, min(1.0, float((dx * dy).sum()) / denominator))


def _none_if_nan(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class UncertaintySummary:
    """The uncertainty metrics of an evaluation (:class:`UncertaintyAccumulator.summarize`).

    Distances in millimetres; NaN where nothing was measured (``to_dict`` writes None).

    Attributes:
        levels: (P,) the levels p of the calibration curve.
        joints: (J',) labels of the evaluated joints.
        num_images: images added. num_samples: samples per image (N).
        num_pairs: (image, joint) pairs measured (root and zero-confidence joints left out).
        diversity_mm: mean diversity over all pairs.
        diversity_visible_mm, diversity_occluded_mm: the same over the visible / the occluded
            or truncated pairs (NaN when no visibility was given).
        num_visible, num_occluded: pairs in each (0 when no visibility was given).
        has_visibility: whether a visibility mask was given.
        diversity_per_joint_mm: (J',) mean diversity per joint.
        coverage: (P,) fraction of pairs covered at each level (the calibration curve).
        coverage_per_joint: (J', P) the curve per joint.
        ece: mean over the levels of |coverage(p) - p|. ece_per_joint: (J',).
        spearman: Spearman's rho between diversity and mode error over all pairs.
        spearman_per_joint: (J',) the same per joint (over images).
        log_likelihood: mean log-likelihood of the ground truth over the images that have one
            (nats); NaN when none has.
        num_log_likelihood: images with a log-likelihood; num_without_log_likelihood: without.
        density: what the log-likelihood is a density over (its caveat), "" if not given.
    """

    levels: tuple[float, ...]
    joints: tuple[str, ...]
    num_images: int
    num_samples: int
    num_pairs: int
    diversity_mm: float
    diversity_visible_mm: float
    diversity_occluded_mm: float
    num_visible: int
    num_occluded: int
    has_visibility: bool
    diversity_per_joint_mm: tuple[float, ...]
    coverage: tuple[float, ...]
    coverage_per_joint: tuple[tuple[float, ...], ...]
    ece: float
    ece_per_joint: tuple[float, ...]
    spearman: float
    spearman_per_joint: tuple[float, ...]
    log_likelihood: float
    num_log_likelihood: int
    num_without_log_likelihood: int
    density: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN becomes None), with the ECE's definition."""
        return {
            "num_images": self.num_images,
            "num_samples": self.num_samples,
            "num_pairs": self.num_pairs,
            "diversity_mm": {
                "all": _none_if_nan(self.diversity_mm),
                "visible": _none_if_nan(self.diversity_visible_mm),
                "occluded_or_truncated": _none_if_nan(self.diversity_occluded_mm),
                "num_visible": self.num_visible,
                "num_occluded_or_truncated": self.num_occluded,
                "has_visibility": self.has_visibility,
            },
            "calibration": {
                "levels": list(self.levels),
                "coverage": [_none_if_nan(v) for v in self.coverage],
                "ece": _none_if_nan(self.ece),
                "ece_definition": "mean over the levels p of |coverage(p) - p|",
                "region": (
                    "ball around the samples' mean joint position, radius = p-quantile of the "
                    "samples' distances to it (root-aligned)"
                ),
            },
            "spearman_spread_vs_mode_error": _none_if_nan(self.spearman),
            "per_joint": {
                joint: {
                    "diversity_mm": _none_if_nan(self.diversity_per_joint_mm[j]),
                    "coverage": [_none_if_nan(v) for v in self.coverage_per_joint[j]],
                    "ece": _none_if_nan(self.ece_per_joint[j]),
                    "spearman": _none_if_nan(self.spearman_per_joint[j]),
                }
                for j, joint in enumerate(self.joints)
            },
            "log_likelihood": {
                "mean_nats": _none_if_nan(self.log_likelihood),
                "num_images": self.num_log_likelihood,
                "num_without": self.num_without_log_likelihood,
                "density": self.density,
            },
        }

    def coverage_at(self, p: float) -> float:
        """Coverage at the grid level nearest to ``p``."""
        nearest = min(range(len(self.levels)), key=lambda i: abs(self.levels[i] - p))
        return self.coverage[nearest]

    def to_markdown(self, *, per_joint: bool = True) -> str:
        """A markdown table of the overall metrics, optionally one row per joint, and notes."""

        def number(value: float, digits: int) -> str:
            return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"

        shown = [p for p in (0.25, 0.5, 0.75, 0.95) if min(abs(p - q) for q in self.levels) < 1e-9]
        rows = [
            ("images / samples per image", f"{self.num_images} / {self.num_samples}"),
            (
                "diversity, all joints (mm)",
                f"{number(self.diversity_mm, 1)} ({self.num_pairs} image-joints)",
            ),
        ]
        if self.has_visibility:
            rows += [
                (
                    "diversity, visible joints (mm)",
                    f"{number(self.diversity_visible_mm, 1)} ({self.num_visible})",
                ),
                (
                    "diversity, occluded/truncated joints (mm)",
                    f"{number(self.diversity_occluded_mm, 1)} ({self.num_occluded})",
                ),
            ]
        rows += [(f"coverage at p = {p:g}", number(self.coverage_at(p), 3)) for p in shown]
        rows += [
            (
                f"calibration ECE (mean abs(coverage - p), {len(self.levels)} levels)",
                number(self.ece, 3),
            ),
            ("Spearman rho, diversity vs mode error", number(self.spearman, 3)),
            (
                "log-likelihood of the ground truth (nats)",
                f"{number(self.log_likelihood, 1)} ({self.num_log_likelihood} images; "
                f"{self.num_without_log_likelihood} without)",
            ),
        ]
        lines = ["| uncertainty metric | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        if per_joint and self.joints:
            lines += [
                "",
                "| joint | diversity (mm) | coverage at p = 0.5 | ECE | Spearman rho |",
                "|---|---:|---:|---:|---:|",
            ]
            middle = min(range(len(self.levels)), key=lambda i: abs(self.levels[i] - 0.5))
            for j, joint in enumerate(self.joints):
                lines.append(
                    f"| {joint} | {number(self.diversity_per_joint_mm[j], 1)} | "
                    f"{number(self.coverage_per_joint[j][middle], 3)} | "
                    f"{number(self.ece_per_joint[j], 3)} | "
                    f"{number(self.spearman_per_joint[j], 3)} |"
                )
        notes = [
            "Coverage: fraction of image-joints whose ground truth lies in the samples' central "
            "p-region (ball around the samples' mean, radius the p-quantile of their distances "
            "to it); a calibrated model has coverage = p. ECE = mean over p of abs(coverage - p)."
        ]
        if self.density:
            notes.append(f"Log-likelihood: {self.density}")
        return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


class UncertaintyAccumulator:
    """Uncertainty metrics of an evaluation, collected batch by batch (module docstring).

    Usage, per batch of (B, N, 44, 3) model samples with sample 0 the mode::

        acc = UncertaintyAccumulator(joint_names=names)
        acc.add(samples[:, 1:], target, mode=samples[:, 0], root_idx=39, joint_idx=LSP14_IDX_44)
        ...
        print(acc.summarize().to_markdown())

    Every batch must have the same number of samples N and the same selected joints; a
    visibility mask is given for every batch or for none. Values are kept on the CPU (per
    (image, joint) pair: diversity, mode error, visibility and P coverage flags), so the summary
    is exact whatever the batching.

    Args:
        levels: the levels p of the calibration curve, each in (0, 1).
        mm_per_unit: millimetres per input unit (1000 for metres).
        joint_names: optional label per evaluated joint (J'); default: the joint indices.
        density: what the log-likelihoods are a density over, shown with them (the caveat that
            they compare only between models of the same representation).
    """

    def __init__(
        self,
        *,
        levels: Sequence[float] = DEFAULT_LEVELS,
        mm_per_unit: float = 1000.0,
        joint_names: Sequence[str] | None = None,
        density: str = "",
    ) -> None:
        self.levels = _check_levels(levels)
        self.mm_per_unit = check_mm_per_unit(mm_per_unit)
        self._joint_names = None if joint_names is None else tuple(str(n) for n in joint_names)
        self.density = str(density)
        self._joints: tuple[int, ...] | None = None
        self._num_samples: int | None = None
        self._has_visibility: bool | None = None
        self._pairs: dict[str, list[Tensor]] = {
            key: [] for key in ("joint", "diversity", "mode_error", "visible", "covered")
        }
        self._image_diversity: list[Tensor] = []
        self._log_likelihood: list[Tensor] = []
        self._num_images = 0

    @property
    def num_images(self) -> int:
        """Images added so far."""
        return self._num_images

    def add(
        self,
        samples: Tensor,
        target: Tensor,
        *,
        mode: Tensor,
        root_idx: int | None,
        joint_idx: JointIndex = None,
        mask: Tensor | None = None,
        visible: Tensor | None = None,
        log_likelihood: Tensor | None = None,
    ) -> None:
        """Add one batch of B images.

        Args:
            samples: (B, N, J, 3) N >= 2 samples per image (for a model whose sample 0 is the
                mode, pass the random samples 1..N: the mode is no draw of the distribution).
            target: (B, J, 3) ground truth.
            mode: (B, J, 3) the point estimate whose error is ranked against the spread
                (ProHMR: sample 0, z = 0).
            root_idx: root joint subtracted from everything (as MPJPE); it is left out.
            joint_idx: the J' joints evaluated (None = all J).
            mask: optional (B, J) ground-truth confidences; joints with 0 are left out.
            visible: optional (B, J) bool, True = visible, False = occluded or truncated.
            log_likelihood: optional (B,) log-likelihood of each image's ground truth under the
                model (nats); NaN = the image has no ground truth for it (counted).

        Raises:
            ValueError: for shapes other than documented, N or joints that differ from the
                first batch, visibility given in some batches only, non-finite samples, mode or
                target at an evaluated joint.
            TypeError: for non-tensor or non-floating-point inputs.
        """
        samples = check_poses("samples", samples, layout="(B, N, J, 3)")
        if samples.ndim != 4:
            raise ValueError(f"`samples` must have shape (B, N, J, 3), got {tuple(samples.shape)}")
        batch, num, num_joints = samples.shape[:3]
        mode = check_poses("mode", mode, layout="(B, J, 3)")
        target = check_poses("target", target, layout="(B, J, 3)")
        for name, tensor in (("mode", mode), ("target", target)):
            if tuple(tensor.shape) != (batch, num_joints, 3):
                raise ValueError(
                    f"`{name}` must have shape (B, J, 3) = {(batch, num_joints, 3)} like "
                    f"`samples` {tuple(samples.shape)}, got {tuple(tensor.shape)}"
                )
            check_same_device("samples", samples, name, tensor)
        index = joint_index_tensor(joint_idx, num_joints, samples.device)
        joints = tuple(range(num_joints)) if index is None else tuple(index.tolist())
        root = None if root_idx is None else check_index("root_idx", root_idx, num_joints)
        used = torch.ones(batch, num_joints, dtype=torch.bool, device=samples.device)
        if mask is not None:
            used = check_mask(mask, num_joints, (batch,), ("samples", samples)) != 0
            used = used.expand(batch, num_joints)
        vis = None
        if visible is not None:
            vis = check_tensor("visible", visible)
            if vis.dtype != torch.bool or tuple(vis.shape) != (batch, num_joints):
                raise ValueError(
                    f"`visible` must be a bool tensor of shape (B, J) = {(batch, num_joints)}, "
                    f"got shape {tuple(vis.shape)} and dtype {vis.dtype}"
                )
            check_same_device("samples", samples, "visible", vis)
        likelihood = None
        if log_likelihood is not None:
            likelihood = check_tensor("log_likelihood", log_likelihood)
            if tuple(likelihood.shape) != (batch,):
                raise ValueError(
                    f"`log_likelihood` must have shape (B,) = ({batch},), "
                    f"got {tuple(likelihood.shape)}"
                )
        self._check_consistent(num, joints, vis is not None)

        # The joints whose values reach a result: the evaluated ones and the root (aligned
        # against even where its confidence is 0, as MPJPE does). The rest is zeroed, so that
        # a NaN there cannot reach anything; the needed ones must be finite.
        selected = torch.zeros(num_joints, dtype=torch.bool, device=samples.device)
        selected[list(joints)] = True
        evaluated = used & selected
        if root is not None:
            evaluated[:, root] = False
        needed = evaluated.clone()
        if root is not None:
            needed[:, root] = True
        finite = torch.isfinite(samples).all(-1).all(1)
        finite &= torch.isfinite(mode).all(-1) & torch.isfinite(target).all(-1)
        bad = needed & ~finite
        if bool(bad.any()):
            raise ValueError(
                f"`samples`, `mode` and `target` must be finite at the evaluated joints and the "
                f"root; {int(bad.sum())} (image, joint) pairs hold NaN or inf"
            )
        zero = samples.new_zeros(())
        samples = torch.where(needed[:, None, :, None], samples, zero)
        mode = torch.where(needed[..., None], mode, zero)
        target = torch.where(needed[..., None], target, zero)
        used = evaluated if index is None else evaluated.index_select(-1, index)
        if index is not None and vis is not None:
            vis = vis.index_select(-1, index)

        options = {"root_idx": root, "joint_idx": None if index is None else index}
        diversity = sample_diversity(samples, mm_per_unit=self.mm_per_unit, **options)
        covered = central_region_coverage(samples, target, levels=self.levels, **options)
        aligned_mode = mode - (0 if root is None else mode[:, root : root + 1])
        aligned_target = target - (0 if root is None else target[:, root : root + 1])
        if index is not None:
            aligned_mode = aligned_mode.index_select(-2, index)
            aligned_target = aligned_target.index_select(-2, index)
        mode_error = torch.linalg.vector_norm(
            aligned_mode.to(diversity.dtype) - aligned_target.to(diversity.dtype), dim=-1
        )
        mode_error = mode_error * self.mm_per_unit

        rows, columns = torch.nonzero(used, as_tuple=True)
        self._pairs["joint"].append(columns.cpu())
        self._pairs["diversity"].append(diversity[rows, columns].double().cpu())
        self._pairs["mode_error"].append(mode_error[rows, columns].double().cpu())
        self._pairs["covered"].append(covered[rows, columns].cpu())
        if vis is not None:
            self._pairs["visible"].append(vis[rows, columns].cpu())
        weights = used.to(diversity.dtype)
        per_image = (diversity * weights).sum(-1) / weights.sum(-1)
        self._image_diversity.append(per_image.double().cpu())
        if likelihood is None:
            likelihood = torch.full((batch,), float("nan"))
        self._log_likelihood.append(likelihood.detach().double().cpu())
        self._num_images += batch

    def _check_consistent(self, num: int, joints: tuple[int, ...], has_visibility: bool) -> None:
        if self._joints is None:
            if self._joint_names is not None and len(self._joint_names) != len(joints):
                raise ValueError(
                    f"`joint_names` has {len(self._joint_names)} names for the "
                    f"{len(joints)} evaluated joints"
                )
            self._joints, self._num_samples, self._has_visibility = joints, num, has_visibility
            return
        if num != self._num_samples:
            raise ValueError(
                f"every batch must have the same number of samples N, got {num} after "
                f"{self._num_samples}"
            )
        if joints != self._joints:
            raise ValueError(
                f"every batch must evaluate the same joints, got {list(joints)} after "
                f"{list(self._joints)}"
            )
        if has_visibility != self._has_visibility:
            raise ValueError(
                "`visible` must be given for every batch or for none; "
                f"the first batch {'had' if self._has_visibility else 'had no'} visibility"
            )

    def per_image(self) -> dict[str, Tensor]:
        """{"diversity_mm", "log_likelihood"}: (num_images,) float64 per-image values (the
        image's diversity is the mean over its evaluated joints; NaN = none)."""
        empty = torch.empty(0, dtype=torch.float64)
        return {
            "diversity_mm": torch.cat(self._image_diversity) if self._image_diversity else empty,
            "log_likelihood": torch.cat(self._log_likelihood) if self._log_likelihood else empty,
        }

    def summarize(self) -> UncertaintySummary:
        """The metrics over every image added (:class:`UncertaintySummary`).

        Raises:
            ValueError: if nothing was added.
        """
        if self._joints is None:
            raise ValueError("no batch was added: nothing to summarise")
        pairs = {key: torch.cat(parts) for key, parts in self._pairs.items() if parts}
        joint = pairs["joint"]
        diversity = pairs["diversity"]
        error = pairs["mode_error"]
        covered = pairs["covered"].double()  # (pairs, P)
        levels = torch.tensor(self.levels, dtype=torch.float64)
        nan = float("nan")

        def mean(values: Tensor) -> float:
            return float(values.mean()) if values.numel() else nan

        def curve(rows: Tensor) -> tuple[tuple[float, ...], float]:
            if not rows.shape[0]:
                return tuple(nan for _ in self.levels), nan
            coverage = rows.mean(0)
            return tuple(coverage.tolist()), float((coverage - levels).abs().mean())

        coverage, ece = curve(covered)
        per_joint = [joint == j for j in range(len(self._joints))]
        joint_curves = [curve(covered[rows]) for rows in per_joint]
        visible = pairs.get("visible")
        names = self._joint_names or tuple(str(j) for j in self._joints)
        likelihood = torch.cat(self._log_likelihood)
        has_likelihood = torch.isfinite(likelihood)
        return UncertaintySummary(
            levels=self.levels,
            joints=names,
            num_images=self._num_images,
            num_samples=int(self._num_samples or 0),
            num_pairs=int(joint.numel()),
            diversity_mm=mean(diversity),
            diversity_visible_mm=nan if visible is None else mean(diversity[visible]),
            diversity_occluded_mm=nan if visible is None else mean(diversity[~visible]),
            num_visible=0 if visible is None else int(visible.sum()),
            num_occluded=0 if visible is None else int((~visible).sum()),
            has_visibility=bool(self._has_visibility),
            diversity_per_joint_mm=tuple(mean(diversity[rows]) for rows in per_joint),
            coverage=coverage,
            coverage_per_joint=tuple(c for c, _ in joint_curves),
            ece=ece,
            ece_per_joint=tuple(e for _, e in joint_curves),
            spearman=spearman(diversity, error),
            spearman_per_joint=tuple(spearman(diversity[rows], error[rows]) for rows in per_joint),
            log_likelihood=mean(likelihood[has_likelihood]),
            num_log_likelihood=int(has_likelihood.sum()),
            num_without_log_likelihood=int((~has_likelihood).sum()),
            density=self.density,
        )
