"""ActNorm (fork initialisation), cached LULinear and the fork's residual conditioner."""

from __future__ import annotations

import pytest
import torch
from nflows.transforms.lu import LULinear as NflowsLULinear
from nflows.transforms.normalization import ActNorm as NflowsActNorm

from pose_flows import ActNorm, LULinear, ResidualConditioner, SharedContext
from pose_flows.testing import perturb_parameters
from pose_geometry.testing import assert_close


def test_actnorm_initialisation_matches_nflows_above_the_floor():
    x = 2.0 + 3.0 * torch.randn(50, 6)
    ours, theirs = ActNorm(6), NflowsActNorm(6)
    ours(x)
    theirs(x)
    assert_close(ours.log_scale, theirs.log_scale)
    assert_close(ours.shift, theirs.shift)
    assert bool(ours.initialized)


def test_actnorm_floors_the_std_at_1e_3():
    x = torch.randn(20, 3)
    x[:, 1] = 4.0
    x[:, 2] = 1e-5 * torch.randn(20)
    layer = ActNorm(3)
    y, logabsdet = layer(x)
    assert_close(layer.log_scale[1:], -torch.log(torch.tensor([1e-3, 1e-3])))
    assert torch.isfinite(y).all()
    assert_close(logabsdet, layer.log_scale.sum().expand(20))
    assert_close(layer.shift[1], torch.tensor(-4.0 / 1e-3))


def test_actnorm_rejects_a_single_row_and_never_initialises_in_eval_or_inverse():
    layer = ActNorm(3)
    with pytest.raises(ValueError, match=r"at least 2 rows .* got inputs of shape \(1, 3\)"):
        layer(torch.randn(1, 3))
    layer.inverse(torch.randn(5, 3))
    layer.eval()(torch.randn(5, 3))
    assert not bool(layer.initialized)


def lu_layer(features=7, dtype=torch.float64, seed=0):
    layer = LULinear(features).to(dtype)
    perturb_parameters(layer, generator=torch.Generator().manual_seed(seed))
    return layer


def test_lu_factors_fill_like_nflows_row_major():
    layer = lu_layer()
    lower, upper = layer._create_lower_upper()
    ref_lower, ref_upper = NflowsLULinear._create_lower_upper(layer)
    assert torch.equal(lower, ref_lower)
    assert torch.equal(upper, ref_upper)
    # row-major (i > j): entry 0 -> (1, 0), entry 1 -> (2, 0), entry 2 -> (2, 1)
    assert lower[1, 0] == layer.lower_entries[0] and lower[2, 1] == layer.lower_entries[2]
    # row-major (i < j): entry 0 -> (0, 1), entry 6 -> (1, 2) for D = 7
    assert upper[0, 1] == layer.upper_entries[0] and upper[1, 2] == layer.upper_entries[6]
    assert_close(
        torch.diagonal(upper), torch.nn.functional.softplus(layer.unconstrained_upper_diag) + 1e-3
    )


def test_lu_forward_and_inverse_match_the_weight_matrix():
    layer = lu_layer()
    x = torch.randn(9, 7, dtype=torch.float64)
    weight = NflowsLULinear.weight(layer)
    y, logabsdet = layer(x)
    assert_close(y, x @ weight.T + layer.bias)
    assert_close(logabsdet, torch.linalg.slogdet(weight)[1].expand(9))
    back, inv_logabsdet = layer.inverse(y)
    assert_close(back, x)
    assert_close(inv_logabsdet, -logabsdet)
    assert_close(layer.weight_inverse(), torch.linalg.inv(weight))


def test_lu_cache_is_used_only_in_eval_mode_without_parameter_gradients():
    layer = lu_layer()
    x = torch.randn(4, 7, dtype=torch.float64)
    layer.train()
    with torch.no_grad():
        layer(x)
    assert layer._lu_cache is None
    layer.eval()
    layer(x)  # grad enabled, parameters require grad: live computation
    assert layer._lu_cache is None
    with torch.no_grad():
        cached, _ = layer(x)
    assert layer._lu_cache is not None
    for p in layer.parameters():
        p.requires_grad_(False)
    cache = layer._lu_cache
    layer(x)  # frozen parameters: the cache serves grad-enabled calls too (e.g. fitting z)
    assert layer._lu_cache is cache
    assert_close(cached, layer.forward_no_cache(x)[0])
    assert_close(layer.inverse(cached)[0], x)
    layer.float()
    assert layer._lu_cache is None
    layer(x.float())
    layer.load_state_dict(layer.state_dict())
    assert layer._lu_cache is None
    layer.requires_grad_(True)
    with torch.no_grad():
        layer(x.float())
    assert layer._lu_cache is not None
    layer(x.float())  # records parameter gradients: an optimiser step may follow, drop it
    assert layer._lu_cache is None


def test_lu_cached_inverse_keeps_gradients_to_the_inputs():
    layer = lu_layer().eval()
    for p in layer.parameters():
        p.requires_grad_(False)
    y = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    x, _ = layer.inverse(y)
    x.sum().backward()
    assert_close(y.grad, layer.weight_inverse().sum(0).expand(3, 7))


def test_conditioner_shared_context_equals_repeated_context():
    net = ResidualConditioner(
        3,
        4,
        hidden_features=8,
        context_features=5,
        num_blocks=2,
        dropout_probability=0.0,
        use_batch_norm=True,
    ).double()
    perturb_parameters(net, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2 * 6, 3, dtype=torch.float64)
    c = torch.randn(2, 5, dtype=torch.float64)
    for training in (False, True):
        net.train(training)
        assert_close(net(x, SharedContext(c, 6)), net(x, c.repeat_interleave(6, dim=0)))


def test_conditioner_has_the_forks_names_and_initialisation():
    net = ResidualConditioner(
        3,
        4,
        hidden_features=16,
        context_features=5,
        num_blocks=2,
        dropout_probability=0.5,
        use_batch_norm=False,
    )
    names = {k for k, _ in net.named_parameters()}
    assert names == {
        "initial_layer.weight",
        "initial_layer.bias",
        "final_layer.weight",
        "final_layer.bias",
        *(
            f"blocks.{b}.linear_layers.{j}.{w}"
            for b in range(2)
            for j in range(2)
            for w in ("weight", "bias")
        ),
    }
    assert net.initial_layer.weight.shape == (16, 3 + 5)
    assert net.final_layer.weight.abs().max() <= 0.01 / 4


def test_lu_cache_built_in_inference_mode_is_not_reused_for_gradients():
    layer = lu_layer().eval()
    for p in layer.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, 7, dtype=torch.float64)
    with torch.inference_mode():
        layer.inverse(x)
    y = x.clone().requires_grad_(True)
    out, _ = layer.inverse(y)  # would fail if the inference-mode cache were reused
    out.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
