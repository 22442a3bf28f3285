"""Private: batched L-BFGS with a strong-Wolfe line search whose state is kept per item.

Every item b of a batch has its own parameter vector x_b, its own curvature history, its own step
length and its own line search. The objective is evaluated for the whole batch at once (one call
per line-search round), but every decision (accept a step, shrink or grow it, stop) is taken per
item from that item's numbers only, so an item follows exactly the path it would follow alone.
Written from Nocedal & Wright, "Numerical Optimization" (2nd ed.), Algorithms 3.5/3.6 (strong
Wolfe line search with cubic interpolation) and the compact form of the L-BFGS matrix (eq. 7.24,
Byrd, Nocedal & Schnabel 1994; it equals the two-loop recursion of Algorithm 7.4); the step and
stopping settings mirror `torch.optim.LBFGS` (initial step min(1, 1/‖g‖₁)·lr on an item's first
iteration, curvature pairs kept when yᵀs > 1e-10, tolerance_grad / tolerance_change tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

Evaluate = Callable[[Tensor], tuple[Tensor, Tensor]]
"""x (B, n) -> (f (B,), g (B, n)); non-finite values allowed (they are rejected per item)."""

_SUFFICIENT_DECREASE = 1e-4  # c1 of the Wolfe conditions
_CURVATURE = 0.9  # c2 of the strong Wolfe conditions
_MIN_CURVATURE = 1e-10  # a pair (s, y) enters the history only if yᵀs exceeds this


def _where(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """torch.where with a (B,) mask broadcast over the trailing dimensions of `a` and `b`."""
    return torch.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)


def cubic_minimizer(
    x1: Tensor,
    f1: Tensor,
    g1: Tensor,
    x2: Tensor,
    f2: Tensor,
    g2: Tensor,
    lower: Tensor,
    upper: Tensor,
) -> Tensor:
    """Minimiser of the cubic through (x1, f1, f'=g1), (x2, f2, f'=g2), clamped to [lower, upper].

    Nocedal & Wright eq. (3.59). Where the cubic has no minimiser (or the numbers are not finite)
    the midpoint of [lower, upper] is returned. All arguments are (B,) tensors.
    """
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_sq = d1 * d1 - g1 * g2
    d2 = torch.sign(x2 - x1) * d2_sq.clamp_min(0).sqrt()
    t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    ok = (d2_sq >= 0) & torch.isfinite(t)
    t = torch.minimum(torch.maximum(t, lower), upper)
    return torch.where(ok, t, 0.5 * (lower + upper))


class _Point(NamedTuple):
    """A point of a line search, per item: step, value, directional derivative, gradient."""

    t: Tensor
    f: Tensor
    gtd: Tensor
    g: Tensor


def _pick(mask: Tensor, a: _Point, b: _Point) -> _Point:
    """Per item, `a` where `mask` holds, else `b`."""
    return _Point(*(_where(mask, u, v) for u, v in zip(a, b, strict=True)))


def strong_wolfe(
    evaluate: Evaluate,
    x: Tensor,
    t: Tensor,
    d: Tensor,
    f0: Tensor,
    g0: Tensor,
    gtd0: Tensor,
    active: Tensor,
    *,
    tolerance_change: float,
    max_evaluations: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-item strong-Wolfe line search along `d` from `x`.

    Every round evaluates the trial points of all searching items at once, then takes each
    item's decision (accept, bracket, zoom, extrapolate, stop) from its own numbers.

    Args:
        evaluate: the batched objective (see `Evaluate`).
        x: (B, n) current points; d: (B, n) descent directions; t: (B,) first trial steps.
        f0, g0, gtd0: (B,), (B, n), (B,) value, gradient and directional derivative at `x`.
        active: (B,) bool, the items that search; the others keep step 0.

    Returns:
        (t, f, g, num_evaluations): (B,) accepted steps (0 for inactive items or when nothing
        better was found), (B,) values and (B, n) gradients at x + t·d, (B,) evaluation counts.
    """
    zero = torch.zeros_like(f0)
    phase = torch.where(active, 0, 2)  # 0 bracketing, 1 zoom, 2 done
    t = torch.where(active, t, zero)
    n_evals = torch.zeros_like(active, dtype=torch.long)
    # prev: the last point of the bracketing phase; lo, hi: the bracket; out: the result.
    prev = lo = hi = out = _Point(zero, f0, gtd0, g0)
    d_scale = d.abs().amax(dim=-1)
    while True:
        running = phase < 2
        if not bool(running.any()):
            break
        f_new, g_new = evaluate(x + torch.where(running, t, zero).unsqueeze(-1) * d)
        # A point with a non-finite gradient is treated like a non-finite value: never accepted.
        finite_g = torch.isfinite(g_new).all(dim=-1)
        f_new = torch.where(finite_g, f_new, torch.full_like(f_new, torch.nan))
        new = _Point(t, f_new, (g_new * d).sum(dim=-1), g_new)
        n_evals = n_evals + running.long()

        # Conditions, written so that NaN values fail them (NaN compares False).
        armijo = new.f <= f0 + _SUFFICIENT_DECREASE * t * gtd0
        curvature = new.gtd.abs() <= -_CURVATURE * gtd0
        exhausted = n_evals >= max_evaluations
        bracketing = running & (phase == 0)
        zooming = running & (phase == 1)

        # Bracketing phase (Algorithm 3.5).
        b_hi_new = bracketing & (~armijo | ((n_evals > 1) & ~(new.f < prev.f)))
        b_accept = bracketing & ~b_hi_new & curvature
        b_lo_new = bracketing & ~b_hi_new & ~b_accept & (new.gtd >= 0)
        b_extrapolate = bracketing & ~b_hi_new & ~b_accept & ~b_lo_new
        ext_done = b_extrapolate & exhausted  # keeps its (Armijo-satisfying) point
        ext_go = b_extrapolate & ~exhausted

        # Zoom phase (Algorithm 3.6).
        z_hi_new = zooming & (~armijo | ~(new.f < lo.f))
        z_accept = zooming & ~z_hi_new & curvature
        z_lo_new = zooming & ~z_hi_new & ~z_accept
        z_flip = z_lo_new & (new.gtd * (hi.t - lo.t) >= 0)

        # Next extrapolation step from the old `prev` and the new point.
        ext_t = cubic_minimizer(
            prev.t, prev.f, prev.gtd, t, new.f, new.gtd, t + 0.01 * (t - prev.t), 10 * t
        )

        # New bracket ends (hi first: it reads the old lo and prev), result and phase.
        hi = _pick(z_flip, lo, _pick(b_lo_new, prev, _pick(b_hi_new | z_hi_new, new, hi)))
        lo = _pick(b_hi_new, prev, _pick(b_lo_new | z_lo_new, new, lo))
        finished = b_accept | z_accept | ext_done
        out = _pick(finished, new, out)
        phase = torch.where(finished, 2, torch.where(b_hi_new | b_lo_new, 1, phase))
        prev = _pick(ext_go, new, prev)

        # Zooming items: stop on exhaustion or a bracket too small to matter, keeping `lo`.
        in_zoom = running & (phase == 1)
        too_small = (hi.t - lo.t).abs() * d_scale < tolerance_change
        zoom_done = in_zoom & (exhausted | too_small)
        out = _pick(zoom_done, lo, out)
        phase = torch.where(zoom_done, 2, phase)
        zoom_go = in_zoom & ~zoom_done
        low, high = torch.minimum(lo.t, hi.t), torch.maximum(lo.t, hi.t)
        margin = 0.1 * (high - low)
        zoom_t = cubic_minimizer(*lo[:3], *hi[:3], low + margin, high - margin)

        t = torch.where(ext_go, ext_t, torch.where(zoom_go, zoom_t, t))
    return out.t, out.f, out.g, n_evals


