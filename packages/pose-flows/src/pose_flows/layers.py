"""The building blocks of ConditionalGlow: nflows transforms plus the fork's conditioner.

See docs/model.md#conditional-glow.

- `ActNorm`: nflows' ActNorm with the fork's data-dependent initialisation (std floored at 1e-3)
  and a clear error for batches too small to initialise from.
- `LULinear`: nflows' LULinear with device/dtype-safe index buffers, `linalg.solve_triangular`
  inverse, and a cache of W = L·U, W⁻¹ and log|det W| that is used in eval mode and invalidated
  by `train()`, by any in-place change of the LU parameters (optimiser steps, `load_state_dict`)
  and by moving them to another device or dtype.
- `ResidualConditioner` / `ResidualBlock`: the coupling network of the authors' nflows fork:
  context concatenated at the input layer only, pre-activation residual blocks with optional
  batch norm (eps 1e-5) and dropout, last block Linear initialised uniform(±1e-3), final layer
  uniform(±0.01/√H). Parameter names follow the original (`initial_layer`,
  `blocks.{i}.batch_norm_layers.{0,1}`, `blocks.{i}.linear_layers.{0,1}`, `final_layer`).
- `SharedContext`: passed through nflows' transforms in place of a (B·N, C) context when N
  samples share each of B contexts; the conditioner then computes the context's contribution to
  its input layer once per context: W·[x; c] + b = W_x·x + (W_c·c + b). It may carry those
  per-context terms precomputed (`ConditionalGlow.prepare_context`), for a context that stays
  fixed over many calls (fitting).
- Inference plan: in eval mode, when no gradient with respect to the conditioner's parameters is
  recorded, `ResidualConditioner` runs a cached plan in which each batch norm is an affine map,
  the second one folded into the preceding Linear, dropout is gone, and on CPU float32 the
  Linear + ReLU and Linear + residual pairs are single oneDNN calls when there is nothing to
  differentiate (see `ResidualConditioner`). Same function, float rounding aside.

Shapes: M rows (M = B·N when a context is shared), D features, C context features, H hidden.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

import torch
from nflows.transforms.lu import LULinear as _NflowsLULinear
from nflows.transforms.normalization import ActNorm as _NflowsActNorm
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "ACTNORM_STD_FLOOR",
    "ActNorm",
    "LULinear",
    "ResidualBlock",
    "ResidualConditioner",
    "SharedContext",
]

ACTNORM_STD_FLOOR = 1e-3
"""Lower bound of the per-feature std in ActNorm's data-dependent initialisation (the fork's)."""


class SharedContext(NamedTuple):
    """A context shared by consecutive rows: row b·N + s of the input uses `context[b]`.

    Attributes:
        context: (B, C) one context per group of rows.
        num_samples: N, rows per context.
        terms: optional precomputed input-layer context terms: {conditioner: (state key,
            (B, H) W_c·c + b)} (`ConditionalGlow.prepare_context`). A conditioner uses its term
            only in its inference plan and only if its parameters still match the key;
            otherwise it computes the term.
    """

    context: Tensor
    num_samples: int
    terms: dict | None = None


ContextLike = Tensor | SharedContext


class ActNorm(_NflowsActNorm):
    """nflows' ActNorm (y = exp(log_scale)·x + shift) with the fork's initialisation.

    Data-dependent initialisation runs inside `forward` in training mode while the persistent
    buffer `initialized` is False: σ = max(unbiased std over the batch, 1e-3), μ = mean(x / σ),
    log_scale = -log σ, shift = -μ, so the outputs on that batch have zero mean and unit variance.
    The inverse never initialises.
    """

    def _initialize(self, inputs: Tensor) -> None:
        if inputs.dim() != 2:
            raise ValueError(
                f"ActNorm initialisation expects inputs of shape (M, {self.shift.numel()}), "
                f"got {tuple(inputs.shape)}"
            )
        if inputs.shape[0] < 2:
            raise ValueError(
                "ActNorm data-dependent initialisation needs at least 2 rows to estimate a std, "
                f"got inputs of shape {tuple(inputs.shape)}"
            )
        with torch.no_grad():
            std = inputs.std(dim=0).clamp_min(ACTNORM_STD_FLOOR)
            mu = (inputs / std).mean(dim=0)
            self.log_scale.copy_(-torch.log(std))
            self.shift.copy_(-mu)
            self.initialized.fill_(True)


class _LUCache(NamedTuple):
    key: tuple
    weight: Tensor
    inverse: Tensor
    logabsdet: Tensor


class LULinear(_NflowsLULinear):
    """nflows' LULinear (W = L·U, identity init, diag(U) = softplus + 1e-3), cached.

    Same parameters as nflows (`bias`, `lower_entries`, `upper_entries`,
    `unconstrained_upper_diag`); strictly-lower/upper entries fill L/U in row-major order of the
    (i > j) / (i < j) index pairs. The index tensors are non-persistent buffers, so they follow
    the module's device and never enter the state dict.

    In eval mode, when no gradient with respect to the LU parameters is being recorded (grad
    disabled, or those parameters frozen), W, W⁻¹ (computed in float64, then cast) and log|det W|
    are cached; `forward` is then one matmul and `inverse` one matmul instead of two triangular
    solves. The cache is keyed on the parameters' storage, version counters, device and dtype, so
    any optimiser step, `load_state_dict` or `.to()` invalidates it; `train()` clears it.
    """

    def __init__(self, features: int, *, eps: float = 1e-3) -> None:
        super().__init__(features, using_cache=False, identity_init=True, eps=eps)
        rows, cols = torch.tril_indices(features, features, offset=-1)
        self.register_buffer("_lower_flat_idx", rows * features + cols, persistent=False)
        rows, cols = torch.triu_indices(features, features, offset=1)
        self.register_buffer("_upper_flat_idx", rows * features + cols, persistent=False)
        self._lu_cache: _LUCache | None = None

    def _create_lower_upper(self) -> tuple[Tensor, Tensor]:
        d = self.features
        lower = self.lower_entries.new_zeros(d * d).index_copy(
            0, self._lower_flat_idx, self.lower_entries
        )
        lower = lower.view(d, d) + torch.eye(d, dtype=lower.dtype, device=lower.device)
        upper = self.upper_entries.new_zeros(d * d).index_copy(
            0, self._upper_flat_idx, self.upper_entries
        )
        upper = upper.view(d, d) + torch.diag(self.upper_diag)
        return lower, upper

    def _lu_parameters(self) -> tuple[Tensor, Tensor, Tensor]:
        return (self.lower_entries, self.upper_entries, self.unconstrained_upper_diag)

    def _cache_key(self) -> tuple:
        # Inference-mode tensors cannot enter autograd graphs later: key on the mode too.
        versions = tuple(
            (p.data_ptr(), p._version, p.dtype, p.device) for p in self._lu_parameters()
        )
        return (*versions, torch.is_inference_mode_enabled())

    def _usable_cache(self) -> _LUCache | None:
        """The current cache, (re)built if stale, or None when the cache must not be used."""
        if self.training:
            return None
        if torch.is_grad_enabled() and any(p.requires_grad for p in self._lu_parameters()):
            return None  # gradients must reach the LU parameters: compute live
        key = self._cache_key()
        cache = self._lu_cache
        if cache is None or cache.key != key:
            with torch.no_grad():
                lower, upper = self._create_lower_upper()
                weight = lower @ upper
                eye = torch.eye(self.features, dtype=torch.float64, device=lower.device)
                lower_inv = torch.linalg.solve_triangular(
                    lower.double(), eye, upper=False, unitriangular=True
                )
                inverse = torch.linalg.solve_triangular(upper.double(), lower_inv, upper=True)
                cache = _LUCache(key, weight, inverse.to(lower.dtype), self.logabsdet())
            self._lu_cache = cache
        return cache

    def forward(self, inputs: Tensor, context: object = None) -> tuple[Tensor, Tensor]:
        cache = self._usable_cache()
        if cache is None:
            return self.forward_no_cache(inputs)
        outputs = F.linear(inputs, cache.weight, self.bias)
        return outputs, cache.logabsdet.expand(inputs.shape[0])

    def inverse(self, inputs: Tensor, context: object = None) -> tuple[Tensor, Tensor]:
        cache = self._usable_cache()
        if cache is None:
            return self.inverse_no_cache(inputs)
        outputs = F.linear(inputs - self.bias, cache.inverse)
        return outputs, (-cache.logabsdet).expand(inputs.shape[0])

    def forward_no_cache(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self._create_lower_upper()
        outputs = F.linear(F.linear(inputs, upper), lower, self.bias)
        return outputs, self.logabsdet().expand(inputs.shape[0])

    def inverse_no_cache(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        # Rows: y = x Wᵀ + b with Wᵀ = Uᵀ Lᵀ; solve v Lᵀ = y - b, then x Uᵀ = v.
        lower, upper = self._create_lower_upper()
        v = torch.linalg.solve_triangular(
            lower.T, inputs - self.bias, upper=True, left=False, unitriangular=True
        )
        outputs = torch.linalg.solve_triangular(upper.T, v, upper=False, left=False)
        return outputs, (-self.logabsdet()).expand(inputs.shape[0])

    def weight_inverse(self) -> Tensor:
        lower, upper = self._create_lower_upper()
        eye = torch.eye(self.features, dtype=lower.dtype, device=lower.device)
        lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, lower_inv, upper=True)

    def train(self, mode: bool = True) -> LULinear:
        self._lu_cache = None
        return super().train(mode)

    def _apply(self, fn: Callable, *args: object, **kwargs: object) -> LULinear:
        self._lu_cache = None
        return super()._apply(fn, *args, **kwargs)


# ------------------------------------------------------------------------------------------------
# Inference plan of the conditioner (eval mode, no parameter gradients)
# ------------------------------------------------------------------------------------------------


def _find_onednn_linear() -> object | None:
    """torch's oneDNN Linear-with-post-op operator, or None where it is absent or disabled.

    `torch.ops.mkldnn._linear_pointwise` (what torch.compile emits for CPU Linear + ReLU) has no
    autograd formula, so it is only used when nothing requires a gradient. Setting the
    environment variable ``POSE_FLOWS_NO_ONEDNN=1`` turns it off.
    """
    if os.environ.get("POSE_FLOWS_NO_ONEDNN", "") not in ("", "0"):
        return None
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        op = torch.ops.mkldnn._linear_pointwise
        _ = op.default, op.binary
    except (AttributeError, RuntimeError):
        return None
    return op


_ONEDNN_LINEAR = _find_onednn_linear()


#: oneDNN's fused call costs about 20 µs more per call than MKL's product on the CPU measured
#: here; it pays from about 128 rows at width 256, and at any row count for 1024 × 1024 weights
#: (ProHMR's width): 58 against 86 µs for one row, 41 against 53 ms for 4096.
_ONEDNN_MIN_ROWS = 128
_ONEDNN_MIN_WEIGHT = 1 << 20


def _use_onednn(weight: Tensor, x: Tensor, *others: Tensor) -> bool:
    """True when the oneDNN fused Linear may run on these CPU float32 inputs (no autograd) and
    is expected to be faster (`_ONEDNN_MIN_ROWS` rows of `x`, or a weight of
    `_ONEDNN_MIN_WEIGHT` entries)."""
    if _ONEDNN_LINEAR is None:
        return False
    if x.shape[0] < _ONEDNN_MIN_ROWS and weight.numel() < _ONEDNN_MIN_WEIGHT:
        return False
    recording = torch.is_grad_enabled()
    return all(
        t.device.type == "cpu" and t.dtype == torch.float32 and not (recording and t.requires_grad)
        for t in (x, *others)
    )


def _linear_relu(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """relu(x·Wᵀ + b)."""
    if _use_onednn(weight, x):
        return _ONEDNN_LINEAR(x, weight, bias, "relu", [], "")
    return F.relu(F.linear(x, weight, bias))


def _linear_residual(x: Tensor, residual: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """residual + x·Wᵀ + b."""
    if _use_onednn(weight, x, residual):
        return _ONEDNN_LINEAR.binary(x, residual, weight, bias, "add")
    return torch.addmm(residual + bias, x, weight.t())


def _with_context_term(
    inputs: Tensor, input_weight: Tensor, per_context: Tensor, num_samples: int
) -> Tensor:
    """x_I·W_xᵀ + term: (M, in) rows, (B, H) terms shared by groups of N = M / B rows."""
    if num_samples == 1 or per_context.shape[0] == 1:
        return torch.addmm(per_context, inputs, input_weight.t())
    hidden = F.linear(inputs, input_weight).view(per_context.shape[0], num_samples, -1)
    return (hidden + per_context.unsqueeze(1)).view(inputs.shape[0], -1)


def _affine_relu(x: Tensor, scale: Tensor | None, shift: Tensor | None) -> Tensor:
    """relu(scale·x + shift) (relu(x) when there is no batch norm)."""
    if scale is None:
        return F.relu(x)
    return torch.addcmul(shift, x, scale).relu_()


def _batch_norm_affine(bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
    """Eval-mode batch norm as y = scale·x + shift (float64 arithmetic, cast back)."""
    var = bn.running_var.double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    dtype = bn.running_mean.dtype
    return scale.to(dtype), shift.to(dtype)


class _BlockPlan(NamedTuple):
    scale0: Tensor | None  # BN_0 as an affine map (None without batch norm)
    shift0: Tensor | None
    weight0: Tensor  # Linear_0 with BN_1 folded in
    bias0: Tensor
    weight1: Tensor  # Linear_1
    bias1: Tensor


class _ConditionerPlan(NamedTuple):
    key: tuple
    input_weight: Tensor  # (H, in): the identity features' columns of initial_layer
    context_weight: Tensor  # (H, C)
    input_bias: Tensor  # (H,)
    blocks: tuple[_BlockPlan, ...]
    final_weight: Tensor
    final_bias: Tensor


def _plan_hidden(
    plan: _ConditionerPlan,
    inputs: Tensor,
    per_context: Tensor,
    num_samples: int,
    saved: list | None = None,
) -> Tensor:
    """A conditioner plan up to its last residual block, from the context term W_c·c + b.

    (M, in) inputs and (B, H) terms shared by groups of N = M / B rows -> (M, H), the final
    layer's input. Each block's two ReLU outputs are appended to `saved` when it is a list (a
    written-out backward needs them).
    """
    hidden = _with_context_term(inputs, plan.input_weight, per_context, num_samples)
    for block in plan.blocks:
        t1 = _affine_relu(hidden, block.scale0, block.shift0)
        t2 = _linear_relu(t1, block.weight0, block.bias0)
        hidden = _linear_residual(t2, hidden, block.weight1, block.bias1)
        if saved is not None:
            saved.append((t1, t2))
    return hidden


def _state_key(tensors: list[Tensor]) -> tuple:
    """Identity, storage and version of the tensors a cache was built from (cache validity).

    A new tensor object (assignment, `.to()`), new storage or an in-place change (optimiser
    step, `load_state_dict`, batch-norm statistics) changes the key. Inference-mode tensors
    cannot enter autograd graphs later, so the mode is part of the key too.
    """
    versions = tuple((id(t), t.data_ptr(), t._version) for t in tensors)
    return (versions, torch.is_inference_mode_enabled())


class ResidualBlock(nn.Module):
    """Pre-activation residual block of the fork (no context inside the block).

    t = BN_0(h) → ReLU → Linear_0 → BN_1 → ReLU → Dropout(p) → Linear_1; returns h + t.
    Linear_1 is initialised uniform(±1e-3). Batch norm: eps 1e-5, momentum 0.1, affine.

    Args:
        features: H, width.
        dropout_probability: p of the dropout before Linear_1.
        use_batch_norm: whether the two BatchNorm1d layers exist (`batch_norm_layers`).
    """

    def __init__(self, features: int, *, dropout_probability: float, use_batch_norm: bool) -> None:
        super().__init__()
        self.use_batch_norm = use_batch_norm
        if use_batch_norm:
            self.batch_norm_layers = nn.ModuleList(
                [nn.BatchNorm1d(features, eps=1e-5) for _ in range(2)]
            )
        self.linear_layers = nn.ModuleList([nn.Linear(features, features) for _ in range(2)])
        self.dropout = nn.Dropout(p=dropout_probability)
        nn.init.uniform_(self.linear_layers[1].weight, -1e-3, 1e-3)
        nn.init.uniform_(self.linear_layers[1].bias, -1e-3, 1e-3)

    def forward(self, inputs: Tensor) -> Tensor:
        """(M, H) -> (M, H)."""
        t = self.batch_norm_layers[0](inputs) if self.use_batch_norm else inputs
        t = self.linear_layers[0](F.relu(t))
        if self.use_batch_norm:
            t = self.batch_norm_layers[1](t)
        t = self.linear_layers[1](self.dropout(F.relu(t)))
        return inputs + t


class ResidualConditioner(nn.Module):
    """The fork's ResidualNet: the coupling network g(x_I, c) (docs/model.md#conditioner).

    h = initial_layer([x_I, c]) (identity features first, context second; context enters only
    here) → `num_blocks` ResidualBlocks → final_layer (uniform(±0.01/√H) init, no activation).

    Args:
        in_features: identity features of the coupling (D/2).
        out_features: parameters produced for the transformed features (D/2 additive, D affine).
        hidden_features: H.
        context_features: C.
        num_blocks: residual blocks (ProHMR: 2).
        dropout_probability: dropout inside each block (ProHMR: 0.5).
        use_batch_norm: batch norm inside each block (ProHMR: True).

    Inference plan: in eval mode, when no gradient with respect to the parameters is recorded
    (grad disabled, or all parameters frozen) and `use_inference_plan` is True (the default),
    forward runs a cached plan: each batch norm is the affine map of its running statistics,
    BN_1 is folded into Linear_0, dropout (identity in eval) is skipped, and on CPU float32,
    when no input needs a gradient, Linear_0 + ReLU and Linear_1 + residual are each one oneDNN
    call. With inputs that need gradients (fitting latents) the plan runs on differentiable ops.
    Outputs equal the plain path up to float rounding. Precomputed context terms
    (`SharedContext.terms`) are used only by the plan, and only while the parameters they were
    computed from are unchanged.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden_features: int,
        context_features: int,
        num_blocks: int,
        dropout_probability: float,
        use_batch_norm: bool,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.context_features = context_features
        self.initial_layer = nn.Linear(in_features + context_features, hidden_features)
        self.blocks = nn.ModuleList(
            [
                ResidualBlock(
                    hidden_features,
                    dropout_probability=dropout_probability,
                    use_batch_norm=use_batch_norm,
                )
                for _ in range(num_blocks)
            ]
        )
        self.final_layer = nn.Linear(hidden_features, out_features)
        self.use_inference_plan = True
        self._plan: _ConditionerPlan | None = None
        bound = 0.01 / hidden_features**0.5
        nn.init.uniform_(self.final_layer.weight, -bound, bound)
        nn.init.uniform_(self.final_layer.bias, -bound, bound)

    def context_term(self, context: Tensor) -> Tensor:
        """(B, C) -> (B, H): the context's contribution to the input layer, W_c·c + b."""
        weight = self.initial_layer.weight[:, self.in_features :]
        return F.linear(context, weight, self.initial_layer.bias)

    def input_layer(self, inputs: Tensor, context: ContextLike) -> Tensor:
        """initial_layer([x_I, c]): (M, in), (M, C) or SharedContext((B, C), N) -> (M, H)."""
        if isinstance(context, SharedContext):
            input_weight = self.initial_layer.weight[:, : self.in_features]
            per_context = self.context_term(context.context)
            return _with_context_term(inputs, input_weight, per_context, context.num_samples)
        return self.initial_layer(torch.cat((inputs, context), dim=1))

    def forward(self, inputs: Tensor, context: ContextLike) -> Tensor:
        """(M, in) and context (M, C) or SharedContext -> (M, out)."""
        plan = self._usable_plan()
        if plan is not None:
            return self._forward_plan(plan, inputs, context)
        hidden = self.input_layer(inputs, context)
        for block in self.blocks:
            hidden = block(hidden)
        return self.final_layer(hidden)

    # -- inference plan ------------------------------------------------------------------------

    def _usable_plan(self) -> _ConditionerPlan | None:
        """The cached inference plan, (re)built if stale; None when it must not be used.

        Used in eval mode when no gradient with respect to the parameters is recorded (grad
        disabled, or every parameter frozen), and `use_inference_plan` is True. Keyed on every
        parameter's and buffer's storage and version, so optimiser steps, `load_state_dict` and
        `.to()` invalidate it; `train()` clears it.
        """
        if self.training or not self.use_inference_plan:
            return None
        tensors = self._plan_tensors()
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return None
        return self._plan_for(_state_key(tensors))

    def _plan_for(self, key: tuple) -> _ConditionerPlan:
        """The cached plan if it was built for `key` (from `state_key`), else a new one."""
        plan = self._plan
        if plan is None or plan.key != key:
            plan = self._build_plan(key)
            self._plan = plan
        return plan

    def _plan_tensors(self) -> list[Tensor]:
        """Every parameter and buffer the plan is built from (walked directly: this runs on
        every call, and `parameters()` is slow for small batches)."""
        modules: list[nn.Module] = [self.initial_layer, self.final_layer]
        for block in self.blocks:
            modules.extend(block.linear_layers)
            if block.use_batch_norm:
                modules.extend(block.batch_norm_layers)
        tensors = []
        for module in modules:
            tensors.extend(t for t in module._parameters.values() if t is not None)
            tensors.extend(t for t in module._buffers.values() if t is not None)
        return tensors

    def state_key(self) -> tuple:
        """Key of the parameters' current state (what `PreparedContext` terms are valid for)."""
        return _state_key(self._plan_tensors())

    @torch.no_grad()
    def _build_plan(self, key: tuple) -> _ConditionerPlan:
        blocks = []
        for block in self.blocks:
            linear0, linear1 = block.linear_layers
            weight0, bias0 = linear0.weight, linear0.bias
            scale0 = shift0 = None
            if block.use_batch_norm:
                scale0, shift0 = _batch_norm_affine(block.batch_norm_layers[0])
                scale1, shift1 = _batch_norm_affine(block.batch_norm_layers[1])
                weight0 = scale1[:, None] * weight0
                bias0 = scale1 * bias0 + shift1
            blocks.append(
                _BlockPlan(
                    scale0,
                    shift0,
                    weight0.contiguous(),
                    bias0.contiguous(),
                    linear1.weight.contiguous(),
                    linear1.bias.contiguous(),
                )
            )
        weight = self.initial_layer.weight
        return _ConditionerPlan(
            key=key,
            input_weight=weight[:, : self.in_features].contiguous(),
            context_weight=weight[:, self.in_features :].contiguous(),
            input_bias=self.initial_layer.bias.contiguous(),
            blocks=tuple(blocks),
            final_weight=self.final_layer.weight.contiguous(),
            final_bias=self.final_layer.bias.contiguous(),
        )

    def _forward_plan(self, plan: _ConditionerPlan, inputs: Tensor, context: ContextLike) -> Tensor:
        hidden = self._hidden_plan(plan, inputs, context)
        return F.linear(hidden, plan.final_weight, plan.final_bias)

    def _hidden_plan(self, plan: _ConditionerPlan, inputs: Tensor, context: ContextLike) -> Tensor:
        """The plan up to the last residual block: (M, H), the final layer's input."""
        num_samples = 1
        if isinstance(context, SharedContext):
            entry = None if context.terms is None else context.terms.get(self)
            num_samples = context.num_samples
            context = context.context
            if entry is not None and entry[0] == plan.key:
                per_context = entry[1]
            else:
                per_context = F.linear(context, plan.context_weight, plan.input_bias)
        else:
            per_context = F.linear(context, plan.context_weight, plan.input_bias)
        return _plan_hidden(plan, inputs, per_context, num_samples)

    def train(self, mode: bool = True) -> ResidualConditioner:
        self._plan = None
        return super().train(mode)

    def _apply(self, fn: Callable, *args: object, **kwargs: object) -> ResidualConditioner:
        self._plan = None
        return super()._apply(fn, *args, **kwargs)
