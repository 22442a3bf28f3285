"""The probabilistic 2D-to-3D lifting model (ProSkeleton, facts §10): model, training, evaluation.

17 normalised 2D joints (flattened joint-major to 34) -> FC-ResNet (1024, 2 residual blocks) ->
ConditionalGlow over 16 root-relative 3D joints (48). Losses (facts §10.2): 1.0·L3D_mode +
0.0·L3D_expectation + 0.001·NLL, the NLL target perturbed by N(0, 0.005²) in training. State-dict
names follow the original (``backbone.fc_layers.*``, ``flow.flow.*``, ``initialized``).

Evaluation (facts §10.4): a zero pelvis is prepended to prediction and ground truth, so errors
are over 17 joints with joint 0 exact, and the zero pelvis takes part in the Procrustes fit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

import pose_losses as pl
import pose_metrics as pm
from hmr_backbone import FCResNet
from pose_flows import SkeletonFlowHead

from .config import LiftingConfig, config_to_dict
from .data import StepBatchSampler, to_device
from .evaluation import check_finite_predictions
from .run_guard import begin_training
from .runtime import (
    DistributedContext,
    capture_rng_state,
    check_finite,
    load_checkpoint,
    load_model_state,
    restore_rng_state,
    save_checkpoint,
)

__all__ = [
    "LiftingOutput",
    "ProSkeleton",
    "build_lifting_model",
    "evaluate_lifting",
    "lifting_loss",
    "prepend_zero_pelvis",
    "train_lifting",
]


@dataclass(frozen=True)
class LiftingOutput:
    """keypoints_3d (B, N, 16, 3) metres root-relative (sample 0 = mode), log_prob (B, N),
    z (B, N, 48), target_log_prob (B, 1) or None."""

    keypoints_3d: Tensor
    log_prob: Tensor
    z: Tensor
    target_log_prob: Tensor | None


class ProSkeleton(nn.Module):
    """FC-ResNet context + skeleton flow head."""

    def __init__(self, *, backbone: FCResNet, head: SkeletonFlowHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.flow = head
        self.register_buffer("initialized", torch.tensor(False))

    def features(self, keypoints_2d: Tensor) -> Tensor:
        """(B, 17, 2|3) normalised 2D joints -> (B, C); confidences are not used."""
        return self.backbone(keypoints_2d[..., :2].reshape(keypoints_2d.shape[0], -1))

    def forward(
        self,
        keypoints_2d: Tensor,
        *,
        num_samples: int,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        target: Tensor | None = None,
        include_mode: bool = True,
    ) -> LiftingOutput:
        """N hypotheses per input (sample 0 = mode), and log p of ``target`` (B, 16, 3)."""
        features = self.features(keypoints_2d)
        if z is not None:
            head = self.flow(features, z=z)
        else:
            head = self.flow(features, num_samples, generator=generator, include_mode=include_mode)
        target_log_prob = None
        if target is not None:
            target_log_prob, _ = self.flow.log_prob(target[:, None], features)
        return LiftingOutput(head.keypoints_3d, head.log_prob.detach(), head.z, target_log_prob)

    def initialize_flow(self, keypoints_2d: Tensor, target: Tensor) -> None:
        """ActNorm initialisation on the first batch's ground truth (facts §10.1)."""
        if bool(self.initialized):
            return
        if self.training:
            with torch.no_grad():
                features = self.features(keypoints_2d)
            self.flow.flow.initialize(target.reshape(len(target), -1), features)
        self.initialized.fill_(True)


def build_lifting_model(config: LiftingConfig) -> ProSkeleton:
    """The model of ``config`` (defaults = the original's sizes)."""
    backbone = FCResNet(
        in_features=34,
        hidden_features=config.hidden_features,
        out_features=config.hidden_features,
        num_blocks=config.num_res_blocks,
    )
    head = SkeletonFlowHead(
        context_features=config.hidden_features,
        num_joints=16,
        hidden_features=config.flow_hidden_features,
        num_layers=config.flow_num_layers,
        num_blocks_per_layer=config.flow_num_blocks,
        dropout_probability=config.flow_dropout,
        use_batch_norm=config.flow_batch_norm,
    )
    return ProSkeleton(backbone=backbone, head=head)


def lifting_loss(output: LiftingOutput, target: Tensor) -> pl.CombinedLoss:
    """Facts §10.2 with ``LossWeights.lifting()``; ``target`` (B, 16, 3) root-relative metres."""
    per_sample = pl.keypoint_3d_loss(output.keypoints_3d, target, pelvis_idx=None)
    split = pl.split_mode_expectation(per_sample)
    terms = {"keypoints_3d_mode": split.mode, "keypoints_3d_expectation": split.expectation}
    if output.target_log_prob is not None:
        terms["nll"] = pl.negative_log_likelihood(output.target_log_prob)
    return pl.combine_losses(terms, pl.LossWeights.lifting())


def prepend_zero_pelvis(keypoints: Tensor) -> Tensor:
    """(..., 16, C) -> (..., 17, C) with an all-zero joint 0 (facts §10.4)."""
    zeros = keypoints.new_zeros((*keypoints.shape[:-2], 1, keypoints.shape[-1]))
    return torch.cat([zeros, keypoints], dim=-2)


