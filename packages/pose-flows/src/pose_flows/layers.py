"""The building blocks of ConditionalGlow: nflows transforms plus the fork's conditioner.

See docs/model.md#conditional-glow.

- `ActNorm`: nflows' ActNorm with the fork's data-dependent initialisation (std floored at 1e-3)
  and a clear error for batches too small to initialise from.
- `LULinear`: nflows' LULinear with device/dtype-safe index buffers, `linalg.solve_triangular`
  inverse, and nflows' eval-mode cache of W = L·U, W⁻¹ and log|det W|: filled at the first
  eval-mode use, dropped by `train()`, `load_state_dict` and moving the module (`.to()`).
- `ResidualConditioner` / `ResidualBlock`: the coupling network of the authors' nflows fork:
  context concatenated at the input layer only, pre-activation residual blocks with optional
  batch norm (eps 1e-5) and dropout, last block Linear initialised uniform(±1e-3), final layer
  uniform(±0.01/√H). Parameter names follow the original (`initial_layer`,
  `blocks.{i}.batch_norm_layers.{0,1}`, `blocks.{i}.linear_layers.{0,1}`, `final_layer`).
- `SharedContext`: passed through nflows' transforms in place of a (B·N, C) context when N
  samples share each of B contexts; the conditioner then computes the context's contribution to
  its input layer once per context: W·[x; c] + b = W_x·x + (W_c·c + b).

Shapes: M rows (M = B·N when a context is shared), D features, C context features, H hidden.
"""

from __future__ import annotations

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
    """

    context: Tensor
    num_samples: int


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
    weight: Tensor
    inverse: Tensor
    logabsdet: Tensor
    inference_mode: bool  # built under torch.inference_mode (unusable for autograd later)


class LULinear(_NflowsLULinear):
    """nflows' LULinear (W = L·U, identity init, diag(U) = softplus + 1e-3), cached in eval mode.

    Same parameters as nflows (`bias`, `lower_entries`, `upper_entries`,
    `unconstrained_upper_diag`); strictly-lower/upper entries fill L/U in row-major order of the
    (i > j) / (i < j) index pairs. The index tensors are non-persistent buffers, so they follow
    the module's device and never enter the state dict.

    Cache (nflows' rule): in eval mode, when no gradient with respect to the LU parameters is
    being recorded (grad disabled, or those parameters frozen), W, W⁻¹ (computed in float64,
    then cast) and log|det W| are computed once and reused; `forward` is then one matmul and
    `inverse` one matmul instead of two triangular solves. `train()`, `load_state_dict` and
    `.to()` drop it, and so does any call that records gradients to the parameters (an
    optimiser step in eval mode is preceded by such a call). After editing the parameters in
    place by hand in eval mode, call `train()`/`eval()` (or `clear_cache()`).
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

    def clear_cache(self) -> None:
        """Drop the cached W, W⁻¹ and log|det W| (recomputed at the next eval-mode use)."""
        self._lu_cache = None

    def _usable_cache(self) -> _LUCache | None:
        """The eval-mode cache, filled if empty; None (and dropped) when it must not be used."""
        if self.training:
            return None
        if torch.is_grad_enabled() and (
            self.lower_entries.requires_grad
            or self.upper_entries.requires_grad
            or self.unconstrained_upper_diag.requires_grad
        ):
            self._lu_cache = None  # gradients must reach the parameters; they may change next
            return None
        # (compiled code, which cannot query the mode, never runs in inference mode)
        inference_mode = not torch.compiler.is_compiling() and torch.is_inference_mode_enabled()
        cache = self._lu_cache
        if cache is None or cache.inference_mode != inference_mode:
            with torch.no_grad():
                lower, upper = self._create_lower_upper()
                eye = torch.eye(self.features, dtype=torch.float64, device=lower.device)
                lower_inv = torch.linalg.solve_triangular(
                    lower.double(), eye, upper=False, unitriangular=True
                )
                inverse = torch.linalg.solve_triangular(upper.double(), lower_inv, upper=True)
                cache = _LUCache(
                    lower @ upper, inverse.to(lower.dtype), self.logabsdet(), inference_mode
                )
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

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        self._lu_cache = None
        super()._load_from_state_dict(*args, **kwargs)


def _with_context_term(
    inputs: Tensor, input_weight: Tensor, per_context: Tensor, num_samples: int
) -> Tensor:
    """x_I·W_xᵀ + term: (M, in) rows, (B, H) terms shared by groups of N = M / B rows."""
    if num_samples == 1 or per_context.shape[0] == 1:
        return torch.addmm(per_context, inputs, input_weight.t())
    hidden = F.linear(inputs, input_weight).view(per_context.shape[0], num_samples, -1)
    return (hidden + per_context.unsqueeze(1)).view(inputs.shape[0], -1)


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

    Attributes:
        inference_dtype: None (default: the input's dtype), or a dtype (torch.bfloat16) that
            the network computes in under autocast in eval mode; its output comes back in the
            input's dtype. Training always computes in the input's dtype.
    """

    inference_dtype: torch.dtype | None = None

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
        if self.inference_dtype is None or self.training:
            return self._network(inputs, context)
        with torch.autocast(inputs.device.type, dtype=self.inference_dtype):
            return self._network(inputs, context).to(inputs.dtype)

    def _network(self, inputs: Tensor, context: ContextLike) -> Tensor:
        hidden = self.input_layer(inputs, context)
        for block in self.blocks:
            hidden = block(hidden)
        return self.final_layer(hidden)
