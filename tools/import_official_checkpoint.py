"""Import an official ProHMR or lifting checkpoint into this project's format.

    python tools/import_official_checkpoint.py --kind prohmr --checkpoint data/checkpoint.pt \\
        --out outputs/official/prohmr.pt --smpl data/smpl/SMPL_NEUTRAL.pkl \\
        --extra-regressor data/SMPL_to_J19.pkl --mean-params data/smpl_mean_params.npz
    python tools/import_official_checkpoint.py --kind lifting --checkpoint skeleton.ckpt \\
        --out outputs/official/lifting.pt --stats data/datasets/h36m_train_mean_stats.npz

The Lightning file is read without executing code from it: tensors, containers and numbers are
rebuilt, any other pickled class becomes an inert placeholder (Lightning metadata such as
hyper-parameters is not needed). Keys are routed by the explicit table of
``prohmr_model.official``; the fork's ``dummy_buffer``s and ``smpl.*`` are the only keys dropped,
anything else unexpected or missing is an error listing the keys. The output loads with
``torch.load(weights_only=True)`` and is accepted by eval_regression.py / demo.py
(``--checkpoint``) and eval_lifting.py.
"""

from __future__ import annotations

import argparse
import functools
import io
import pickle
import sys
import types
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pipeline.cli import check_output_args
from pipeline.config import (
    BodyConfig,
    LiftingConfig,
    LiftingModelConfig,
    ProHMRConfig,
    config_to_dict,
)
from pipeline.runtime import save_checkpoint
from torch import Tensor

from prohmr_model.official import (
    CheckpointImportError,
    infer_prohmr_sizes,
    load_strict,
    route_official_state_dict,
)


class _Inert:
    """Stand-in for a class or function of the file that the importer does not know.

    Unpickling builds one of these instead of looking the global up, so nothing of the file's
    choosing is imported or called. It records what the pickle gives it (constructor arguments,
    state, items of a dict subclass, elements of a list subclass) and does nothing else; calling
    it (a pickle may call a stand-in it built) returns another inert stand-in.
    """

    global_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict subclasses (AttributeDict, ...)
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:  # list subclasses
        self.__dict__.setdefault("elements", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("elements", []).extend(values)

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _inert_class(self.global_name, "<call>")(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<inert {self.global_name}>"


@functools.cache
def _inert_class(module: str, name: str) -> type[_Inert]:
    """One inert stand-in class per global the file names (its name kept for reports)."""
    return type(f"Inert[{module}.{name}]", (_Inert,), {"global_name": f"{module}.{name}"})


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *args: Any) -> Tensor:
    """A tensor from its storage, without the pickle's backward hooks or metadata.

    The pickle names torch's own rebuild function; its remaining arguments (requires_grad,
    backward hooks, metadata) are dropped here so that no object of the file is attached to
    the tensor.
    """
    with warnings.catch_warnings():  # torch's storages in a pickle are TypedStorage (deprecated)
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        empty = torch.empty(0, dtype=storage.dtype, device=storage.device)
        return empty.set_(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: Tensor, requires_grad: bool, *args: Any) -> Tensor:
    """A parameter's data (hooks and extra state of the pickle are dropped)."""
    return data.detach()


# The globals a Lightning checkpoint's tensors need. Everything else becomes inert.
_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch", "Size"),
    ("torch", "device"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
}
_STORAGES = {
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage",
    "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage",
}  # fmt: skip


class _InertUnpickler(pickle.Unpickler):
    """Resolves only the globals above; any other class or function becomes an inert stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _REBUILDERS:
            return _REBUILDERS[(module, name)]
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and name in _STORAGES:
            return getattr(torch, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _inert_class(module, name)


def _inert_load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` through the inert unpickler (torch's legacy format calls this directly)."""
    return _InertUnpickler(file, **kwargs).load()


# What torch.load is given as its pickle module: every unpickling it does, the legacy format's
# header records included, goes through the inert unpickler. Never the plain ``pickle.load``.
_pickle_module = types.ModuleType("inert_pickle")
_pickle_module.Unpickler = _InertUnpickler  # type: ignore[attr-defined]
_pickle_module.load = _inert_load  # type: ignore[attr-defined]


def read_official(path: Path) -> dict[str, Any]:
    """Read a Lightning checkpoint's contents without running code from the file.

    First with ``torch.load(weights_only=True)``; a file that holds other objects (Lightning's
    hyper-parameters, a yacs config, ...) is then read with the inert unpickler above: tensors
    and containers are rebuilt, every other class or function becomes an inert stand-in.

    Raises:
        FileNotFoundError: if `path` is not a file.
        CheckpointImportError: (a ValueError) naming the file if it cannot be read as a torch
            checkpoint or does not hold a mapping.
    """
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        loaded = _read_inert(path)
    except Exception as error:
        raise _unreadable(path, error) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointImportError(
            f"{path}: expected a Lightning checkpoint (a mapping with 'state_dict'), got "
            f"{type(loaded).__name__}"
        )
    return dict(loaded)


def _read_inert(path: Path) -> Any:
    try:
        return torch.load(
            io.BytesIO(path.read_bytes()),
            map_location="cpu",
            weights_only=False,
            pickle_module=_pickle_module,
        )
    except Exception as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: Exception) -> CheckpointImportError:
    size = path.stat().st_size
    return CheckpointImportError(
        f"{path}: not a readable torch checkpoint ({size} bytes; {type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''})"
    )


