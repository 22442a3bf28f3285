"""The battery fails on broken flows: each check can catch the bug it is there for."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pose_flows import ConditionalGlow, LULinear, ResidualConditioner, SharedContext
from pose_flows.layers import ActNorm
from pose_flows.testing import check_density_integrates, check_flow


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
    monkeypatch.setattr(LULinear, "_load_from_state_dict", nn.Module._load_from_state_dict)
    with pytest.raises(AssertionError):
        check_flow(make_flow, features=4, context_features=3, check_jacobian=False)
    monkeypatch.undo()
    original = LULinear._usable_cache

    def keeps_the_cache(self):  # never drops it on calls that record parameter gradients
        if not self.training and self._lu_cache is not None:
            return self._lu_cache
        return original(self)

    monkeypatch.setattr(LULinear, "_usable_cache", keeps_the_cache)
    with pytest.raises(AssertionError, match="must drop it"):
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
