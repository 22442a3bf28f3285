"""Bad numeric inputs to the flows: a flow used before its ActNorm layers are initialised, wrong
context sizes, dtypes and devices end in an error naming the argument and what arrived."""

from __future__ import annotations

import pytest
import torch

from pose_flows import ConditionalGlow

D, C = 4, 3


def _flow(coupling: str = "additive") -> ConditionalGlow:
    torch.manual_seed(0)
    return ConditionalGlow(
        features=D, context_features=C, hidden_features=8, num_layers=2, coupling=coupling
    )


def _initialised(coupling: str = "additive") -> ConditionalGlow:
    flow = _flow(coupling)
    flow.initialize(torch.randn(16, D), torch.randn(16, C))
    return flow.eval()


UNINITIALISED_USES = {
    "log_prob in eval mode": lambda f: f.eval().log_prob(torch.randn(2, D), torch.randn(2, C)),
    "sample in eval mode": lambda f: f.eval().sample(torch.randn(2, C), 3),
    "sample in training mode": lambda f: f.train().sample(torch.randn(2, C), 3),
    "sample with given z": lambda f: f.eval().sample(torch.randn(2, C), z=torch.zeros(2, 1, D)),
}


# --- ActNorm never initialised ---------------------------------------------------------------


@pytest.mark.parametrize("coupling", ["additive", "affine"])
@pytest.mark.parametrize("use", sorted(UNINITIALISED_USES))
def test_uninitialised_flow_refuses_to_run(coupling: str, use: str) -> None:
    flow = _flow(coupling)
    action = use.split(" with")[0].replace(" in training mode", "").replace(" in eval mode", "")
    with pytest.raises(
        RuntimeError,
        match=rf"{action}.* needs initialised ActNorm layers, but 2 of 2 are not \(layers \[0, 1\]\);"
        r" run a first `log_prob` in training mode .*`initialize\(x, context\)`.*state dict",
    ):
        UNINITIALISED_USES[use](flow)
    assert not flow.initialized


def test_training_mode_log_prob_initialises_then_eval_runs() -> None:
    flow = _flow().train()
    flow.log_prob(torch.randn(8, D), torch.randn(8, C))
    assert flow.initialized
    flow.eval()
    assert torch.isfinite(flow.sample(torch.randn(2, C), 3).x).all()


def test_loaded_state_dict_decides_again() -> None:
    trained = _initialised()
    fresh = _flow().eval()
    fresh.load_state_dict(trained.state_dict())
    assert torch.isfinite(fresh.log_prob(torch.randn(2, D), torch.randn(2, C)).log_prob).all()
    trained.load_state_dict(_flow().state_dict())  # an untrained state dict: refused again
    with pytest.raises(RuntimeError, match=r"needs initialised ActNorm layers, but 2 of 2"):
        trained.sample(torch.randn(2, C), 1)


# --- context sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 5), (0, C), (C,), (2, C, 1), (2, 1)])
def test_wrong_context_sizes_are_refused(shape: tuple[int, ...]) -> None:
    flow = _initialised()
    with pytest.raises(ValueError, match=r"`context` must have shape \(B, 3\) with B >= 1, got"):
        flow.sample(torch.randn(shape), 2)
    with pytest.raises(ValueError, match=r"`context` must have shape \(B, 3\) with B >= 1, got"):
        flow.log_prob(torch.randn(2, D), torch.randn(shape))


def test_data_batch_must_match_the_context() -> None:
    flow = _initialised()
    with pytest.raises(
        ValueError,
        match=r"`x` must have shape \(2, 4\) or \(2, N, 4\) to match `context` \(B = 2\), got \(3, 4\)",
    ):
        flow.log_prob(torch.randn(3, D), torch.randn(2, C))


# --- dtypes and devices ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_context_dtype_must_match_the_flow(dtype: torch.dtype) -> None:
    flow = _initialised()
    with pytest.raises(
        TypeError,
        match=rf"`context` must have the dtype of the module's parameters \(torch.float32\), got {dtype}",
    ):
        flow.sample(torch.randn(2, C, dtype=dtype), 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_data_dtype_must_match_the_context(dtype: torch.dtype) -> None:
    flow = _initialised()
    with pytest.raises(
        TypeError, match=rf"`x` must have the dtype of `context` \(torch.float32\), got {dtype}"
    ):
        flow.log_prob(torch.randn(2, D, dtype=dtype), torch.randn(2, C))
    with pytest.raises(
        TypeError, match=rf"`z` must have the dtype of `context` \(torch.float32\), got {dtype}"
    ):
        flow.sample(torch.randn(2, C), z=torch.zeros(2, 1, D, dtype=dtype))


def test_integer_data_is_refused() -> None:
    flow = _initialised()
    with pytest.raises(
        TypeError, match=r"`x` must be a floating-point tensor, got dtype torch.int64"
    ):
        flow.log_prob(torch.zeros(2, D, dtype=torch.long), torch.randn(2, C))


def test_context_on_another_device_names_both() -> None:
    flow = _initialised()
    with pytest.raises(
        ValueError,
        match=r"`context` must be on the device of the module's parameters \(cpu\), got meta",
    ):
        flow.log_prob(torch.randn(2, D), torch.randn(2, C, device="meta"))


def test_data_on_another_device_names_both() -> None:
    flow = _initialised()
    with pytest.raises(
        ValueError, match=r"`x` must be on the device of `context` \(cpu\), got meta"
    ):
        flow.log_prob(torch.randn(2, D, device="meta"), torch.randn(2, C))


def test_float64_flow_runs_in_float64() -> None:
    """Documented: the flow runs in its parameters' dtype; convert flow and inputs together."""
    flow = _initialised().double()
    sample = flow.sample(torch.randn(2, C, dtype=torch.float64), 2)
    assert sample.x.dtype == torch.float64