@dataclass
class LBFGSState:
    """Mutable per-item L-BFGS state (all tensors have the batch B first).

    The m history slots of an item hold its curvature pairs oldest first, the valid ones in the
    last `history_count` slots; the slots before them are zero. `sy` and `yy` keep the inner
    products of the pairs (sy[i, j] = sᵢᵀyⱼ, yy[i, j] = yᵢᵀyⱼ), updated as pairs enter, for the
    compact form of the inverse-Hessian product (`_direction`).
    """

    x: Tensor  # (B, n)
    f: Tensor  # (B,)
    g: Tensor  # (B, n)
    s_history: Tensor  # (B, m, n), most recent last
    y_history: Tensor  # (B, m, n)
    sy: Tensor  # (B, m, m)
    yy: Tensor  # (B, m, m)
    history_count: Tensor  # (B,) long, valid pairs are the last `count` slots
    h_diag: Tensor  # (B,) initial inverse-Hessian scale
    d: Tensor  # (B, n) last direction
    t: Tensor  # (B,) last step length
    g_prev: Tensor  # (B, n) gradient at the start of the last iteration
    has_previous: Tensor  # (B,) bool: a last iteration exists
    num_iterations: Tensor  # (B,) long: inner iterations done so far (all steps)

    @classmethod
    def initial(cls, x: Tensor, f: Tensor, g: Tensor, history_size: int) -> LBFGSState:
        B, n = x.shape
        m = history_size
        return cls(
            x=x,
            f=f,
            g=g,
            s_history=x.new_zeros(B, m, n),
            y_history=x.new_zeros(B, m, n),
            sy=x.new_zeros(B, m, m),
            yy=x.new_zeros(B, m, m),
            history_count=torch.zeros(B, dtype=torch.long, device=x.device),
            h_diag=x.new_ones(B),
            d=torch.zeros_like(x),
            t=x.new_zeros(B),
            g_prev=torch.zeros_like(g),
            has_previous=torch.zeros(B, dtype=torch.bool, device=x.device),
            num_iterations=torch.zeros(B, dtype=torch.long, device=x.device),
        )


