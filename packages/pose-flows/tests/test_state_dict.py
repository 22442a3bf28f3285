"""Loading original-layout state dicts: the fork's dummy buffers dropped, everything else strict."""

from __future__ import annotations

import pytest
import torch

from pose_flows import ConditionalGlow, load_original_state_dict, strip_dummy_buffers
from pose_flows.testing import (
    original_flow_state_dict_shapes,
    perturb_parameters,
    with_dummy_buffers,
)


def small_flow(seed=0):
    flow = ConditionalGlow(features=6, context_features=3, hidden_features=4)
    perturb_parameters(flow, generator=torch.Generator().manual_seed(seed))
    return flow


def test_original_layout_has_177_entries_at_prohmr_sizes():
    shapes = original_flow_state_dict_shapes(
        features=144, context_features=2048, hidden_features=1024, include_dummy_buffers=True
    )
    assert len(shapes) == 177
    assert sum(k.endswith("dummy_buffer") for k in shapes) == 13


def test_loads_with_and_without_dummy_buffers():
    source = small_flow(1)
    for state in (with_dummy_buffers(source.state_dict()), source.state_dict()):
        target = small_flow(2)
        report = load_original_state_dict(target, state)
        assert len(report.loaded_keys) == 164
        assert len(report.dropped_keys) == (13 if len(state) == 177 else 0)
        for k, v in target.state_dict().items():
            assert torch.equal(v, source.state_dict()[k]), k


def test_strip_dummy_buffers_keeps_everything_else():
    state = with_dummy_buffers(small_flow().state_dict(), prefix="")
    stripped = strip_dummy_buffers(state)
    assert len(stripped) == 164
    assert all(not k.endswith("dummy_buffer") for k in stripped)
    head_like = with_dummy_buffers({"flow." + k: v for k, v in stripped.items()}, prefix="flow.")
    assert "flow._transform.dummy_buffer" in head_like
    assert "flow._transform._transforms.11.dummy_buffer" in head_like


def test_reports_every_problem_and_loads_nothing():
    target = small_flow(2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    state = small_flow(1).state_dict()
    del state["_transform._transforms.2.transform_net.final_layer.bias"]
    state["_transform._transforms.0.mystery"] = torch.zeros(2)
    state["_transform._transforms.1.bias"] = torch.zeros(5)
    state["_transform._transforms.4.bias"] = [0.0] * 6
    with pytest.raises(ValueError) as info:
        load_original_state_dict(target, state)
    message = str(info.value)
    assert (
        "missing keys (1):\n    _transform._transforms.2.transform_net.final_layer.bias" in message
    )
    assert "unexpected keys (1):\n    _transform._transforms.0.mystery" in message
    assert "_transform._transforms.1.bias: checkpoint (5,), module (6,)" in message
    assert "_transform._transforms.4.bias: checkpoint a list, not a tensor, module (6,)" in message
    for k, v in target.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_long_listings_are_truncated():
    with pytest.raises(ValueError, match=r"missing keys \(164\):(.|\n)*\.\.\. and 144 more"):
        load_original_state_dict(small_flow(), {})


def test_rejects_wrong_types():
    with pytest.raises(TypeError, match=r"`module` must be a torch\.nn\.Module, got dict"):
        load_original_state_dict({}, {})
    with pytest.raises(TypeError, match="`state_dict` must be a mapping, got list"):
        load_original_state_dict(small_flow(), [])
