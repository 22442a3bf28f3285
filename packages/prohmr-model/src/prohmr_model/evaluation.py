"""Regression evaluation: mode and best-of-n MPJPE / PA-MPJPE on an image dataset
(docs/evaluation.md#mode-and-best-of-n).

Predictions and ground truth are compared on the 44-keypoint layout, pelvis (39) subtracted,
restricted to the dataset's keypoint list (LSP-14 for H36M-P2 and 3DPW, MPI-INF-17, ...), in mm.
Best-of-n for several n uses the first n samples of one draw of max(n) (sample 0 = mode); k-means
quantised n clusters 4096 samples per image into n hypotheses
(docs/evaluation.md#k-means-quantisation).

Non-finite predictions (a checkpoint with NaN weights, an overflow) are never scored: every
evaluation program checks the model's poses with :func:`check_finite_predictions`, which raises
:class:`NonFinitePredictionError` naming the checkpoint (or model) and how many predictions
were NaN or infinite, so the program exits non-zero instead of printing NaN means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

import pose_geometry as pg
import pose_metrics as pm

from .batch import to_device
from .lifting import ProSkeleton, lifting_batch, prepend_zero_pelvis
from .model import ProHMR

__all__ = [
    "NonFinitePredictionError",
    "RegressionEvaluation",
    "check_finite_predictions",
    "error_vs_n_plot",
    "evaluate_lifting",
    "evaluate_regression",
    "mean_pose_keypoints",
]


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
    """Per-image errors (mm) and the summary table."""

    accumulator: pm.MetricAccumulator
    summary: dict[str, float]


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, total)) for start in range(0, total, size)]


@torch.no_grad()
def evaluate_regression(
    model: ProHMR,
    dataset: Any,
    *,
    keypoint_list: Sequence[int],
    num_samples: int = 1,
    best_of: Sequence[int] = (),
    kmeans_clusters: Sequence[int] = (),
    batch_size: int = 16,
    sample_chunk: int = 1024,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
    group_keys: Sequence[str] = (),
    extra_predictions: dict[str, Any] | None = None,
    source: str = "the model",
) -> RegressionEvaluation:
    """Evaluate ``model`` on ``dataset`` (items as pose-data's ImageDataset returns them).

    Args:
        keypoint_list: indices into the 44 keypoints that are scored.
        num_samples: hypotheses per image (sample 0 = mode); must be >= max(best_of).
        best_of: n values for best-of-n (each uses the first n samples).
        kmeans_clusters: n values for k-means quantisation of all ``num_samples`` samples.
        sample_chunk: samples decoded at once per image batch (memory bound).
        group_keys: item keys used as breakdown labels (e.g. 'action').
        extra_predictions: {name: callable(batch) -> (B, S, 44, 3)} scored like the model
            (baselines); their metrics are prefixed by the name.
        source: what the model is, for the non-finite error (e.g. "checkpoint last.pt").

    Raises:
        NonFinitePredictionError: if the model predicts a NaN or infinite pose (the count and
            the images are named).
    """
    device = device or next(model.parameters()).device
    model.eval()
    wanted = sorted({1, *best_of})
    if num_samples < max(wanted):
        raise ValueError(f"`num_samples` ({num_samples}) must be >= max(best_of) ({max(wanted)})")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    accumulator = pm.MetricAccumulator()
    joints = list(keypoint_list)
    for number, batch in enumerate(loader):
        batch = to_device(batch, device)
        target = batch["keypoints_3d"].float()
        mask = target[..., 3]
        features = model.features(batch["img"]).float()
        predictions = []
        for start, stop in _chunks(num_samples, sample_chunk):
            # only the first chunk carries the mode (sample 0); later chunks are all random
            out = model.decode(
                features, num_samples=stop - start, generator=generator, include_mode=start == 0
            )
            predictions.append(out.keypoints_3d)
        predictions_all = torch.cat(predictions, dim=1)
        check_finite_predictions(predictions_all, source=source, where=batch_images(batch, number))
        result = pm.best_of_n(
            predictions_all,
            target[..., :3],
            root_idx=pg.PELVIS_IDX_44,
            joint_idx=joints,
            mask=mask,
        )
        values: dict[str, torch.Tensor] = {
            "mode_mpjpe": result.mode_mpjpe,
            "mode_pa_mpjpe": result.mode_pa_mpjpe,
        }
        for n in best_of:
            first = result.best_of_first(n)
            values[f"best{n}_mpjpe"] = first.mpjpe
            values[f"best{n}_pa_mpjpe"] = first.pa_mpjpe
        for k in kmeans_clusters:
            clustered = pm.kmeans_best_of_k(
                predictions_all,
                target[..., :3],
                num_clusters=k,
                root_idx=pg.PELVIS_IDX_44,
                joint_idx=joints,
                mask=mask,
                generator=generator,
            )
            values[f"kmeans{k}_mpjpe"] = clustered.min_mpjpe
            values[f"kmeans{k}_pa_mpjpe"] = clustered.min_pa_mpjpe
        for name, predict in (extra_predictions or {}).items():
            other = predict(batch)
            scored = pm.best_of_n(
                other, target[..., :3], root_idx=pg.PELVIS_IDX_44, joint_idx=joints, mask=mask
            )
            values[f"{name}_mpjpe"] = scored.min_mpjpe
            values[f"{name}_pa_mpjpe"] = scored.min_pa_mpjpe
        groups = {key: [str(v) for v in batch[key]] for key in group_keys if key in batch}
        accumulator.add({k: v.cpu() for k, v in values.items()}, groups=groups or None)
    overall = accumulator.summarize()[0]
    summary = {name: item.mean for name, item in overall.metrics.items()}
    return RegressionEvaluation(accumulator, summary)


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
    gaussian_sigmas_m: Sequence[float] = (0.01, 0.10, 0.20),
    training_poses: Tensor | None = None,
    batch_size: int = 8,
    device: torch.device | None = None,
    seed: int = 0,
    source: str = "the model",
) -> dict[str, Any]:
    """Mode and best-of-n MPJPE / PA-MPJPE (mm, 17 joints with the zero pelvis), k-means n,
    and the Gaussian / training-set baselines at n = max(ns). Returns a summary dict.

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
    for number, batch in enumerate(loader):
        batch = to_device(batch, device)
        keypoints_2d, target = lifting_batch(batch)
        output = model(keypoints_2d, num_samples=num, generator=generator)
        row = number * batch_size
        check_finite_predictions(
            output.keypoints_3d,
            source=source,
            where=f" for test rows {row}-{row + len(keypoints_2d) - 1}",
        )
        predictions = prepend_zero_pelvis(output.keypoints_3d)
        gt = prepend_zero_pelvis(target)
        result = pm.best_of_n(predictions, gt, root_idx=0)
        values: dict[str, Tensor] = {
            "mode_mpjpe": result.mode_mpjpe,
            "mode_pa_mpjpe": result.mode_pa_mpjpe,
        }
        for n in ns:
            first = result.best_of_first(n)
            values[f"best{n}_mpjpe"] = first.mpjpe
            values[f"best{n}_pa_mpjpe"] = first.pa_mpjpe
        for k in kmeans_ns:
            clustered = pm.kmeans_best_of_k(
                predictions, gt, num_clusters=k, root_idx=0, generator=generator
            )
            values[f"kmeans{k}_mpjpe"] = clustered.min_mpjpe
            values[f"kmeans{k}_pa_mpjpe"] = clustered.min_pa_mpjpe
        for sigma in gaussian_sigmas_m:
            samples = pm.gaussian_baseline_samples(
                predictions[:, 0], num_samples=num, sigma_m=sigma, generator=generator
            )
            scored = pm.best_of_n(samples, gt, root_idx=0)
            for n in ns:
                first = scored.best_of_first(n)
                tag = f"gauss{round(sigma * 100)}cm_best{n}"
                values[f"{tag}_mpjpe"] = first.mpjpe
                values[f"{tag}_pa_mpjpe"] = first.pa_mpjpe
        if train_17 is not None:
            drawn = pm.training_set_baseline_samples(
                train_17, num_images=len(gt), num_samples=num, generator=generator
            )
            scored = pm.best_of_n(drawn, gt, root_idx=0)
            for n in ns:
                first = scored.best_of_first(n)
                values[f"trainset_best{n}_mpjpe"] = first.mpjpe
                values[f"trainset_best{n}_pa_mpjpe"] = first.pa_mpjpe
        accumulator.add({k: v.cpu() for k, v in values.items()})
    overall = accumulator.summarize()[0]
    summary = {name: item.mean for name, item in overall.metrics.items()}
    return {"summary": summary, "accumulator": accumulator, "ns": list(ns)}


def error_vs_n_plot(
    summary: dict[str, float], ns: Sequence[int], path: str | Path, *, title: str
) -> Path:
    """The paper's error-vs-n figure: best-of-n error against log n, model and baselines (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("mpjpe", "pa_mpjpe"), strict=True):
        series = {"model": "best{n}"}
        for key in sorted({k.split("_best")[0] for k in summary if "_best" in k}):
            series[key] = key + "_best{n}"
        for label, pattern in series.items():
            values = [summary.get(f"{pattern.format(n=n)}_{metric}", math.nan) for n in ns]
            if all(math.isnan(v) for v in values):
                continue
            axis.plot(ns, values, marker="o", label=label)
        axis.set_xscale("log")
        axis.set_xlabel("number of hypotheses n")
        axis.set_ylabel(f"best-of-n {metric.upper().replace('_', '-')} (mm)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(destination)
    return destination
