"""The configs of the models: network sizes and body-model files, each value checked.

A config is a frozen dataclass whose fields each have a rule in its ``RULES`` table, checked
when the dataclass is built; a value that breaks its rule is a ``ConfigValueError`` naming the
field, the rule and the value. Training, data and logging settings are not here: they belong to
the programs that train (``tools/pipeline/config.py`` composes these configs into a run's).
Adding a field means adding its rule beside it (a test checks that every field has one).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

__all__ = [
    "ANY",
    "NON_EMPTY",
    "BodyConfig",
    "Checked",
    "ConfigError",
    "ConfigValueError",
    "LiftingModelConfig",
    "ModelConfig",
    "Rule",
    "above",
    "at_least",
    "config_from_dict",
    "finite_number",
    "fraction_below_one",
    "one_of",
]


class ConfigError(ValueError):
    """A config file or override is malformed (unknown key, wrong type, value out of range)."""


class ConfigValueError(ConfigError):
    """A config value breaks its field's rule.

    Attributes:
        key: the dotted key (``train.batch_size``).
        expected: the rule, in words (``>= 1``).
        value: the value given.
        source: the file the value came from, "overrides", or "" when the dataclass was built in
            code.
    """

    def __init__(self, key: str, expected: str, value: Any, source: str = "") -> None:
        self.key = key
        self.expected = expected
        self.value = value
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}`{key}` must be {expected}, got {value!r}")


@dataclass(frozen=True)
class Rule:
    """The condition a config value must meet: ``test(value)`` is true when it holds.

    Attributes:
        expected: the condition in words, as the error message shows it ('>= 1').
        test: the check; an exception inside it counts as a failed check.
    """

    expected: str
    test: Callable[[Any], bool]

    def holds(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False


def finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def at_least(low: float) -> Rule:
    """A finite number >= ``low``."""
    return Rule(f">= {low}", lambda v: finite_number(v) and v >= low)


def above(low: float) -> Rule:
    """A finite number > ``low``."""
    return Rule(f"> {low} and finite", lambda v: finite_number(v) and v > low)


def fraction_below_one() -> Rule:
    """A probability that is not 1: in [0, 1)."""
    return Rule("in [0, 1)", lambda v: finite_number(v) and 0 <= v < 1)


def one_of(choices: typing.Iterable[Any]) -> Rule:
    allowed = tuple(choices)
    return Rule(f"one of {', '.join(map(repr, allowed))}", lambda v: v in allowed)


ANY = Rule("anything", lambda v: True)
NON_EMPTY = Rule("a non-empty string", lambda v: isinstance(v, str) and v.strip() != "")


def _backbone_depths() -> tuple[int, ...]:
    from hmr_backbone import RESNET_LAYOUTS

    return tuple(sorted(RESNET_LAYOUTS))


def _flow_couplings() -> tuple[str, ...]:
    from pose_flows.glow import Coupling

    return typing.get_args(Coupling)


class Checked:
    """Checks a config dataclass's fields against its ``RULES`` table after construction."""

    RULES: ClassVar[dict[str, Rule]] = {}

    def __post_init__(self) -> None:
        for name, rule in self.RULES.items():
            value = getattr(self, name)
            if not rule.holds(value):
                raise ConfigValueError(name, rule.expected, value)


@dataclass(frozen=True)
class BodyConfig(Checked):
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

    RULES: ClassVar[dict[str, Rule]] = {
        "model_path": NON_EMPTY,
        "extra_regressor_path": ANY,
        "h36m_regressor_path": ANY,
        "mean_params_path": NON_EMPTY,
    }


@dataclass(frozen=True)
class ModelConfig(Checked):
    """Network sizes (defaults: the published ProHMR model, as in ``tools/configs/prohmr.yaml``).

    Attributes:
        backbone_weights: weights for the ResNet when a model is built for training (ImageNet
            torchvision file, or a checkpoint with ``backbone_weights_prefix``); '' = random
            init. A relative path is taken from the working folder, like the other paths.
        backbone_weights_prefix: prefix of the backbone entries in that file ('' for an
            ImageNet file, 'backbone.' for an official ProHMR checkpoint).
    """

    backbone_depth: int = 50
    backbone_weights: str = ""
    backbone_weights_prefix: str = ""
    flow_num_layers: int = 4
    flow_hidden_features: int = 1024
    flow_num_blocks: int = 2
    flow_coupling: str = "additive"
    flow_dropout: float = 0.5
    flow_batch_norm: bool = True
    fc_hidden_features: int = 1024
    focal_length: float = 5000.0
    discriminator: bool = True

    RULES: ClassVar[dict[str, Rule]] = {
        "backbone_depth": one_of(_backbone_depths()),
        "backbone_weights": ANY,
        "backbone_weights_prefix": ANY,
        "flow_num_layers": at_least(1),
        "flow_hidden_features": at_least(1),
        "flow_num_blocks": at_least(0),
        "flow_coupling": one_of(_flow_couplings()),
        "flow_dropout": fraction_below_one(),
        "flow_batch_norm": ANY,
        "fc_hidden_features": at_least(1),
        "focal_length": above(0),
        "discriminator": ANY,
    }


@dataclass(frozen=True)
class LiftingModelConfig(Checked):
    """Sizes of the lifting model (defaults: the published ProSkeleton).

    Attributes:
        hidden_features: width of the FC-ResNet that encodes the 2D joints (its output is the
            flow's context).
        num_res_blocks: residual blocks of that FC-ResNet.
        flow_num_layers, flow_hidden_features, flow_num_blocks, flow_dropout, flow_batch_norm:
            the conditional Glow over the 16 root-relative 3D joints.
    """

    hidden_features: int = 1024
    num_res_blocks: int = 2
    flow_num_layers: int = 4
    flow_hidden_features: int = 1024
    flow_num_blocks: int = 2
    flow_dropout: float = 0.5
    flow_batch_norm: bool = True

    RULES: ClassVar[dict[str, Rule]] = {
        "hidden_features": at_least(1),
        "num_res_blocks": at_least(0),
        "flow_num_layers": at_least(1),
        "flow_hidden_features": at_least(1),
        "flow_num_blocks": at_least(0),
        "flow_dropout": fraction_below_one(),
        "flow_batch_norm": ANY,
    }


def config_from_dict(cls: type, values: Mapping[str, Any], *, source: str) -> Any:
    """Build the config dataclass ``cls`` from a stored mapping (a checkpoint's config section).

    Raises:
        ConfigError: naming ``source``, if ``values`` is not a mapping or has keys ``cls`` does
            not know; ``ConfigValueError`` if a value breaks its rule.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: expected a mapping for {cls.__name__}, got {values!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown {cls.__name__} key(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    try:
        return cls(**values)
    except ConfigValueError as error:
        raise ConfigValueError(error.key, error.expected, error.value, source) from None
