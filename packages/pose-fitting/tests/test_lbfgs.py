"""The private batched L-BFGS pieces: cubic interpolation and the strong-Wolfe line search."""

import torch

from pose_fitting._lbfgs import (
    LBFGSState,
    _direction,
    _push_history,
    cubic_minimizer,
    strong_wolfe,
)

F64 = torch.float64


def _t(*values):
    return torch.tensor(values, dtype=F64)


def test_cubic_minimizer_is_exact_for_cubics_and_quadratics():
    # f(t) = (t - 0.3)^2 (quadratic) and f(t) = t^3 - 3 t (minimum at t = 1), per item.
    def quad(t):
        return (t - 0.3) ** 2, 2 * (t - 0.3)

    def cubic(t):
        return t**3 - 3 * t, 3 * t**2 - 3

    x1, x2 = _t(0.0, 0.0), _t(1.0, 2.0)
    (fa1, ga1), (fa2, ga2) = quad(x1[:1]), quad(x2[:1])
    (fb1, gb1), (fb2, gb2) = cubic(x1[1:]), cubic(x2[1:])
    out = cubic_minimizer(
        x1,
        torch.cat([fa1, fb1]),
        torch.cat([ga1, gb1]),
        x2,
        torch.cat([fa2, fb2]),
        torch.cat([ga2, gb2]),
        _t(-10.0, -10.0),
        _t(10.0, 10.0),
    )
    torch.testing.assert_close(out, _t(0.3, 1.0))


def test_cubic_minimizer_clamps_and_falls_back_to_the_midpoint():
    # Concave data (no minimiser): midpoint of the bounds.
    out = cubic_minimizer(_t(0.0), _t(0.0), _t(1.0), _t(1.0), _t(0.0), _t(-1.0), _t(2.0), _t(4.0))
    torch.testing.assert_close(out, _t(3.0))
    # Minimiser at 0.3 clamped into [0.5, 0.9].
    out = cubic_minimizer(_t(0.0), _t(0.09), _t(-0.6), _t(1.0), _t(0.49), _t(1.4), _t(0.5), _t(0.9))
    torch.testing.assert_close(out, _t(0.5))


def test_strong_wolfe_accepts_points_satisfying_both_conditions_per_item():
    # Per-item 1-D functions along d = 1 from x = 0: different curvature per item.
    scales = _t(0.1, 1.0, 50.0)

    def evaluate(x):
        f = scales * (x[:, 0] - 1.0) ** 2 + 0.1 * x[:, 0] ** 4
        g = (2 * scales * (x[:, 0] - 1.0) + 0.4 * x[:, 0] ** 3).unsqueeze(-1)
        return f, g

    x = torch.zeros(3, 1, dtype=F64)
    d = torch.ones(3, 1, dtype=F64)
    f0, g0 = evaluate(x)
    gtd0 = (g0 * d).sum(-1)
    active = torch.tensor([True, True, True])
    t, f, g, n = strong_wolfe(
        evaluate, x, torch.ones(3, dtype=F64), d, f0, g0, gtd0, active,
        tolerance_change=1e-9, max_evaluations=25,
    )  # fmt: skip
    assert (f <= f0 + 1e-4 * t * gtd0).all()  # sufficient decrease
    assert ((g * d).sum(-1).abs() <= -0.9 * gtd0).all()  # strong curvature
    torch.testing.assert_close(evaluate(x + t[:, None] * d)[0], f)
    assert (n >= 1).all()


def test_strong_wolfe_leaves_inactive_items_at_step_zero():
    def evaluate(x):
        return (x**2).sum(-1), 2 * x

    x = torch.ones(2, 2, dtype=F64)
    d = -x
    f0, g0 = evaluate(x)
    gtd0 = (g0 * d).sum(-1)
    t, f, _, n = strong_wolfe(
        evaluate, x, torch.ones(2, dtype=F64), d, f0, g0, gtd0, torch.tensor([True, False]),
        tolerance_change=1e-9, max_evaluations=25,
    )  # fmt: skip
    assert t[1] == 0 and n[1] == 0 and f[1] == f0[1]
    assert t[0] > 0 and f[0] < f0[0]


def _two_loop_direction(pairs, g, gamma):
    """Reference: Nocedal & Wright Alg. 7.4 for one item, pairs oldest first."""
    q = -g.clone()
    alphas = []
    for s, y in reversed(pairs):
        alpha = (s @ q) / (y @ s)
        q = q - alpha * y
        alphas.append(alpha)
    r = gamma * q
    for (s, y), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = (y @ r) / (y @ s)
        r = r + s * (alpha - beta)
    return r


def test_compact_direction_equals_the_two_loop_recursion_per_item():
    # Items with 0, 1, 3 and more pairs than the history keeps (the oldest are dropped); the
    # pairs come from per-item convex quadratics, pushed through the state's update path.
    generator = torch.Generator().manual_seed(3)
    n, m = 6, 4
    counts = [0, 1, 3, 7]
    B = len(counts)
    a = torch.randn(B, n, n, generator=generator, dtype=F64)
    hessians = a @ a.mT / n + torch.eye(n, dtype=F64)
    state = LBFGSState.initial(
        torch.zeros(B, n, dtype=F64), torch.zeros(B, dtype=F64), torch.zeros(B, n, dtype=F64), m
    )
    kept = [[] for _ in range(B)]
    for step in range(max(counts)):
        s = torch.randn(B, n, generator=generator, dtype=F64)
        y = torch.einsum("bij,bj->bi", hessians, s)
        update = torch.tensor([step < c for c in counts])
        _push_history(state, update, s, y, (s * y).sum(-1))
        for b in range(B):
            if step < counts[b]:
                kept[b] = (kept[b] + [(s[b], y[b])])[-m:]
    assert state.history_count.tolist() == [min(c, m) for c in counts]
    state.g = torch.randn(B, n, generator=generator, dtype=F64)
    d = _direction(state)
    for b in range(B):
        y_last = kept[b][-1][1] if kept[b] else None
        gamma = 1.0 if y_last is None else (kept[b][-1][0] @ y_last) / (y_last @ y_last)
        torch.testing.assert_close(state.h_diag[b], torch.as_tensor(gamma, dtype=F64))
        expected = _two_loop_direction(kept[b], state.g[b], gamma)
        torch.testing.assert_close(d[b], expected, rtol=1e-10, atol=1e-12)
    # Each item's direction is computed the same way alone as in the batch, bit for bit.
    for b in range(B):
        alone = LBFGSState.initial(state.x[b : b + 1], state.f[b : b + 1], state.g[b : b + 1], m)
        alone.s_history, alone.y_history = state.s_history[b : b + 1], state.y_history[b : b + 1]
        alone.sy, alone.yy = state.sy[b : b + 1], state.yy[b : b + 1]
        alone.h_diag = state.h_diag[b : b + 1]
        assert torch.equal(_direction(alone)[0], d[b])
