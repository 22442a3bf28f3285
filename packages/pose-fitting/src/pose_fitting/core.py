"""The generic batched fitting core: per-item L-BFGS or Adam with ProHMR's stopping rules.

`minimize` optimises named parameter tensors, each (B, ...), against an objective that returns one
loss per item, (B,). Items are independent: every item keeps its own optimiser state (L-BFGS
history, step length and strong-Wolfe line search; Adam moments), its own stopping decision and
its own report. Fitting a batch therefore equals fitting each item alone (up to floating-point
round-off of batched kernels), provided the objective is *item-separable*: the loss of item b
depends on the parameters of item b only (true for a flow in eval mode, a body model, a camera
projection; false for anything that mixes the batch, e.g. BatchNorm in training mode).

How independence is achieved: the objective is evaluated for the whole batch at once and
differentiated through its sum, which gives every item the gradient of its own loss. The
optimiser never forms a batch-wide quantity: directions, step lengths, line-search brackets,
curvature pairs and the stopping tests are (B,)-shaped and decided per item. An item that has
stopped keeps its parameters while the others go on; the batch is evaluated until the last item
stops. Because the items' line searches are not in step, a batch can need more batched objective
calls than any of its items alone.

Stopping rules (ProHMR `optimization_task.py`, docs/fitting.md#stopping-rules), checked per
item after every outer iteration (for L-BFGS one outer iteration is one
`torch.optim.LBFGS.step`, i.e. up to `max_inner_iterations` inner iterations; for Adam it is one
Adam update):

- ``loss_increased``: the loss went up (ProHMR stops because the relative change is negative).
- ``relative_change``: ``(prev - cur) / max(|prev|, |cur|, 1) < ftol``.
- ``gradient``: for every parameter, the gradient statistic is below ``gtol``; the statistic is
  ``max |g|`` by default, or ProHMR's ``|max g|`` with ``gradient_rule="abs_of_max"``.
- ``max_iterations``: `max_iterations` outer iterations were done.
- ``non_finite_loss``: the loss or its gradient is NaN/inf at the start (or, for Adam, after an
  update); the item is left at its last finite point.

One deliberate difference from the original: ProHMR compares the losses returned by
consecutive ``LBFGS.step`` calls, which are the losses at the *start* of each step, so it notices
a stall one step late; here the loss before and after each outer iteration are compared (the
first test happens after the first iteration). The result can therefore stop one iteration
earlier than the original, never later.
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from pose_fitting._checks import check_finite
from pose_fitting._lbfgs import LBFGSState, lbfgs_iteration

__all__ = [
    "CONVERGED_REASONS",
    "AdamOptions",
    "FitReport",
    "LBFGSOptions",
    "MinimizeResult",
    "StoppingRules",
    "minimize",
    "relative_change",
]

#: Stop reasons that count as converged; every other reason gives ``converged = False``.
CONVERGED_REASONS: tuple[str, ...] = ("relative_change", "gradient")

Objective = Callable[[dict[str, Tensor]], Tensor]


@dataclass(frozen=True)
class LBFGSOptions:
    """Settings of the per-item L-BFGS; the defaults are ProHMR's (torch.optim.LBFGS defaults).

    Attributes:
        learning_rate: step length tried first (after an item's first iteration). ProHMR: 1.0.
        max_inner_iterations: L-BFGS iterations per outer iteration (torch's ``max_iter``): 20.
        max_function_evaluations: objective evaluations per outer iteration (torch's
            ``max_eval``); None means ``max_inner_iterations * 5 // 4`` (torch's default).
        history_size: curvature pairs kept per item: 100.
        gradient_tolerance: inner stop when ``max |g| <= this`` (torch's ``tolerance_grad``).
        change_tolerance: inner stop when the step or the loss change is below this (torch's
            ``tolerance_change``); also ends a line search whose bracket is this small.
        max_line_search_evaluations: evaluations per strong-Wolfe line search: 25.
    """

    learning_rate: float = 1.0
    max_inner_iterations: int = 20
    max_function_evaluations: int | None = None
    history_size: int = 100
    gradient_tolerance: float = 1e-7
    change_tolerance: float = 1e-9
    max_line_search_evaluations: int = 25

    def __post_init__(self) -> None:
        _positive("learning_rate", self.learning_rate)
        _positive_int("max_inner_iterations", self.max_inner_iterations)
        if self.max_function_evaluations is not None:
            _positive_int("max_function_evaluations", self.max_function_evaluations)
        _positive_int("history_size", self.history_size, allow_zero=True)
        _positive_int("max_line_search_evaluations", self.max_line_search_evaluations)

    @property
    def resolved_max_function_evaluations(self) -> int:
        """`max_function_evaluations`, with None replaced by torch's default."""
        if self.max_function_evaluations is None:
            return self.max_inner_iterations * 5 // 4
        return self.max_function_evaluations


@dataclass(frozen=True)
class AdamOptions:
    """Settings of the per-item Adam (Kingma & Ba 2015); one outer iteration = one update.

    Attributes:
        learning_rate: step size (SPIN's SMPLify: 1e-2).
        betas: decay rates of the first and second moment estimates.
        eps: added to the root of the second moment.
    """

    learning_rate: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _positive("learning_rate", self.learning_rate)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"`betas` must be two numbers in [0, 1), got {self.betas!r}")
        _positive("eps", self.eps)


@dataclass(frozen=True)
class StoppingRules:
    """Per-item stopping rules (docs/fitting.md#stopping-rules); defaults: ProHMR's eval settings.

    Attributes:
        max_iterations: outer iterations at most (ProHMR eval scripts: 30; class default 10).
        relative_tolerance: ``ftol``; stop when the relative loss change is below it. None
            disables the rule. ProHMR: 1e-9.
        gradient_tolerance: ``gtol``; stop when every parameter's gradient statistic is below
            it. None disables the rule. ProHMR: 1e-9.
        stop_on_increase: stop when the loss increased during an iteration (ProHMR does, as a
            side effect of a negative relative change). With False an increase only continues.
        gradient_rule: ``"max_abs"`` (``max |g|``, the intended test, default) or
            ``"abs_of_max"`` (``|max g|``, ProHMR's code: a gradient whose entries are all
            negative passes when its largest entry is near 0;
            docs/original-quirks.md#gradient-stopping-test).
    """

    max_iterations: int = 30
    relative_tolerance: float | None = 1e-9
    gradient_tolerance: float | None = 1e-9
    stop_on_increase: bool = True
    gradient_rule: Literal["max_abs", "abs_of_max"] = "max_abs"

    def __post_init__(self) -> None:
        _positive_int("max_iterations", self.max_iterations, allow_zero=True)
        if self.gradient_rule not in ("max_abs", "abs_of_max"):
            raise ValueError(
                f"unknown gradient_rule {self.gradient_rule!r}; expected 'max_abs' or 'abs_of_max'"
            )


@dataclass(frozen=True)
class FitReport:
    """What happened to every item of a batch.

    Attributes:
        converged: (B,) bool, True when the item stopped by a rule in `CONVERGED_REASONS`.
        reasons: B strings, why each item stopped: ``"relative_change"``, ``"gradient"``,
            ``"loss_increased"``, ``"max_iterations"``, ``"non_finite_loss"``, or the reason
            the caller gave for not optimising it (e.g. too few confident keypoints).
        optimized: (B,) bool, False for items that were not optimised (returned unchanged):
            skipped by the caller, or with a non-finite initial loss or gradient.
        iterations: (B,) long, outer iterations done.
        function_evaluations: (B,) long, objective evaluations spent on the item (the initial
            one included).
        initial_loss: (B,) loss at the initial parameters.
        final_loss: (B,) loss at the returned parameters.
        objective_calls: calls of the objective on the whole batch (the initial one
            included): what a fit costs. At least the largest `function_evaluations`; more
            when the items' line searches are not in step.
    """

    converged: Tensor
    reasons: tuple[str, ...]
    optimized: Tensor
    iterations: Tensor
    function_evaluations: Tensor
    initial_loss: Tensor
    final_loss: Tensor
    objective_calls: int = 0

    def summary(self) -> dict[str, int]:
        """Count of items per stop reason, e.g. ``{"relative_change": 3, "max_iterations": 1}``."""
        counts: dict[str, int] = {}
        for reason in self.reasons:
            counts[reason] = counts.get(reason, 0) + 1
        return counts


@dataclass(frozen=True)
class MinimizeResult:
    """Result of `minimize`.

    Attributes:
        params: the optimised parameters, same names, shapes, dtype and device as the initial
            ones (detached).
        loss: (B,) per-item loss at `params` (detached).
        report: the per-item `FitReport`.
    """

    params: Mapping[str, Tensor] = field(repr=False)
    loss: Tensor
    report: FitReport


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}")


def _positive_int(name: str, value: int, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"`{name}` must be {kind} integer, got {value!r}")


def relative_change(previous: Tensor, current: Tensor) -> Tensor:
    """ProHMR's relative loss change ``(prev - cur) / max(|prev|, |cur|, 1)``.

    Positive when the loss decreased, negative when it increased.

    Args:
        previous: (...) losses before an iteration.
        current: (...) losses after it.

    Returns:
        (...) relative changes.
    """
    scale = torch.maximum(torch.maximum(previous.abs(), current.abs()), torch.ones_like(current))
    return (previous - current) / scale


class _Packer:
    """Flattens named (B, ...) tensors into one (B, n) vector per item and back."""

    def __init__(self, initial: Mapping[str, Tensor]) -> None:
        if not isinstance(initial, Mapping) or len(initial) == 0:
            raise ValueError("`initial` must be a non-empty mapping of name -> (B, ...) tensor")
        first_name = next(iter(initial))
        first = initial[first_name]
        self.names: list[str] = []
        self.shapes: list[tuple[int, ...]] = []
        self.sizes: list[int] = []
        for name, value in initial.items():
            if not isinstance(name, str):
                raise TypeError(f"`initial` keys must be strings, got {type(name).__name__}")
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"`initial[{name!r}]` must be a torch.Tensor, got {type(value).__name__}"
                )
            if not torch.is_floating_point(value):
                raise TypeError(
                    f"`initial[{name!r}]` must be a floating-point tensor, got dtype {value.dtype}"
                )
            if value.ndim < 1:
                raise ValueError(f"`initial[{name!r}]` must have shape (B, ...), got ()")
            if value.shape[0] != first.shape[0]:
                raise ValueError(
                    f"every tensor in `initial` must have the same batch size B; "
                    f"`initial[{first_name!r}]` has {first.shape[0]}, `initial[{name!r}]` has "
                    f"{value.shape[0]}"
                )
            if value.dtype != first.dtype or value.device != first.device:
                raise ValueError(
                    f"every tensor in `initial` must have the same dtype and device; "
                    f"`initial[{first_name!r}]` is {first.dtype} on {first.device}, "
                    f"`initial[{name!r}]` is {value.dtype} on {value.device}"
                )
            if value.shape[0] == 0:
                raise ValueError(
                    f"`initial[{name!r}]` must hold at least one item (B >= 1), got shape "
                    f"{tuple(value.shape)}; skip the call for an empty batch"
                )
            if value.dtype not in (torch.float32, torch.float64):
                raise TypeError(
                    f"`initial[{name!r}]` must be float32 or float64 (the fit runs in its "
                    f"dtype), got {value.dtype}"
                )
            check_finite(f"initial[{name!r}]", value)
            self.names.append(name)
            self.shapes.append(tuple(value.shape[1:]))
            self.sizes.append(int(math.prod(value.shape[1:])))
        self.batch_size = int(first.shape[0])

    def pack(self, params: Mapping[str, Tensor]) -> Tensor:
        parts = [params[n].detach().reshape(self.batch_size, -1) for n in self.names]
        return torch.cat(parts, dim=1).clone()

    def unpack(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name, part, shape in zip(
            self.names, torch.split(x, self.sizes, dim=1), self.shapes, strict=True
        ):
            out[name] = part.reshape(self.batch_size, *shape)
        return out

    def gradient_statistic(self, g: Tensor, rule: str) -> Tensor:
        """(B, num_params): per item and parameter, max|g| or |max g|."""
        stats = []
        for part in torch.split(g, self.sizes, dim=1):
            if part.shape[1] == 0:
                stats.append(g.new_zeros(g.shape[0]))
            elif rule == "abs_of_max":
                stats.append(part.amax(dim=1).abs())
            else:
                stats.append(part.abs().amax(dim=1))
        return torch.stack(stats, dim=1)


def _objective_value(objective: Objective, packer: _Packer, x: Tensor) -> Tensor:
    return objective(packer.unpack(x))


@functools.cache
def _compiled_objective_value() -> Callable[[Objective, _Packer, Tensor], Tensor]:
    """`_objective_value` through ``torch.compile`` (graph breaks allowed), made once per process
    so that torch's cache of compiled code serves every later fit."""
    return torch.compile(_objective_value)


def _compile_error(error: BaseException, x: Tensor) -> RuntimeError:
    """RuntimeError for a torch.compile failure: the option and the compiler's own error; a
    missing C++ compiler is named only when none of torch's candidates is on PATH."""
    from torch._inductor import config

    cause = error
    while (inner := getattr(cause, "inner_exception", None) or cause.__cause__) is not None:
        cause = inner
    lines = str(cause).strip().splitlines()
    message = (
        "compile=True: torch.compile could not compile the fitting objective "
        f"({type(cause).__name__}: {lines[0] if lines else 'no message'})"
    )
    cxx = config.cpp.cxx if isinstance(config.cpp.cxx, (list, tuple)) else (config.cpp.cxx,)
    candidates = [name for name in cxx if name]  # $CXX or g++ unless changed
    if x.device.type == "cpu" and not any(shutil.which(name) for name in candidates):
        message += (
            f"; torch.compile on CPU needs a C++ compiler and none of {candidates} is on PATH "
            "(set CXX to one)"
        )
    return RuntimeError(message + "; set compile=False to fit eagerly")


def _make_evaluate(
    objective: Objective, packer: _Packer, calls: list[int], compile: bool = False
) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    """x (B, n) -> (loss (B,), gradient (B, n)), counting the calls in ``calls[0]``.

    With `compile`, the objective runs through ``torch.compile``; autograd differentiates the
    compiled code (whose backward torch compiles too).
    """
    batch = packer.batch_size
    forward = _compiled_objective_value() if compile else _objective_value

    def evaluate_compiled(x: Tensor) -> tuple[Tensor, Tensor]:
        try:
            return evaluate(x)
        except Exception as error:
            if type(error).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise _compile_error(error, x) from error
            raise

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor]:
        calls[0] += 1
        leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = forward(objective, packer, leaf)
            if not isinstance(loss, Tensor):
                raise TypeError(
                    f"`objective` must return a torch.Tensor of per-item losses (B,) = ({batch},), "
                    f"got {type(loss).__name__}"
                )
            if tuple(loss.shape) != (batch,):
                raise ValueError(
                    f"`objective` must return per-item losses of shape (B,) = ({batch},), "
                    f"got {tuple(loss.shape)}"
                )
            if loss.requires_grad:
                (grad,) = torch.autograd.grad(loss.sum(), leaf, allow_unused=True)
            else:
                grad = None
        if grad is None:
            grad = torch.zeros_like(leaf)
        return loss.detach().to(x.dtype), grad.detach()

    return evaluate_compiled if compile else evaluate


