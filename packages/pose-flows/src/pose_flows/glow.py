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

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from nflows.distributions.normal import StandardNormal
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import AdditiveCouplingTransform, AffineCouplingTransform
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from pose_flows import layers as _layers
from pose_flows.layers import (
    ActNorm,
    LULinear,
    ResidualConditioner,
    SharedContext,
    _ConditionerPlan,
)
from pose_geometry import check_floating, check_module_input, check_same_device, check_same_dtype

__all__ = ["ConditionalGlow", "FlowLogProb", "FlowSample", "FrozenInverse", "PreparedContext"]

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


class _InverseLayerPlan(NamedTuple):
    """One additive layer of the inverse flow, folded: u -> u·Aᵀ + h(u_I)·Vᵀ + b.

    The coupling's inverse (u_T -= W_o·h + b_o), then LULinear⁻¹ and ActNorm⁻¹ (both affine)
    make one affine map of u and of the conditioner's last hidden layer h.
    """

    net: ResidualConditioner
    net_plan: _ConditionerPlan
    identity: Tensor  # (D_I,) long: the coupling's identity features
    weight_t: Tensor  # (D, D) Aᵀ
    hidden_weight_t: Tensor  # (H, D) Vᵀ = -(A[:, T]·W_o)ᵀ
    bias: Tensor  # (D,)

    def apply(self, u: Tensor, hidden: Tensor) -> Tensor:
        """u·Aᵀ + h·Vᵀ + b: the layer's output from its input and the network's hidden layer."""
        return torch.addmm(torch.addmm(self.bias, u, self.weight_t), hidden, self.hidden_weight_t)


class _InversePlan(NamedTuple):
    key: tuple
    layers: tuple[_InverseLayerPlan, ...]  # noise -> data order
    logabsdet: Tensor  # () log|det| of the whole inverse (constant for additive couplings)


class PreparedContext(NamedTuple):
    """Contexts with each coupling network's input-layer term precomputed (`prepare_context`).

    Pass it wherever a (B, C) context tensor is accepted. The terms are constants (no gradient
    flows into them); each is used only while the coupling network's parameters are unchanged
    and it runs its inference plan, otherwise it is recomputed, so results never go stale.

    Attributes:
        context: (B, C) the contexts.
        terms: {conditioner: (state key, (B, H) W_c·c + b)}.
    """

    context: Tensor
    terms: dict


