"""ConditionalGlow: the battery for every configuration, the original's sizes and layout, the
equivalence with a plain nflows composition, and argument validation."""

from __future__ import annotations

import pytest
import torch
from nflows.distributions.normal import StandardNormal
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import AdditiveCouplingTransform, AffineCouplingTransform
from nflows.transforms.lu import LULinear as NflowsLULinear
from nflows.transforms.normalization import ActNorm as NflowsActNorm
from torch import nn
from torch.nn import functional as F

from pose_flows import ConditionalGlow, FlowConfig, FlowSample
from pose_flows.testing import (
    check_density_integrates,
    check_flow,
    check_learns_gaussian,
    original_flow_state_dict_shapes,
    perturb_parameters,
)
from pose_geometry.testing import assert_close

CONFIGS = {
    "additive-bn-dropout": {},
    "affine-bn-dropout": {"coupling": "affine"},
    "additive-plain": {"use_batch_norm": False, "dropout_probability": 0.0},
    "affine-plain": {"coupling": "affine", "use_batch_norm": False, "dropout_probability": 0.0},
    "additive-bn-no-dropout": {"dropout_probability": 0.0},
    "additive-dropout-no-bn": {"use_batch_norm": False, "dropout_probability": 0.3},
    "one-layer": {"num_layers": 1},
    "three-layers-one-block": {"num_layers": 3, "num_blocks_per_layer": 1},
    "four-layers-three-blocks": {"num_layers": 4, "num_blocks_per_layer": 3},
    "no-residual-blocks": {"num_blocks_per_layer": 0},
    "width-4": {"hidden_features": 4},
}


def factory(**options):
    defaults = {"hidden_features": 8, "num_layers": 2, "num_blocks_per_layer": 2}

    def make_flow(features: int, context_features: int) -> ConditionalGlow:
        return ConditionalGlow(
            features=features, context_features=context_features, **{**defaults, **options}
        )

    return make_flow


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS.keys())
def test_battery(options):
    check_flow(factory(**options), features=6, context_features=5)


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_battery_odd_features_and_single_context(coupling):
    check_flow(
        factory(coupling=coupling), features=7, context_features=1, batch_size=3, num_samples=4
    )


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_density_integrates_to_one(coupling):
    check_density_integrates(factory(coupling=coupling), context_features=3)


@pytest.mark.parametrize(
    "options",
    [
        {"hidden_features": 16},
        {"hidden_features": 16, "coupling": "affine", "use_batch_norm": False},
    ],
    ids=["original", "affine-no-bn"],
)
def test_learns_a_gaussian(options):
    check_learns_gaussian(factory(**options))


@pytest.mark.parametrize(
    ("features", "context_features", "num_parameters", "initial", "final", "lu_entries"),
    [
        (144, 2048, 25_893_856, (1024, 2120), (72, 1024), 10_296),
        (48, 1024, 21_231_264, (1024, 1048), (24, 1024), 1_128),
    ],
    ids=["prohmr", "skeleton"],
)
def test_original_sizes_have_the_original_state_dict(
    features, context_features, num_parameters, initial, final, lu_entries
):
    flow = ConditionalGlow(features=features, context_features=context_features)
    state = flow.state_dict()
    assert len(state) == 164  # 177 in the fork minus its 13 dummy buffers
    expected = original_flow_state_dict_shapes(
        features=features, context_features=context_features, hidden_features=1024
    )
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(p.numel() for p in flow.parameters()) == num_parameters
    net = "_transform._transforms.2.transform_net."
    assert tuple(state[net + "initial_layer.weight"].shape) == initial
    assert tuple(state[net + "final_layer.weight"].shape) == final
    assert state["_transform._transforms.1.lower_entries"].numel() == lu_entries
    assert state["_transform._transforms.0.initialized"].dtype == torch.bool
    assert state["_transform._transforms.2.identity_features"].dtype == torch.int64


def test_masks_alternate_even_and_odd_indices():
    flow = ConditionalGlow(features=8, context_features=2, hidden_features=4)
    evens, odds = torch.arange(0, 8, 2), torch.arange(1, 8, 2)
    for k, (identity, transform) in {
        2: (evens, odds),
        5: (odds, evens),
        8: (evens, odds),
        11: (odds, evens),
    }.items():
        coupling = flow._transform._transforms[k]
        assert torch.equal(coupling.identity_features, identity)
        assert torch.equal(coupling.transform_features, transform)
    kinds = [type(t).__name__ for t in flow._transform._transforms]
    assert kinds == ["ActNorm", "LULinear", "AdditiveCouplingTransform"] * 4


