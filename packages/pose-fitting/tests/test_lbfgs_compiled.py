"""Compiled fitting core: the L-BFGS bookkeeping (`LBFGSOptions(compile=True)`) and the objective
(`minimize(compile_objective=...)`) through torch.compile, same numbers, clear errors."""

import os
import subprocess
import sys

import pytest
import torch

from pose_fitting import LBFGSOptions, StoppingRules, _compile, compile_function, minimize
from pose_fitting._lbfgs import LBFGSState, _begin_inputs, _kernels, _search_start
from pose_fitting.testing import cxx_compiler

F64 = torch.float64
B, N = 3, 2  # one shape for every compiled test below: compiled once per test session

needs_compiler = pytest.mark.skipif(
    cxx_compiler() is None,
    reason="torch.compile on CPU needs a C++ compiler (none found: install g++ or set CXX)",
)


def rosenbrock(params):
    x = params["x"]
    return (1 - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2


STARTS = torch.tensor([[-1.2, 1.0], [0.5, -0.3], [2.0, 2.0]], dtype=F64)


def _state_with_history(generator: torch.Generator) -> LBFGSState:
    x = torch.randn(B, N, dtype=F64, generator=generator)
    state = LBFGSState.initial(x, x.square().sum(-1), 2 * x, history_size=4)
    state.d = torch.randn(B, N, dtype=F64, generator=generator)
    state.t = torch.rand(B, dtype=F64, generator=generator)
    state.g_prev = state.g - 0.5 * state.d  # yᵀs > 0: the pairs enter the history
    state.has_previous = torch.tensor([True, False, True])
    return state


def _begin(kernels, state: LBFGSState, active: torch.Tensor, select_always: bool):
    return kernels.iteration_begin(
        *_begin_inputs(state),
        active,
        torch.zeros(B, dtype=torch.long),
        learning_rate=1.0,
        change_tolerance=1e-9,
        select_always=select_always,
    )


def test_the_branch_free_history_push_gives_the_same_bits():
    # The compiled steps always select per item (no data-dependent branch); eager, the push
    # skips the selections when every item updates. Both must give identical fields.
    state = _state_with_history(torch.Generator().manual_seed(0))
    state.has_previous = torch.ones(B, dtype=torch.bool)
    active = torch.ones(B, dtype=torch.bool)
    eager = _kernels(False)
    shortcut = _begin(eager, state, active, select_always=False)
    selected = _begin(eager, state, active, select_always=True)
    for name, a, b in zip(shortcut._fields, shortcut, selected, strict=True):
        assert torch.equal(a, b), name


@needs_compiler
def test_compiled_steps_equal_the_eager_steps():
    generator = torch.Generator().manual_seed(1)
    state = _state_with_history(generator)
    active = torch.tensor([True, True, False])
    eager, compiled = _kernels(False), _kernels(True)
    expected = _begin(eager, state, active, select_always=False)
    got = _begin(compiled, state, active, select_always=True)
    for name, a, b in zip(expected._fields, expected, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=name)
    assert int(expected.history_count.sum()) > 0  # a pair entered: the push was exercised

    # One line-search round per phase: bracketing items, then (after a failed Armijo test)
    # zooming ones.
    f0 = torch.rand(B, dtype=F64, generator=generator)
    g0 = torch.randn(B, N, dtype=F64, generator=generator)
    d = -g0
    gtd0 = (g0 * d).sum(-1)
    search = {k: _search_start(torch.ones(B, dtype=F64), f0, g0, gtd0, active) for k in "ec"}
    phases = []
    for f_new in (f0 + 1.0, f0 - 0.01):
        g_new = torch.randn(B, N, dtype=F64, generator=generator)
        for key, kernels in (("e", eager), ("c", compiled)):
            search[key] = kernels.search_round(
                search[key],
                f_new,
                g_new,
                d,
                f0,
                gtd0,
                d.abs().amax(-1),
                tolerance_change=1e-9,
                max_evaluations=25,
            )
        for name, a, b in zip(search["e"]._fields, search["e"], search["c"], strict=True):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12, msg=name)
        phases.append(search["e"].phase.tolist())
    # Armijo failed in round 1: the active items zoomed in round 2 and accepted or stopped.
    assert phases == [[1, 1, 2], [2, 2, 2]]


