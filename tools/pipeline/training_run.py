"""The run plumbing both training loops share (docs/training.md#training-step).

A :class:`TrainingRun` reads the checkpoint to resume from, checks the config against it, cuts
the loss log back and writes ``config.yaml`` (pipeline.run_guard.begin_training); then it loads
and saves what the loop registers with :meth:`TrainingRun.track` (modules, optimisers, the grad
scaler, named RNG generators), hands out this rank's batches from the run's step on
(pose_data's position-keyed samplers), does every backward pass and optimiser step
(:meth:`TrainingRun.optimizer_step`), and per step logs the losses, shows progress and writes
``<output_dir>/checkpoints/last.pt`` every ``checkpoint_steps`` and at the end (atomically,
never with non-finite values). The loop keeps its model, losses and validation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from pose_data import MixedDataset, MixedSampler, StreamSampler

from .config import config_to_dict
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

__all__ = ["TrainResult", "TrainingRun"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run did (``checkpoint``: the last one this process wrote, or None)."""

    start_step: int
    end_step: int
    seconds: float
    checkpoint: Path | None
    losses: list[dict[str, float]]


class TrainingRun:
    """One run of a training loop in ``config.output_dir``; use it as a context manager.

    Args:
        config: the run's config (ProHMRConfig or LiftingConfig; its class names the resume
            rules of pipeline.run_guard.RESULT_NEUTRAL_KEYS).
        kind: the checkpoint kind, "prohmr" or "lifting".
        ctx: distributed context; the main rank writes config.yaml and the checkpoints.
        resume: continue from ``checkpoints/last.pt`` if it exists.
        total_steps, checkpoint_steps: the run's length and checkpoint cadence.
        loss_log: this rank's JSON-lines loss log (None: none).
        scale_losses: scale the losses with a gradient scaler (float16 autocast, CUDA).
        stop_after_step: stop (with a checkpoint) after this step.
        allow_config_change: see pipeline.run_guard.begin_training.

    Raises:
        ResumeConfigError: resuming with result-changing config differences, not allowed.
    """

    def __init__(
        self,
        config: Any,
        *,
        kind: str,
        ctx: DistributedContext,
        resume: bool,
        total_steps: int,
        checkpoint_steps: int,
        loss_log: Path | None,
        scale_losses: bool = False,
        progress: bool = True,
        stop_after_step: int | None = None,
        allow_config_change: bool = False,
    ) -> None:
        self.ctx, self.kind, self.loss_log = ctx, kind, loss_log
        self.total_steps, self.checkpoint_steps = total_steps, checkpoint_steps
        self.stop_after_step, self.progress = stop_after_step, progress
        output_dir = Path(config.output_dir)
        self.checkpoint = output_dir / "checkpoints" / "last.pt"
        exists = resume and self.checkpoint.is_file()
        self.state = load_checkpoint(self.checkpoint, kind=kind) if exists else None
        self.config = config_to_dict(config)
        self.history = begin_training(
            self.config,
            self.state,
            kind=type(config).__name__,
            checkpoint=self.checkpoint,
            loss_log=loss_log,
            config_path=output_dir / "config.yaml" if ctx.is_main else None,
            allow_config_change=allow_config_change,
            world_size=ctx.world_size,
        )
        self.start_step = self.step = int(self.state["step"]) if self.state else 0
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=scale_losses)
        if self.state is not None:
            self.scaler.load_state_dict(self.state.get("scaler", {}))
        self.tracked: dict[str, Any] = {"scaler": self.scaler}
        self.generators: dict[str, torch.Generator] = {}
        self.losses: list[dict[str, float]] = []
        self.saved: Path | None = None
        self.bar: Any = None
        self.started = time.perf_counter()

    def __enter__(self) -> TrainingRun:
        if self.progress and self.ctx.is_main:
            # the bar starts after the first step (data workers, first batch), so its rate
            # and time estimate are those of the steps that follow
            print(f"training from step {self.step} to {self.total_steps}", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def track(self, **objects: Any) -> None:
        """Save these under their names in every checkpoint (None: an empty dict) and, when
        resuming, load them now: modules strictly, optimisers and others by
        ``load_state_dict``."""
        self.tracked.update(objects)
        if self.state is None:
            return
        label = "ProHMR" if self.kind == "prohmr" else self.kind
        for name, value in objects.items():
            if isinstance(value, torch.nn.Module):
                what = f"{label} {name}"
                load_model_state(value, self.state[name], path=self.checkpoint, what=what)
            elif value is not None:
                value.load_state_dict(self.state[name])

    def track_rng(self, **generators: torch.Generator) -> None:
        """Save torch's global RNG states and these generators (per rank); restore them now
        when resuming. Call after the data iterators are made (making one draws a seed)."""
        self.generators.update(generators)
        states = self.state["rng"] if self.state is not None else []
        states = [states] if isinstance(states, dict) else states  # one-process checkpoints
        if self.ctx.rank < len(states):  # a rank added by an allowed world-size change: seeded
            restore_rng_state(states[self.ctx.rank], generators)

    def batches(self, dataset: Any, batch_size: int, *, seed: int, **loader: Any) -> Iterator:
        """This rank's endless batches from the run's step on: positions of a MixedDataset
        (MixedSampler), else epochs of ``dataset`` shuffled with ``seed`` (StreamSampler);
        ``loader``: further DataLoader arguments."""
        place = {"rank": self.ctx.rank, "world_size": self.ctx.world_size}
        start = self.start_step * batch_size
        if isinstance(dataset, MixedDataset):
            sampler: Any = MixedSampler(start=start, **place)
        else:
            sampler = StreamSampler(len(dataset), seed=seed, start=start, **place)
        return iter(DataLoader(dataset, batch_size=batch_size, sampler=sampler, **loader))

    @property
    def running(self) -> bool:
        """Whether another step is due."""
        stop = self.stop_after_step
        return self.step < self.total_steps and (stop is None or self.step < stop)

    def check_finite(self, logs: dict[str, torch.Tensor], names: list[str]) -> None:
        """pipeline.runtime.check_finite for this step (naming the batch's items)."""
        check_finite(self.step, logs, names, checkpoint=self.checkpoint)

    def optimizer_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backpropagate ``loss`` and step ``optimizer``: the one place where the loops' losses
        are scaled and their optimisers step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def end_step(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Count the step; log its losses (returned as floats with 'step') and show them."""
        self.scaler.update()
        self.step += 1
        record = {"step": self.step, **{key: float(value) for key, value in logs.items()}}
        self.losses.append(record)
        if self.loss_log is not None:
            with self.loss_log.open("a") as file:
                file.write(json.dumps(record) + "\n")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{record['loss']:.4f}")
        elif self.progress and self.ctx.is_main:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True
            )
        return record

    @property
    def checkpoint_due(self) -> bool:
        """Whether this step ends with a checkpoint (every ``checkpoint_steps`` and the last)."""
        return self.step % self.checkpoint_steps == 0 or not self.running

    def save(self) -> None:
        """Write the checkpoint (main rank); every rank must call it (RNG states are gathered).

        Raises:
            NonFiniteWeightsError: a saved state is non-finite (the checkpoint is not written).
        """
        mine = capture_rng_state(self.generators)
        rng = [mine]
        if self.ctx.distributed:
            rng = [None] * self.ctx.world_size
            torch.distributed.all_gather_object(rng, mine)
        if not self.ctx.is_main:
            return
        objects = {k: v.state_dict() if v is not None else {} for k, v in self.tracked.items()}
        state = {"step": self.step, **objects, "config": self.config, "rng": rng}
        state |= {"world_size": self.ctx.world_size, "config_history": self.history}
        self.saved = save_checkpoint(self.checkpoint, state, require_finite=True)

    def result(self) -> TrainResult:
        seconds = time.perf_counter() - self.started
        return TrainResult(self.start_step, self.step, seconds, self.saved, self.losses)
