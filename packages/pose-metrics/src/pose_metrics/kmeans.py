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
from pose_geometry import check_floating, check_same_leading_shape, check_trailing_shape
from torch import Tensor

from pose_metrics._inputs import (
    JointIndex,
    check_mask,
    check_mm_per_unit,
    check_poses,
    check_same_joints,
    joint_index_tensor,
    prepare_pair,
)
from pose_metrics.best_of_n import best_of_n

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
        num_iterations: Lloyd iterations run (the maximum over the batch).
        converged: True if no assignment changed in the last iteration, for every set.
    """

    centers: Tensor
    labels: Tensor
    cluster_sizes: Tensor
    inertia: Tensor
    num_iterations: int
    converged: bool


def _squared_distances(points: Tensor, centers: Tensor, points_sq: Tensor) -> Tensor:
    """(M, N, D), (M, k, D), (M, N) -> (M, N, k) squared distances, clamped at 0."""
    centers_sq = (centers * centers).sum(-1)  # (M, k)
    cross = points @ centers.transpose(-1, -2)  # (M, N, k)
    return (points_sq[..., None] - 2.0 * cross + centers_sq[..., None, :]).clamp_min(0.0)


def _kmeans_plus_plus(points: Tensor, num_clusters: int, generator: torch.Generator | None) -> Tensor:
    """k-means++ seeding: (M, N, D) -> (M, k) indices of distinct points chosen as centres.

    The first centre is uniform; each next one is drawn with probability proportional to the
    squared distance to the nearest chosen centre (Arthur & Vassilvitskii 2007). Points already
    chosen get probability 0, so k = N picks every point once; a set whose remaining points all
    coincide with chosen ones falls back to uniform among the unchosen.
    """
    M, N, _ = points.shape
    rows = torch.arange(M, device=points.device)
    chosen = torch.zeros(M, N, dtype=torch.bool, device=points.device)
    indices = torch.empty(M, num_clusters, dtype=torch.long, device=points.device)
    first = torch.randint(N, (M,), generator=generator, device=points.device)
    indices[:, 0] = first
    chosen[rows, first] = True
    nearest = ((points - points[rows, first][:, None, :]) ** 2).sum(-1)  # (M, N)
    for c in range(1, num_clusters):
        weights = torch.where(chosen, nearest.new_zeros(()), nearest)
        empty = weights.sum(-1, keepdim=True) <= 0
        weights = torch.where(empty, (~chosen).to(weights.dtype), weights)
        pick = torch.multinomial(weights, 1, generator=generator)[:, 0]
        indices[:, c] = pick
        chosen[rows, pick] = True
        distance = ((points - points[rows, pick][:, None, :]) ** 2).sum(-1)
        nearest = torch.minimum(nearest, distance)
    return indices


def kmeans(
    points: Tensor,
    *,
    num_clusters: int,
    generator: torch.Generator | None = None,
    max_iterations: int = 100,
) -> KMeansResult:
    """Cluster each set of N points into k clusters (k-means++ seeding, then Lloyd iterations).

    Args:
        points: (..., N, D) one set of N points per leading index, e.g. (B, 4096, 42) flattened
            root-aligned joints of B images. Non-finite values are not allowed.
        num_clusters: k, with 1 <= k <= N.
        generator: the `torch.Generator` (on the points' device) that drives the seeding; the
            result is a deterministic function of the points and the generator's state.
        max_iterations: upper bound on Lloyd iterations; iteration stops earlier as soon as no
            assignment changes in any set.

    Returns:
        KMeansResult with centres (..., k, D), labels (..., N), cluster sizes (..., k) and
        inertia (...).

    Raises:
        ValueError: for points not (..., N, D), k outside [1, N], a non-finite point or
            `max_iterations` < 0.
        TypeError: for a non-tensor or non-floating-point `points`.
    """
    check_trailing_shape("points", points, None, None)
    check_floating("points", points)
    num_points = points.shape[-2]
    if not 1 <= int(num_clusters) <= num_points:
        raise ValueError(
            f"`num_clusters` must lie in [1, N] = [1, {num_points}] for `points` of shape "
            f"{tuple(points.shape)}, got {num_clusters}"
        )
    if int(max_iterations) < 0:
        raise ValueError(f"`max_iterations` must be >= 0, got {max_iterations}")
    if not bool(torch.isfinite(points).all()):
        raise ValueError("`points` must be finite; got NaN or inf values")
    k = int(num_clusters)
    leading = tuple(points.shape[:-2])
    x = points.reshape(-1, *points.shape[-2:])
    # Centre each set: distances are unchanged and the |x|² - 2x·c + |c|² expansion loses less.
    offset = x.mean(-2, keepdim=True)
    x = x - offset
    M, N, D = x.shape
    x_sq = (x * x).sum(-1)

    seeds = _kmeans_plus_plus(x, k, generator)
    centers = x.gather(1, seeds[..., None].expand(M, k, D))
    labels = _squared_distances(x, centers, x_sq).argmin(-1)
    iterations = 0
    converged = False
    for _ in range(int(max_iterations)):
        one_hot = torch.nn.functional.one_hot(labels, k).to(x.dtype)  # (M, N, k)
        counts = one_hot.sum(1)  # (M, k)
        sums = one_hot.transpose(1, 2) @ x  # (M, k, D)
        centers = torch.where(
            counts[..., None] > 0, sums / counts.clamp_min(1.0)[..., None], centers
        )
        iterations += 1
        new_labels = _squared_distances(x, centers, x_sq).argmin(-1)
        if torch.equal(new_labels, labels):
            converged = True
            break
        labels = new_labels
    distances = _squared_distances(x, centers, x_sq)
    inertia = distances.gather(-1, labels[..., None])[..., 0].sum(-1)
    # Final centres: means of the final clusters in the original coordinates (a singleton's
    # centre is then its point exactly, so k = N reproduces the samples).
    one_hot = torch.nn.functional.one_hot(labels, k)
    sizes = one_hot.sum(1)
    original = points.reshape(M, N, D)
    means = (one_hot.to(x.dtype).transpose(1, 2) @ original) / sizes.clamp_min(1)[..., None]
    centers = torch.where(sizes[..., None] > 0, means, centers + offset)
    return KMeansResult(
        centers=centers.reshape(*leading, k, D),
        labels=labels.reshape(*leading, N),
        cluster_sizes=sizes.reshape(*leading, k),
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
        mm_per_unit: millimetres per input unit.

    Returns:
        KMeansBestOfKResult; with k = N it equals `best_of_n` on the same samples.

    Raises:
        ValueError, TypeError: as `best_of_n` and `kmeans`.
    """
    check_mm_per_unit(mm_per_unit)
    predictions = check_poses("predictions", predictions)
    check_trailing_shape("predictions", predictions, None, None, 3)
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
        mask = check_mask(mask, target.shape[-2], tuple(target.shape[:-2]))
    p, t, _ = prepare_pair(
        predictions,
        target[..., None, :, :],
        root_idx=root_idx,
        joint_idx=joint_idx,
        mask=None,
        prediction_name="predictions",
    )
    # p: (..., N, J', 3); t: (..., 1, J', 3).
    num_joints = p.shape[-2]
    flat = p.reshape(*p.shape[:-2], num_joints * 3)
    finite = torch.isfinite(flat).all(-1).all(-1)  # (...)
    flat = torch.where(finite[..., None, None], flat, flat.new_zeros(()))
    clusters = kmeans(
        flat, num_clusters=num_clusters, generator=generator, max_iterations=max_iterations
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