def minimize(
    objective: Objective,
    initial: Mapping[str, Tensor],
    *,
    method: Literal["lbfgs", "adam"] = "lbfgs",
    stopping: StoppingRules | None = None,
    lbfgs: LBFGSOptions | None = None,
    adam: AdamOptions | None = None,
    skip_reasons: Sequence[str | None] | None = None,
    compile: bool = False,
) -> MinimizeResult:
    """Minimise a per-item objective over a batch, every item independently.

    Args:
        objective: maps a dict of parameters (the names of `initial`, each (B, ...)) to the
            per-item losses (B,). It must be item-separable (see the module docstring) and
            differentiable; it is called under ``torch.enable_grad()``.
        initial: name -> (B, ...) initial values; all floating point, same B, dtype and device,
            finite. They are not modified.
        method: ``"lbfgs"`` (per-item L-BFGS with strong-Wolfe line search, `lbfgs` options) or
            ``"adam"`` (per-item Adam, `adam` options).
        stopping: the per-item stopping rules; default `StoppingRules()`.
        lbfgs: L-BFGS settings; default `LBFGSOptions()`.
        adam: Adam settings; default `AdamOptions()`.
        skip_reasons: optional B entries; an item whose entry is a string is not optimised and
            reports that string as its reason (``optimized = False``).
        compile: evaluate the objective through ``torch.compile`` (default settings: graph
            breaks allowed) after a first eager evaluation, which runs the objective's checks
            as written; autograd differentiates the compiled code. Compiled once per process
            and kind of input (on CPU a C++ compiler is needed); the same values up to float
            rounding. Not in the original.

    Returns:
        `MinimizeResult` with the optimised parameters, the per-item losses and the report.

    Raises:
        TypeError: if `initial` holds a non-tensor, a tensor that is not float32/float64
            (L-BFGS in half precision loses its curvature pairs to round-off), or the
            objective does not return a tensor.
        ValueError: for inconsistent batch sizes, dtypes or devices, an empty batch (B = 0;
            skip the call instead), NaN/inf initial values, a wrong objective output shape,
            bad option values or a wrong `skip_reasons` length.
        RuntimeError: when called inside ``torch.inference_mode()`` (autograd is needed), or
            when `compile` is set and torch.compile fails (the message gives the compiler's
            error).
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "minimize needs autograd: call it outside torch.inference_mode() "
            "(torch.no_grad() around it is fine)"
        )
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"unknown method {method!r}; expected 'lbfgs' or 'adam'")
    stopping = StoppingRules() if stopping is None else stopping
    lbfgs = LBFGSOptions() if lbfgs is None else lbfgs
    adam = AdamOptions() if adam is None else adam
    packer = _Packer(initial)
    B = packer.batch_size
    x0 = packer.pack(initial)
    device = x0.device

    reasons: list[str | None] = [None] * B
    optimized = torch.ones(B, dtype=torch.bool, device=device)
    if skip_reasons is not None:
        if len(skip_reasons) != B:
            raise ValueError(
                f"`skip_reasons` must have one entry per item (B = {B}), got {len(skip_reasons)}"
            )
        for b, reason in enumerate(skip_reasons):
            if reason is not None:
                reasons[b] = str(reason)
                optimized[b] = False

    calls = [0]
    # The first evaluation is eager: the objective's output checks, and any Python-side checks
    # of its own (which a compiled trace would leave out), run once per fit as written.
    f, g = _make_evaluate(objective, packer, calls)(x0)
    evaluate = _make_evaluate(objective, packer, calls, compile)
    initial_loss = f.clone()
    evaluations = torch.ones(B, dtype=torch.long, device=device)
    iterations = torch.zeros(B, dtype=torch.long, device=device)
    finite = torch.isfinite(f) & torch.isfinite(g).all(dim=-1)
    for b in torch.nonzero(optimized & ~finite).flatten().tolist():
        reasons[b] = "non_finite_loss"
    optimized = optimized & finite
    done = ~optimized

    x = x0
    lbfgs_state = LBFGSState.initial(x, f, g, lbfgs.history_size) if method == "lbfgs" else None
    adam_m = torch.zeros_like(x)
    adam_v = torch.zeros_like(x)
    adam_steps = torch.zeros(B, dtype=torch.long, device=device)

    for _ in range(stopping.max_iterations):
        stepping = ~done
        if not bool(stepping.any()):
            break
        f_before = f.clone()
        if lbfgs_state is not None:
            spent = lbfgs_iteration(
                lbfgs_state,
                evaluate,
                stepping,
                learning_rate=lbfgs.learning_rate,
                max_inner_iterations=lbfgs.max_inner_iterations,
                max_function_evaluations=lbfgs.resolved_max_function_evaluations,
                gradient_tolerance=lbfgs.gradient_tolerance,
                change_tolerance=lbfgs.change_tolerance,
                max_line_search_evaluations=lbfgs.max_line_search_evaluations,
            )
            x, f, g = lbfgs_state.x, lbfgs_state.f, lbfgs_state.g
            evaluations = evaluations + spent
            bad = torch.zeros_like(stepping)
        else:
            adam_steps = adam_steps + stepping.long()
            beta1, beta2 = adam.betas
            m_new = beta1 * adam_m + (1 - beta1) * g
            v_new = beta2 * adam_v + (1 - beta2) * g * g
            steps = adam_steps.clamp_min(1).to(x.dtype).unsqueeze(-1)
            m_hat = m_new / (1 - beta1**steps)
            v_hat = v_new / (1 - beta2**steps)
            x_new = x - adam.learning_rate * m_hat / (v_hat.sqrt() + adam.eps)
            col = stepping.unsqueeze(-1)
            adam_m = torch.where(col, m_new, adam_m)
            adam_v = torch.where(col, v_new, adam_v)
            x_try = torch.where(col, x_new, x)
            f_try, g_try = evaluate(x_try)
            evaluations = evaluations + stepping.long()
            good = torch.isfinite(f_try) & torch.isfinite(g_try).all(dim=-1)
            bad = stepping & ~good
            accept = (stepping & good).unsqueeze(-1)
            x = torch.where(accept, x_try, x)
            f = torch.where(accept.squeeze(-1), f_try, f)
            g = torch.where(accept, g_try, g)
        iterations = iterations + stepping.long()

        change = relative_change(f_before, f)
        increased = stepping & ~bad & (change < 0)
        stop_increase = increased if stopping.stop_on_increase else torch.zeros_like(increased)
        if stopping.relative_tolerance is not None:
            stop_relative = stepping & ~bad & ~increased & (change < stopping.relative_tolerance)
        else:
            stop_relative = torch.zeros_like(stepping)
        if stopping.gradient_tolerance is not None:
            stats = packer.gradient_statistic(g, stopping.gradient_rule)
            stop_gradient = stepping & ~bad & (stats < stopping.gradient_tolerance).all(dim=1)
        else:
            stop_gradient = torch.zeros_like(stepping)
        labelled = (
            (bad, "non_finite_loss"),
            (stop_increase, "loss_increased"),
            (stop_relative, "relative_change"),
            (stop_gradient, "gradient"),
        )
        newly = torch.zeros_like(stepping)
        for mask, label in labelled:
            for b in torch.nonzero(mask & ~newly).flatten().tolist():
                reasons[b] = label
            newly = newly | mask
        done = done | newly

    for b in range(B):
        if reasons[b] is None:
            reasons[b] = "max_iterations"
    final_reasons = tuple(r if r is not None else "max_iterations" for r in reasons)
    converged = torch.tensor(
        [r in CONVERGED_REASONS for r in final_reasons], dtype=torch.bool, device=device
    )
    report = FitReport(
        converged=converged,
        reasons=final_reasons,
        optimized=optimized,
        iterations=iterations,
        function_evaluations=evaluations,
        initial_loss=initial_loss,
        final_loss=f.clone(),
        objective_calls=calls[0],
    )
    params = {name: value.detach().clone() for name, value in packer.unpack(x).items()}
    return MinimizeResult(params=params, loss=f.clone(), report=report)
