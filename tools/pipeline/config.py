"""YAML experiment configs read into frozen dataclasses, every value checked when it is read.

A config file holds only the keys it changes; everything else takes the dataclass default, which
is the published ProHMR setting (written out in ``tools/configs/prohmr.yaml``). Unknown keys,
wrong types and values out of range fail when the file is read, with the dotted key, the file
name (or "overrides"), the rule and the value. The rule of each field sits in its dataclass's
``RULES`` table, next to the field: adding a field means adding its rule there (a test checks
that every field has one).

Reading rules (files and overrides alike):

- numbers: ``1e-4`` and ``5e5`` are numbers (YAML 1.2; plain PyYAML reads them as strings);
- integers: an integral float (``32.0``, ``5e5``) is accepted as that integer; ``32.5`` is an
  error; booleans (``true`` / ``false``, and YAML 1.1's ``yes`` / ``no`` / ``on`` / ``off``)
  are never numbers, and numbers are never booleans;
- a key given twice in one mapping is an error (PyYAML keeps the last one silently).

Command-line overrides use the same dotted keys:
``--set train.batch_size=32 model.backbone_depth=18 train.loss_weights.nll=0.01``:

- a string field takes the text after ``=`` verbatim (``output_dir=runs/a #1`` keeps ``#1``);
  text in matching quotes is read as a quoted YAML scalar (``body.h36m_regressor_path=""``);
- other fields parse the text as a YAML value (``data.augment=false``,
  ``data.train={SYNTH-TRAIN: 1.0}``);
- a mapping given for a section (``model={backbone_depth: 18}``) changes only the keys it names;
  a mapping given for a mapping field (``data.train``, ``data.val``, ``train.loss_weights``)
  replaces it; ``data.train.NAME=w`` sets or adds one entry.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
import warnings
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from prohmr_model.config import (
    ANY,
    NON_EMPTY,
    BodyConfig,
    Checked,
    ConfigError,
    ConfigValueError,
    LiftingModelConfig,
    ModelConfig,
    Rule,
    above,
    at_least,
    finite_number,
    one_of,
)
from prohmr_model.precision import PRECISIONS

__all__ = [
    "BodyConfig",
    "ConfigError",
    "ConfigValueError",
    "DataConfig",
    "LiftingConfig",
    "ModelConfig",
    "ProHMRConfig",
    "ReportConfig",
    "Rule",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "config_to_dict",
    "load_config",
    "read_yaml",
]


MIXING_WEIGHTS = Rule(
    "a non-empty mapping {dataset name: weight} with weights >= 0 and a positive sum",
    lambda d: (
        bool(d) and all(finite_number(w) and w >= 0 for w in d.values()) and sum(d.values()) > 0
    ),
)


def _loss_weights_rule() -> Rule:
    from pose_losses import LossWeights

    def test(weights: dict[str, float]) -> bool:
        if not set(weights) <= set(LossWeights.term_names()):
            return False
        dataclasses.replace(LossWeights.prohmr(), **weights)  # the package's own value check
        return True

    return Rule(
        "a mapping from loss terms (" + ", ".join(LossWeights.term_names()) + ") to finite "
        "weights >= 0",
        test,
    )


@dataclass(frozen=True)
class DataConfig(Checked):
    """Which datasets to train and validate on, by registry name (``tools/configs/datasets.yaml``).

    Attributes:
        registry: dataset registry YAML; relative paths inside it resolve against ``data_root``.
        data_root: folder the registry's relative paths start from (env ``POSE_DATA_ROOT``
            overrides it when set).
        train: {dataset name: mixing weight}; weights sum to 1 (docs/training.md#data-mixing).
        val: {dataset name: weight} for validation batches.
        mocap: registry name of the mocap npz for the discriminator ('' = no discriminator).
        image_size: crop side in pixels (224 published).
        augment: apply the training augmentation (docs/training.md#augmentation).
        num_workers: DataLoader worker processes.

    The names are checked against the registry when a run starts (``check_config_datasets``).
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

    RULES: ClassVar[dict[str, Rule]] = {
        "registry": NON_EMPTY,
        "data_root": ANY,
        "train": MIXING_WEIGHTS,
        "val": MIXING_WEIGHTS,
        "mocap": ANY,
        "image_size": at_least(1),
        "augment": ANY,
        "num_workers": at_least(0),
    }


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Optimisation and logging (docs/training.md#optimiser-and-schedule)."""

    batch_size: int = 64
    total_steps: int = 500_000
    lr: float = 1e-4
    weight_decay: float = 1e-4
    num_train_samples: int = 2
    num_val_samples: int = 64
    smpl_param_noise: float = 0.005
    # fp32 | bf16 | fp16 (CUDA): autocast of the backbone, docs/model.md#precision
    precision: str = "fp32"
    log_steps: int = 100
    val_steps: int = 100
    image_log_steps: int = 1000
    checkpoint_steps: int = 10_000
    mocap_batch_multiplier: int = 2  # mocap batch = multiplier * batch_size (128 published)
    seed: int = 0
    loss_weights: dict[str, float] = field(default_factory=dict)  # overrides of LossWeights

    RULES: ClassVar[dict[str, Rule]] = {
        "batch_size": at_least(1),
        "total_steps": at_least(0),
        "lr": above(0),
        "weight_decay": at_least(0),
        "num_train_samples": at_least(1),
        "num_val_samples": at_least(1),
        "smpl_param_noise": at_least(0),
        "precision": one_of(PRECISIONS),
        "log_steps": at_least(1),
        "val_steps": at_least(1),
        "image_log_steps": at_least(1),
        "checkpoint_steps": at_least(1),
        "mocap_batch_multiplier": at_least(1),
        "seed": at_least(0),
        "loss_weights": _loss_weights_rule(),
    }


@dataclass(frozen=True)
class SyntheticConfig(Checked):
    """The embedded synthetic world (tools/make_synthetic.py)."""

    output_dir: str = "outputs/synthetic"
    num_train: int = 2000
    num_val: int = 200
    image_size: int = 128
    seed: int = 0
    use_mocap: bool = True

    RULES: ClassVar[dict[str, Rule]] = {
        "output_dir": NON_EMPTY,
        "num_train": at_least(1),
        "num_val": at_least(1),
        "image_size": at_least(1),
        "seed": at_least(0),
        "use_mocap": ANY,
    }


@dataclass(frozen=True)
class ReportConfig(Checked):
    """The held-out report after training (tools/train_prohmr.py; docs/evaluation.md).

    Attributes:
        max_samples: samples drawn per image; best-of-n for n = 1, 4, 16, ... up to it (and it),
            k-means n of ``REPORT_KMEANS`` up to it, the baselines at the same n.
        fitting_images: held-out images for keypoint fitting against SMPLify (0: none).
        multiview_frames: multiview frames for the refinement (0: none).

    Fitting and multiview run on the synthetic world only (the sets they need).
    """

    max_samples: int = 4096
    fitting_images: int = 32
    multiview_frames: int = 10

    RULES: ClassVar[dict[str, Rule]] = {
        "max_samples": at_least(1),
        "fitting_images": at_least(0),
        "multiview_frames": at_least(0),
    }


@dataclass(frozen=True)
class ProHMRConfig(Checked):
    """A whole ProHMR experiment."""

    output_dir: str = "outputs/prohmr"
    data: DataConfig = field(default_factory=DataConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    synthetic: SyntheticConfig | None = None
    report: ReportConfig = field(default_factory=ReportConfig)

    RULES: ClassVar[dict[str, Rule]] = {"output_dir": NON_EMPTY}


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class LiftingConfig(Checked):
    """A lifting run: data, model sizes, optimisation (docs/training.md#lifting-model-training).

    The defaults are the published setting (``tools/configs/lifting.yaml``). ``lr_schedule``:
    ``constant`` (published: ``lr`` throughout) or ``cosine`` (``lr`` after a linear warm-up of
    ``warmup_steps`` steps from 0, then half a cosine down to 0 at ``total_steps``);
    ``warmup_steps`` is used by ``cosine`` only.
    """

    output_dir: str = "outputs/lifting"
    train_file: str = ""
    val_file: str = ""
    stats_file: str = ""
    model: LiftingModelConfig = field(default_factory=LiftingModelConfig)
    batch_size: int = 64
    total_steps: int = 300_000
    lr: float = 1e-4
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 1e-4
    num_train_samples: int = 2
    num_val_samples: int = 64
    pose_3d_noise: float = 0.005
    log_steps: int = 200
    val_steps: int = 200
    checkpoint_steps: int = 10_000
    seed: int = 0

    RULES: ClassVar[dict[str, Rule]] = {
        "output_dir": NON_EMPTY,
        "train_file": ANY,
        "val_file": ANY,
        "stats_file": ANY,
        "batch_size": at_least(1),
        "total_steps": at_least(0),
        "lr": above(0),
        "lr_schedule": one_of(LR_SCHEDULES),
        "warmup_steps": at_least(0),
        "weight_decay": at_least(0),
        "num_train_samples": at_least(1),
        "num_val_samples": at_least(1),
        "pose_3d_noise": at_least(0),
        "log_steps": at_least(1),
        "val_steps": at_least(1),
        "checkpoint_steps": at_least(1),
        "seed": at_least(0),
    }


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-4`` as a number and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            if isinstance(key, typing.Hashable):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a dot or without
# a sign (1e-4, 5e5, 1.0e5).
_ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str, source: str) -> Any:
    """Parse config text with the config reading rules (module docstring).

    Raises:
        ConfigError: naming ``source`` and the line, if the text is not valid YAML or repeats a
            key.
    """
    try:
        return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not a valid config YAML: {err}") from err


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _optional_inner(tp: Any) -> Any:
    """``X`` for ``X | None``, else ``tp``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _coerce(value, _optional_inner(tp), key, source)
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
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
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
    if cls is TrainConfig and "amp" in values:
        values = _without_amp(values, source)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known, key=str)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(where + str(k) for k in unknown)}; "
            f"expected one of {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key, source)
    try:
        return cls(**kwargs)
    except ConfigValueError as err:
        key = f"{prefix}.{err.key}" if prefix else err.key
        raise ConfigValueError(key, err.expected, err.value, source) from None


def _without_amp(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Configs written before ``train.precision`` hold ``train.amp`` (fp16 autocast of the
    backbone, on CUDA only): read as ``precision: fp32``, the precision those runs had on CPU,
    with a warning that says how to ask for fp16."""
    values = dict(values)
    amp = values.pop("amp")
    if "precision" in values:
        raise ConfigError(f"{source}: `train.amp` and `train.precision` given together; keep one")
    if amp:
        warnings.warn(
            f"{source}: `train.amp` is replaced by `train.precision` (fp32, bf16, fp16); read as "
            "fp32. On a GPU, set train.precision=fp16 for what amp did there",
            stacklevel=3,
        )
    return values


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-serialisable data."""
    return dataclasses.asdict(config)


def load_config(cls: type, path: str | Path | None, overrides: list[str] | None = None) -> Any:
    """Read ``path`` (YAML) into ``cls`` and apply dotted ``overrides`` (``key=value``).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ConfigError: naming the file (or "overrides") and the dotted key, for text that is not
            YAML, a repeated or unknown key, a wrong type; `ConfigValueError` (a ConfigError)
            for a value out of its field's range.
    """
    values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        config_path = Path(path)
        if not config_path.is_file():
            raise FileNotFoundError(f"config file not found: {config_path}")
        loaded = read_yaml(config_path.read_text(), source) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{source}: expected a mapping at the top level, got {type(loaded).__name__}"
            )
        values = loaded
    config = _build(cls, values, "", source)
    return apply_overrides(config, overrides or [])


def _parse_override(raw: str, tp: Any, current: Any, item: str) -> Any:
    """The value of one override, parsed by the type of the field it sets."""
    inner = _optional_inner(tp)
    if inner is str:
        text = raw.strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            return read_yaml(text, f"override {item!r}")
        return raw
    value = read_yaml(raw, f"override {item!r}")
    if is_dataclass(inner) and isinstance(value, dict):
        base = current if isinstance(current, dict) else config_to_dict(inner())
        return {**base, **value}
    return value


def apply_overrides(config: Any, overrides: list[str]) -> Any:
    """Return ``config`` with ``key.sub=value`` overrides applied (rules: module docstring).

    Raises:
        ConfigError: for an item without ``=``, an unknown key, a key inside a value that is
            not a section, text that is not YAML, a wrong type; `ConfigValueError` for a value
            out of range (source "overrides").
    """
    data = config_to_dict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: `{key}` has an empty part")
        target: dict[str, Any] = data
        tp: Any = type(config)
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            here = ".".join(parts[: depth + 1])
            inner = _optional_inner(tp)
            if is_dataclass(inner):
                hints = typing.get_type_hints(inner)
                names = [f.name for f in fields(inner)]
                if part not in names:
                    raise ConfigError(
                        f"override {item!r}: unknown key `{key}`; expected one of "
                        f"{', '.join(sorted(names))}"
                    )
                field_type = hints[part]
            elif typing.get_origin(inner) is dict:
                field_type = typing.get_args(inner)[1]
            else:
                raise ConfigError(f"override {item!r}: `{here}` is not a section")
            if last:
                target[part] = _parse_override(raw, field_type, target.get(part), item)
                break
            section = _optional_inner(field_type)
            if target.get(part) is None and is_dataclass(section):
                target[part] = config_to_dict(section())
            if not isinstance(target.get(part), dict):
                raise ConfigError(
                    f"override {item!r}: `{here}` is a {_type_name(section)}, not a section"
                )
            target, tp = target[part], field_type
    return _build(type(config), data, "", "overrides")