def _batch_tensors(batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
    return batch["keypoints_2d"].float(), batch["keypoints_3d"][..., :3].float()


@dataclass(frozen=True)
class LiftingTrainResult:
    start_step: int
    end_step: int
    seconds: float
    losses: list[dict[str, float]]


def train_lifting(
    config: LiftingConfig,
    *,
    model: ProSkeleton,
    train_data: Any,
    ctx: DistributedContext,
    resume: bool,
    progress: bool = True,
    stop_after_step: int | None = None,
    num_workers: int = 0,
    allow_config_change: bool = False,
) -> LiftingTrainResult:
    """AdamW (lr 1e-4, wd 1e-4), fp32, batch 64 by default; exact resume like ProHMR's loop.

    ``train_data`` is index-deterministic (item ``g`` drawn with seed (seed, g)), wrapped here
    so any index maps into the dataset. Before training, the config is checked against the
    checkpoint's (``allow_config_change`` accepts result-changing differences and records them;
    pipeline.run_guard.RESULT_NEUTRAL_KEYS lists the keys that may change freely), the loss log
    ``losses.jsonl`` is cut back to the checkpoint's step and ``config.yaml`` is written. Call it
    while holding the output folder's lock (pipeline.run_guard.open_run_folder).

    Raises:
        ResumeConfigError: resuming with result-changing config differences, not allowed.
        NonFiniteLossError: a loss became non-finite (the message says what the last
            checkpoint holds); NonFiniteWeightsError: the weights did, at a checkpoint (which
            is then not written).
    """
    device = ctx.device
    model.to(device)
    output_dir = Path(config.output_dir)
    checkpoint = output_dir / "checkpoints" / "last.pt"
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + ctx.rank)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    start = 0
    state = None
    log_path = output_dir / "losses.jsonl"
    if resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, kind="lifting")
    history = begin_training(
        config_to_dict(config),
        state,
        kind="LiftingConfig",
        checkpoint=checkpoint,
        loss_log=log_path if ctx.is_main else None,
        config_path=output_dir / "config.yaml" if ctx.is_main else None,
        allow_config_change=allow_config_change,
    )
    if state is not None:
        load_model_state(model, state["model"], path=checkpoint, what="lifting model")
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    stream = _IndexedStream(train_data, seed=config.seed)
    loader = DataLoader(
        stream,
        batch_sampler=StepBatchSampler(
            batch_size=config.batch_size,
            start_step=start,
            total_steps=config.total_steps,
            rank=ctx.rank,
            world_size=ctx.world_size,
        ),
        num_workers=num_workers,
    )
    batches = iter(loader)
    if state is not None:
        restore_rng_state(state["rng"], {"flow": generator})
    bar = None
    if progress and ctx.is_main:
        from tqdm import tqdm

        bar = tqdm(total=config.total_steps, initial=start, unit="step", dynamic_ncols=True)
    losses: list[dict[str, float]] = []
    started = time.perf_counter()
    step = start
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        while step < config.total_steps:
            batch = to_device(next(batches), device)
            keypoints_2d, target = _batch_tensors(batch)
            model.train()
            model.initialize_flow(keypoints_2d, target)
            noisy = pl.add_target_noise(target, std=config.pose_3d_noise, generator=generator)
            output = model(
                keypoints_2d,
                num_samples=config.num_train_samples,
                generator=generator,
                target=noisy,
            )
            combined = lifting_loss(output, target)
            check_finite(
                step,
                combined.logs,
                [str(i) for i in batch.get("idx", [])],
                checkpoint=checkpoint,
            )
            optimizer.zero_grad(set_to_none=True)
            combined.total.backward()
            optimizer.step()
            step += 1
            record = {"step": step, **{k: float(v) for k, v in combined.logs.items()}}
            losses.append(record)
            with log_path.open("a") as file:
                file.write(json.dumps(record) + "\n")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.4f}")
            done = step >= config.total_steps or (
                stop_after_step is not None and step >= stop_after_step
            )
            if step % config.checkpoint_steps == 0 or done:
                save_checkpoint(
                    checkpoint,
                    {
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "config": config_to_dict(config),
                        "rng": capture_rng_state({"flow": generator}),
                        "config_history": history,
                    },
                    require_finite=True,
                )
            if stop_after_step is not None and step >= stop_after_step:
                break
    finally:
        if bar is not None:
            bar.close()
    return LiftingTrainResult(start, step, time.perf_counter() - started, losses)


class _IndexedStream(torch.utils.data.Dataset):
    """Item g = dataset[uniform index drawn from (seed, g)]: an endless shuffled stream."""

    def __init__(self, dataset: Any, *, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, index: int) -> Any:
        rng = np.random.default_rng([self.seed, int(index)])
        return self.dataset[int(rng.integers(len(self.dataset)))]


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
        keypoints_2d, target = _batch_tensors(batch)
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
    """Seed Fig. 4: best-of-n error against log n for the model and the baselines (PNG)."""
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
