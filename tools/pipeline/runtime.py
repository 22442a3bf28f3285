"""Run-time plumbing shared by the training programs: devices, torchrun/DDP, RNG, loss checks.

The checkpoint format itself (atomic save, weights-only load, strict state loading) is
``prohmr_model.checkpoint``; it is re-exported here for the training loops.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from prohmr_model.checkpoint import (
    CheckpointError,
    NonFiniteWeightsError,
    describe_checkpoint,
    load_checkpoint,
    load_model_state,
    non_finite_entries,
    save_checkpoint,
)

__all__ = [
    "CheckpointError",
    "DistributedContext",
    "NonFiniteLossError",
    "NonFiniteWeightsError",
    "capture_rng_state",
    "check_finite",
    "describe_checkpoint",
    "init_distributed",
    "load_checkpoint",
    "load_model_state",
    "non_finite_entries",
    "pick_device",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stops instead of training through it."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly single-process) run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto") -> torch.device:
    """'auto' = CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:1' as given.

    Raises:
        ValueError: naming ``--device``, if ``name`` is not a CPU or CUDA device, asks for CUDA
            where there is none, or for a GPU index beyond the GPUs present.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"`--device {name}` is not a device here; expected auto, cpu, cuda or cuda:N"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`--device {name}` asked for CUDA, but CUDA is not available here")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise ValueError(
                f"`--device {name}` asks for GPU {device.index}; expected cuda:0 .. "
                f"cuda:{count - 1} ({count} GPU(s) here)"
            )
    return device


def init_distributed(device_name: str = "auto") -> DistributedContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1), else run alone.

    NCCL on CUDA, gloo on CPU. Each process uses GPU ``LOCAL_RANK`` when on CUDA.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank, world_size, local_rank, device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Global torch (CPU, CUDA) RNG states plus the given named generators (all tensors)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    for name, generator in generators.items():
        state[f"generator.{name}"] = generator.get_state()
    return state


def restore_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in generators.items():
        key = f"generator.{name}"
        if key not in state:
            raise KeyError(f"checkpoint RNG state lacks '{key}'")
        generator.set_state(state[key])


def check_finite(
    step: int,
    logs: dict[str, torch.Tensor],
    imgnames: list[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
) -> None:
    """Raise NonFiniteLossError naming the step, the terms and the batch's images.

    Args:
        checkpoint: the run's last checkpoint; the message then says what it holds (intact at
            step N, or non-finite: do not resume from it), read from the file.

    Raises:
        NonFiniteLossError: if any value in ``logs`` is NaN or infinite.
    """
    bad = {name: float(value) for name, value in logs.items() if not torch.isfinite(value).all()}
    if bad:
        shown = ", ".join(imgnames[:8]) + (" ..." if len(imgnames) > 8 else "")
        where = f"; {describe_checkpoint(checkpoint)}" if checkpoint is not None else ""
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {bad}; batch of {len(imgnames)} images: {shown}. "
            f"Training stopped{where}."
        )
