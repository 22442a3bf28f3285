"""Strict backbone weight loading from a local file; every key and shape checked, no partial load.

Accepted files (read with `torch.load(weights_only=True)`, so a file cannot run code):

- a plain state dict, e.g. torchvision's ImageNet ResNet files (`resnet50-19c8e357.pth`): their
  classifier `fc.weight` and `fc.bias` have no counterpart here (the backbone has no `fc`) and are
  ignored on purpose (`ignore_keys`), and the returned report lists them;
- a PyTorch Lightning checkpoint (a dict with a 'state_dict' entry), e.g. the official ProHMR
  checkpoint, whose backbone entries carry the prefix `backbone.` (318 ResNet-50 entries; 35
  FC-ResNet entries in the lifting checkpoint): pass `prefix="backbone."` to select and strip
  it; entries without the prefix belong to other modules (flow, discriminator, SMPL) and are
  ignored.

Files saved before PyTorch 0.4.1 (torchvision's original ImageNet files among them) have no
BatchNorm `num_batches_tracked` counters; those are the only entries allowed to be missing and are
set to 0. Anything else missing, unexpected, or with a different shape raises
`WeightsMismatchError` listing every offending key, before any parameter is touched: there is no
partial load and nothing is downloaded.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "IMAGENET_CLASSIFIER_KEYS",
    "LoadedWeights",
    "WeightsMismatchError",
    "load_backbone_state_dict",
    "load_backbone_weights",
]

#: Entries of torchvision's ImageNet ResNet files that the backbone deliberately lacks.
IMAGENET_CLASSIFIER_KEYS: tuple[str, ...] = ("fc.weight", "fc.bias")

_BN_COUNTER = ".num_batches_tracked"
_MAX_LISTED = 20


@dataclass(frozen=True)
class LoadedWeights:
    """What `load_backbone_state_dict` did.

    Attributes:
        loaded: model keys whose values came from the file.
        ignored: file keys skipped on purpose (`ignore_keys`, or keys outside `prefix`), as they
            appear in the file.
        filled: BatchNorm `num_batches_tracked` counters absent from the file, set to 0.
    """

    loaded: tuple[str, ...]
    ignored: tuple[str, ...]
    filled: tuple[str, ...]


class WeightsMismatchError(ValueError):
    """The weights do not match the model; nothing was loaded.

    Attributes:
        missing: model keys absent from the file (after prefix stripping).
        unexpected: file keys (after prefix stripping) the model does not have.
        mismatched: (key, shape in the file, shape in the model) for keys present in both.
    """

    def __init__(
        self,
        *,
        source: str,
        model_name: str,
        missing: Iterable[str],
        unexpected: Iterable[str],
        mismatched: Iterable[tuple[str, tuple[int, ...] | None, tuple[int, ...]]],
        hint: str | None = None,
    ) -> None:
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.mismatched = tuple(mismatched)
        lines = [
            f"cannot load weights from {source} into {model_name}: {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} with a wrong shape "
            "(nothing was loaded)"
        ]
        if self.missing:
            lines.append("  missing keys: " + _listing(self.missing))
        if self.unexpected:
            lines.append("  unexpected keys: " + _listing(self.unexpected))
        if self.mismatched:
            described = [
                f"{key} (file {'not a tensor' if file_shape is None else file_shape}, "
                f"model {model_shape})"
                for key, file_shape, model_shape in self.mismatched
            ]
            lines.append("  wrong shapes: " + _listing(described))
        if hint:
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))


def _listing(items: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    rest = len(items) - _MAX_LISTED
    return shown + (f", ... ({rest} more)" if rest > 0 else "")


def _prefix_hint(file_keys: Iterable[str], model_keys: set[str]) -> str | None:
    """Suggest a prefix if stripping a key's first component matches most model keys."""
    counts: dict[str, int] = {}
    for key in file_keys:
        head, dot, rest = key.partition(".")
        if dot and rest in model_keys:
            counts[head + "."] = counts.get(head + ".", 0) + 1
    if not counts:
        return None
    best = max(counts, key=lambda p: counts[p])
    if counts[best] * 2 < len(model_keys):
        return None
    return f"{counts[best]} file keys match the model after removing '{best}'; pass prefix={best!r}"