def import_prohmr(checkpoint: dict[str, Any], body: BodyConfig) -> tuple[dict[str, Any], Any]:
    """Route, build the model with the implied sizes, load strictly; returns (our ckpt, report)."""
    from pose_body import load_mean_params
    from pose_losses import PoseDiscriminator
    from prohmr_model.loading import body_model_from_config
    from prohmr_model.model import build_prohmr

    parts, report = route_official_state_dict(checkpoint, kind="prohmr")
    sizes = infer_prohmr_sizes(parts["model"])
    config = ProHMRConfig()
    model_config = replace(
        config.model,
        backbone_depth=sizes["backbone_depth"],
        flow_hidden_features=sizes["flow_hidden_features"],
        flow_num_layers=sizes["flow_num_layers"],
        flow_num_blocks=sizes["flow_num_blocks"],
        fc_hidden_features=sizes["fc_hidden_features"],
        discriminator=bool(parts["discriminator"]),
    )
    config = replace(config, model=model_config, body=body)
    mean = load_mean_params(body.mean_params_path)
    model = build_prohmr(
        model_config,
        body_model=body_model_from_config(config.body),
        mean_betas=mean.betas,
        mean_camera=mean.camera,
    )
    load_strict(model, parts["model"], what="ProHMR model")
    discriminator_state = {}
    if parts["discriminator"]:
        discriminator = PoseDiscriminator()
        load_strict(discriminator, parts["discriminator"], what="discriminator")
        discriminator_state = discriminator.state_dict()
    if not bool(model.initialized):
        raise ValueError("the checkpoint's `initialized` flag is False: the flow was never used")
    ours = {
        "step": int(checkpoint.get("global_step", 0)) if isinstance(checkpoint, dict) else 0,
        "model": model.state_dict(),
        "discriminator": discriminator_state,
        "config": config_to_dict(config),
        "imported": {"kind": "prohmr", "dropped": list(report.dropped), **report.counts},
    }
    return ours, report


def import_lifting(checkpoint: dict[str, Any], *, stats: str) -> tuple[dict[str, Any], Any]:
    from prohmr_model.lifting import build_lifting_model

    parts, report = route_official_state_dict(checkpoint, kind="lifting")
    state = parts["model"]
    initial = state["flow.flow._transform._transforms.2.transform_net.initial_layer.weight"]
    first = state["backbone.fc_layers.0.fc_block.0.weight"]
    layers = sum(1 for k in state if k.endswith(".log_scale"))
    config = replace(
        LiftingConfig(),
        model=LiftingModelConfig(
            hidden_features=int(first.shape[0]),
            flow_hidden_features=int(initial.shape[0]),
            flow_num_layers=layers,
            num_res_blocks=len({k.split(".")[2] for k in state if k.startswith("backbone.")}) - 1,
        ),
        stats_file=stats,
    )
    model = build_lifting_model(config.model)
    load_strict(model, state, what="ProSkeleton model")
    ours = {
        "step": 0,
        "model": model.state_dict(),
        "config": config_to_dict(config),
        "imported": {"kind": "lifting", "dropped": list(report.dropped), **report.counts},
    }
    return ours, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("prohmr", "lifting"), required=True)
    parser.add_argument("--checkpoint", type=Path, required=True, help="official Lightning file")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smpl", default=BodyConfig().model_path, help="SMPL model or procedural")
    parser.add_argument("--extra-regressor", default=BodyConfig().extra_regressor_path)
    parser.add_argument("--mean-params", default=BodyConfig().mean_params_path)
    parser.add_argument("--stats", default="", help="lifting: training statistics npz")
    args = parser.parse_args(argv)
    check_output_args(parser, files={"--out": args.out})
    checkpoint = read_official(args.checkpoint)
    if args.kind == "prohmr":
        body = BodyConfig(
            model_path=args.smpl,
            extra_regressor_path=args.extra_regressor,
            mean_params_path=args.mean_params,
        )
        ours, report = import_prohmr(checkpoint, body)
    else:
        ours, report = import_lifting(checkpoint, stats=args.stats)
    save_checkpoint(args.out, ours)
    print(
        f"imported {args.checkpoint} ({args.kind}): {report.counts['model']} model keys, "
        f"{report.counts['discriminator']} discriminator keys, {len(report.dropped)} dropped "
        f"(dummy buffers / smpl.*) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
