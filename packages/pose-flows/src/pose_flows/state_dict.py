"""Loading state dicts laid out like the original (authors' nflows fork).

The layout: docs/checkpoints.md#flow-keys.

The fork registers a persistent scalar `dummy_buffer` in every transform (13 per ConditionalGlow:
the CompositeTransform and each of its 12 transforms); PyPI nflows has none. Everything else
maps one-to-one. `load_original_state_dict` drops those keys and loads strictly, failing with the
full list of missing, unexpected and mis-shaped keys, never silently leaving random weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

__all__ = [
    "DUMMY_BUFFER_NAME",
    "LoadedStateDict",
    "load_original_state_dict",
    "strip_dummy_buffers",
]

DUMMY_BUFFER_NAME = "dummy_buffer"
"""Last name component of the fork-only buffers that `strip_dummy_buffers` drops."""

_MAX_LISTED = 20


@dataclass(frozen=True)
class LoadedStateDict:
    """What `load_original_state_dict` did.

    Attributes:
        loaded_keys: keys copied into the module, sorted.
        dropped_keys: the fork's `dummy_buffer` keys that were ignored, sorted.
    """

    loaded_keys: tuple[str, ...]
    dropped_keys: tuple[str, ...]


def _is_dummy(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == DUMMY_BUFFER_NAME


def strip_dummy_buffers(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Return a copy of `state_dict` without keys whose last component is `dummy_buffer`."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"`state_dict` must be a mapping, got {type(state_dict).__name__}")
    return {k: v for k, v in state_dict.items() if not _is_dummy(k)}


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return str(tuple(value.shape))
    return f"a {type(value).__name__}, not a tensor"


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = f"\n    ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {k}" for k in shown) + more


def load_original_state_dict(
    module: nn.Module, state_dict: Mapping[str, Tensor]
) -> LoadedStateDict:
    """Load an original-layout state dict (with or without the fork's dummy buffers) strictly.

    Works for any module of this package whose names follow the original: a `ConditionalGlow`
    (keys `_transform._transforms.…`, i.e. the original's `flow.flow.*` minus `flow.flow.`), an
    `SMPLFlowHead` or `SkeletonFlowHead` (the original's `flow.*` minus `flow.`). Buffers such as
    ActNorm's `initialized` flags, batch-norm statistics and the coupling index buffers are loaded
    too. Strip the model-level prefix before calling.

    Args:
        module: the module to load into.
        state_dict: name -> tensor.

    Returns:
        LoadedStateDict(loaded_keys, dropped_keys).

    Raises:
        TypeError: if `module` is not an nn.Module or `state_dict` not a mapping.
        ValueError: listing every missing, unexpected and mis-shaped key (nothing is loaded).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"`module` must be a torch.nn.Module, got {type(module).__name__}")
    kept = strip_dummy_buffers(state_dict)
    dropped = tuple(sorted(k for k in state_dict if _is_dummy(k)))
    expected = module.state_dict()
    missing = sorted(set(expected) - set(kept))
    unexpected = sorted(set(kept) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {_describe(kept[k])}, module {_describe(expected[k])}"
        for k in set(kept) & set(expected)
        if _describe(kept[k]) != _describe(expected[k])
    )
    if missing or unexpected or mismatched:
        parts = [f"state dict does not match {type(module).__name__}:"]
        if missing:
            parts.append(_listing("missing keys", missing))
        if unexpected:
            parts.append(_listing("unexpected keys", unexpected))
        if mismatched:
            parts.append(_listing("shape mismatches", mismatched))
        raise ValueError("\n".join(parts))
    module.load_state_dict(kept, strict=True)
    return LoadedStateDict(loaded_keys=tuple(sorted(kept)), dropped_keys=dropped)
