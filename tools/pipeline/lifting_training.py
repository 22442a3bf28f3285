"""The lifting model's training loop (the model, its loss and its evaluation are in
``prohmr_model``).

Losses: 1.0·L3D_mode + 0.0·L3D_expectation + 0.001·NLL, the NLL target perturbed by
N(0, 0.005²) in training (``docs/training.md#the-lifting-model``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

import pose_losses as pl
from prohmr_model import to_device
from prohmr_model.lifting import ProSkeleton, lifting_batch
from prohmr_model.losses import lifting_loss

from .config import LiftingConfig, config_to_dict
from .data import StepBatchSampler
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

__all__ = ["LiftingTrainResult", "train_lifting"]


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
            keypoints_2d, target = lifting_batch(batch)
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
