"""Run-time plumbing shared by the training programs: devices, torchrun/DDP, checkpoints, RNG.

Checkpoints are written atomically (temporary file in the same folder, fsync, rename) and read
with ``torch.load(weights_only=True)``: they hold only tensors, numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import pickle
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
    "NonFiniteWeightsError",
    "capture_rng_state",
    "check_finite",
    "describe_checkpoint",
    "init_distributed",
    "latest_checkpoint",
    "load_checkpoint",
    "non_finite_entries",
    "pick_device",
    "restore_rng_state",
    "save_checkpoint",
    "seed_everything",
]


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stops instead of training through it."""


class NonFiniteWeightsError(NonFiniteLossError):
    """A state about to be checkpointed holds NaN or infinite values; it is not written."""


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
    """'auto' = CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:1' as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`--device {name}` asked for CUDA, but CUDA is not available here")
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


def save_checkpoint(
    path: str | os.PathLike[str], state: dict[str, Any], *, require_finite: bool = False
) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename: never half-written.

    Args:
        require_finite: refuse a state whose floating tensors hold NaN or inf (the file at
            ``path`` is then left as it was).

    Raises:
        NonFiniteWeightsError: naming ``path``, the non-finite entries and what the file at
            ``path`` holds, when ``require_finite`` and the state is not finite.
    """
    destination = Path(path)
    if require_finite:
        bad = non_finite_entries(state)
        if bad:
            raise NonFiniteWeightsError(
                f"refusing to write {destination}: non-finite values in {_listed(bad)}; "
                f"{describe_checkpoint(destination)}"
            )
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


def non_finite_entries(state: Any, prefix: str = "") -> list[str]:
    """Dotted keys of the floating tensors in a (nested dict/list) state holding NaN or inf."""
    if isinstance(state, torch.Tensor):
        finite = not (state.is_floating_point() or state.is_complex()) or bool(
            torch.isfinite(state).all()
        )
        return [] if finite else [prefix or "<tensor>"]
    items: Any = ()
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    bad = []
    for key, value in items:
        bad += non_finite_entries(value, f"{prefix}.{key}" if prefix else str(key))
    return bad


def _listed(keys: list[str], limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def describe_checkpoint(path: str | os.PathLike[str]) -> str:
    """One sentence on what the checkpoint file holds: intact at step N, non-finite (do not
    resume from it), unreadable, or absent. Reads the whole file (for error messages)."""
    source = Path(path)
    if not source.exists():
        return f"no checkpoint has been written ({source} does not exist)"
    try:
        state = load_checkpoint(source)
        step = int(state["step"])
    except Exception as error:  # any reason it cannot be resumed from
        return f"the last checkpoint {source} cannot be read ({error}); do not resume from it"
    bad = non_finite_entries(state)
    if bad:
        return (
            f"the last checkpoint {source} (step {step}) holds non-finite values in "
            f"{_listed(bad)}; do not resume from it"
        )
    return f"the last checkpoint {source} is intact at step {step}"


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` onto the CPU.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: naming the file when it holds a class or function (the global is named:
            this project's checkpoints hold only tensors, numbers, strings, lists and dicts).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = next((line for line in str(error).splitlines() if "GLOBAL" in line), str(error))
        raise ValueError(
            f"{source}: refused to load: this project's checkpoints hold only tensors, numbers, "
            f"strings, lists and dicts ({refused.strip()})"
        ) from None


def latest_checkpoint(folder: str | os.PathLike[str]) -> Path | None:
    """``last.pt`` in ``folder`` if it exists."""
    candidate = Path(folder) / "last.pt"
    return candidate if candidate.is_file() else None


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
