"""This project's checkpoint format: a ``torch.save`` dict with the model's state dict under
``model`` and the config that built it under ``config`` (plus, for a run's checkpoints, what the
training program adds: step, optimiser, RNG states).

Checkpoints are written atomically (temporary file in the same folder, fsync, rename) and read
with ``torch.load(weights_only=True)``: they hold only tensors, numbers, strings, lists and dicts,
so reading one cannot run code. See ``docs/checkpoints.md``.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pose_data import atomic_write

__all__ = [
    "CheckpointError",
    "NonFiniteWeightsError",
    "describe_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "non_finite_entries",
    "save_checkpoint",
]


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, of the wrong kind, or does not fit the model."""


class NonFiniteWeightsError(ValueError):
    """A state about to be checkpointed holds NaN or infinite values; it is not written."""


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
    return atomic_write(destination, lambda file: torch.save(state, file))


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
            f"{_listed(bad, limit=6)}; do not resume from it"
        )
    return f"the last checkpoint {source} is intact at step {step}"


#: What tells the two kinds of this project's checkpoints apart: keys of their stored config.
_KIND_KEYS = {"prohmr": ("model", "body", "train"), "lifting": ("train_file", "model")}
_KIND_TOOLS = {
    "prohmr": "tools/eval_regression.py, eval_fitting.py, eval_multiview.py, demo.py",
    "lifting": "tools/eval_lifting.py",
}


def _checkpoint_kind(state: Mapping[str, Any]) -> str | None:
    config = state.get("config")
    if not isinstance(config, Mapping):
        return None
    for kind, keys in _KIND_KEYS.items():
        if all(key in config for key in keys):
            return kind
    return None


def _unreadable(source: Path, error: BaseException) -> CheckpointError:
    """The one-sentence reason why torch could not read ``source``."""
    size = source.stat().st_size
    with open(source, "rb") as file:
        head = file.read(4)
    if size == 0:
        return CheckpointError(f"checkpoint {source} is empty (0 bytes)")
    refused = re.search(r"GLOBAL ([\w.]+)", str(error))
    if refused:
        return CheckpointError(
            f"checkpoint {source} holds the global {refused.group(1)}, which weights-only loading "
            "refuses (only tensors, numbers, strings, lists and dicts are read; official "
            "Lightning files go through tools/import_official_checkpoint.py)"
        )
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(source):
            return CheckpointError(
                f"checkpoint {source} is truncated: a zip archive of {size} bytes without its "
                "end record (the write was cut short or the copy is incomplete)"
            )
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
        if not any(name.endswith("data.pkl") for name in names):
            shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            return CheckpointError(
                f"checkpoint {source} is a zip archive but not a PyTorch checkpoint "
                f"(no data.pkl; members: {shown})"
            )
        detail = str(error).splitlines()[0] if str(error) else "no detail"
        return CheckpointError(
            f"checkpoint {source} is a damaged PyTorch checkpoint ({type(error).__name__}: "
            f"{detail})"
        )
    return CheckpointError(
        f"checkpoint {source} is not a PyTorch checkpoint (a zip archive written by torch.save); "
        f"it starts with {head!r}"
    )


def load_checkpoint(path: str | os.PathLike[str], *, kind: str | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` onto the CPU.

    Args:
        path: the ``.pt`` file.
        kind: "prohmr" or "lifting" to also require a checkpoint of that kind of this project
            (a dict with ``model`` and ``config``, the config of that model); None: any dict.

    Raises:
        FileNotFoundError: if the file does not exist.
        CheckpointError (a ValueError): in one sentence naming the file, if it is empty,
            truncated, not a PyTorch checkpoint (a text file, another zip), holds objects
            that weights-only loading refuses, holds something other than a dict, or is not a
            checkpoint of ``kind`` (a bare state dict, the other kind of model).
    """
    if kind is not None and kind not in _KIND_KEYS:
        raise ValueError(f"`kind` must be one of {sorted(_KIND_KEYS)} or None, got {kind!r}")
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    try:
        state = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise _unreadable(source, error) from None
    if not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {source} holds a {type(state).__name__}, expected a dict of a run's "
            "state ('model', 'config', ...)"
        )
    if kind is None:
        return state
    if "model" not in state and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        first = next(iter(state))
        raise CheckpointError(
            f"checkpoint {source} is a bare state dict ({len(state)} tensors, e.g. {first!r}), "
            f"not a {kind} checkpoint of this project with 'model' and 'config'"
            + (
                "; import official ProHMR weights with tools/import_official_checkpoint.py"
                if kind == "prohmr"
                else ""
            )
        )
    missing = [key for key in ("model", "config") if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {source} is not a {kind} checkpoint of this project: it lacks "
            f"{missing} (keys: {sorted(map(str, state))[:6]})"
            + (
                "; import official ProHMR checkpoints with tools/import_official_checkpoint.py "
                "first"
                if kind == "prohmr"
                else ""
            )
        )
    found = _checkpoint_kind(state)
    if found != kind:
        if found is None:
            raise CheckpointError(
                f"checkpoint {source} has a 'config' that is not a {kind} config (expected keys "
                f"{list(_KIND_KEYS[kind])})"
            )
        raise CheckpointError(
            f"checkpoint {source} is a {found} checkpoint, not a {kind} one: use it with "
            f"{_KIND_TOOLS[found]}"
        )
    if not isinstance(state["model"], Mapping):
        raise CheckpointError(
            f"checkpoint {source}: 'model' must be a state dict, got "
            f"{type(state['model']).__name__}"
        )
    return state


def _listed(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (
        f" and {len(names) - limit} more" if len(names) > limit else ""
    )


def load_model_state(
    model: torch.nn.Module,
    state_dict: Mapping[str, Any],
    *,
    path: str | os.PathLike[str],
    what: str,
) -> None:
    """``model.load_state_dict(state_dict)`` (strict) with a one-sentence error naming the file.

    Args:
        model: the model built from the checkpoint's config.
        state_dict: the checkpoint's ``model`` entry.
        path: the checkpoint, for the message. what: the model's name, e.g. "ProHMR model".

    Raises:
        CheckpointError (a ValueError): naming the file, the counts and first names of missing
            and unexpected keys, and each shape mismatch (checkpoint's and model's shapes).
    """
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [str(key) for key in state_dict if key not in expected]
    mismatched = []
    for key, value in expected.items():
        given = state_dict.get(key)
        if given is None:
            continue
        if not isinstance(given, torch.Tensor):
            mismatched.append(f"{key} (a {type(given).__name__}, not a tensor)")
        elif given.shape != value.shape:
            mismatched.append(
                f"{key} (checkpoint {tuple(given.shape)}, model {tuple(value.shape)})"
            )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listed(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listed(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_listed(mismatched)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not fit the {what} its config describes: "
            + "; ".join(problems)
        )
    model.load_state_dict(state_dict)
