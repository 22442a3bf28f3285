"""The evaluation protocols: regression (images -> 44 keypoints) and lifting (2D -> 3D joints).

One protocol scores every model and every program (the training run's report, the evaluation
programs): :func:`score_hypotheses` scores a (B, S, J, 3) set of hypotheses per image (sample 0
= the mode) against the ground truth, and :func:`evaluate_regression` / :func:`evaluate_lifting`
feed it a model's samples batch by batch.

- Errors are MPJPE (after subtracting the root joint) and PA-MPJPE, in mm. Regression compares
  the 44-keypoint layout, pelvis (39) subtracted, restricted to the dataset's keypoint list
  (LSP-14 for H36M-P2 and 3DPW, MPI-INF-17, ...; all 44 without one), joints of zero ground-truth
  confidence left out; lifting compares 17 joints with the original's zero pelvis.
- Best-of-n for every n uses the first n samples of ONE draw of ``num_samples`` hypotheses per
  image (sample 0 = the mode), as the paper's error-versus-n curves do; the paper draws exactly
  max(n) (its tables: the best of one draw of 4096, the mode included). k-means n clusters all
  the drawn samples into n hypotheses (the paper clusters 4096). See
  docs/evaluation.md#mode-and-best-of-n and docs/evaluation.md#k-means-quantisation.
- Baselines get the same scoring: Gaussian samples N(θ*, σ²I) around the mode θ* (sample 0 =
  θ* itself; σ = 1, 10, 20 cm in the paper) and poses drawn uniformly from the training set,
  as many per image as the model's draw, and fixed predictions (the mean training pose).
- Uncertainty (``pose_metrics.UncertaintyAccumulator``, docs/evaluation.md#uncertainty-metrics):
  the diversity of up to ``uncertainty_samples`` random samples of the same draw (visible and
  occluded/truncated joints apart), their calibration curve and ECE, the rank correlation of
  spread and mode error, and the log-likelihood of the ground truth under the model's flow
  (the training NLL's path); :func:`calibration_plot` draws the curve.

Non-finite predictions (a checkpoint with NaN weights, an overflow) are never scored: every
evaluation program checks the model's poses with :func:`check_finite_predictions`, which raises
:class:`NonFinitePredictionError` naming the checkpoint (or model) and how many predictions
were NaN or infinite, so the program exits non-zero instead of printing NaN means.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

import pose_geometry as pg
import pose_metrics as pm
from pose_data.io import atomic_write

from .batch import to_device
from .lifting import ProSkeleton, lifting_batch, prepend_zero_pelvis
from .losses import nll_targets
from .model import ProHMR

__all__ = [
    "GAUSSIAN_SIGMAS_M",
    "LIFTING_DENSITY",
    "REGRESSION_DENSITY",
    "UNCERTAINTY_SAMPLES",
    "NonFinitePredictionError",
    "RegressionEvaluation",
    "calibration_plot",
    "check_finite_predictions",
    "error_vs_n_plot",
    "evaluate_lifting",
    "evaluate_regression",
    "mean_pose_keypoints",
    "score_hypotheses",
    "visible_keypoints",
]

GAUSSIAN_SIGMAS_M = (0.01, 0.10, 0.20)
"""The paper's Gaussian baselines: standard deviations of 1, 10 and 20 cm around the mode."""

UNCERTAINTY_SAMPLES = 100
"""Random samples per image (after the mode) that the uncertainty metrics use by default."""

REGRESSION_DENSITY = (
    "ProHMR's flow density of the ground-truth SMPL pose (global orientation and 23 body "
    "joints) in its 6D rotation embedding, 144 numbers, in nats. It is a density over R^144, "
    "not over SO(3)^24: values compare only between models with the same representation."
)
"""What the regression log-likelihood is a density over (its caveat, printed with it)."""

LIFTING_DENSITY = (
    "the lifting flow's density of the 16 ground-truth root-relative 3D joints in metres, 48 "
    "numbers, in nats: values compare only between models over the same joints and units."
)
"""What the lifting log-likelihood is a density over (its caveat, printed with it)."""


