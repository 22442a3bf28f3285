"""k-means quantisation of samples: N samples per image -> k hypotheses, then best-of-k.

To compare a sampler with methods that output a fixed number of hypotheses, the N samples of
each image (e.g. 4096) are clustered into k (e.g. 25) with k-means, and the cluster centres are
scored with best-of-k. Everything is pure torch, batched over images (one Lloyd iteration is two
batched matrix products for all images), on the inputs' device, and deterministic for a given
`torch.Generator` seed: the k-means++ seeding is the only random step, the centre update uses a
one-hot matrix product rather than atomic scatter additions, and ties go to the lowest index.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pose_geometry import check_floating, check_same_leading_shape, check_tensor
from pose_metrics._inputs import (
    MIN_PA_JOINTS,
    JointIndex,
    check_mask,
    check_mm_per_unit,
    check_poses,
    check_same_joints,
    joint_index_tensor,
    prepare_pair,
)
from pose_metrics.hypotheses import best_of_n

__all__ = ["KMeansBestOfKResult", "KMeansResult", "kmeans", "kmeans_best_of_k"]


@dataclass(frozen=True)
class KMeansResult:
    """Result of `kmeans` for points (..., N, D) and k clusters.

    Attributes:
        centers: (..., k, D) cluster centres (means of their points), in the points' units.
        labels: (..., N) int64 index of the centre each point belongs to.
        cluster_sizes: (..., k) int64 number of points per cluster (0 for an empty cluster,
            which keeps its previous centre).
        inertia: (...) sum of squared distances of the points to their centres.
        num_iterations: Lloyd iterations run (the maximum over the sets).
        converged: True if every set met the stopping rule before `max_iterations`.
    """

    centers: Tensor
    labels: Tensor
    cluster_sizes: Tensor
    inertia: Tensor
    num_iterations: int
    converged: bool


def _nearest(points: Tensor, centers: Tensor) -> Tensor:
    """(M, N, D), (M, k, D) -> (M, N) index of the nearest centre (lowest index on ties).

    argmin_k |x - c_k|² = argmin_k (|c_k|² - 2 x·c_k): one batched matrix product.
    """
    scores = (centers * centers).sum(-1)[:, None, :] - 2.0 * (points @ centers.transpose(-1, -2))
    return scores.argmin(-1)


def _draw(weights: Tensor, generator: torch.Generator | None) -> Tensor:
    """(M, N) non-negative weights, each row with a positive sum -> (M,) index drawn ∝ weight.

    Inverse-CDF sampling (cumulative sum, one uniform per row, binary search): deterministic
    for a generator state, and an index of weight 0 is never returned.
    """
    cumulative = weights.to(torch.float64).cumsum(-1)
    total = cumulative[:, -1:]
    u = torch.rand(total.shape, generator=generator, dtype=torch.float64, device=weights.device)
    index = torch.searchsorted(cumulative, u * total, right=True)[:, 0]
    # u·total rounds up to total at worst: fall back to the last index with positive weight.
    last = (weights > 0).cumsum(-1).argmax(-1)
    return torch.minimum(index, last)


def _kmeans_plus_plus(
    points: Tensor, num_clusters: int, generator: torch.Generator | None
) -> Tensor:
    """k-means++ seeding: (M, N, D) -> (M, k) indices of distinct points chosen as centres.

    The first centre is uniform; each next one is drawn with probability proportional to the
    squared distance to the nearest chosen centre (Arthur & Vassilvitskii 2007). Points already
    chosen get probability 0, so k = N picks every point once; a set whose remaining points all
    coincide with chosen ones falls back to uniform among the unchosen.
    """
    M, N, _ = points.shape
    rows = torch.arange(M, device=points.device)
    points_sq = (points * points).sum(-1)  # (M, N)
    chosen = torch.zeros(M, N, dtype=torch.bool, device=points.device)
    indices = torch.empty(M, num_clusters, dtype=torch.long, device=points.device)
    nearest = torch.full_like(points_sq, float("inf"))
    pick = torch.randint(N, (M,), generator=generator, device=points.device)
    for c in range(num_clusters):
        if c > 0:
            weights = torch.where(chosen, nearest.new_zeros(()), nearest)
            empty = weights.sum(-1, keepdim=True) <= 0
            weights = torch.where(empty, (~chosen).to(weights.dtype), weights)
            pick = _draw(weights, generator)
        indices[:, c] = pick
        chosen[rows, pick] = True
        center = points[rows, pick]  # (M, D)
        cross = (points @ center[:, :, None])[..., 0]  # (M, N)
        distance = (points_sq - 2.0 * cross + points_sq[rows, pick][:, None]).clamp_min(0.0)
        nearest = torch.minimum(nearest, distance)
    return indices


def _cluster_means(points: Tensor, labels: Tensor, num_clusters: int) -> tuple[Tensor, Tensor]:
    """(M, N, D), (M, N) -> sums/counts as means (M, k, D) (0 where empty), counts (M, k).

    A one-hot matrix product rather than scatter_add, whose atomic additions on CUDA would make
    the result depend on thread timing.
    """
    M, N, _ = points.shape
    one_hot = points.new_zeros(M, N, num_clusters).scatter_(2, labels[..., None], 1.0)
    counts = one_hot.sum(1)  # (M, k), exact integers
    sums = one_hot.transpose(1, 2) @ points  # (M, k, D)
    return sums / counts.clamp_min(1.0)[..., None], counts


def kmeans(
    points: Tensor,
    *,
    num_clusters: int,
    generator: torch.Generator | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-4,
) -> KMeansResult:
    """Cluster each set of N points into k clusters (k-means++ seeding, then Lloyd iterations).

    Args:
        points: (..., N, D) one set of N points per leading index, e.g. (B, 4096, 42) flattened
            root-aligned joints of B images. Non-finite values are not allowed.
        num_clusters: k, with 1 <= k <= N.
        generator: the `torch.Generator` (on the points' device) that drives the seeding; the
            result is a deterministic function of the points (batched the same way) and the
            generator's state. The sets share the generator's stream, so one set's clusters
            can change when it is batched with other sets.
        max_iterations: upper bound on Lloyd iterations per set.
        tolerance: a set stops when no assignment changes, or when the summed squared movement
            of its centres falls to `tolerance` × its mean per-coordinate variance (as
            scikit-learn's `tol`); 0 waits for unchanged assignments. Sets that stop leave the
            batch, so the rest iterate on fewer sets.

    Returns:
        KMeansResult with centres (..., k, D), labels (..., N), cluster sizes (..., k) and
        inertia (...).

    Raises:
        ValueError: for points not (..., N, D), k outside [1, N], a non-finite point, a
            negative `max_iterations` or `tolerance`.
        TypeError: for a non-tensor or non-floating-point `points`.
    """
    check_tensor("points", points)
    if points.ndim < 2:
        raise ValueError(f"`points` must have shape (..., N, D), got {tuple(points.shape)}")
    check_floating("points", points)
    num_points = points.shape[-2]
    if not 1 <= int(num_clusters) <= num_points:
        raise ValueError(
            f"`num_clusters` must lie in [1, N] = [1, {num_points}] for `points` of shape "
            f"{tuple(points.shape)}, got {num_clusters}"
        )
    if int(max_iterations) < 0:
        raise ValueError(f"`max_iterations` must be >= 0, got {max_iterations}")
    if not float(tolerance) >= 0:
        raise ValueError(f"`tolerance` must be >= 0, got {tolerance}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("`points` must be finite; got NaN or inf values")
    k = int(num_clusters)
    leading = tuple(points.shape[:-2])
    original = points.reshape(-1, *points.shape[-2:])
    M, N, D = original.shape
    # Centre each set: distances are unchanged and the |x|² - 2x·c + |c|² expansion loses less.
    offset = original.mean(-2, keepdim=True)
    x = original - offset
    threshold = float(tolerance) * x.var(-2, unbiased=False).mean(-1)  # (M,)

    seeds = _kmeans_plus_plus(x, k, generator)
    centers = x.gather(1, seeds[..., None].expand(M, k, D))
    labels = _nearest(x, centers)
    # Lloyd iterations on the sets still moving; finished sets are written back and dropped.
    active = torch.arange(M, device=x.device)
    x_active, centers_active, labels_active = x, centers, labels
    iterations = 0
    for _ in range(int(max_iterations)):
        if active.numel() == 0:
            break
        iterations += 1
        means, counts = _cluster_means(x_active, labels_active, k)
        moved = torch.where(counts[..., None] > 0, means, centers_active)
        shift = ((moved - centers_active) ** 2).sum((-1, -2))
        centers_active = moved
        new_labels = _nearest(x_active, centers_active)
        done = (new_labels == labels_active).all(-1) | (shift <= threshold[active])
        labels_active = new_labels
        if bool(done.any()):
            centers[active] = centers_active
            labels[active] = labels_active
            keep = ~done
            active = active[keep]
            x_active = x_active[keep]
            centers_active = centers_active[keep]
            labels_active = labels_active[keep]
    converged = active.numel() == 0
    if not converged:
        centers[active] = centers_active
        labels[active] = labels_active
    # Final centres: means of the final clusters in the original coordinates (a singleton's
    # centre is then its point exactly, so k = N reproduces the samples); empty clusters keep
    # their last position.
    means, sizes = _cluster_means(original, labels, k)
    centers = torch.where(sizes[..., None] > 0, means, centers + offset)
    inertia = ((original - centers.gather(1, labels[..., None].expand(M, N, D))) ** 2).sum((-1, -2))
    return KMeansResult(
        centers=centers.reshape(*leading, k, D),
        labels=labels.reshape(*leading, N),
        cluster_sizes=sizes.to(torch.long).reshape(*leading, k),
        inertia=inertia.reshape(leading),
        num_iterations=iterations,
        converged=converged,
    )


@dataclass(frozen=True)
class KMeansBestOfKResult:
    """Best-of-k over k-means cluster centres (`kmeans_best_of_k`).

    Images with a non-finite sample get NaN errors (they are not clustered meaningfully).

    Attributes:
        min_mpjpe: (...) minimum MPJPE over the k centres, millimetres.
        min_pa_mpjpe: (...) minimum PA-MPJPE over the k centres, millimetres.
        argmin_mpjpe: (...) int64 centre with the minimum MPJPE.
        argmin_pa_mpjpe: (...) int64 centre with the minimum PA-MPJPE.
        center_mpjpe: (..., k) MPJPE of every centre.
        center_pa_mpjpe: (..., k) PA-MPJPE of every centre.
        centers: (..., k, J', 3) the centres: means of root-aligned selected joints, input units.
        labels: (..., N) int64 cluster of every sample.
        cluster_sizes: (..., k) int64 samples per cluster.
    """

    min_mpjpe: Tensor
    min_pa_mpjpe: Tensor
    argmin_mpjpe: Tensor
    argmin_pa_mpjpe: Tensor
    center_mpjpe: Tensor
    center_pa_mpjpe: Tensor
    centers: Tensor
    labels: Tensor
    cluster_sizes: Tensor

    def metrics(self, *, prefix: str = "") -> dict[str, Tensor]:
        """{prefix + "min_mpjpe", prefix + "min_pa_mpjpe"}, each (...) millimetres."""
        return {f"{prefix}min_mpjpe": self.min_mpjpe, f"{prefix}min_pa_mpjpe": self.min_pa_mpjpe}


def kmeans_best_of_k(
    predictions: Tensor,
    target: Tensor,
    *,
    num_clusters: int,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-4,
    mm_per_unit: float = 1000.0,
) -> KMeansBestOfKResult:
    """Quantise N samples per image to k hypotheses with k-means, then score best-of-k.

    The samples are root-aligned and restricted to `joint_idx` (the space the metrics compare),
    flattened to J'·3 numbers, clustered per image with `kmeans`, and the k centres are scored
    against the target with `best_of_n` (min MPJPE and min PA-MPJPE, separately).

    Args:
        predictions: (..., N, J, 3) N samples per image, input units (metres by default).
        target: (..., J, 3) ground-truth joints, same `...` and J.
        num_clusters: k, the number of hypotheses, 1 <= k <= N.
        root_idx: root joint (39 for the 44-keypoint layout, 0 for lifting); None = none.
        joint_idx: the J' joints clustered and evaluated; None = all.
        mask: optional (..., J) joint confidences for the metrics (not for the clustering).
        generator: seeds k-means++ (on the inputs' device); same state, same result.
        max_iterations: upper bound on Lloyd iterations.
        tolerance: stopping rule of `kmeans` (0: wait for unchanged assignments).
        mm_per_unit: millimetres per input unit.

    Returns:
        KMeansBestOfKResult; with k = N it equals `best_of_n` on the same samples.

    Raises:
        ValueError, TypeError: as `best_of_n` and `kmeans`.
    """
    check_mm_per_unit(mm_per_unit)
    predictions = check_poses("predictions", predictions, layout="(..., N, J, 3)")
    target = check_poses("target", target)
    check_same_joints("predictions", predictions, "target", target)
    check_same_leading_shape("predictions", predictions, 3, "target", target, 2)
    num_samples = predictions.shape[-3]
    if not 1 <= int(num_clusters) <= num_samples:
        raise ValueError(
            f"`num_clusters` must lie in [1, N] = [1, {num_samples}] for `predictions` of "
            f"shape {tuple(predictions.shape)}, got {num_clusters}"
        )
    if mask is not None:
        mask = check_mask(mask, target.shape[-2], tuple(target.shape[:-2]), ("target", target))
    p, t, _ = prepare_pair(
        predictions,
        target[..., None, :, :],
        root_idx=root_idx,
        joint_idx=joint_idx,
        mask=None,
        prediction_name="predictions",
        min_joints=MIN_PA_JOINTS,
    )
    # p: (..., N, J', 3); t: (..., 1, J', 3).
    num_joints = p.shape[-2]
    flat = p.reshape(*p.shape[:-2], num_joints * 3)
    finite = torch.isfinite(flat).all(-1).all(-1)  # (...)
    flat = torch.where(finite[..., None, None], flat, flat.new_zeros(()))
    clusters = kmeans(
        flat,
        num_clusters=num_clusters,
        generator=generator,
        max_iterations=max_iterations,
        tolerance=tolerance,
    )
    centers = clusters.centers.reshape(*clusters.centers.shape[:-1], num_joints, 3)
    nan = torch.full((), float("nan"), dtype=centers.dtype, device=centers.device)
    centers = torch.where(finite[..., None, None, None], centers, nan)
    if mask is not None:
        index = joint_index_tensor(joint_idx, target.shape[-2], mask.device)
        if index is not None:
            mask = mask.index_select(-1, index)
    scores = best_of_n(
        centers,
        t[..., 0, :, :],
        root_idx=None,
        joint_idx=None,
        mask=mask,
        mm_per_unit=mm_per_unit,
    )
    return KMeansBestOfKResult(
        min_mpjpe=scores.min_mpjpe,
        min_pa_mpjpe=scores.min_pa_mpjpe,
        argmin_mpjpe=scores.argmin_mpjpe,
        argmin_pa_mpjpe=scores.argmin_pa_mpjpe,
        center_mpjpe=scores.sample_mpjpe,
        center_pa_mpjpe=scores.sample_pa_mpjpe,
        centers=centers,
        labels=clusters.labels,
        cluster_sizes=clusters.cluster_sizes,
    )