def load_backbone_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, object],
    *,
    prefix: str = "",
    ignore_keys: Iterable[str] = IMAGENET_CLASSIFIER_KEYS,
    source: str = "the state dict",
) -> LoadedWeights:
    """Copy `state_dict` into `model` after checking every key and shape; all or nothing.

    Args:
        model: the module to fill (`ResNet`, `FCResNet`, or any module).
        state_dict: name -> tensor. A Lightning checkpoint (a mapping with a 'state_dict'
            mapping) is unwrapped.
        prefix: if not empty, only entries starting with it are used, with it removed
            (`"backbone."` for ProHMR checkpoints); the others are ignored.
        ignore_keys: keys (after prefix removal) that may be present without a counterpart in
            the model; default: torchvision's classifier `fc.weight`, `fc.bias`.
        source: how to name the weights in error messages.

    Returns:
        `LoadedWeights` listing loaded, ignored and filled keys.

    Raises:
        TypeError: if `state_dict` is not a mapping with string keys.
        WeightsMismatchError: if a model key is missing (other than a BatchNorm counter), a file
            key is unexpected, or a shape differs; the model is left unchanged.
    """
    if isinstance(state_dict, Mapping) and isinstance(state_dict.get("state_dict"), Mapping):
        state_dict = state_dict["state_dict"]  # type: ignore[assignment]
    if not isinstance(state_dict, Mapping) or not all(isinstance(k, str) for k in state_dict):
        raise TypeError(
            f"{source} must be a mapping from parameter names to tensors, "
            f"got {type(state_dict).__name__}"
        )
    ignore = set(ignore_keys)
    expected = model.state_dict()
    ignored: list[str] = []
    selected: dict[str, object] = {}
    for key, value in state_dict.items():
        if prefix and not key.startswith(prefix):
            ignored.append(key)
            continue
        name = key[len(prefix) :]
        if name in ignore and name not in expected:
            ignored.append(key)
            continue
        selected[name] = value

    missing: list[str] = []
    filled: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...] | None, tuple[int, ...]]] = []
    to_load: dict[str, Tensor] = {}
    for name, target in expected.items():
        if name not in selected:
            if name.endswith(_BN_COUNTER):
                filled.append(name)
                to_load[name] = torch.zeros_like(target)
            else:
                missing.append(name)
            continue
        value = selected[name]
        if not isinstance(value, Tensor):
            mismatched.append((name, None, tuple(target.shape)))
        elif value.shape != target.shape:
            mismatched.append((name, tuple(value.shape), tuple(target.shape)))
        else:
            to_load[name] = value
    unexpected = [name for name in selected if name not in expected]

    if missing or unexpected or mismatched:
        hint = None
        if missing and not prefix:
            hint = _prefix_hint(selected, set(expected))
        raise WeightsMismatchError(
            source=source,
            model_name=type(model).__name__,
            missing=missing,
            unexpected=unexpected,
            mismatched=mismatched,
            hint=hint,
        )
    model.load_state_dict(to_load, strict=True)
    filled_set = set(filled)
    loaded = tuple(name for name in expected if name not in filled_set)
    return LoadedWeights(loaded=loaded, ignored=tuple(ignored), filled=tuple(filled))


def load_backbone_weights(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    prefix: str = "",
    ignore_keys: Iterable[str] = IMAGENET_CLASSIFIER_KEYS,
) -> LoadedWeights:
    """Load backbone weights from a local file into `model`, strictly; never downloads.

    Examples: `load_backbone_weights(ResNet(depth=50), "resnet50-19c8e357.pth")` (ImageNet,
    `fc.*` ignored); `load_backbone_weights(ResNet(depth=50), "checkpoint.pt",
    prefix="backbone.")` (official ProHMR checkpoint).

    Args:
        model: the module to fill.
        path: a file written by `torch.save` (state dict or Lightning checkpoint).
        prefix, ignore_keys: as in `load_backbone_state_dict`.

    Returns:
        `LoadedWeights` listing loaded, ignored and filled keys.

    Raises:
        FileNotFoundError: if `path` is not a file.
        ValueError: if the file cannot be read with `torch.load(weights_only=True)`.
        WeightsMismatchError: as in `load_backbone_state_dict`; the model is left unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ValueError(
            f"cannot read backbone weights from {path} with torch.load(weights_only=True): "
            f"{err}\nA training checkpoint that stores Python objects (e.g. Lightning 1.3/1.4 "
            "callback classes) must have its 'state_dict' extracted by a trusted tool first; "
            "pass that mapping to load_backbone_state_dict."
        ) from err
    return load_backbone_state_dict(
        model, state, prefix=prefix, ignore_keys=ignore_keys, source=str(path)
    )