class FrozenInverse:
    """x = f⁻¹(z; c) of an additive-coupling `ConditionalGlow`, parameters and contexts fixed.

    Built by `ConditionalGlow.frozen_inverse`. Calling it on latents z (B, D) or (B, N, D)
    returns the samples (same shape), equal to ``flow.sample(context, z=z).x`` in eval mode up
    to float round-off. Gradients reach z only: the parameters and contexts are constants. The
    work per call is the folded inverse plan alone: per layer, the coupling network's hidden
    layers (its context term computed once at construction) and two matrix products.

    It holds the flow as it was when built. Every call first compares the storages and
    versions of the flow's parameters and buffers and of the contexts with those it was built
    from, and raises RuntimeError if any changed (an optimiser step, ``load_state_dict``,
    ``.to()``): build a new one then.

    Attributes:
        batch_size: B, the number of contexts.
        features: D.
        logabsdet: () log|det ∂f⁻¹/∂z|, a constant for additive couplings:
            log p(x | c) = log N(z; 0, I) − logabsdet.
    """

    def __init__(
        self,
        plan: _InversePlan,
        terms: tuple[Tensor, ...],
        batch_size: int,
        features: int,
        sources: tuple[Tensor, ...],
    ) -> None:
        self._layers = tuple(zip(plan.layers, terms, strict=True))
        self.batch_size = batch_size
        self.features = features
        self.logabsdet = plan.logabsdet
        self._sources = sources
        self._fingerprint = self._state()

    def _state(self) -> list[tuple[int, int]]:
        return [(t.data_ptr(), t._version) for t in self._sources]

    def __call__(self, z: Tensor) -> Tensor:
        self.check(z)
        B, D = self.batch_size, self.features
        num_samples = 1 if z.ndim == 2 else z.shape[1]
        rows = z.reshape(B * num_samples, D)
        if torch.is_grad_enabled() and rows.requires_grad:
            x = _FrozenInverseFunction.apply(rows, self, num_samples)
        else:
            x = self._forward(rows, num_samples, None)
        return x.view(z.shape)

    def check(self, z: Tensor) -> None:
        """Raise what a call raises for these latents (changed flow or contexts, bad `z`)."""
        if self._state() != self._fingerprint:
            raise RuntimeError(
                "FrozenInverse: the flow's parameters or buffers, or the contexts, changed since "
                "it was built; build a new one with ConditionalGlow.frozen_inverse"
            )
        if not isinstance(z, Tensor):
            raise TypeError(f"`z` must be a torch.Tensor, got {type(z).__name__}")
        B, D = self.batch_size, self.features
        if z.ndim not in (2, 3) or z.shape[0] != B or z.shape[-1] != D or 0 in z.shape:
            raise ValueError(
                f"`z` must have shape ({B}, {D}) or ({B}, N, {D}), got {tuple(z.shape)}"
            )
        if z.dtype != self.logabsdet.dtype or z.device != self.logabsdet.device:
            raise ValueError(
                f"`z` must be {self.logabsdet.dtype} on {self.logabsdet.device} like the flow, "
                f"got {z.dtype} on {z.device}"
            )

    def traceable(self, z: Tensor) -> Tensor:
        """The same samples as a call, op by op through autograd, without any check.

        For tracing by ``torch.compile`` (which derives and compiles the backward itself):
        no autograd node of its own and no storage/version comparison, which a compiled
        function would bake in. Call `check` on the latents first (outside the compiled code).
        """
        num_samples = 1 if z.ndim == 2 else z.shape[1]
        rows = z.reshape(self.batch_size * num_samples, self.features)
        return self._forward(rows, num_samples, None).view(z.shape)

    def _forward(self, u: Tensor, num_samples: int, saved: list | None) -> Tensor:
        """The folded plan on (M, D) rows; appends each block's two ReLU outputs to `saved`."""
        for layer, term in self._layers:
            inputs = u.index_select(1, layer.identity)
            hidden = _layers._plan_hidden(layer.net_plan, inputs, term, num_samples, saved)
            u = layer.apply(u, hidden)
        return u

    def _backward(self, grad: Tensor, saved: list) -> Tensor:
        """∂/∂u of the plan, layer by layer in reverse (the weights are constants)."""
        k = len(saved)
        for layer, _ in reversed(self._layers):
            net = layer.net_plan
            # u' = b + u·Aᵀ + h·Vᵀ
            grad_hidden = torch.mm(grad, layer.hidden_weight_t.t())
            grad = torch.mm(grad, layer.weight_t.t())
            for block in reversed(net.blocks):
                k -= 1
                t1, t2 = saved[k]
                # h' = h + relu(relu(s·h + c)·W0ᵀ + b0)·W1ᵀ + b1
                inner = _relu_backward(torch.mm(grad_hidden, block.weight1), t2)
                inner = _relu_backward(torch.mm(inner, block.weight0), t1)
                if block.scale0 is not None:
                    inner.mul_(block.scale0)
                grad_hidden = grad_hidden + inner
            # h = u_I·W_xᵀ + (W_c·c + b)
            grad = grad.index_add(1, layer.identity, torch.mm(grad_hidden, net.input_weight))
        return grad


def _relu_backward(grad: Tensor, output: Tensor) -> Tensor:
    """grad where the ReLU's output is positive, else 0 (the kernel autograd itself uses)."""
    return torch.ops.aten.threshold_backward(grad, output, 0)


class _FrozenInverseFunction(torch.autograd.Function):
    """`FrozenInverse` as one autograd node: the forward runs without recording (so the plan's
    fused oneDNN calls can run where they pay, see `layers._use_onednn`), the backward is
    written out (bitwise the products autograd would make)."""

    @staticmethod
    def forward(ctx, rows: Tensor, inverse: FrozenInverse, num_samples: int) -> Tensor:
        saved: list = []
        out = inverse._forward(rows, num_samples, saved)
        ctx.inverse = inverse
        ctx.activations = saved
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.inverse._backward(grad, ctx.activations), None, None


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return value


