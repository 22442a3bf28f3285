"""The generic core: per-item L-BFGS/Adam, stopping rules, reports, batching, non-SMPL problems."""

import math

import pytest
import torch

from pose_fitting import (
    AdamOptions,
    LBFGSOptions,
    StoppingRules,
    minimize,
    relative_change,
)

F64 = torch.float64


def rosenbrock(params):
    x = params["x"]
    return (1 - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2


ROSEN_STARTS = torch.tensor([[-1.2, 1.0], [0.5, -0.3], [2.0, 2.0]], dtype=F64)


# ------------------------------------------------------------------------------------------
# Non-SMPL problems: the core is generic
# ------------------------------------------------------------------------------------------


def test_line_fitting_matches_least_squares_per_item():
    g = torch.Generator().manual_seed(3)
    B, N = 4, 20
    x = torch.rand(B, N, dtype=F64, generator=g) * 4 - 2
    slope = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=F64)
    offset = torch.tensor([1.0, 0.3, -0.7, 2.0], dtype=F64)
    y = slope[:, None] * x + offset[:, None] + 0.05 * torch.randn(B, N, dtype=F64, generator=g)

    def objective(p):
        a, b = p["line"][:, 0:1], p["line"][:, 1:2]
        return ((a * x + b - y) ** 2).sum(dim=1)

    result = minimize(objective, {"line": torch.zeros(B, 2, dtype=F64)})
    design = torch.stack([x, torch.ones_like(x)], dim=-1)  # (B, N, 2)
    expected = torch.linalg.lstsq(design, y.unsqueeze(-1)).solution.squeeze(-1)
    # torch's tolerance_change (1e-9 on the loss) ends the inner iterations near 1e-6 here.
    torch.testing.assert_close(result.params["line"], expected, atol=1e-5, rtol=0)
    assert result.report.converged.all()
    best = objective({"line": expected})
    assert (result.loss - best < 1e-9).all()


def two_link_arm(angles, lengths=(1.0, 0.7)):
    """Planar 2-link arm: (B, 2) joint angles -> (B, 2) end-effector position."""
    l1, l2 = lengths
    a1, a12 = angles[:, 0], angles[:, 0] + angles[:, 1]
    return torch.stack(
        [l1 * torch.cos(a1) + l2 * torch.cos(a12), l1 * torch.sin(a1) + l2 * torch.sin(a12)], -1
    )


def test_two_link_arm_inverse_kinematics_reaches_every_target():
    targets = torch.tensor([[1.2, 0.5], [-0.4, 1.1], [0.2, -1.3]], dtype=F64)

    def objective(p):
        return ((two_link_arm(p["angles"]) - targets) ** 2).sum(dim=-1)

    start = torch.tensor([[0.3, 0.3], [0.3, 0.3], [0.3, 0.3]], dtype=F64)
    result = minimize(objective, {"angles": start})
    reached = two_link_arm(result.params["angles"])
    torch.testing.assert_close(reached, targets, atol=1e-6, rtol=0)
    assert result.report.converged.all()
    assert (result.loss < 1e-10).all()