def _rows_dot(a: Tensor, b: Tensor) -> Tensor:
    """Σ over the last dimension of a·b, one row at a time.

    Written as a product and a sum (not a batched matrix product) so that every item's numbers
    are computed the same way whatever the batch: fitting items together equals fitting each
    alone, bit for bit.
    """
    return (a * b).sum(dim=-1)


def _push_history(state: LBFGSState, update: Tensor, s: Tensor, y: Tensor, ys: Tensor) -> None:
    """Append (s, y) to the histories of the items in `update` (dropping the oldest)."""
    m = state.s_history.shape[1]
    if m == 0:
        return
    rolled_s = torch.cat([state.s_history[:, 1:], s.unsqueeze(1)], dim=1)
    rolled_y = torch.cat([state.y_history[:, 1:], y.unsqueeze(1)], dim=1)
    # New last row and column of the inner-product matrices (the rest moves up-left by one).
    s_dot_y = _rows_dot(rolled_y, s.unsqueeze(1))  # (B, m): sᵀyⱼ, last entry sᵀy
    old_s_dot_y = _rows_dot(rolled_s[:, :-1], y.unsqueeze(1))  # (B, m-1): sᵢᵀy
    y_dot_y = _rows_dot(rolled_y, y.unsqueeze(1))  # (B, m): yᵀyⱼ
    sy, yy = state.sy, state.yy
    rolled_sy = torch.cat(
        [torch.cat([sy[:, 1:, 1:], old_s_dot_y.unsqueeze(-1)], dim=2), s_dot_y.unsqueeze(1)],
        dim=1,
    )
    rolled_yy = torch.cat(
        [torch.cat([yy[:, 1:, 1:], y_dot_y[:, :-1, None]], dim=2), y_dot_y.unsqueeze(1)],
        dim=1,
    )
    state.s_history = _where(update, rolled_s, state.s_history)
    state.y_history = _where(update, rolled_y, state.y_history)
    state.sy = _where(update, rolled_sy, sy)
    state.yy = _where(update, rolled_yy, yy)
    state.history_count = torch.where(
        update, (state.history_count + 1).clamp_max(m), state.history_count
    )
    last_yy = torch.where(update, y_dot_y[:, -1], torch.ones_like(ys))
    state.h_diag = torch.where(update, ys / last_yy, state.h_diag)