class NonFinitePredictionError(ValueError):
    """A model produced NaN or infinite predictions; the evaluation refuses to score them."""


def check_finite_predictions(predictions: torch.Tensor, *, source: str, where: str = "") -> None:
    """Raise unless every predicted pose is finite.

    Args:
        predictions: (..., J, 3) poses; each pose (the last two dimensions) is one prediction.
        source: what made them, e.g. ``"checkpoint runs/a/last.pt"``.
        where: which inputs, e.g. ``" for images 0-3"`` (appended to the message).

    Raises:
        NonFinitePredictionError (a ValueError): naming ``source`` and how many of the
            predictions hold NaN or infinite values.
    """
    bad = ~torch.isfinite(predictions).flatten(-2).all(-1)
    count = int(bad.sum())
    if count:
        raise NonFinitePredictionError(
            f"{source} produced {count} non-finite prediction(s) (poses with NaN or infinite "
            f"coordinates) out of {bad.numel()}{where}; the evaluation refuses to score them"
        )


def batch_images(batch: dict[str, Any], fallback: int) -> str:
    """`` for images a-b`` from a batch's ``idx`` (or the running count), for messages."""
    index = batch.get("idx")
    if isinstance(index, torch.Tensor) and index.numel():
        return f" for images {int(index.min())}-{int(index.max())}"
    return f" in batch {fallback}"


@dataclass(frozen=True)
class RegressionEvaluation:
    """Per-image errors (mm) and the summary table; the uncertainty metrics (None when fewer
    than 2 random samples per image were drawn or they were not asked for)."""

    accumulator: pm.MetricAccumulator
    summary: dict[str, float]
    uncertainty: pm.UncertaintySummary | None = None


def visible_keypoints(keypoints_2d: Tensor) -> Tensor:
    """(B, K, 3) crop-normalised 2D keypoints (x, y, confidence) -> (B, K) bool visibility.

    A keypoint is visible when its 2D ground-truth confidence is positive (the annotation saw
    it) and it lies inside the crop, x and y in [-0.5, 0.5] (``--truncate``'s extreme crops cut
    joints off; their confidence stays as annotated). Everything else counts as occluded or
    truncated.
    """
    inside = (keypoints_2d[..., :2].abs() <= 0.5).all(-1)
    return (keypoints_2d[..., 2] > 0) & inside


def _uncertainty_count(num_samples: int, wanted: int) -> int:
    """Random samples (after the mode) the uncertainty metrics use; 0 = none (fewer than 2)."""
    count = min(int(wanted), num_samples - 1)
    return count if count >= 2 else 0


def _regression_log_likelihood(
    model: ProHMR, features: Tensor, batch: dict[str, Any]
) -> Tensor | None:
    """(B,) log p of each image's ground-truth SMPL pose (NaN without one), or None when the
    items carry no SMPL annotation at all. The training NLL's path: ``nll_targets`` without
    noise and ``ProHMR.target_log_prob``."""
    if "smpl_params" not in batch or "has_smpl_params" not in batch:
        return None
    log_prob, valid = model.target_log_prob(features, nll_targets(batch, noise_std=0.0))
    out = features.new_full((len(features),), float("nan"), dtype=torch.float32)
    out[valid] = log_prob[:, 0].float()
    return out


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def _check_counts(name: str, values: Sequence[int], available: int, what: str) -> None:
    bad = [int(v) for v in values if not 1 <= int(v) <= available]
    if bad:
        raise ValueError(f"`{name}` values must lie in [1, {available}] ({what}), got {bad}")