class ConditionalGlow(nn.Module):
    """Conditional Glow over D features given a C-dimensional context.

    Transform k of the list (data → noise order): 3i + 0 ActNorm, 3i + 1 LULinear, 3i + 2
    coupling whose conditioner (`ResidualConditioner`) sees [x_I, c]. Initialisation: ActNorm
    identity until its data-dependent initialisation (first training-mode `log_prob`, or
    `initialize`), LU identity, coupling nets near zero, so a new flow is close to the identity.

    Args:
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

    Inference speed: when N samples share a context (`sample`, or `log_prob` with x (B, N, D)),
    each coupling network computes its input layer's context term W_c·c + b once per context
    instead of N times (`prepare_context` keeps those terms over many calls); in eval mode the
    LU weights and inverses are cached (`LULinear`) and the coupling networks run a fused plan
    (`ResidualConditioner`).
    """

    def __init__(
        self,
        *,
        features: int,
        context_features: int,
        hidden_features: int = 1024,
        num_layers: int = 4,
        num_blocks_per_layer: int = 2,
        coupling: Coupling = "additive",
        dropout_probability: float = 0.5,
        use_batch_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int("features", features, 2)
        _check_positive_int("context_features", context_features)
        _check_positive_int("hidden_features", hidden_features)
        _check_positive_int("num_layers", num_layers)
        _check_positive_int("num_blocks_per_layer", num_blocks_per_layer, 0)
        if coupling not in _COUPLINGS:
            raise ValueError(f"unknown coupling {coupling!r}; expected 'additive' or 'affine'")
        if not 0.0 <= float(dropout_probability) < 1.0:
            raise ValueError(f"`dropout_probability` must be in [0, 1), got {dropout_probability}")
        self.features = features
        self.context_features = context_features
        self.hidden_features = hidden_features
        self.num_layers = num_layers
        self.num_blocks_per_layer = num_blocks_per_layer
        self.coupling = coupling
        self.dropout_probability = float(dropout_probability)
        self.use_batch_norm = bool(use_batch_norm)

        def make_conditioner(in_features: int, out_features: int) -> ResidualConditioner:
            return ResidualConditioner(
                in_features,
                out_features,
                hidden_features=hidden_features,
                context_features=context_features,
                num_blocks=num_blocks_per_layer,
                dropout_probability=self.dropout_probability,
                use_batch_norm=self.use_batch_norm,
            )

        mask = torch.ones(features)
        mask[::2] = -1  # mask <= 0: identity (conditioning) features; > 0: transformed
        transforms: list[nn.Module] = []
        for _ in range(num_layers):
            transforms.append(ActNorm(features))
            transforms.append(LULinear(features))
            transforms.append(_COUPLINGS[coupling](mask, make_conditioner))
            mask = -mask
        self._transform = CompositeTransform(transforms)
        self._distribution = StandardNormal([features])
        self._inverse_plan: _InversePlan | None = None
        # Python-side memo of "every ActNorm is initialised" (so the check reads the buffers
        # once, not at every call); a loaded state dict may say otherwise, so loading resets it.
        self._actnorms_ready = False
        self.register_load_state_dict_post_hook(_forget_actnorm_state)

    # ---------------------------------------------------------------------------------------
    # helpers

    def _check_context(self, context: object) -> Tensor:
        if isinstance(context, PreparedContext):
            context = context.context
        if not isinstance(context, Tensor):
            raise TypeError(
                "`context` must be a torch.Tensor or a PreparedContext, got "
                f"{type(context).__name__}"
            )
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
    def _row_context(
        context: Tensor, num_samples: int, prepared: object = None
    ) -> Tensor | SharedContext:
        if isinstance(prepared, PreparedContext):
            return SharedContext(context, num_samples, prepared.terms)
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
        prepared = context
        context = self._check_context(context)
        if not self.training:
            self._check_initialized("log_prob in eval mode")
        batch_size = context.shape[0]
        num_samples, has_samples = self._check_rows("x", x, batch_size, context)
        rows = x.reshape(batch_size * num_samples, self.features)
        row_context = self._row_context(context, num_samples, prepared)
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
        prepared = context
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
        row_context = self._row_context(context, num, prepared)
        plan = self._usable_inverse_plan()
        if plan is not None:
            x = self._run_inverse_plan(plan, rows, row_context)
            logabsdet = plan.logabsdet.expand(rows.shape[0])
        else:
            x, logabsdet = self._transform.inverse(rows, context=row_context)
        log_prob = self._base_log_prob(rows) - logabsdet
        return FlowSample(x.view(batch_size, num, self.features), log_prob.view(batch_size, num), z)

    def prepare_context(self, context: Tensor) -> PreparedContext:
        """Precompute every coupling network's context term for a context reused many times.

        Each coupling network's input layer is W·[x_I; c] + b = W_x·x_I + (W_c·c + b); the
        bracket depends only on the context. Fitting pushes new latents through the flow for the
        same image features hundreds of times: preparing the context once skips the (B, C) × C × H
        products of every call. The terms are computed without gradient, and a coupling network
        uses its term only in its inference plan (eval mode, no gradient to its parameters)
        while its parameters are unchanged; otherwise it computes the term as usual.

        Args:
            context: (B, C) contexts.

        Returns:
            A `PreparedContext`, accepted by `sample` and `log_prob` in place of the tensor.
        """
        context = self._check_context(context)
        terms = {}
        with torch.no_grad():
            for net in self.conditioners:
                terms[net] = (net.state_key(), net.context_term(context))
        return PreparedContext(context, terms)

    # ---------------------------------------------------------------------------------------
    # inference plan of the whole inverse (additive couplings)

    def _usable_inverse_plan(self) -> _InversePlan | None:
        """The cached plan of the inverse flow, (re)built if stale; None when it must not run.

        Used by `sample` for additive couplings in eval mode, when no gradient with respect to
        any parameter is recorded and every coupling network may run its own plan
        (`ResidualConditioner.use_inference_plan`). Each layer's coupling inverse, LULinear⁻¹
        and ActNorm⁻¹ become one affine map of the latents and of the coupling network's last
        hidden layer, so a layer costs the conditioner's hidden layers plus two matrix
        products (no feature gathers and scatters, no separate affine passes). Keyed like the
        conditioner plans on every parameter's and buffer's identity, storage and version.
        """
        if self.training or self.coupling != "additive":
            return None
        if not all(net.use_inference_plan for net in self.conditioners):
            return None
        net_tensors, others = self._inverse_plan_sources()
        if torch.is_grad_enabled() and any(
            t.requires_grad for tensors in (*net_tensors, others) for t in tensors
        ):
            return None
        return self._inverse_plan_for(net_tensors, others)

    def _inverse_plan_sources(self) -> tuple[list[list[Tensor]], list[Tensor]]:
        """The tensors the inverse plan is built from: per coupling network, and the rest."""
        transforms = self._transform._transforms
        net_tensors = []
        others: list[Tensor] = []
        for i in range(0, len(transforms), 3):
            actnorm, lu, coupling = transforms[i], transforms[i + 1], transforms[i + 2]
            net_tensors.append(coupling.transform_net._plan_tensors())
            others.extend((actnorm.log_scale, actnorm.shift, lu.bias, *lu._lu_parameters()))
            others.append(coupling.identity_features)
        return net_tensors, others

    def _inverse_plan_for(
        self, net_tensors: list[list[Tensor]], others: list[Tensor]
    ) -> _InversePlan:
        key = (
            tuple(_layers._state_key(tensors) for tensors in net_tensors),
            _layers._state_key(others),
        )
        plan = self._inverse_plan
        if plan is None or plan.key != key:
            plan = self._build_inverse_plan(key)
            self._inverse_plan = plan
        return plan

    def frozen_inverse(self, context: Tensor | PreparedContext) -> FrozenInverse:
        """The inverse flow for these contexts with the parameters as constants (fitting).

        For additive couplings in eval mode with every parameter frozen (``requires_grad``
        False). The result maps latents to samples like ``sample(context, z=z).x``, through the
        folded inverse plan with the contexts' terms computed once, and differentiates with
        respect to the latents only. Optimising latents for fixed images calls the flow
        hundreds of times: this skips `sample`'s per-call checks of the parameters' state
        (about 0.3 ms per call on a CPU) and its log-density. See `FrozenInverse`.

        Args:
            context: (B, C) contexts, or a `PreparedContext`.

        Raises:
            ValueError: for affine couplings, training mode, a parameter that requires grad,
                or a context of the wrong shape or device.
            TypeError: for a context of the wrong dtype.
            RuntimeError: if the ActNorm layers were never initialised.
        """
        context = self._check_context(context)
        self._check_initialized("frozen_inverse")
        if self.coupling != "additive":
            raise ValueError(
                f"frozen_inverse needs additive couplings, this flow has {self.coupling!r}"
            )
        if self.training:
            raise ValueError("frozen_inverse needs the flow in eval mode (call .eval() first)")
        for name, parameter in self.named_parameters():
            if parameter.requires_grad:
                raise ValueError(
                    f"frozen_inverse treats the parameters as constants, but {name!r} requires "
                    "grad; call .requires_grad_(False) first"
                )
        with torch.no_grad():
            plan = self._inverse_plan_for(*self._inverse_plan_sources())
            dtype = plan.logabsdet.dtype
            if context.dtype != dtype or context.device != plan.logabsdet.device:
                raise ValueError(
                    f"`context` must be {dtype} on {plan.logabsdet.device} like the flow, got "
                    f"{context.dtype} on {context.device}"
                )
            terms = tuple(
                F.linear(context, layer.net_plan.context_weight, layer.net_plan.input_bias)
                for layer in plan.layers
            )
        sources = (*self.parameters(), *self.buffers(), context)
        return FrozenInverse(plan, terms, context.shape[0], self.features, sources)

    @torch.no_grad()
    def _build_inverse_plan(self, key: tuple) -> _InversePlan:
        transforms = self._transform._transforms
        net_keys = key[0]
        layers = []
        logabsdet = torch.zeros((), dtype=torch.float64)
        for k in reversed(range(len(transforms) // 3)):
            actnorm, lu, coupling = transforms[3 * k], transforms[3 * k + 1], transforms[3 * k + 2]
            net = coupling.transform_net
            net_plan = net._plan_for(net_keys[k])
            dtype = net_plan.final_weight.dtype
            # ActNorm⁻¹(LU⁻¹(y)) = A·y + c, A = diag(1/s)·W⁻¹, c = -(W⁻¹·b_LU + shift)/s.
            inverse_scale = torch.exp(-actnorm.log_scale.double())
            w_inv = lu._usable_cache().inverse.double()
            a = inverse_scale[:, None] * w_inv
            c = -(w_inv @ lu.bias.double() + actnorm.shift.double()) * inverse_scale
            # The coupling's inverse first: u_T -= W_o·h + b_o.
            a_t = a[:, coupling.transform_features]
            hidden_weight = -(a_t @ net_plan.final_weight.double())
            bias = c - a_t @ net_plan.final_bias.double()
            layers.append(
                _InverseLayerPlan(
                    net=net,
                    net_plan=net_plan,
                    identity=coupling.identity_features,
                    weight_t=a.T.to(dtype).contiguous(),
                    hidden_weight_t=hidden_weight.T.to(dtype).contiguous(),
                    bias=bias.to(dtype),
                )
            )
            logabsdet = logabsdet - lu._usable_cache().logabsdet.double()
            logabsdet = logabsdet - actnorm.log_scale.double().sum()
        return _InversePlan(key, tuple(layers), logabsdet.to(self._inverse_dtype()))

    def _inverse_dtype(self) -> torch.dtype:
        return self.actnorms[0].log_scale.dtype

    @staticmethod
    def _run_inverse_plan(plan: _InversePlan, rows: Tensor, context: object) -> Tensor:
        u = rows
        for layer in plan.layers:
            hidden = layer.net._hidden_plan(
                layer.net_plan, u.index_select(1, layer.identity), context
            )
            u = layer.apply(u, hidden)
        return u

    def train(self, mode: bool = True) -> ConditionalGlow:
        self._inverse_plan = None
        return super().train(mode)

    def _apply(self, fn: Callable, *args: object, **kwargs: object) -> ConditionalGlow:
        self._inverse_plan = None
        return super()._apply(fn, *args, **kwargs)

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
        return (
            f"features={self.features}, context_features={self.context_features}, "
            f"hidden_features={self.hidden_features}, num_layers={self.num_layers}, "
            f"num_blocks_per_layer={self.num_blocks_per_layer}, coupling={self.coupling!r}, "
            f"dropout_probability={self.dropout_probability}, "
            f"use_batch_norm={self.use_batch_norm}"
        )


def _forget_actnorm_state(module: nn.Module, incompatible_keys: object) -> None:
    """load_state_dict post-hook: the loaded ActNorm flags are read again at the next use."""
    module._actnorms_ready = False
