"""YAML experiment configs read into frozen dataclasses.

A config file holds only the keys it changes; everything else takes the dataclass default, which
is the published ProHMR setting (facts §14). Unknown keys fail when the file is read, with the
dotted key and the file name. Command-line overrides use the same dotted keys:
``--set train.batch_size=32 model.backbone_depth=18`` (values parsed as YAML scalars).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BodyConfig",
    "ConfigError",
    "DataConfig",
    "LiftingConfig",
    "ModelConfig",
    "ProHMRConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "config_to_dict",
    "load_config",
]


class ConfigError(ValueError):
    """A config file or override is malformed (unknown key, wrong type)."""


@dataclass(frozen=True)
class DataConfig:
    """Which datasets to train and validate on, by registry name (``tools/configs/datasets.yaml``).

    Attributes:
        registry: dataset registry YAML; relative paths inside it resolve against ``data_root``.
        data_root: folder the registry's relative paths start from (env ``POSE_DATA_ROOT``
            overrides it when set).
        train: {dataset name: mixing weight}; weights sum to 1 (facts §5.7).
        val: {dataset name: weight} for validation batches.
        mocap: registry name of the mocap npz for the discriminator ('' = no discriminator).
        image_size: crop side in pixels (224 published).
        augment: apply the training augmentation of facts §5.4.
        num_workers: DataLoader worker processes.
    """

    registry: str = "tools/configs/datasets.yaml"
    data_root: str = "data/datasets"
    train: dict[str, float] = field(
        default_factory=lambda: {
            "H36M-TRAIN": 0.3,
            "MPII-TRAIN": 0.1,
            "COCO-TRAIN-2014": 0.4,
            "MPI-INF-TRAIN": 0.2,
        }
    )
    val: dict[str, float] = field(default_factory=lambda: {"H36M-VAL-P2": 0.5, "COCO-VAL": 0.5})
    mocap: str = "CMU-MOCAP"
    image_size: int = 224
    augment: bool = True
    num_workers: int = 8


@dataclass(frozen=True)
class BodyConfig:
    """Body model files. ``model_path: procedural`` uses pose-body's procedural model.

    Attributes:
        model_path: SMPL_NEUTRAL.pkl / .npz, or 'procedural'.
        extra_regressor_path: SMPL_to_J19.pkl (ignored for 'procedural').
        h36m_regressor_path: optional J_regressor_h36m.npy.
        mean_params_path: smpl_mean_params.npz ('cam' and 'shape' initialise the FC head).
    """

    model_path: str = "data/smpl/SMPL_NEUTRAL.pkl"
    extra_regressor_path: str = "data/SMPL_to_J19.pkl"
    h36m_regressor_path: str = ""
    mean_params_path: str = "data/smpl_mean_params.npz"


@dataclass(frozen=True)
class ModelConfig:
    """Network sizes (defaults: the published ProHMR model, facts §0)."""

    backbone_depth: int = 50
    backbone_weights: str = ""  # ImageNet or ProHMR backbone weights file; '' = random init
    flow_num_layers: int = 4
    flow_hidden_features: int = 1024
    flow_num_blocks: int = 2
    flow_coupling: str = "additive"
    flow_dropout: float = 0.5
    flow_batch_norm: bool = True
    fc_hidden_features: int = 1024
    focal_length: float = 5000.0
    discriminator: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and logging (facts §7, §11, §14)."""

    batch_size: int = 64
    total_steps: int = 500_000
    lr: float = 1e-4
    weight_decay: float = 1e-4
    num_train_samples: int = 2
    num_val_samples: int = 64
    smpl_param_noise: float = 0.005
    amp: bool = True  # on CUDA only; flow head and body model stay fp32
    log_steps: int = 100
    val_steps: int = 100
    image_log_steps: int = 1000
    checkpoint_steps: int = 10_000
    mocap_batch_multiplier: int = 2  # mocap batch = multiplier * batch_size (128 published)
    seed: int = 0
    loss_weights: dict[str, float] = field(default_factory=dict)  # overrides of LossWeights


@dataclass(frozen=True)
class SyntheticConfig:
    """The embedded synthetic world (tools/make_synthetic.py)."""

    output_dir: str = "outputs/synthetic"
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 128
    seed: int = 0
    use_mocap: bool = True


@dataclass(frozen=True)
class ProHMRConfig:
    """A whole ProHMR experiment."""

    output_dir: str = "outputs/prohmr"
    data: DataConfig = field(default_factory=DataConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    synthetic: SyntheticConfig | None = None


@dataclass(frozen=True)
class LiftingConfig:
    """The lifting model (facts §10, §14 proskeleton.yaml)."""

    output_dir: str = "outputs/lifting"
    train_file: str = ""
    val_file: str = ""
    stats_file: str = ""
    hidden_features: int = 1024
    num_res_blocks: int = 2
    flow_num_layers: int = 4
    flow_hidden_features: int = 1024
    flow_num_blocks: int = 2
    flow_dropout: float = 0.5
    flow_batch_norm: bool = True
    batch_size: int = 64
    total_steps: int = 300_000
    lr: float = 1e-4
    weight_decay: float = 1e-4
    num_train_samples: int = 2
    num_val_samples: int = 64
    pose_3d_noise: float = 0.005
    log_steps: int = 200
    val_steps: int = 200
    checkpoint_steps: int = 10_000
    seed: int = 0


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key, source)
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: `{key}` must be a mapping, got {value!r}")
        return _build(tp, value, key, source)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: `{key}` must be a mapping, got {value!r}")
        _, value_type = typing.get_args(tp)
        return {str(k): _coerce(v, value_type, f"{key}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: `{key}` must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: `{key}` must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: `{key}` must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: `{key}` must be a string, got {value!r}")
        return value
    raise ConfigError(f"{source}: `{key}` has unsupported type {_type_name(tp)}")


def _build(cls: type, values: dict[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(where + k for k in unknown)}; "
            f"expected one of {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key, source)
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-serialisable data."""
    return dataclasses.asdict(config)


def load_config(cls: type, path: str | Path | None, overrides: list[str] | None = None) -> Any:
    """Read ``path`` (YAML) into ``cls`` and apply dotted ``overrides`` (``key=value``)."""
    values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        config_path = Path(path)
        if not config_path.is_file():
            raise FileNotFoundError(f"config file not found: {config_path}")
        try:
            loaded = yaml.safe_load(config_path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: not a readable YAML config ({error})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level")
        values = loaded
    config = _build(cls, values, "", source)
    return apply_overrides(config, overrides or [])


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """Return ``config`` with ``key.sub=value`` overrides applied (values parsed as YAML)."""
    data = config_to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        parts = key.strip().split(".")
        target = data
        for part in parts[:-1]:
            if target.get(part) is None and part == "synthetic":
                target[part] = config_to_dict(SyntheticConfig())
            if not isinstance(target.get(part), dict):
                raise ConfigError(f"override {item!r}: `{part}` is not a section")
            target = target[part]
        if parts[-1] not in target:
            raise ConfigError(
                f"override {item!r}: unknown key `{key}`; expected one of "
                f"{', '.join(sorted(target))}"
            )
        if isinstance(target[parts[-1]], int | float) and isinstance(value, int | float):
            if isinstance(target[parts[-1]], float):
                value = float(value)
        target[parts[-1]] = value
    return _build(type(config), data, "", "overrides")
