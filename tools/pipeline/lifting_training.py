"""The lifting model's training loop (the model, its loss and its evaluation are in
``prohmr_model``).

Losses: 1.0·L3D_mode + 0.0·L3D_expectation + 0.001·NLL, the NLL target perturbed by
N(0, 0.005²) in training (``docs/training.md#the-lifting-model``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

import pose_losses as pl
from prohmr_model import to_device
from prohmr_model.lifting import ProSkeleton, lifting_batch
from prohmr_model.losses import lifting_loss

from .config import LiftingConfig
from .runtime import DistributedContext
from .training_run import TrainingRun, TrainResult

__all__ = ["learning_rate", "train_lifting"]


def learning_rate(config: LiftingConfig, step: int) -> float:
    """The learning rate of the step that follows ``step`` completed steps (0-based).

    ``constant``: ``config.lr``. ``cosine``: a linear warm-up over ``warmup_steps`` steps (the
    first step gets ``lr / warmup_steps``), then ``lr · (1 + cos(π·t)) / 2`` with t going from 0
    at the warm-up's end to 1 at ``total_steps``. A function of the step alone, so a resumed run
    needs no scheduler state.
    """
    if config.lr_schedule == "constant":
        return config.lr
    if config.lr_schedule != "cosine":
        raise ValueError(
            f"`lr_schedule` must be 'constant' or 'cosine', got {config.lr_schedule!r}"
        )
    warmup = min(config.warmup_steps, config.total_steps)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    decay_steps = max(config.total_steps - warmup, 1)
    t = min((step - warmup) / decay_steps, 1.0)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * t))


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
) -> TrainResult:
    """AdamW (lr 1e-4, wd 1e-4), fp32, batch 64 by default; exact resume like ProHMR's loop.

    The learning rate of each step is ``learning_rate(config, step)`` (constant by default).

    ``train_data`` is read as epochs shuffled by ``config.seed`` (pose_data.StreamSampler, from
    the run's step on; pipeline.training_run does the run plumbing). Before training, the
    config is checked against the checkpoint's (``allow_config_change`` accepts result-changing
    differences and records them; pipeline.run_guard.RESULT_NEUTRAL_KEYS lists the keys that may
    change freely), the loss log ``losses.jsonl`` is cut back to the checkpoint's step and
    ``config.yaml`` is written. Call it while holding the output folder's lock
    (pipeline.run_guard.open_run_folder).

    Raises:
        ResumeConfigError: resuming with result-changing config differences, not allowed.
        NonFiniteLossError: a loss became non-finite (the message says what the last
            checkpoint holds); NonFiniteWeightsError: the weights did, at a checkpoint (which
            is then not written).
    """
    device = ctx.device
    model.to(device)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + ctx.rank)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    run = TrainingRun(
        config,
        kind="lifting",
        ctx=ctx,
        resume=resume,
        total_steps=config.total_steps,
        checkpoint_steps=config.checkpoint_steps,
        loss_log=Path(config.output_dir) / "losses.jsonl" if ctx.is_main else None,
        progress=progress,
        stop_after_step=stop_after_step,
        allow_config_change=allow_config_change,
    )
    run.track(model=model, optimizer=optimizer)
    batches = run.batches(train_data, config.batch_size, seed=config.seed, num_workers=num_workers)
    run.track_rng(flow=generator)
    with run:
        while run.running:
            batch = to_device(next(batches), device)
            keypoints_2d, target = lifting_batch(batch)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, run.step)
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
            run.check_finite(combined.logs, [str(i) for i in batch.get("idx", [])])
            run.optimizer_step(combined.total, optimizer)
            run.end_step(combined.logs)
            if run.checkpoint_due:
                run.save()
    return run.result()