def test_new_flow_is_near_identity_with_the_forks_initialisation():
    h = 32
    flow = ConditionalGlow(features=10, context_features=3, hidden_features=h)
    for k in (2, 5, 8, 11):
        net = flow._transform._transforms[k].transform_net
        bound = 0.01 / h**0.5
        assert net.final_layer.weight.abs().max() <= bound
        assert net.final_layer.bias.abs().max() <= bound
        for block in net.blocks:
            assert block.linear_layers[1].weight.abs().max() <= 1e-3
            assert block.batch_norm_layers[0].eps == 1e-5
            assert block.dropout.p == 0.5
    lu = flow._transform._transforms[1]
    lower, upper = lu._create_lower_upper()
    assert_close(lower @ upper, torch.eye(10))
    flow.eval()
    for actnorm in flow.actnorms:  # keep the identity values; eval mode refuses unset flags
        actnorm.initialized.fill_(True)
    x, c = torch.randn(4, 10), torch.randn(4, 3)
    log_prob, z = flow.log_prob(x, c)
    assert (z - x).abs().max() < 0.05
    normal = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert_close(log_prob, normal)  # ActNorm and LU are the identity, coupling log-det 0


# --- equivalence with a straightforward composition of stock nflows parts -----------------


class PlainConditioner(nn.Module):
    """The fork's ResidualNet written plainly: cat(x_I, c) at the input, same names."""

    def __init__(self, in_features, out_features, *, hidden, context, blocks, use_bn):
        super().__init__()
        self.use_bn = use_bn
        self.initial_layer = nn.Linear(in_features + context, hidden)
        self.blocks = nn.ModuleList()
        for _ in range(blocks):
            block = nn.Module()
            if use_bn:
                block.batch_norm_layers = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(2)])
            block.linear_layers = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(2)])
            self.blocks.append(block)
        self.final_layer = nn.Linear(hidden, out_features)

    def forward(self, x, context):
        h = self.initial_layer(torch.cat((x, context), dim=1))
        for block in self.blocks:
            t = block.batch_norm_layers[0](h) if self.use_bn else h
            t = block.linear_layers[0](F.relu(t))
            t = block.batch_norm_layers[1](t) if self.use_bn else t
            h = h + block.linear_layers[1](F.dropout(F.relu(t), 0.5, self.training))
        return self.final_layer(h)


def plain_nflows_flow(features, context, *, hidden, layers, blocks, coupling, use_bn):
    mask = torch.ones(features)
    mask[::2] = -1
    coupling_cls = AdditiveCouplingTransform if coupling == "additive" else AffineCouplingTransform
    transforms = []
    for _ in range(layers):
        transforms += [
            NflowsActNorm(features),
            NflowsLULinear(features),
            coupling_cls(
                mask,
                lambda i, o: PlainConditioner(
                    i, o, hidden=hidden, context=context, blocks=blocks, use_bn=use_bn
                ),
            ),
        ]
        mask = -mask
    return CompositeTransform(transforms), StandardNormal([features])


