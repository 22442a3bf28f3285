"""Loss weights (ProHMR's and the lifting model's published values) and the weighted total.

Term names are the `LossWeights` field names; `combine_losses` multiplies each given term by its
weight, sums, and returns detached copies for logging under "loss_<term>" plus "loss" for the
total. A term left out contributes nothing (e.g. "adversarial" outside training, every 2D term
for the lifting model). Zero-weighted terms that are given are still multiplied in, as in the
original (so a NaN there shows up in the total instead of hiding).

Mapping to ProHMR's LOSS_WEIGHTS keys and logged names: KEYPOINTS_3D_MODE -> keypoints_3d_mode
(logged loss_keypoints_3d_mode), KEYPOINTS_3D_EXP -> keypoints_3d_expectation (ProHMR logged
loss_keypoints_3d_exp), likewise for 2D keypoints, GLOBAL_ORIENT, BODY_POSE and BETAS;
ORTHOGONAL -> orthonormal_mode and orthonormal_expectation (ProHMR logged loss_pose_6d_mode /
_exp); NLL -> nll; ADVERSARIAL -> adversarial (the generator's LSGAN term, ProHMR's loss_gen;
ProHMR also scales the discriminator's loss by this weight).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from torch import Tensor

from pose_geometry import check_tensor

__all__ = ["CombinedLoss", "LossWeights", "combine_losses"]


@dataclass(frozen=True)
class LossWeights:
    """Weight of every loss term. The defaults are ProHMR's (docs/training.md#loss-weights).

    Use `LossWeights.prohmr()` or `LossWeights.lifting()` for the published sets, or
    `dataclasses.replace(LossWeights.prohmr(), nll=0.01)` to change one value.
    """

    keypoints_3d_mode: float = 0.05
    keypoints_3d_expectation: float = 0.0
    keypoints_2d_mode: float = 0.01
    keypoints_2d_expectation: float = 0.001
    global_orient_mode: float = 0.001
    global_orient_expectation: float = 0.0
    body_pose_mode: float = 0.001
    body_pose_expectation: float = 0.0
    betas_mode: float = 0.0005
    betas_expectation: float = 0.0
    orthonormal_mode: float = 0.1
    orthonormal_expectation: float = 0.1
    nll: float = 0.001
    adversarial: float = 0.0005

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(
                    f"loss weight `{field.name}` must be a number, got {type(value).__name__}"
                )
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"loss weight `{field.name}` must be finite and >= 0, got {value}")

    @classmethod
    def prohmr(cls) -> LossWeights:
        """ProHMR's weights (the field defaults)."""
        return cls()

    @classmethod
    def lifting(cls) -> LossWeights:
        """The lifting model's weights (`proskeleton.yaml` in the original): 1.0·L3D_mode +
        0.0·L3D_expectation + 0.001·NLL, every other term 0."""
        zeros = {field.name: 0.0 for field in fields(cls)}
        return cls(**{**zeros, "keypoints_3d_mode": 1.0, "nll": 0.001})

    @classmethod
    def term_names(cls) -> tuple[str, ...]:
        """The names `combine_losses` accepts, in declaration order."""
        return tuple(field.name for field in fields(cls))

    def as_dict(self) -> dict[str, float]:
        """{term name: weight}."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class CombinedLoss:
    """The weighted total and what to log.

    Attributes:
        total: () Σ weight · term, attached to the graph (call `.backward()` on it).
        logs: detached scalars: "loss" (the total) and "loss_<term>" (unweighted) for every
            given term.
    """

    total: Tensor
    logs: dict[str, Tensor]


def combine_losses(terms: Mapping[str, Tensor], weights: LossWeights) -> CombinedLoss:
    """Weight and sum loss terms; return the total and detached values for logging.

    Args:
        terms: term name (a `LossWeights` field, e.g. "keypoints_2d_mode") -> () scalar.
        weights: the weight of each term.

    Returns:
        `CombinedLoss(total, logs)`.

    Raises:
        ValueError: if `terms` is empty, names an unknown term, or holds a non-scalar.
        TypeError: if a term is not a tensor.
    """
    if not terms:
        raise ValueError("`terms` is empty; expected at least one loss term")
    known = weights.as_dict()
    unknown = sorted(set(terms) - set(known))
    if unknown:
        raise ValueError(
            f"unknown loss term(s) {', '.join(map(repr, unknown))}; expected names from "
            f"{', '.join(known)}"
        )
    weighted: list[Tensor] = []
    logs: dict[str, Tensor] = {}
    for name, value in terms.items():
        check_tensor(f"terms[{name!r}]", value)
        if value.ndim != 0:
            raise ValueError(
                f"`terms[{name!r}]` must be a scalar tensor, got shape {tuple(value.shape)}"
            )
        weighted.append(known[name] * value)
        logs[f"loss_{name}"] = value.detach()
    total = weighted[0]
    for value in weighted[1:]:
        total = total + value
    return CombinedLoss(total=total, logs={"loss": total.detach(), **logs})
