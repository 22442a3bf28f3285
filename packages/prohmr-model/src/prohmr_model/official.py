"""Import official ProHMR and lifting (ProSkeleton) checkpoints by an explicit key table.

Official checkpoints are PyTorch Lightning files: ``{'state_dict': {...}, ...}`` with the
original module names (docs/checkpoints.md#official-checkpoints). Every key is routed by the
table below; the fork's
``dummy_buffer`` entries and the SMPL buffers (``smpl.*``: the body model is an input file here)
are the only keys allowed to be dropped. A key that no rule claims, or an expected key that is
absent, is an error listing the keys: never a silent random initialisation.

ProHMR table (docs/checkpoints.md#prohmr-keys):

===============================  ===========================================================
original prefix                  this project
===============================  ===========================================================
``backbone.*``                   ``model.backbone.*`` (torchvision ResNet names, no ``fc``)
``flow.flow.*``                  ``model.flow.flow.*`` (ConditionalGlow; dummy buffers dropped)
``flow.fc_head.*``               ``model.flow.fc_head.*`` (layers.0, layers.2, init_cam/betas)
``discriminator.*``              ``discriminator.*``
``initialized``                  ``model.initialized``
``smpl.*``, ``*.dummy_buffer``   dropped (listed in the report)
===============================  ===========================================================

ProSkeleton (docs/checkpoints.md#lifting-keys): ``backbone.fc_layers.*`` ->
``model.backbone.fc_layers.*``,
``flow.flow.*`` -> ``model.flow.flow.*``, ``initialized`` -> ``model.initialized``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from hmr_backbone import RESNET_LAYOUTS

__all__ = [
    "IGNORABLE_PREFIXES",
    "CheckpointImportError",
    "ImportReport",
    "infer_prohmr_sizes",
    "infer_resnet_depth",
    "route_official_state_dict",
]

IGNORABLE_PREFIXES = ("smpl.",)
_DUMMY = "dummy_buffer"


class CheckpointImportError(ValueError):
    """Keys of an official checkpoint do not match the expected layout."""


@dataclass(frozen=True)
class ImportReport:
    """Which keys went where: counts per target and the dropped keys."""

    kind: str
    counts: dict[str, int]
    dropped: tuple[str, ...]


def _state_dict_of(checkpoint: Mapping[str, Any]) -> Mapping[str, Tensor]:
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        return checkpoint["state_dict"]
    if all(isinstance(v, Tensor) for v in checkpoint.values()):
        return checkpoint
    raise CheckpointImportError(
        "expected a Lightning checkpoint with a 'state_dict' mapping (or a bare state dict); "
        f"got keys {sorted(checkpoint)[:10]}"
    )


def route_official_state_dict(
    checkpoint: Mapping[str, Any], *, kind: str
) -> tuple[dict[str, dict[str, Tensor]], ImportReport]:
    """Split an official state dict into this project's modules.

    Args:
        checkpoint: the loaded Lightning checkpoint (or its state dict).
        kind: 'prohmr' or 'lifting'.

    Returns:
        ({'model': ..., 'discriminator': ...}, report); the model dict holds the keys of
        ``ProHMR`` / ``ProSkeleton`` (``backbone.*``, ``flow.*``, ``initialized``).

    Raises:
        CheckpointImportError: for keys no rule claims.
    """
    if kind not in ("prohmr", "lifting"):
        raise ValueError(f"`kind` must be 'prohmr' or 'lifting', got {kind!r}")
    state = _state_dict_of(checkpoint)
    model: dict[str, Tensor] = {}
    discriminator: dict[str, Tensor] = {}
    dropped: list[str] = []
    unclaimed: list[str] = []
    for key, value in state.items():
        if key.rsplit(".", 1)[-1] == _DUMMY or key.startswith(IGNORABLE_PREFIXES):
            dropped.append(key)
        elif key == "initialized" or key.startswith(("backbone.", "flow.")):
            model[key] = value
        elif kind == "prohmr" and key.startswith("discriminator."):
            discriminator[key.removeprefix("discriminator.")] = value
        else:
            unclaimed.append(key)
    if unclaimed:
        shown = ", ".join(sorted(unclaimed)[:20])
        raise CheckpointImportError(
            f"{len(unclaimed)} unexpected key(s) in the official {kind} checkpoint: {shown}"
        )
    report = ImportReport(
        kind=kind,
        counts={"model": len(model), "discriminator": len(discriminator), "dropped": len(dropped)},
        dropped=tuple(sorted(dropped)),
    )
    return {"model": model, "discriminator": discriminator}, report


def load_strict(module: torch.nn.Module, state: Mapping[str, Tensor], *, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing/unexpected/mis-shaped."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
            if items:
                parts.append(f"{title} ({len(items)}): " + ", ".join(items[:20]))
        raise CheckpointImportError(f"{what} does not match: " + "; ".join(parts))
    module.load_state_dict(dict(state), strict=True)


def infer_resnet_depth(model_state: Mapping[str, Tensor], *, context_features: int) -> int:
    """The ResNet depth of an official backbone from its keys: block kind and blocks per stage.

    Basic-block ResNets (18, 34) have no ``conv3`` and 512 output features; bottleneck ones
    (50, 101, 152) have ``conv3`` and 2048. The number of blocks in each of the four stages
    (``backbone.layer{1..4}.{i}.``) then picks the depth from hmr-backbone's table.

    Raises:
        CheckpointImportError: if the stages match no supported ResNet.
    """
    kind = "bottleneck" if "backbone.layer1.0.conv3.weight" in model_state else "basic"
    blocks = []
    for stage in range(1, 5):
        prefix = f"backbone.layer{stage}."
        blocks.append(
            len({k[len(prefix) :].split(".")[0] for k in model_state if k.startswith(prefix)})
        )
    found = (kind, tuple(blocks))
    for depth, layout in RESNET_LAYOUTS.items():
        if layout == found:
            expected = 2048 if kind == "bottleneck" else 512
            if context_features != expected:
                raise CheckpointImportError(
                    f"the backbone looks like ResNet-{depth} ({kind} blocks {blocks}) but the "
                    f"flow's context has {context_features} features, expected {expected}"
                )
            return depth
    supported = ", ".join(f"{d}: {k} {list(b)}" for d, (k, b) in RESNET_LAYOUTS.items())
    raise CheckpointImportError(
        f"the backbone's stages ({kind} blocks per stage {blocks}) match no supported ResNet; "
        f"expected one of {supported}"
    )


def infer_prohmr_sizes(model_state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Model sizes implied by an official ProHMR state dict (for building the model)."""
    initial = model_state["flow.flow._transform._transforms.2.transform_net.initial_layer.weight"]
    final = model_state["flow.flow._transform._transforms.2.transform_net.final_layer.weight"]
    hidden = int(initial.shape[0])
    context = int(initial.shape[1] - final.shape[0])
    layers = sum(
        1
        for k in model_state
        if k.startswith("flow.flow._transform._transforms.") and k.endswith(".log_scale")
    )
    blocks = len(
        {
            k.split(".blocks.")[1].split(".")[0]
            for k in model_state
            if "_transforms.2.transform_net.blocks." in k
        }
    )
    depth = infer_resnet_depth(model_state, context_features=context)
    fc_hidden = int(model_state["flow.fc_head.layers.0.weight"].shape[0])
    return {
        "backbone_depth": depth,
        "flow_hidden_features": hidden,
        "flow_num_layers": layers,
        "flow_num_blocks": blocks,
        "fc_hidden_features": fc_hidden,
        "context_features": context,
    }