@pytest.mark.filterwarnings("ignore:torch.triangular_solve is deprecated")  # nflows' own LU
@pytest.mark.parametrize("coupling", ["additive", "affine"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_equals_a_plain_composition_of_nflows_parts(coupling, training):
    d, c_dim, b, n = 6, 4, 3, 5
    ours = ConditionalGlow(
        features=d, context_features=c_dim, hidden_features=8, num_layers=3, coupling=coupling
    ).double()
    perturb_parameters(ours, generator=torch.Generator().manual_seed(3))
    transform, base = plain_nflows_flow(
        d, c_dim, hidden=8, layers=3, blocks=2, coupling=coupling, use_bn=True
    )
    holder = nn.Module()
    holder._transform = transform
    holder.double().load_state_dict(ours.state_dict(), strict=True)
    holder.train(training)
    ours.train(training)

    x, c = torch.randn(b, n, d, dtype=torch.float64), torch.randn(b, c_dim, dtype=torch.float64)
    c_rows = c.repeat_interleave(n, dim=0)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        z_ref, logabsdet = transform(x.reshape(b * n, d), context=c_rows)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        log_prob, z = ours.log_prob(x, c)
    assert_close(z, z_ref.view(b, n, d))
    assert_close(log_prob, (base.log_prob(z_ref) + logabsdet).view(b, n))

    latents = torch.randn(b, n, d, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        x_ref, logabsdet = transform.inverse(latents.reshape(b * n, d), context=c_rows)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        sample = ours.sample(c, z=latents)
    assert_close(sample.x, x_ref.view(b, n, d))
    assert_close(sample.log_prob, (base.log_prob(latents.reshape(b * n, d)) - logabsdet).view(b, n))


# --- API details ---------------------------------------------------------------------------


def test_sample_returns_a_named_tuple_and_draws_latents_like_the_fork():
    flow = ConditionalGlow(features=4, context_features=2, hidden_features=4).eval()
    flow.initialize(torch.randn(6, 4), torch.randn(6, 2))
    c = torch.randn(3, 2)
    torch.manual_seed(7)
    sample = flow.sample(c, 5)
    torch.manual_seed(7)
    fork_noise = torch.randn(3 * 5, 4).view(3, 5, 4)  # the fork's StandardNormal draw
    assert isinstance(sample, FlowSample)
    x, log_prob, z = sample
    assert torch.equal(z, fork_noise)
    assert x.shape == (3, 5, 4) and log_prob.shape == (3, 5)


def test_given_latents_with_many_samples_work_unlike_the_fork():
    flow = ConditionalGlow(features=4, context_features=2, hidden_features=4).eval()
    flow.initialize(torch.randn(6, 4), torch.randn(6, 2))
    c = torch.randn(2, 2)
    z = torch.randn(2, 7, 4)
    sample = flow.sample(c, z=z)
    single = [flow.sample(c, z=z[:, i : i + 1]) for i in range(7)]
    assert_close(sample.x, torch.cat([s.x for s in single], dim=1))
    assert_close(sample.log_prob, torch.cat([s.log_prob for s in single], dim=1))


def test_sampling_in_training_mode_does_not_initialise_actnorm():
    flow = ConditionalGlow(features=4, context_features=2, hidden_features=4).train()
    with pytest.raises(RuntimeError, match="sample needs initialised ActNorm layers"):
        flow.sample(torch.randn(3, 2), 4)
    assert not flow.initialized
    flow.log_prob(torch.randn(3, 4, 4), torch.randn(3, 2))
    assert flow.initialized


def test_explicit_initialisation_reinitialises_only_when_asked():
    flow = ConditionalGlow(features=4, context_features=2, hidden_features=4).eval()
    x, c = 5 + 3 * torch.randn(32, 4), torch.randn(32, 2)
    flow.initialize(x, c)
    first = flow.actnorms[0].log_scale.detach().clone()
    flow.initialize(2 * x, c)
    assert torch.equal(flow.actnorms[0].log_scale.detach(), first)
    flow.initialize(2 * x, c, reinitialize=True)
    assert_close(flow.actnorms[0].log_scale.detach(), first - torch.log(torch.tensor(2.0)))


def test_rejects_bad_constructor_arguments():
    with pytest.raises(ValueError, match="unknown coupling 'spline'"):
        ConditionalGlow(features=4, context_features=2, coupling="spline")
    with pytest.raises(ValueError, match="`features` must be >= 2, got 1"):
        ConditionalGlow(features=1, context_features=2)
    with pytest.raises(TypeError, match="`hidden_features` must be an int, got float"):
        ConditionalGlow(features=4, context_features=2, hidden_features=8.0)
    with pytest.raises(ValueError, match=r"`dropout_probability` must be in \[0, 1\), got 1.0"):
        ConditionalGlow(features=4, context_features=2, dropout_probability=1.0)


def test_rejects_bad_shapes_with_clear_messages():
    flow = ConditionalGlow(features=4, context_features=2, hidden_features=4)
    c = torch.randn(3, 2)
    with pytest.raises(
        ValueError, match=r"`context` must have shape \(B, 2\) with B >= 1, got \(3, 5\)"
    ):
        flow.log_prob(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(
        ValueError, match=r"`x` must have shape \(3, 4\) or \(3, N, 4\) .* got \(2, 4\)"
    ):
        flow.log_prob(torch.randn(2, 4), c)
    with pytest.raises(ValueError, match=r"`z` must have shape \(3, N, 4\), got \(3, 4\)"):
        flow.sample(c, z=torch.randn(3, 4))
    with pytest.raises(ValueError, match="pass exactly one of `num_samples` and `z`"):
        flow.sample(c)
    with pytest.raises(ValueError, match="`num_samples` must be >= 1, got 0"):
        flow.sample(c, 0)
    with pytest.raises(TypeError, match=r"`context` must be a torch\.Tensor, got list"):
        flow.sample([[0.0, 0.0]], 2)


def frozen_flow(coupling="additive", **options):
    torch.manual_seed(3)
    flow = ConditionalGlow(
        features=6,
        context_features=4,
        hidden_features=16,
        num_layers=2,
        coupling=coupling,
        **options,
    )
    flow.initialize(torch.randn(32, 6), torch.randn(32, 4))
    return flow.eval().requires_grad_(False)


def test_sampling_differentiates_the_latents_of_a_frozen_flow():
    """Fitting optimises z through the inverse: ordinary autograd reaches z, not the weights."""
    flow = frozen_flow()
    context = torch.randn(3, 4, dtype=torch.float64)
    flow.double()
    z = torch.randn(3, 1, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 1, 6, dtype=torch.float64)

    def objective(latent):
        return (flow.sample(context, z=latent).x * weights).sum()

    assert torch.autograd.gradcheck(objective, (z,))
    objective(z).backward()
    assert z.grad.abs().max() > 0
    assert all(p.grad is None for p in flow.parameters())


def test_config_builds_the_same_flow():
    config = FlowConfig(features=6, context_features=4, hidden_features=16, num_layers=2)
    torch.manual_seed(0)
    from_config = ConditionalGlow(config)
    torch.manual_seed(0)
    from_options = ConditionalGlow(features=6, context_features=4, hidden_features=16, num_layers=2)
    assert from_config.config == from_options.config == config
    assert from_config.hidden_features == 16 and from_config.coupling == "additive"
    state = from_options.state_dict()
    assert from_config.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in from_config.state_dict().items())
    with pytest.raises(TypeError, match="not both"):
        ConditionalGlow(config, num_layers=3)
    with pytest.raises(TypeError, match="must be a FlowConfig, got dict"):
        ConditionalGlow({"features": 6})
    with pytest.raises(ValueError, match="unknown coupling 'spline'"):
        FlowConfig(features=4, context_features=2, coupling="spline")