def _direction(state: LBFGSState) -> Tensor:
    """d = -H·g per item, H the L-BFGS inverse-Hessian approximation of the item's history.

    Uses the compact representation (Byrd, Nocedal & Schnabel 1994, eq. 2.6; Nocedal & Wright
    eq. 7.24 for H): with S, Y the pairs as rows, R the upper triangle of SYᵀ, D its diagonal and
    γ = `h_diag`,

        H·g = γ·g + Sᵀu − γ·Yᵀa,   a = R⁻¹·(S·g),   u = R⁻ᵀ·(D·a + γ·(YYᵀ·a − Y·g)),

    the same H as the two-loop recursion (Nocedal & Wright Alg. 7.4), in a fixed number of
    tensor operations instead of two passes over up to m pairs. Empty slots (before an item's
    first pairs) are zero rows; their diagonal entry of R is set to 1, which makes their
    coefficients exactly 0.
    """
    g, S, Y = state.g, state.s_history, state.y_history
    gamma = state.h_diag.unsqueeze(-1)
    if S.shape[1] == 0:
        return -(gamma * g)
    s_g = _rows_dot(S, g.unsqueeze(1))  # (B, m)
    y_g = _rows_dot(Y, g.unsqueeze(1))
    diag = torch.diagonal(state.sy, dim1=-2, dim2=-1)
    r = torch.triu(state.sy) + torch.diag_embed((diag == 0).to(diag.dtype))
    a = torch.linalg.solve_triangular(r, s_g.unsqueeze(-1), upper=True).squeeze(-1)
    rhs = diag * a + gamma * (_rows_dot(state.yy, a.unsqueeze(1)) - y_g)
    u = torch.linalg.solve_triangular(r.mT, rhs.unsqueeze(-1), upper=False).squeeze(-1)
    hg = gamma * g + (S * u.unsqueeze(-1)).sum(dim=1) - gamma * (Y * a.unsqueeze(-1)).sum(dim=1)
    return -hg


def lbfgs_iteration(
    state: LBFGSState,
    evaluate: Evaluate,
    stepping: Tensor,
    *,
    learning_rate: float,
    max_inner_iterations: int,
    max_function_evaluations: int,
    gradient_tolerance: float,
    change_tolerance: float,
    max_line_search_evaluations: int,
) -> Tensor:
    """One outer iteration (= one `torch.optim.LBFGS.step`) for the items in `stepping`.

    Runs up to `max_inner_iterations` L-BFGS iterations per item, each with a strong-Wolfe line
    search, and updates `state` in place. Items outside `stepping` do not move.

    Returns:
        (B,) long: objective evaluations spent per item.
    """
    evals = torch.zeros_like(stepping, dtype=torch.long)
    inner = torch.zeros_like(evals)
    active = stepping & ~(state.g.abs().amax(dim=-1) <= gradient_tolerance)
    while bool(active.any()):
        inner = inner + active.long()
        state.num_iterations = state.num_iterations + active.long()
        # Curvature pair from the previous iteration of this item.
        y = state.g - state.g_prev
        s = state.d * state.t.unsqueeze(-1)
        ys = (y * s).sum(dim=-1)
        _push_history(state, active & state.has_previous & (ys > _MIN_CURVATURE), s, y, ys)
        d = _direction(state)
        first_step = torch.clamp(1.0 / state.g.abs().sum(dim=-1), max=1.0) * learning_rate
        t0 = torch.where(
            state.num_iterations == 1, first_step, torch.full_like(first_step, learning_rate)
        )
        gtd = (state.g * d).sum(dim=-1)
        descent = gtd <= -change_tolerance  # False for NaN: no line search along a bad direction
        state.d = _where(active, d, state.d)
        state.t = torch.where(active & ~descent, torch.zeros_like(state.t), state.t)
        state.g_prev = _where(active, state.g, state.g_prev)
        state.has_previous = state.has_previous | active
        active = active & descent
        if not bool(active.any()):
            break

        t, f_new, g_new, n_ls = strong_wolfe(
            evaluate,
            state.x,
            t0,
            d,
            state.f,
            state.g,
            gtd,
            active,
            tolerance_change=change_tolerance,
            max_evaluations=max_line_search_evaluations,
        )
        f_old = state.f
        state.t = torch.where(active, t, state.t)
        state.x = _where(active, state.x + t.unsqueeze(-1) * d, state.x)
        state.f = torch.where(active, f_new, state.f)
        state.g = _where(active, g_new, state.g)
        evals = evals + torch.where(active, n_ls, torch.zeros_like(n_ls))
        done = (
            (inner >= max_inner_iterations)
            | (evals >= max_function_evaluations)
            | (state.g.abs().amax(dim=-1) <= gradient_tolerance)
            | ((d * t.unsqueeze(-1)).abs().amax(dim=-1) <= change_tolerance)
            | ((state.f - f_old).abs() < change_tolerance)
        )
        active = active & ~done
    return evals
