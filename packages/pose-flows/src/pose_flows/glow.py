"""ConditionalGlow: the conditional normalising flow of ProHMR, built from nflows parts.

See docs/model.md#conditional-glow.

The flow maps data x (D) to noise z = f(x; c) given a context c (C). It is a composition of
`num_layers` × [ActNorm, LULinear, coupling] (12 transforms for 4 layers) with a standard normal
base distribution; coupling masks alternate: even indices condition and odd indices are
transformed in layers 0, 2, ..., the reverse in layers 1, 3, .... log p(x | c) = log N(f(x; c)) +
log|det ∂f/∂x|; sampling runs the transforms in reverse from z. With additive coupling every
log-determinant is independent of x, so z = 0 gives the exact mode of p(x | c).

Parameter names equal the original's `flow.flow.*` (docs/checkpoints.md#flow-keys) minus the
prefix and minus the fork's `dummy_buffer`s: `_transform._transforms.{k}.…`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import torch
from nflows.distributions.normal import StandardNormal
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import AdditiveCouplingTransform, AffineCouplingTransform
from torch import Tensor, nn

from pose_flows.layers import ActNorm, LULinear, ResidualConditioner, SharedContext
from pose_geometry import check_floating, check_module_input, check_same_device, check_same_dtype

__all__ = ["ConditionalGlow", "FlowConfig", "FlowLogProb", "FlowSample"]

Coupling = Literal["additive", "affine"]
_COUPLINGS: dict[str, type] = {
    "additive": AdditiveCouplingTransform,
    "affine": AffineCouplingTransform,
}


class FlowSample(NamedTuple):
    """Samples of a conditional flow (unpacks as `x, log_prob, z`).

    Attributes:
        x: (B, N, D) samples in data space.
        log_prob: (B, N) log p(x | c) in nats.
        z: (B, N, D) the latents the samples were pushed from.
    """

    x: Tensor
    log_prob: Tensor
    z: Tensor


class FlowLogProb(NamedTuple):
    """Log-densities of data under a conditional flow (unpacks as `log_prob, z`).

    Attributes:
        log_prob: (B,) or (B, N) log p(x | c) in nats.
        z: (B, D) or (B, N, D) latents f(x; c).
    """

    log_prob: Tensor
    z: Tensor


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class FlowConfig:
    """The options of a `ConditionalGlow` (defaults = ProHMR's flow); validated on creation.

    Attributes:
        features: D, dimension of the data (144 for ProHMR's pose, 48 for the skeleton).
        context_features: C (2048 for ProHMR, 1024 for the skeleton).
        hidden_features: H, width of the coupling networks.
        num_layers: L, repetitions of [ActNorm, LULinear, coupling].
        num_blocks_per_layer: residual blocks per coupling network.
        coupling: "additive" (the original: y_T = x_T + g) or "affine" (nflows' affine coupling,
            y_T = x_T·(sigmoid(s + 2) + 1e-3) + t; its log-det depends on x, so z = 0 is then no
            longer the exact mode).
        dropout_probability: dropout inside the coupling networks (active in training mode).
        use_batch_norm: batch norm inside the coupling networks. In training mode every call
            uses the statistics of its own batch (so samples depend on the batch composition) and
            updates the running statistics; evaluate in eval mode.

    Raises:
        TypeError / ValueError: naming the option that is not an int, out of range or unknown.
    """

    features: int
    context_features: int
    hidden_features: int = 1024
    num_layers: int = 4
    num_blocks_per_layer: int = 2
    coupling: Coupling = "additive"
    dropout_probability: float = 0.5
    use_batch_norm: bool = True

    def __post_init__(self) -> None:
        _check_positive_int("features", self.features, 2)
        _check_positive_int("context_features", self.context_features)
        _check_positive_int("hidden_features", self.hidden_features)
        _check_positive_int("num_layers", self.num_layers)
        _check_positive_int("num_blocks_per_layer", self.num_blocks_per_layer, 0)
        if self.coupling not in _COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}; expected 'additive' or 'affine'")
        dropout = float(self.dropout_probability)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout_probability` must be in [0, 1), got {dropout}")
        object.__setattr__(self, "dropout_probability", dropout)
        object.__setattr__(self, "use_batch_norm", bool(self.use_batch_norm))


class ConditionalGlow(nn.Module):
    """Conditional Glow over D features given a C-dimensional context.

    Transform k of the list (data → noise order): 3i + 0 ActNorm, 3i + 1 LULinear, 3i + 2
    coupling whose conditioner (`ResidualConditioner`) sees [x_I, c]. Initialisation: ActNorm
    identity until its data-dependent initialisation (first training-mode `log_prob`, or
    `initialize`), LU identity, coupling nets near zero, so a new flow is close to the identity.

    Built from a `FlowConfig` (``ConditionalGlow(config)``) or from its fields as keyword
    arguments (``ConditionalGlow(features=144, context_features=2048)``); `config` holds them,
    and each is an attribute too (`features`, `context_features`, ...).

    When N samples share a context (`sample`, or `log_prob` with x (B, N, D)), each coupling
    network computes its input layer's context term W_c·c + b once per context instead of N
    times; in eval mode the LU weights and inverses are cached (`LULinear`).
    """

    def __init__(self, config: FlowConfig | None = None, /, **options: object) -> None:
        super().__init__()
        if config is None:
            config = FlowConfig(**options)
        elif not isinstance(config, FlowConfig):
            raise TypeError(f"`config` must be a FlowConfig, got {type(config).__name__}")
        elif options:
            raise TypeError(
                f"pass a FlowConfig or keyword options, not both; got {sorted(options)} too"
            )
        self.config = config
        self.features = config.features
        self.context_features = config.context_features
        self.hidden_features = config.hidden_features
        self.num_layers = config.num_layers
        self.num_blocks_per_layer = config.num_blocks_per_layer
        self.coupling = config.coupling
        self.dropout_probability = config.dropout_probability
        self.use_batch_norm = config.use_batch_norm

        def make_conditioner(in_features: int, out_features: int) -> ResidualConditioner:
            return ResidualConditioner(
                in_features,
                out_features,
                hidden_features=config.hidden_features,
                context_features=config.context_features,
                num_blocks=config.num_blocks_per_layer,
                dropout_probability=config.dropout_probability,
                use_batch_norm=config.use_batch_norm,
            )

        mask = torch.ones(config.features)
        mask[::2] = -1  # mask <= 0: identity (conditioning) features; > 0: transformed
        transforms: list[nn.Module] = []
        for _ in range(config.num_layers):
            transforms.append(ActNorm(config.features))
            transforms.append(LULinear(config.features))
            transforms.append(_COUPLINGS[config.coupling](mask, make_conditioner))
            mask = -mask
        self._transform = CompositeTransform(transforms)
        self._distribution = StandardNormal([config.features])
        # Python-side memo of "every ActNorm is initialised" (so the check reads the buffers
        # once, not at every call); a loaded state dict may say otherwise, so loading resets it.
        self._actnorms_ready = False
        self.register_load_state_dict_post_hook(_forget_actnorm_state)

    # ---------------------------------------------------------------------------------------
    # helpers

    def _check_context(self, context: object) -> Tensor:
        if not isinstance(context, Tensor):
            raise TypeError(f"`context` must be a torch.Tensor, got {type(context).__name__}")
        if context.ndim != 2 or context.shape[1] != self.context_features or context.shape[0] < 1:
            raise ValueError(
                f"`context` must have shape (B, {self.context_features}) with B >= 1, "
                f"got {tuple(context.shape)}"
            )
        check_floating("context", context)
        check_module_input("context", context, self)
        return context

    def _check_initialized(self, action: str) -> None:
        """Raise RuntimeError if an ActNorm still has its identity (never-initialised) values.

        A flow whose ActNorms were never initialised is (close to) the identity: its
        log-densities and samples are silently meaningless.
        """
        if self._actnorms_ready:
            return
        pending = [i for i, t in enumerate(self.actnorms) if not bool(t.initialized)]
        if pending:
            raise RuntimeError(
                f"{action} needs initialised ActNorm layers, but {len(pending)} of "
                f"{len(self.actnorms)} are not (layers {pending}); run a first `log_prob` in "
                f"training mode on a batch (at least 2 rows), call `initialize(x, context)`, or "
                f"load a trained state dict"
            )
        self._actnorms_ready = True

    def _check_rows(
        self, name: str, x: object, batch_size: int, context: Tensor | None = None
    ) -> tuple[int, bool]:
        """Validate x (B, D) or (B, N, D) (dtype and device of `context`); return (N, has N)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
        if context is not None:
            check_floating(name, x)
            check_same_dtype("context", context, name, x)
            check_same_device("context", context, name, x)
        if x.ndim not in (2, 3) or x.shape[0] != batch_size or x.shape[-1] != self.features:
            raise ValueError(
                f"`{name}` must have shape ({batch_size}, {self.features}) or "
                f"({batch_size}, N, {self.features}) to match `context` (B = {batch_size}), "
                f"got {tuple(x.shape)}"
            )
        if x.ndim == 3 and x.shape[1] < 1:
            raise ValueError(f"`{name}` must have at least one sample, got {tuple(x.shape)}")
        return (x.shape[1], True) if x.ndim == 3 else (1, False)

    @staticmethod
    def _row_context(context: Tensor, num_samples: int) -> Tensor | SharedContext:
        return context if num_samples == 1 else SharedContext(context, num_samples)

    @property
    def conditioners(self) -> list[ResidualConditioner]:
        """The coupling networks, in data → noise order."""
        return [
            t.transform_net
            for t in self._transform._transforms
            if isinstance(getattr(t, "transform_net", None), ResidualConditioner)
        ]

    def _base_log_prob(self, z: Tensor) -> Tensor:
        return self._distribution.log_prob(z)

    @property
    def actnorms(self) -> list[ActNorm]:
        """The ActNorm layers, in data → noise order."""
        return [t for t in self._transform._transforms if isinstance(t, ActNorm)]

    @property
    def initialized(self) -> bool:
        """True when every ActNorm has been initialised (from data or a state dict)."""
        return all(bool(t.initialized) for t in self.actnorms)

    # ---------------------------------------------------------------------------------------
    # public API

    def log_prob(self, x: Tensor, context: Tensor) -> FlowLogProb:
        """Log-density of data and its latent.

        In training mode, ActNorm layers that are not yet initialised initialise themselves on
        the data reaching them (docs/model.md#actnorm).

        Args:
            x: (B, D) data, or (B, N, D) N data points per context.
            context: (B, C) contexts.

        Returns:
            FlowLogProb(log_prob (B,) or (B, N) in nats, z (B, D) or (B, N, D)).

        Raises:
            TypeError / ValueError: for non-tensors or shapes other than documented; TypeError
                for `x` or `context` in a dtype other than the flow's (ValueError for another
                device): the message names the argument and both.
            RuntimeError: in eval mode, if the ActNorm layers were never initialised (a first
                training-mode `log_prob`, `initialize` or a loaded state dict does it).
        """
        context = self._check_context(context)
        if not self.training:
            self._check_initialized("log_prob in eval mode")
        batch_size = context.shape[0]
        num_samples, has_samples = self._check_rows("x", x, batch_size, context)
        rows = x.reshape(batch_size * num_samples, self.features)
        row_context = self._row_context(context, num_samples)
        z, logabsdet = self._transform(rows, context=row_context)
        log_prob = self._base_log_prob(z) + logabsdet
        if has_samples:
            return FlowLogProb(log_prob.view(batch_size, num_samples), z.view(x.shape))
        return FlowLogProb(log_prob, z)

    def sample(
        self,
        context: Tensor,
        num_samples: int | None = None,
        *,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> FlowSample:
        """Draw samples (or push given latents) through the inverse flow.

        Exactly one of `num_samples` and `z` is given. Random latents are drawn as one
        (B, N, D) standard normal tensor with `generator` (the global generator if None), in the
        context's dtype and device. z = 0 gives the mode (exact for additive coupling).

        Args:
            context: (B, C) contexts.
            num_samples: N, random samples per context.
            z: (B, N, D) latents to push through the inverse flow (any N).
            generator: random generator for the latents.

        Returns:
            FlowSample(x (B, N, D), log_prob (B, N), z (B, N, D)).

        Raises:
            ValueError: if both or neither of `num_samples` and `z` are given, or for bad shapes.
            TypeError: for `context` or `z` in a dtype other than the flow's (ValueError for
                another device).
            RuntimeError: if the ActNorm layers were never initialised (sampling never
                initialises them, in any mode).
        """
        context = self._check_context(context)
        batch_size = context.shape[0]
        if (num_samples is None) == (z is None):
            raise ValueError(
                "pass exactly one of `num_samples` and `z`, got "
                f"num_samples={num_samples!r} and z={'None' if z is None else 'a tensor'}"
            )
        if z is None:
            _check_positive_int("num_samples", num_samples)
            z = torch.randn(
                batch_size,
                num_samples,
                self.features,
                generator=generator,
                dtype=context.dtype,
                device=context.device,
            )
        else:
            num, has_samples = self._check_rows("z", z, batch_size, context)
            if not has_samples:
                raise ValueError(
                    f"`z` must have shape ({batch_size}, N, {self.features}), got {tuple(z.shape)}"
                )
        self._check_initialized("sample")
        num = z.shape[1]
        rows = z.reshape(batch_size * num, self.features)
        row_context = self._row_context(context, num)
        x, logabsdet = self._transform.inverse(rows, context=row_context)
        log_prob = self._base_log_prob(rows) - logabsdet
        return FlowSample(x.view(batch_size, num, self.features), log_prob.view(batch_size, num), z)

    def initialize(self, x: Tensor, context: Tensor, *, reinitialize: bool = False) -> None:
        """Data-dependent ActNorm initialisation from a batch, in any mode (docs/model.md#actnorm).

        Pushes the batch through the flow without gradient; each ActNorm that is not yet
        initialised (every ActNorm if `reinitialize`) is initialised on the data reaching it,
        sequentially. Other layers run in the module's current mode: in training mode the batch
        norm running statistics are updated, as by the original's initialisation pass.

        Args:
            x: (B, D) or (B, N, D) data (at least 2 rows in all).
            context: (B, C) contexts.
        """
        context = self._check_context(context)
        batch_size = context.shape[0]
        num_samples, _ = self._check_rows("x", x, batch_size, context)
        rows = x.reshape(batch_size * num_samples, self.features)
        row_context = self._row_context(context, num_samples)
        with torch.no_grad():
            for transform in self._transform._transforms:
                if isinstance(transform, ActNorm) and (
                    reinitialize or not bool(transform.initialized)
                ):
                    transform._initialize(rows)
                rows, _ = transform(rows, context=row_context)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in asdict(self.config).items())


def _forget_actnorm_state(module: nn.Module, incompatible_keys: object) -> None:
    """load_state_dict post-hook: the loaded ActNorm flags are read again at the next use."""
    module._actnorms_ready = False