def test_rosenbrock_matches_torch_lbfgs_minimum():
    result = minimize(rosenbrock, {"x": ROSEN_STARTS})
    for b in range(ROSEN_STARTS.shape[0]):
        x = ROSEN_STARTS[b : b + 1].clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1, line_search_fn="strong_wolfe")

        def closure(x=x, opt=opt):
            opt.zero_grad()
            loss = rosenbrock({"x": x}).sum()
            loss.backward()
            return loss

        for _ in range(30):
            opt.step(closure)
        torch.testing.assert_close(result.params["x"][b], x.detach()[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(result.params["x"], torch.ones_like(ROSEN_STARTS), atol=1e-4, rtol=0)


def test_adam_minimises_a_quadratic_per_item():
    target = torch.tensor([[1.0, -2.0], [0.5, 0.5]], dtype=F64)

    def objective(p):
        return ((p["x"] - target) ** 2).sum(dim=-1)

    result = minimize(
        objective,
        {"x": torch.zeros(2, 2, dtype=F64)},
        method="adam",
        adam=AdamOptions(learning_rate=0.02),
        stopping=StoppingRules(
            max_iterations=1000, relative_tolerance=None, stop_on_increase=False
        ),
    )
    torch.testing.assert_close(result.params["x"], target, atol=1e-3, rtol=0)
    assert result.report.iterations.max() < 1000  # stopped early, on the gradient rule
    assert result.report.reasons == ("gradient", "gradient")


# ------------------------------------------------------------------------------------------
# Batching: fitting a batch equals fitting each item alone
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_batch_equals_each_item_alone_exactly(method):
    stopping = StoppingRules(max_iterations=15)
    together = minimize(rosenbrock, {"x": ROSEN_STARTS}, method=method, stopping=stopping)
    for b in range(ROSEN_STARTS.shape[0]):
        alone = minimize(
            rosenbrock, {"x": ROSEN_STARTS[b : b + 1]}, method=method, stopping=stopping
        )
        # Bitwise: the objective is batch-invariant, and no optimiser quantity mixes items.
        assert torch.equal(alone.params["x"][0], together.params["x"][b])
        assert alone.report.reasons[0] == together.report.reasons[b]
        assert alone.report.iterations[0] == together.report.iterations[b]
        assert alone.report.function_evaluations[0] == together.report.function_evaluations[b]


def test_items_stop_independently_and_report_their_own_numbers():
    # Item 0 starts at the minimum, item 1 far away: item 0 stops after one iteration.
    start = torch.tensor([[1.0, 1.0], [-1.2, 1.0]], dtype=F64)
    result = minimize(rosenbrock, {"x": start})
    report = result.report
    assert report.iterations[0] == 1
    assert report.iterations[1] > 1
    assert report.reasons[0] in ("relative_change", "gradient")
    assert report.converged.tolist() == [True, True]
    assert report.function_evaluations[1] > report.function_evaluations[0]
    assert torch.equal(result.params["x"][0], start[0])
    torch.testing.assert_close(report.final_loss, result.loss)
    torch.testing.assert_close(report.initial_loss, rosenbrock({"x": start}))
    assert report.summary() == {r: report.reasons.count(r) for r in set(report.reasons)}


def test_several_named_parameters_keep_their_shapes_and_the_input_is_untouched():
    init = {"a": torch.zeros(2, 3, 2, dtype=F64), "b": torch.ones(2, 1, dtype=F64)}
    before = {k: v.clone() for k, v in init.items()}

    def objective(p):
        return ((p["a"] - 2.0) ** 2).sum(dim=(1, 2)) + ((p["b"] + 1.0) ** 2).sum(dim=1)

    result = minimize(objective, init)
    assert result.params["a"].shape == (2, 3, 2)
    assert result.params["b"].shape == (2, 1)
    torch.testing.assert_close(result.params["a"], torch.full((2, 3, 2), 2.0, dtype=F64))
    torch.testing.assert_close(result.params["b"], torch.full((2, 1), -1.0, dtype=F64))
    for k in init:
        assert torch.equal(init[k], before[k])


# ------------------------------------------------------------------------------------------
# Stopping rules
# ------------------------------------------------------------------------------------------


def test_relative_change_by_hand():
    prev = torch.tensor([10.0, 0.5, 1.0, -4.0])
    cur = torch.tensor([9.0, 0.25, 2.0, -5.0])
    # (prev - cur) / max(|prev|, |cur|, 1)
    expected = torch.tensor([1.0 / 10.0, 0.25 / 1.0, -1.0 / 2.0, 1.0 / 5.0])
    torch.testing.assert_close(relative_change(prev, cur), expected)


def test_stops_on_relative_change():
    def objective(p):
        return ((p["x"] - 3.0) ** 2).sum(dim=-1) + 1.0

    # With the gradient rule on, a quadratic stops on the gradient first (next test); off, the
    # second iteration changes the loss by less than ftol.
    result = minimize(
        objective,
        {"x": torch.zeros(1, 2, dtype=F64)},
        stopping=StoppingRules(gradient_tolerance=None),
    )
    assert result.report.iterations.tolist() == [2]
    assert result.report.reasons == ("relative_change",)
    assert bool(result.report.converged[0])


def test_stops_on_gradient_when_the_relative_rule_is_off():
    def objective(p):
        return ((p["x"] - 3.0) ** 2).sum(dim=-1)

    result = minimize(
        objective,
        {"x": torch.zeros(1, 2, dtype=F64)},
        stopping=StoppingRules(relative_tolerance=None),
    )
    assert result.report.reasons == ("gradient",)
    assert bool(result.report.converged[0])


def test_stops_when_the_loss_increases():
    # Adam's first step is ~lr in every coordinate: from x = 1 with lr 10 it overshoots to -9.
    def objective(p):
        return (p["x"] ** 2).sum(dim=-1)

    start = {"x": torch.ones(1, 1, dtype=F64)}
    adam = AdamOptions(learning_rate=10.0)
    stopped = minimize(objective, start, method="adam", adam=adam)
    assert stopped.report.reasons == ("loss_increased",)
    assert stopped.report.iterations.tolist() == [1]
    assert not bool(stopped.report.converged[0])
    torch.testing.assert_close(stopped.params["x"], torch.full((1, 1), -9.0, dtype=F64))
    going = minimize(
        objective,
        start,
        method="adam",
        adam=adam,
        stopping=StoppingRules(max_iterations=5, stop_on_increase=False),
    )
    assert going.report.reasons == ("max_iterations",)
    assert going.report.iterations.tolist() == [5]


def test_stops_at_max_iterations():
    result = minimize(
        rosenbrock,
        {"x": ROSEN_STARTS[:1]},
        stopping=StoppingRules(max_iterations=2),
        lbfgs=LBFGSOptions(max_inner_iterations=1),
    )
    assert result.report.reasons == ("max_iterations",)
    assert result.report.iterations.tolist() == [2]
    assert not bool(result.report.converged[0])
    assert result.loss[0] < result.report.initial_loss[0]


def test_zero_max_iterations_returns_the_initial_values():
    result = minimize(rosenbrock, {"x": ROSEN_STARTS}, stopping=StoppingRules(max_iterations=0))
    assert torch.equal(result.params["x"], ROSEN_STARTS)
    assert result.report.reasons == ("max_iterations",) * 3


def test_gradient_rule_abs_of_max_reproduces_prohmr_quirk():
    # Gradient (-5, -1e-12) everywhere: |max g| = 1e-12 < gtol, but max |g| = 5.
    def objective(p):
        return -5.0 * p["x"][:, 0] - 1e-12 * p["x"][:, 1]

    start = {"x": torch.zeros(1, 2, dtype=F64)}
    common = {"method": "adam", "adam": AdamOptions(learning_rate=1e-3)}
    quirk = minimize(
        objective,
        start,
        stopping=StoppingRules(
            max_iterations=5, relative_tolerance=None, gradient_rule="abs_of_max"
        ),
        **common,
    )
    intended = minimize(
        objective,
        start,
        stopping=StoppingRules(max_iterations=5, relative_tolerance=None),
        **common,
    )
    assert quirk.report.reasons == ("gradient",)
    assert quirk.report.iterations.tolist() == [1]
    assert intended.report.reasons == ("max_iterations",)


def test_lbfgs_inner_iterations_are_bounded_per_outer_iteration():
    few = minimize(
        rosenbrock,
        {"x": ROSEN_STARTS[:1]},
        stopping=StoppingRules(max_iterations=1),
        lbfgs=LBFGSOptions(max_inner_iterations=2, max_line_search_evaluations=3),
    )
    # 1 initial evaluation + at most 2 iterations x 3 line-search evaluations.
    assert few.report.function_evaluations[0] <= 1 + 2 * 3


# ------------------------------------------------------------------------------------------
# Skipping, non-finite losses, errors
# ------------------------------------------------------------------------------------------


def test_skipped_items_are_returned_unchanged_with_their_reason():
    result = minimize(rosenbrock, {"x": ROSEN_STARTS}, skip_reasons=[None, "no data", None])
    assert torch.equal(result.params["x"][1], ROSEN_STARTS[1])
    assert result.report.reasons[1] == "no data"
    assert result.report.optimized.tolist() == [True, False, True]
    assert result.report.iterations[1] == 0
    assert not bool(result.report.converged[1])
    torch.testing.assert_close(
        result.params["x"][[0, 2]], torch.ones(2, 2, dtype=F64), atol=1e-4, rtol=0
    )


def test_items_with_a_non_finite_initial_loss_are_left_alone():
    def objective(p):
        return torch.sqrt(p["x"][:, 0]) + (p["x"][:, 1] - 1) ** 2

    start = torch.tensor([[-1.0, 0.0], [4.0, 0.0]], dtype=F64)
    result = minimize(objective, {"x": start}, stopping=StoppingRules(max_iterations=3))
    assert result.report.reasons[0] == "non_finite_loss"
    assert result.report.optimized.tolist() == [False, True]
    assert torch.equal(result.params["x"][0], start[0])
    assert result.loss[1] < result.report.initial_loss[1]


def test_rejects_nan_initial_values_naming_the_parameter():
    start = ROSEN_STARTS.clone()
    start[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"`initial\['x'\]` contains NaN \(batch items \[1\]\)"):
        minimize(rosenbrock, {"x": start})


def test_rejects_an_objective_that_does_not_return_per_item_losses():
    with pytest.raises(ValueError, match=r"per-item losses of shape \(B,\) = \(3,\), got \(\)"):
        minimize(lambda p: rosenbrock(p).sum(), {"x": ROSEN_STARTS})


def test_rejects_inconsistent_batches_and_types():
    with pytest.raises(ValueError, match="same batch size"):
        minimize(rosenbrock, {"x": ROSEN_STARTS, "y": torch.zeros(2, 1, dtype=F64)})
    with pytest.raises(ValueError, match="same dtype and device"):
        minimize(rosenbrock, {"x": ROSEN_STARTS, "y": torch.zeros(3, 1)})
    with pytest.raises(TypeError, match="floating-point"):
        minimize(rosenbrock, {"x": torch.zeros(3, 2, dtype=torch.long)})
    with pytest.raises(ValueError, match="unknown method 'sgd'"):
        minimize(rosenbrock, {"x": ROSEN_STARTS}, method="sgd")
    with pytest.raises(ValueError, match="one entry per item"):
        minimize(rosenbrock, {"x": ROSEN_STARTS}, skip_reasons=[None])
    with pytest.raises(ValueError, match="max_iterations"):
        StoppingRules(max_iterations=-1)
    with pytest.raises(ValueError, match="gradient_rule"):
        StoppingRules(gradient_rule="norm")


def test_refuses_inference_mode_but_works_under_no_grad():
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        minimize(rosenbrock, {"x": ROSEN_STARTS})
    with torch.no_grad():
        result = minimize(rosenbrock, {"x": ROSEN_STARTS})
    assert result.report.converged.all()


def test_float32_works():
    result = minimize(rosenbrock, {"x": ROSEN_STARTS.float()})
    assert result.params["x"].dtype == torch.float32
    torch.testing.assert_close(result.params["x"], torch.ones(3, 2), atol=2e-2, rtol=0)
