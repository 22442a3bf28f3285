"""The battery fails on broken flows: each check can catch the bug it is there for."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from pose_flows import ConditionalGlow, LULinear, ResidualConditioner, SharedContext
from pose_flows import layers as flow_layers
from pose_flows.layers import ActNorm
from pose_flows.testing import (
    _build,
    _check_inference_plan,
    check_density_integrates,
    check_flow,
)


def make_flow(features, context_features):
    return ConditionalGlow(
        features=features, context_features=context_features, hidden_features=8, num_layers=2
    )


def test_the_battery_passes_on_a_correct_flow():
    check_flow(make_flow, features=4, context_features=3)


def test_catches_a_wrong_log_determinant(monkeypatch):
    original = LULinear.logabsdet
    monkeypatch.setattr(LULinear, "logabsdet", lambda self: original(self) * 1.1)
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3)


def test_catches_a_wrong_shared_context_path(monkeypatch):
    original = ResidualConditioner.input_layer

    def broken(self, inputs, context):
        if isinstance(context, SharedContext):  # forgets the bias
            weight = self.initial_layer.weight
            ctx, n = context.context, context.num_samples
            hidden = F.linear(inputs, weight[:, : self.in_features]).view(ctx.shape[0], n, -1)
            hidden = hidden + F.linear(ctx, weight[:, self.in_features :]).unsqueeze(1)
            return hidden.view(inputs.shape[0], -1)
        return original(self, inputs, context)

    monkeypatch.setattr(ResidualConditioner, "input_layer", broken)
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)


def test_catches_a_stale_lu_cache(monkeypatch):
    monkeypatch.setattr(LULinear, "_cache_key", lambda self: ())
    with pytest.raises(AssertionError, match="not invalidated"):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)


def test_catches_a_missing_std_floor(monkeypatch):
    def no_floor(self, inputs):
        with torch.no_grad():
            std = inputs.std(dim=0)
            self.log_scale.copy_(-torch.log(std))
            self.shift.copy_(-(inputs / std).mean(dim=0))
            self.initialized.fill_(True)

    monkeypatch.setattr(ActNorm, "_initialize", no_floor)
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)


def test_catches_an_unnormalised_density(monkeypatch):
    original = ConditionalGlow._base_log_prob
    monkeypatch.setattr(ConditionalGlow, "_base_log_prob", lambda self, z: original(self, z) + 0.05)
    with pytest.raises(AssertionError, match="integrates to"):
        check_density_integrates(make_flow, context_features=3)


def _flow64():
    return _build(make_flow, 4, 3, 0, torch.float64)


def test_catches_a_wrong_inference_plan(monkeypatch):
    from pose_flows import layers

    def no_shift(x, scale, shift):  # drops batch norm's shift in the plan only
        return F.relu(x * scale) if scale is not None else F.relu(x)

    monkeypatch.setattr(layers, "_affine_relu", no_shift)
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)
    with pytest.raises(AssertionError, match="inference plan: samples differs"):
        _check_inference_plan(_flow64(), 5, 3, 0)


def test_catches_a_stale_inference_plan(monkeypatch):
    from pose_flows import layers

    monkeypatch.setattr(layers, "_state_key", lambda tensors: ())
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)
    with pytest.raises(AssertionError, match="after a parameter change"):
        _check_inference_plan(_flow64(), 5, 3, 0)


def test_the_battery_passes_without_onednn(monkeypatch):
    from pose_flows import layers

    monkeypatch.setattr(layers, "_ONEDNN_LINEAR", None)
    check_flow(make_flow, features=4, context_features=3, check_jacobian=False)


@pytest.mark.skipif(flow_layers._ONEDNN_LINEAR is None, reason="no oneDNN in this torch")
def test_the_battery_passes_with_onednn_at_every_size(monkeypatch):
    # The battery's batches are below the size where oneDNN pays; force it on for them.
    from pose_flows import layers

    monkeypatch.setattr(layers, "_ONEDNN_MIN_ROWS", 0)
    x = torch.zeros(1, 8)
    assert layers._use_onednn(torch.zeros(8, 8), x)
    check_flow(make_flow, features=4, context_features=3, check_jacobian=False)


def test_onednn_only_where_it_pays(monkeypatch):
    from pose_flows import layers

    monkeypatch.setattr(layers, "_ONEDNN_LINEAR", object())  # as if available
    small = torch.zeros(256, 256)
    large = torch.zeros(1024, 1024)
    assert not layers._use_onednn(small, torch.zeros(32, 256))
    assert layers._use_onednn(small, torch.zeros(128, 256))
    assert layers._use_onednn(large, torch.zeros(1, 1024))
    assert not layers._use_onednn(large, torch.zeros(1, 1024, dtype=torch.float64))
    rows = torch.zeros(1, 1024, requires_grad=True)
    assert not layers._use_onednn(large, rows)  # autograd would need its formula
    with torch.no_grad():
        assert layers._use_onednn(large, rows)
    monkeypatch.setattr(layers, "_ONEDNN_LINEAR", None)
    assert not layers._use_onednn(large, torch.zeros(512, 1024))


def test_catches_a_wrong_inverse_plan(monkeypatch):
    # A plan of the whole inverse that forgets the folded biases (ActNorm and LU shifts and the
    # coupling network's final bias) must fail the battery.
    build = ConditionalGlow._build_inverse_plan

    def without_bias(self, key):
        plan = build(self, key)
        layers = tuple(layer._replace(bias=torch.zeros_like(layer.bias)) for layer in plan.layers)
        return plan._replace(layers=layers)

    monkeypatch.setattr(ConditionalGlow, "_build_inverse_plan", without_bias)
    with pytest.raises(AssertionError, match="inference plan"):
        _check_inference_plan(_flow64(), 5, 3, 0)