def score_hypotheses(
    predictions: Tensor,
    target: Tensor,
    *,
    root_idx: int,
    joint_idx: Sequence[int] | None = None,
    mask: Tensor | None = None,
    best_of: Sequence[int] = (),
    kmeans_clusters: Sequence[int] = (),
    gaussian_sigmas_m: Sequence[float] = (),
    training_poses: Tensor | None = None,
    pck_auc: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Per-image errors (mm) of S hypotheses per image, and of the baselines built like them.

    Args:
        predictions: (B, S, J, 3) hypotheses in metres; sample 0 is the mode.
        target: (B, J, 3) ground truth in metres.
        root_idx: the joint subtracted before MPJPE (39 for regression, 0 for lifting).
        joint_idx: the joints scored (None: all J).
        mask: (B, J) ground-truth confidences; a joint with 0 is left out of every metric.
        best_of: n values: ``best{n}`` is the smallest error among samples 0..n-1.
        kmeans_clusters: k values: ``kmeans{k}`` clusters all S samples into k hypotheses.
        gaussian_sigmas_m: σ values in metres: S samples from N(θ*, σ²I) around the mode θ*
            (their sample 0 is θ* itself), scored as ``gauss{σ in cm}cm_best{n}``.
        training_poses: (M, J, 3) root-relative training poses in metres: S drawn per image
            uniformly with replacement, scored as ``trainset_best{n}``.
        pck_auc: add ``mode_pck150`` and ``mode_auc`` (percent; the mode's root-aligned joint
            errors below 150 mm, and the mean PCK over 0, 5, ..., 150 mm: MPI-INF-3DHP's).
        generator: random source of k-means and the baselines, on the predictions' device.
            Drawn in this order: k-means (each k in turn), the Gaussian samples (each σ in
            turn), the training poses.

    Returns:
        name -> (B,) values (MPJPE ``..._mpjpe``, PA-MPJPE ``..._pa_mpjpe``), in the order
        mode, best-of-n, k-means, Gaussian, training set, PCK/AUC.

    Raises:
        ValueError: if an n or k is not in [1, S], and as ``pose_metrics`` for bad shapes.
    """
    num = predictions.shape[1]
    _check_counts("best_of", best_of, num, "the hypotheses per image")
    _check_counts("kmeans_clusters", kmeans_clusters, num, "the hypotheses per image")
    joints = None if joint_idx is None else list(joint_idx)
    options: dict[str, Any] = {"root_idx": root_idx, "joint_idx": joints, "mask": mask}
    result = pm.best_of_n(predictions, target, **options)
    values: dict[str, Tensor] = {
        "mode_mpjpe": result.mode_mpjpe,
        "mode_pa_mpjpe": result.mode_pa_mpjpe,
    }
    for n in best_of:
        first = result.best_of_first(n)
        values[f"best{n}_mpjpe"] = first.mpjpe
        values[f"best{n}_pa_mpjpe"] = first.pa_mpjpe
    for k in kmeans_clusters:
        clustered = pm.kmeans_best_of_k(
            predictions, target, num_clusters=k, generator=generator, **options
        )
        values[f"kmeans{k}_mpjpe"] = clustered.min_mpjpe
        values[f"kmeans{k}_pa_mpjpe"] = clustered.min_pa_mpjpe
    baselines: list[tuple[str, Callable[[], Tensor]]] = []
    for sigma in gaussian_sigmas_m:
        baselines.append(
            (
                f"gauss{round(sigma * 100)}cm",
                lambda sigma=sigma: pm.gaussian_baseline_samples(
                    predictions[:, 0], num_samples=num, sigma_m=sigma, generator=generator
                ),
            )
        )
    if training_poses is not None:
        baselines.append(
            (
                "trainset",
                lambda: pm.training_set_baseline_samples(
                    training_poses, num_images=len(target), num_samples=num, generator=generator
                ),
            )
        )
    for name, draw in baselines:
        scored = pm.best_of_n(draw(), target, **options)
        for n in best_of:
            first = scored.best_of_first(n)
            values[f"{name}_best{n}_mpjpe"] = first.mpjpe
            values[f"{name}_best{n}_pa_mpjpe"] = first.pa_mpjpe
    if pck_auc:
        errors = pm.joint_position_errors(
            predictions[:, 0], target, root_idx=root_idx, joint_idx=joints
        )
        used = None if mask is None else mask[:, slice(None) if joints is None else joints]
        values["mode_pck150"] = pm.pck(errors, mask=used)
        values["mode_auc"] = pm.auc(errors, mask=used)
    return values


def _sample_keypoints(
    model: ProHMR,
    features: Tensor,
    *,
    num_samples: int,
    sample_chunk: int,
    generator: torch.Generator | None,
) -> Tensor:
    """(B, num_samples, 44, 3) keypoints of one draw per image (sample 0 = mode)."""
    if num_samples <= sample_chunk:
        return model.decode(features, num_samples=num_samples, generator=generator).keypoints_3d
    # Too many to decode at once: draw every latent first, exactly as one decode call would,
    # and decode them in chunks, so the samples never depend on the chunk size.
    size = model.flow.flow.features
    random = torch.randn(
        len(features),
        num_samples - 1,
        size,
        generator=generator,
        dtype=features.dtype,
        device=features.device,
    )
    z = torch.cat([random.new_zeros(len(features), 1, size), random], dim=1)
    pieces = [
        model.decode(features, num_samples=stop - start, z=z[:, start:stop]).keypoints_3d
        for start, stop in _chunks(num_samples, sample_chunk)
    ]
    return torch.cat(pieces, dim=1)


def _batch_groups(
    batch: dict[str, Any],
    group_keys: Sequence[str],
    group_labels: Mapping[str, Sequence[Any]],
) -> dict[str, list[str]]:
    groups = {}
    for key in group_keys:
        if key not in batch:
            raise KeyError(f"`group_keys`: the items have no key {key!r} (keys: {sorted(batch)})")
        groups[key] = [str(v) for v in batch[key]]
    if group_labels:
        if "idx" not in batch:
            raise KeyError(
                f"`group_labels` needs the dataset row of every item, key 'idx' "
                f"(the items have {sorted(batch)})"
            )
        rows = [int(i) for i in batch["idx"]]
        for key, labels in group_labels.items():
            if max(rows) >= len(labels):
                raise ValueError(
                    f"`group_labels[{key!r}]` has {len(labels)} labels; the dataset has a row "
                    f"{max(rows)}"
                )
            groups[key] = [str(labels[row]) for row in rows]
    return groups


@torch.no_grad()
def evaluate_regression(
    model: ProHMR,
    dataset: Any,
    *,
    keypoint_list: Sequence[int] | None,
    num_samples: int = 1,
    best_of: Sequence[int] = (),
    kmeans_clusters: Sequence[int] = (),
    gaussian_sigmas_m: Sequence[float] = (),
    training_poses: Tensor | None = None,
    pck_auc: bool = False,
    batch_size: int = 16,
    sample_chunk: int = 1024,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
    baseline_generator: torch.Generator | None = None,
    group_keys: Sequence[str] = (),
    group_labels: Mapping[str, Sequence[Any]] | None = None,
    extra_predictions: dict[str, Callable[[dict[str, Any]], Tensor]] | None = None,
    source: str = "the model",
    on_batch: Callable[[int], object] | None = None,
    uncertainty_samples: int = UNCERTAINTY_SAMPLES,
) -> RegressionEvaluation:
    """Evaluate ``model`` on ``dataset`` (items as pose-data's ImageDataset returns them).

    The protocol (the one every report and program uses): the images are taken in dataset
    order, ``batch_size`` at a time; for each batch the model draws ONE set of ``num_samples``
    hypotheses per image from ``generator`` (sample 0 = the mode; a (B, num_samples - 1, 144)
    latent draw, decoded ``sample_chunk`` at a time, which changes memory use only), and
    :func:`score_hypotheses` scores them: best-of-n for each n takes the first n of that draw,
    as the paper does with a draw of exactly max(n) (``num_samples = max(best_of)``; the first
    n of a larger draw are as good a sample, but other random numbers). Nothing else draws
    from ``generator``, unless ``baseline_generator`` is None: k-means and the baselines then
    draw from it after each batch's samples, so asking for them changes the later batches'
    samples. Pass a generator of their own to keep the model's figures the same with or without
    them. With the same arguments and generator state the figures are the same on every run;
    on CUDA the random numbers also depend on ``batch_size``.

    Args:
        keypoint_list: indices into the 44 keypoints that are scored (None: all 44).
        num_samples: hypotheses per image (sample 0 = mode); must be >= max(best_of) and
            >= max(kmeans_clusters).
        best_of: n values for best-of-n (each uses the first n samples).
        kmeans_clusters: n values for k-means quantisation of all ``num_samples`` samples.
        gaussian_sigmas_m: Gaussian baselines around the mode, σ in metres (the paper's:
            :data:`GAUSSIAN_SIGMAS_M`); ``num_samples`` each, scored best-of-n like the model.
        training_poses: (M, 44, 3) pelvis-relative training keypoints (metres): the
            training-set baseline, ``num_samples`` drawn per image.
        pck_auc: also report the mode's PCK at 150 mm and AUC (MPI-INF-3DHP's 17 joints).
        sample_chunk: samples decoded at once per image batch (memory bound).
        generator: random source of the model's samples (None: the global one).
        baseline_generator: random source of k-means and the baselines (None: ``generator``).
        group_keys: item keys used as breakdown labels (e.g. 'action').
        group_labels: {key: one label per dataset row}, looked up by the items' ``idx`` (e.g.
            the 'action' array of the dataset's npz file), also breakdown labels.
        extra_predictions: {name: callable(batch) -> (B, S, 44, 3)} scored like the model
            (fixed baselines such as the mean pose); their metrics, prefixed by the name, are
            the best of their S predictions.
        source: what the model is, for the non-finite error (e.g. "checkpoint last.pt").
        on_batch: called after each batch with its number of images (progress bars).
        uncertainty_samples: random samples per image for the uncertainty metrics
            (``pose_metrics.UncertaintyAccumulator``; docs/evaluation.md#uncertainty-metrics):
            samples 1..k of the same draw, k = min(this, num_samples - 1), the mode left out
            (it is no draw); none when k < 2 or this is 0. They draw no random numbers.
            Visibility: :func:`visible_keypoints` of the items' ``keypoints_2d``; the
            log-likelihood of the ground-truth SMPL pose under the flow
            (``ProHMR.target_log_prob``, the NLL's path) for items with ``smpl_params``.

    Returns:
        RegressionEvaluation: the per-image values (with the breakdown labels) and the means,
        in the order of :func:`score_hypotheses`, then the extra predictions; the uncertainty
        summary.

    Raises:
        ValueError: if ``num_samples`` is smaller than a best-of-n or k-means n.
        NonFinitePredictionError: if the model predicts a NaN or infinite pose (the count and
            the images are named).
    """
    device = device or next(model.parameters()).device
    model.eval()
    wanted = max([1, *best_of, *kmeans_clusters])
    if num_samples < wanted:
        raise ValueError(
            f"`num_samples` ({num_samples}) must be >= max(best_of, kmeans_clusters) ({wanted})"
        )
    if sample_chunk < 1:
        raise ValueError(f"`sample_chunk` must be at least 1, got {sample_chunk}")
    joints = list(range(44)) if keypoint_list is None else list(keypoint_list)
    train = None if training_poses is None else training_poses.to(device).float()
    other_generator = generator if baseline_generator is None else baseline_generator
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    accumulator = pm.MetricAccumulator()
    spread_count = _uncertainty_count(num_samples, uncertainty_samples)
    spread = None
    if spread_count:
        names = [pg.KEYPOINT_NAMES_44[j] for j in joints]
        spread = pm.UncertaintyAccumulator(joint_names=names, density=REGRESSION_DENSITY)
    for number, batch in enumerate(loader):
        batch = to_device(batch, device)
        target = batch["keypoints_3d"].float()
        mask = target[..., 3]
        features = model.features(batch["img"]).float()
        predictions = _sample_keypoints(
            model,
            features,
            num_samples=num_samples,
            sample_chunk=sample_chunk,
            generator=generator,
        )
        check_finite_predictions(predictions, source=source, where=batch_images(batch, number))
        values = score_hypotheses(
            predictions,
            target[..., :3],
            root_idx=pg.PELVIS_IDX_44,
            joint_idx=joints,
            mask=mask,
            best_of=best_of,
            kmeans_clusters=kmeans_clusters,
            gaussian_sigmas_m=gaussian_sigmas_m,
            training_poses=train,
            pck_auc=pck_auc,
            generator=other_generator,
        )
        for name, predict in (extra_predictions or {}).items():
            scored = pm.best_of_n(
                predict(batch),
                target[..., :3],
                root_idx=pg.PELVIS_IDX_44,
                joint_idx=joints,
                mask=mask,
            )
            values[f"{name}_mpjpe"] = scored.min_mpjpe
            values[f"{name}_pa_mpjpe"] = scored.min_pa_mpjpe
        groups = _batch_groups(batch, group_keys, group_labels or {})
        accumulator.add({k: v.cpu() for k, v in values.items()}, groups=groups or None)
        if spread is not None:
            keypoints_2d = batch.get("keypoints_2d")
            spread.add(
                predictions[:, 1 : 1 + spread_count],
                target[..., :3],
                mode=predictions[:, 0],
                root_idx=pg.PELVIS_IDX_44,
                joint_idx=joints,
                mask=mask,
                visible=None if keypoints_2d is None else visible_keypoints(keypoints_2d),
                log_likelihood=_regression_log_likelihood(model, features, batch),
            )
        if on_batch is not None:
            on_batch(len(target))
    overall = accumulator.summarize()[0]
    summary = {name: item.mean for name, item in overall.metrics.items()}
    uncertainty = None if spread is None or not spread.num_images else spread.summarize()
    return RegressionEvaluation(accumulator, summary, uncertainty)


def _chordal_mean(rotmats: torch.Tensor) -> torch.Tensor:
    """(M, J, 3, 3) -> (J, 3, 3): the rotation nearest to the mean matrix (SVD projection)."""
    mean = rotmats.double().mean(dim=0)
    u, _, vt = torch.linalg.svd(mean)
    fix = torch.ones(mean.shape[:-1], dtype=mean.dtype)
    fix[..., 2] = torch.det(u @ vt)
    return ((u * fix[..., None, :]) @ vt).float()


def mean_pose_keypoints(
    body_model: Any, poses_axis_angle: np.ndarray, betas: np.ndarray
) -> torch.Tensor:
    """(44, 3) keypoints of the mean training pose: the chordal mean of every joint's rotation
    (global orientation included, so the baseline faces the way the training bodies do on
    average) with mean betas. Its PA-MPJPE is the "mean pose" baseline."""
    rotmats = pg.axis_angle_to_rotmat(torch.from_numpy(poses_axis_angle).reshape(-1, 24, 3))
    mean = _chordal_mean(rotmats)
    output = body_model.keypoints_only(
        global_orient=mean[None, :1],
        body_pose=mean[None, 1:],
        betas=torch.from_numpy(np.asarray(betas, np.float32)).reshape(1, -1),
    )
    return output.keypoints[0]


@torch.no_grad()
def evaluate_lifting(
    model: ProSkeleton,
    dataset: Any,
    *,
    ns: Sequence[int] = (1, 10, 100, 1000, 4096),
    kmeans_ns: Sequence[int] = (),
    gaussian_sigmas_m: Sequence[float] = GAUSSIAN_SIGMAS_M,
    training_poses: Tensor | None = None,
    batch_size: int = 8,
    device: torch.device | None = None,
    seed: int = 0,
    source: str = "the model",
    uncertainty_samples: int = UNCERTAINTY_SAMPLES,
) -> dict[str, Any]:
    """Mode and best-of-n MPJPE / PA-MPJPE (mm, 17 joints with the zero pelvis), k-means n,
    and the Gaussian / training-set baselines, scored by :func:`score_hypotheses` on one draw of
    max(ns) samples per test row. One generator seeded with ``seed`` draws, batch by batch, the
    samples, then k-means and the baselines. Returns a summary dict: ``summary`` (the means),
    ``accumulator``, ``ns`` and ``uncertainty`` (``pose_metrics.UncertaintySummary`` or None).

    The uncertainty metrics (docs/evaluation.md#uncertainty-metrics) use samples 1..k of the
    same draw, k = min(``uncertainty_samples``, max(ns) - 1) (none when k < 2), over the 16
    joints (the zero pelvis is the root); a joint is visible when its 2D input's confidence is
    positive; the log-likelihood is the flow's log p of the ground-truth joints (the NLL's
    path, ``ProSkeleton.forward``'s ``target``), when the model's output has one.

    Raises:
        NonFinitePredictionError: naming ``source`` (e.g. "checkpoint last.pt") and the count,
            if the model predicts a NaN or infinite pose.
    """
    device = device or next(model.parameters()).device
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    num = max(ns)
    accumulator = pm.MetricAccumulator()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    train_17 = None
    if training_poses is not None:
        train_17 = prepend_zero_pelvis(training_poses.to(device).float())
    spread_count = _uncertainty_count(num, uncertainty_samples)
    spread = None
    if spread_count:
        names = [pg.KEYPOINT_NAMES_44[j] for j in pg.LIFTING_3D_IDX_44]
        spread = pm.UncertaintyAccumulator(joint_names=names, density=LIFTING_DENSITY)
    # the 2D input's joint of each 3D joint (the 2D inputs include the pelvis, in another order)
    input_of_joint = [pg.LIFTING_2D_IDX_44.index(j) for j in pg.LIFTING_3D_IDX_44]
    for number, batch in enumerate(loader):
        batch = to_device(batch, device)
        keypoints_2d, target = lifting_batch(batch)
        output = model(keypoints_2d, num_samples=num, generator=generator, target=target)
        row = number * batch_size
        check_finite_predictions(
            output.keypoints_3d,
            source=source,
            where=f" for test rows {row}-{row + len(keypoints_2d) - 1}",
        )
        values = score_hypotheses(
            prepend_zero_pelvis(output.keypoints_3d),
            prepend_zero_pelvis(target),
            root_idx=0,
            best_of=ns,
            kmeans_clusters=kmeans_ns,
            gaussian_sigmas_m=gaussian_sigmas_m,
            training_poses=train_17,
            generator=generator,
        )
        accumulator.add({k: v.cpu() for k, v in values.items()})
        if spread is not None:
            samples = prepend_zero_pelvis(output.keypoints_3d)
            visible = None
            if keypoints_2d.shape[-1] > 2:  # a confidence channel
                seen = keypoints_2d[:, input_of_joint, 2] > 0
                visible = torch.cat([torch.ones_like(seen[:, :1]), seen], dim=1)
            log_prob = getattr(output, "target_log_prob", None)
            spread.add(
                samples[:, 1 : 1 + spread_count],
                prepend_zero_pelvis(target),
                mode=samples[:, 0],
                root_idx=0,
                joint_idx=list(range(1, 17)),
                visible=visible,
                log_likelihood=None if log_prob is None else log_prob.reshape(-1),
            )
    overall = accumulator.summarize()[0]
    summary = {name: item.mean for name, item in overall.metrics.items()}
    uncertainty = None if spread is None or not spread.num_images else spread.summarize()
    return {
        "summary": summary,
        "accumulator": accumulator,
        "ns": list(ns),
        "uncertainty": uncertainty,
    }


_BEST_OF = re.compile(r"(?:(?P<family>.+)_)?best(?P<n>\d+)|kmeans(?P<k>\d+)")


def _series(summary: Mapping[str, float], metric: str) -> dict[str, dict[int, float]]:
    """{label: {n: error}} of every best-of-n family in a summary (model, k-means, baselines)."""
    series: dict[str, dict[int, float]] = {}
    for key, value in summary.items():
        name = key.removesuffix(f"_{metric}")
        if name == key or (metric == "mpjpe" and name.endswith("_pa")):
            continue
        match = _BEST_OF.fullmatch(name)
        if match is None:
            continue
        if match["k"] is not None:
            label, n = "model, k-means", int(match["k"])
        else:
            label, n = match["family"] or "model", int(match["n"])
        series.setdefault(label, {})[n] = value
    return series


def _figure(function: str, size: tuple[float, float]) -> Any:
    """A pyplot-free matplotlib Figure (the caller's backend is left alone)."""
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"{function} needs matplotlib, the optional dependency of prohmr-model's "
            "'plots' extra: pip install 'prohmr-model[plots]'"
        ) from error
    return Figure(figsize=size)


def _save_png(figure: Any, path: str | Path) -> Path:
    """Lay out ``figure`` and write it to ``path`` as a PNG, atomically; returns the path."""
    figure.tight_layout()
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return atomic_write(destination, lambda file: file.write(buffer.getvalue()))


def error_vs_n_plot(
    summary: Mapping[str, float], ns: Sequence[int], path: str | Path, *, title: str
) -> Path:
    """The error-versus-n figure of an evaluation summary, as a PNG.

    Best-of-n MPJPE and PA-MPJPE against log n for the model (``best{n}``), its k-means
    quantisation (``kmeans{n}``) and every baseline with best-of-n values (``gauss1cm_best{n}``,
    ``trainset_best{n}``, ...), at the n values in ``ns`` found in the summary; single-number
    baselines (``mean_pose``) are drawn as horizontal lines. Matplotlib is the optional
    dependency ``prohmr-model[plots]``; the figure is drawn without pyplot, so the caller's
    backend is left alone.

    Raises:
        ModuleNotFoundError: naming the extra, if matplotlib is not installed.
    """
    figure = _figure("error_vs_n_plot", (10, 4))
    wanted = sorted({int(n) for n in ns})
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("mpjpe", "pa_mpjpe"), strict=True):
        for label, values in _series(summary, metric).items():
            points = [(n, values[n]) for n in wanted if n in values and math.isfinite(values[n])]
            if points:
                xs, ys = zip(*points, strict=True)
                axis.plot(xs, ys, marker="o", label=label)
        for name in ("mean_pose",):
            value = summary.get(f"{name}_{metric}", math.nan)
            if math.isfinite(value):
                axis.axhline(value, linestyle="--", color="grey", label=name.replace("_", " "))
        axis.set_xscale("log")
        axis.set_xlabel("number of hypotheses n")
        axis.set_ylabel(f"best-of-n {metric.upper().replace('_', '-')} (mm)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    return _save_png(figure, path)


def calibration_plot(summary: pm.UncertaintySummary, path: str | Path, *, title: str) -> Path:
    """The calibration curve of an uncertainty summary, as a PNG.

    Observed coverage against the level p (``summary.coverage``, one thick line, with the ECE in
    the legend) and one thin line per joint, over the diagonal of perfect calibration: below
    it the samples are too narrow (over-confident), above too wide. Matplotlib is the optional
    dependency ``prohmr-model[plots]``; drawn without pyplot, as :func:`error_vs_n_plot`.

    Raises:
        ModuleNotFoundError: naming the extra, if matplotlib is not installed.
    """
    figure = _figure("calibration_plot", (5.5, 5))
    axis = figure.subplots()
    levels = list(summary.levels)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    for joint_curve in summary.coverage_per_joint:  # unlabelled: the table names them
        axis.plot(levels, joint_curve, linewidth=0.8, alpha=0.35)
    axis.plot(
        levels,
        summary.coverage,
        marker="o",
        linewidth=2.2,
        color="black",
        label=f"all joints (ECE {summary.ece:.3f})",
    )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("level p of the samples' central region")
    axis.set_ylabel("fraction of ground-truth joints inside")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", title="thin lines: single joints", title_fontsize=7)
    axis.set_title(f"{title} ({summary.num_images} images, {summary.num_samples} samples)")
    return _save_png(figure, path)