@needs_compiler
def test_compiled_lbfgs_fits_like_the_eager_one():
    stopping = StoppingRules(max_iterations=30)
    eager = minimize(rosenbrock, {"x": STARTS}, stopping=stopping)
    compiled = minimize(
        rosenbrock, {"x": STARTS}, stopping=stopping, lbfgs=LBFGSOptions(compile=True)
    )
    torch.testing.assert_close(compiled.params["x"], eager.params["x"], atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled.params["x"], torch.ones_like(STARTS), atol=1e-4, rtol=0)
    assert compiled.report.reasons == eager.report.reasons
    # Float rounding may move a line search by an evaluation here and there, not more.
    diff = (compiled.report.function_evaluations - eager.report.function_evaluations).abs()
    assert int(diff.max()) <= 0.1 * int(eager.report.function_evaluations.max())


def test_a_compiler_failure_names_the_option(tmp_path):
    # A fresh process whose inductor cache is empty and whose C++ compiler does not exist.
    code = (
        "import torch\n"
        "import torch._inductor.config as config\n"
        "config.cpp.cxx = ('/nonexistent/g++',)\n"
        "from pose_fitting import LBFGSOptions, minimize\n"
        "x = torch.tensor([[1.0, 2.0], [0.5, -1.0]])\n"
        "minimize(lambda p: (p['x'] ** 2).sum(-1), {'x': x}, lbfgs=LBFGSOptions(compile=True))\n"
    )
    env = {**os.environ, "CXX": "/nonexistent/g++", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: LBFGSOptions(compile=True): torch.compile could not")
    assert "C++ compiler" in last and "leave LBFGSOptions(compile=True) off" in last


def test_errors_of_the_function_itself_pass_through_unchanged():
    def needs_two_columns(x):
        if x.shape[-1] != 2:
            raise ValueError(f"`x` must have 2 columns, got {x.shape[-1]}")
        return x * 2

    wrapped = compile_function(needs_two_columns, option="test(compile=True)")
    with pytest.raises(ValueError, match="2 columns, got 3"):
        wrapped(torch.zeros(1, 3))


@needs_compiler
@pytest.mark.parametrize("mode", ["whole", "pieces"])
def test_a_compiled_objective_fits_like_the_eager_one(mode):
    stopping = StoppingRules(max_iterations=30)
    eager = minimize(rosenbrock, {"x": STARTS}, stopping=stopping)
    compiled = minimize(rosenbrock, {"x": STARTS}, stopping=stopping, compile_objective=mode)
    torch.testing.assert_close(compiled.params["x"], eager.params["x"], atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled.report.initial_loss, eager.report.initial_loss)
    assert compiled.report.reasons == eager.report.reasons
    calls = (compiled.report.objective_calls, eager.report.objective_calls)
    assert abs(calls[0] - calls[1]) <= 0.1 * calls[1], calls


@needs_compiler
def test_checks_kept_out_of_the_trace_run_in_the_first_evaluation():
    eager_calls = [0]

    def objective(params):
        if not torch.compiler.is_compiling():  # a Python-side check, as the tools' decoder has
            eager_calls[0] += 1
        return rosenbrock(params)

    stopping = StoppingRules(max_iterations=3)
    result = minimize(objective, {"x": STARTS}, stopping=stopping, compile_objective="whole")
    assert eager_calls[0] == 1 < result.report.objective_calls
    eager_calls[0] = 0
    result = minimize(objective, {"x": STARTS}, stopping=stopping)
    assert eager_calls[0] == result.report.objective_calls


@needs_compiler
def test_an_objective_that_does_not_trace_whole_is_refused_with_the_alternative():
    scales = [1.0, 0.5]

    def branchy(params):  # a Python index from a tensor's value: a graph break
        x = params["x"]
        return scales[int((x[:, 0] > 10).any())] * rosenbrock(params)

    stopping = StoppingRules(max_iterations=2)
    with pytest.raises(RuntimeError, match=r"as one graph.*compile_objective='pieces'"):
        minimize(branchy, {"x": STARTS}, stopping=stopping, compile_objective="whole")
    pieces = minimize(branchy, {"x": STARTS}, stopping=stopping, compile_objective="pieces")
    eager = minimize(branchy, {"x": STARTS}, stopping=stopping)
    torch.testing.assert_close(pieces.params["x"], eager.params["x"], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="compile_objective"):
        minimize(rosenbrock, {"x": STARTS}, compile_objective="all")  # type: ignore[arg-type]


@needs_compiler
def test_too_many_compiled_versions_say_so(monkeypatch):
    monkeypatch.setattr(_compile, "RECOMPILE_LIMIT", 1)

    def double(x):
        return 2 * x

    wrapped = compile_function(double, option="test(compile=True)", fullgraph=True)
    wrapped(torch.zeros(2))
    with pytest.raises(RuntimeError, match=r"made 1 compiled versions of double.*batch size"):
        wrapped(torch.zeros(3))
