"""`minimize(compile=True)`: the objective through torch.compile gives the eager fit; its
failures name the option and the compiler's own error."""

import os
import subprocess
import sys

import pytest
import torch

from pose_fitting import StoppingRules, minimize
from pose_fitting.testing import cxx_compiler

F64 = torch.float64

needs_compiler = pytest.mark.skipif(
    cxx_compiler() is None or not hasattr(torch, "compile"),
    reason="torch.compile on CPU needs a C++ compiler (none found: install g++ or set CXX)",
)


def rosenbrock(params):
    x = params["x"]
    return (1 - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2


STARTS = torch.tensor([[-1.2, 1.0], [0.5, -0.3], [2.0, 2.0]], dtype=F64)


@needs_compiler
def test_a_compiled_objective_fits_like_the_eager_one():
    stopping = StoppingRules(max_iterations=30)
    eager = minimize(rosenbrock, {"x": STARTS}, stopping=stopping)
    compiled = minimize(rosenbrock, {"x": STARTS}, stopping=stopping, compile=True)
    torch.testing.assert_close(compiled.params["x"], eager.params["x"], atol=1e-6, rtol=0)
    torch.testing.assert_close(compiled.report.initial_loss, eager.report.initial_loss)
    assert compiled.report.reasons == eager.report.reasons
    calls = (compiled.report.objective_calls, eager.report.objective_calls)
    assert abs(calls[0] - calls[1]) <= 0.1 * calls[1], calls


@needs_compiler
def test_an_objective_with_a_graph_break_compiles_in_torchs_default_way():
    scales = [1.0, 0.5]

    def branchy(params):  # a Python index from a tensor's value: a graph break
        x = params["x"]
        return scales[int((x[:, 0] > 10).any())] * rosenbrock(params)

    stopping = StoppingRules(max_iterations=2)
    compiled = minimize(branchy, {"x": STARTS}, stopping=stopping, compile=True)
    eager = minimize(branchy, {"x": STARTS}, stopping=stopping)
    torch.testing.assert_close(compiled.params["x"], eager.params["x"], atol=1e-6, rtol=0)


@needs_compiler
def test_errors_of_the_objective_itself_pass_through_unchanged():
    def objective(params):
        if params["x"].shape[0] != 3:
            raise ValueError(f"3 rows expected, got {params['x'].shape[0]}")
        return rosenbrock(params)

    with pytest.raises(ValueError, match="3 rows expected, got 1"):
        minimize(objective, {"x": STARTS[:1]}, compile=True)


def test_a_missing_compiler_is_named_with_the_option(tmp_path):
    # A fresh process whose inductor cache is empty and whose C++ compiler does not exist.
    code = (
        "import torch\n"
        "from pose_fitting import minimize\n"
        "x = torch.tensor([[1.0, 2.0], [0.5, -1.0]])\n"
        "minimize(lambda p: (p['x'] ** 2).sum(-1), {'x': x}, compile=True)\n"
    )
    env = {**os.environ, "CXX": "/nonexistent/g++", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: compile=True: torch.compile could not compile"), last
    assert "none of ['/nonexistent/g++'] is on PATH" in last
    assert last.endswith("set compile=False to fit eagerly")
