"""Import an official ProHMR or lifting checkpoint into this project's format.

    python tools/import_official_checkpoint.py --kind prohmr --checkpoint data/checkpoint.pt \\
        --out outputs/official/prohmr.pt --smpl data/smpl/SMPL_NEUTRAL.pkl \\
        --extra-regressor data/SMPL_to_J19.pkl --mean-params data/smpl_mean_params.npz
    python tools/import_official_checkpoint.py --kind lifting --checkpoint skeleton.ckpt \\
        --out outputs/official/lifting.pt --stats data/datasets/h36m_train_mean_stats.npz

The Lightning file is read without executing code from it: tensors, containers and numbers are
rebuilt, any other pickled class becomes an inert placeholder (Lightning metadata such as
hyper-parameters is not needed). Keys are routed by the explicit table of
``pipeline/official.py``; the fork's ``dummy_buffer``s and ``smpl.*`` are the only keys dropped,
anything else unexpected or missing is an error listing the keys. The output loads with
``torch.load(weights_only=True)`` and is accepted by eval_regression.py / demo.py
(``--checkpoint``) and eval_lifting.py.
"""

from __future__ import annotations

import argparse
import io
import pickle
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from pipeline.cli import check_output_args
from pipeline.config import BodyConfig, LiftingConfig, ProHMRConfig, config_to_dict
from pipeline.official import infer_prohmr_sizes, load_strict, route_official_state_dict
from pipeline.runtime import save_checkpoint


class _Opaque:
    """Stand-in for any class in the file that is not a tensor or container (never called)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> _Opaque:
        return _Opaque(*args)  # e.g. getattr(Class, name)(...) chains: stay inert


_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
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
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and name in _STORAGES:
            return getattr(torch, name)
        if (module == "torch" and name.endswith("dtype")) or (module == "torch" and name in (
            "float32", "float64", "float16", "int64", "int32", "bool", "uint8", "bfloat16",
        )):  # fmt: skip
            return getattr(torch, name)
        return _Opaque


_pickle_module = types.ModuleType("inert_pickle")
_pickle_module.Unpickler = _InertUnpickler  # type: ignore[attr-defined]
_pickle_module.load = pickle.load  # type: ignore[attr-defined]
_pickle_module.__name__ = "inert_pickle"


def read_official(path: Path) -> dict[str, Any]:
    """Load a Lightning checkpoint: weights_only when possible, else with inert placeholders."""
    if not path.is_file():
        raise FileNotFoundError(f"official checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    data = path.read_bytes()
    return torch.load(
        io.BytesIO(data), map_location="cpu", weights_only=False, pickle_module=_pickle_module
    )


def import_prohmr(checkpoint: dict[str, Any], body: BodyConfig) -> tuple[dict[str, Any], Any]:
    """Route, build the model with the implied sizes, load strictly; returns (our ckpt, report)."""
    from pipeline.model import build_prohmr
    from pipeline.session import load_body_model

    from pose_body import load_mean_params
    from pose_losses import PoseDiscriminator

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
        body_model=load_body_model(config),
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
    from pipeline.lifting import build_lifting_model

    parts, report = route_official_state_dict(checkpoint, kind="lifting")
    state = parts["model"]
    initial = state["flow.flow._transform._transforms.2.transform_net.initial_layer.weight"]
    first = state["backbone.fc_layers.0.fc_block.0.weight"]
    layers = sum(1 for k in state if k.endswith(".log_scale"))
    config = replace(
        LiftingConfig(),
        hidden_features=int(first.shape[0]),
        flow_hidden_features=int(initial.shape[0]),
        flow_num_layers=layers,
        num_res_blocks=len({k.split(".")[2] for k in state if k.startswith("backbone.")}) - 1,
        stats_file=stats,
    )
    model = build_lifting_model(config)
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
