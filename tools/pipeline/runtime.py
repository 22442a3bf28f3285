"""Run-time plumbing shared by the training programs: devices, torchrun/DDP, checkpoints, RNG.

Checkpoints are written atomically (temporary file in the same folder, fsync, rename) and read
with ``torch.load(weights_only=True)``: they hold only tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "DistributedContext",
    "NonFiniteLossError",
    "capture_rng_state",
    "check_finite",
    "init_distributed",
    "latest_checkpoint",
    "load_checkpoint",
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


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: never half-written."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return destination


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` onto the CPU."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    return torch.load(source, map_location="cpu", weights_only=True)


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """``last.pt`` in ``folder`` if it exists."""
    candidate = Path(folder) / "last.pt"
    return candidate if candidate.is_file() else None


def check_finite(step: int, logs: dict[str, torch.Tensor], imgnames: list[str]) -> None:
    """Raise NonFiniteLossError naming the step, the terms and the batch's images."""
    bad = {name: float(value) for name, value in logs.items() if not torch.isfinite(value).all()}
    if bad:
        shown = ", ".join(imgnames[:8]) + (" ..." if len(imgnames) > 8 else "")
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {bad}; batch of {len(imgnames)} images: {shown}. "
            "Training stopped; the last checkpoint is intact."
        )
