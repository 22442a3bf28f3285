"""The test battery every flow configuration must pass, reusable by other packages' tests.

`check_flow(make_flow, features=..., context_features=...)` builds flows with
`make_flow(features, context_features)`, gives them random non-trivial parameters
(`perturb_parameters`; a new flow is close to the identity, which would pass most checks
trivially) and asserts:

- shapes of `log_prob` ((B, D) and (B, N, D) inputs) and of `sample` (random and given z);
- ActNorm data-dependent initialisation (first training-mode batch, persistent flag, std floor,
  eval mode does not initialise, explicit `initialize`); an eval-mode `log_prob` or a `sample`
  before it is a RuntimeError;
- inverse(forward(x)) = x and forward(inverse(z)) = z;
- log|det| equals `slogdet` of the autograd Jacobian (float64, both directions);
- `sample`'s log p equals `log_prob` of its samples;
- gradients reach every parameter (and the context);
- state-dict round trip through `torch.save` / `torch.load(weights_only=True)`;
- given-z sampling is deterministic, seeded sampling reproducible, z = 0 the mode (additive);
- the shared-context path and LU cache equal the plain per-row computation (float32, within
  1e-5 × max(1, max |value|)),
  in eval and in training mode (same batch-norm statistics and dropout draws);
- the LU cache is dropped by a call that records parameter gradients (so an optimiser step
  after it is seen), by `load_state_dict` and by `train()`;
- the state dict has the original's names and shapes (docs/checkpoints.md#flow-keys) and an
  original-layout state dict (with the fork's `dummy_buffer`s) loads strictly.

`check_density_integrates` (D = 2, grid integral of p = 1) and `check_learns_gaussian` (a short
fit to a correlated Gaussian reproduces its moments) are slower and called separately.
Import from tests only; the functions raise AssertionError with a message on failure.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from pose_flows.glow import ConditionalGlow
from pose_flows.layers import ActNorm, LULinear, ResidualConditioner
from pose_flows.state_dict import DUMMY_BUFFER_NAME, load_original_state_dict
from pose_geometry.testing import assert_close

__all__ = [
    "MakeFlow",
    "check_density_integrates",
    "check_flow",
    "check_learns_gaussian",
    "original_flow_state_dict_shapes",
    "perturb_parameters",
    "with_dummy_buffers",
]

MakeFlow = Callable[[int, int], ConditionalGlow]
"""make_flow(features, context_features) -> a new ConditionalGlow."""

SHARED_PATH_TOL = 1e-5
"""Largest allowed difference between the shared-context/cached and the plain path (float32),
relative to the tensor's scale max(1, max |plain|)."""


# -------------------------------------------------------------------------------------------
# helpers others may use


def perturb_parameters(module: nn.Module, *, generator: torch.Generator) -> None:
    """Give every parameter and buffer of the flow layers random, non-trivial values in place.

    ActNorm: log_scale ~ 0.3·N, shift ~ 0.5·N, initialized = True. LULinear: entries
    ~ 0.5·N/√D, diagonal pre-softplus ~ 0.54 + 0.5·N, bias ~ 0.3·N. Linear: weight ~ N/√fan_in,
    bias ~ 0.1·N (coupling-net final layers: weight ~ 0.3·N/√fan_in). BatchNorm1d: weight
    1 + 0.2·N, bias 0.2·N, running mean 0.3·N, running var exp(0.3·N). Works on a
    ConditionalGlow, a head or any module containing these layers.
    """

    def normal(like: Tensor, std: float, mean: float = 0.0) -> Tensor:
        noise = torch.randn(like.shape, generator=generator, dtype=torch.float64)
        return (mean + std * noise).to(like)

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, ActNorm):
                layer.log_scale.copy_(normal(layer.log_scale, 0.3))
                layer.shift.copy_(normal(layer.shift, 0.5))
                layer.initialized.fill_(True)
            elif isinstance(layer, LULinear):
                std = 0.5 / layer.features**0.5
                layer.lower_entries.copy_(normal(layer.lower_entries, std))
                layer.upper_entries.copy_(normal(layer.upper_entries, std))
                diag = layer.unconstrained_upper_diag
                diag.copy_(normal(diag, 0.5, 0.54))
                layer.bias.copy_(normal(layer.bias, 0.3))
            elif isinstance(layer, nn.Linear):
                layer.weight.copy_(normal(layer.weight, 1.0 / layer.in_features**0.5))
                if layer.bias is not None:
                    layer.bias.copy_(normal(layer.bias, 0.1))
            elif isinstance(layer, nn.BatchNorm1d):
                layer.weight.copy_(normal(layer.weight, 0.2, 1.0))
                layer.bias.copy_(normal(layer.bias, 0.2))
                layer.running_mean.copy_(normal(layer.running_mean, 0.3))
                layer.running_var.copy_(normal(layer.running_var, 0.3).exp())
        for layer in module.modules():  # moderate coupling outputs (affine scales stay O(1))
            if isinstance(layer, ResidualConditioner):
                layer.final_layer.weight.mul_(0.3)


def original_flow_state_dict_shapes(
    *,
    features: int,
    context_features: int,
    hidden_features: int,
    num_layers: int = 4,
    num_blocks_per_layer: int = 2,
    use_batch_norm: bool = True,
    coupling: str = "additive",
    include_dummy_buffers: bool = False,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the original's ConditionalGlow state dict, prefix removed.

    Written from the specification, independently of the implementation, so that tests can
    compare the two. With `include_dummy_buffers` the fork's 1 + 3·L scalar `dummy_buffer`s are
    listed too.
    """
    d, c, h = features, context_features, hidden_features
    even, odd = (d + 1) // 2, d // 2  # counts of even / odd indices
    multiplier = 2 if coupling == "affine" else 1
    tri = d * (d - 1) // 2
    shapes: dict[str, tuple[int, ...]] = {}
    if include_dummy_buffers:
        shapes["_transform.dummy_buffer"] = ()
    for i in range(num_layers):
        a, lu, cp = (f"_transform._transforms.{3 * i + j}." for j in range(3))
        shapes.update({f"{a}log_scale": (d,), f"{a}shift": (d,), f"{a}initialized": ()})
        shapes.update(
            {
                f"{lu}bias": (d,),
                f"{lu}lower_entries": (tri,),
                f"{lu}upper_entries": (tri,),
                f"{lu}unconstrained_upper_diag": (d,),
            }
        )
        num_identity, num_transform = (even, odd) if i % 2 == 0 else (odd, even)
        net = f"{cp}transform_net."
        shapes.update(
            {
                f"{cp}identity_features": (num_identity,),
                f"{cp}transform_features": (num_transform,),
                f"{net}initial_layer.weight": (h, num_identity + c),
                f"{net}initial_layer.bias": (h,),
                f"{net}final_layer.weight": (multiplier * num_transform, h),
                f"{net}final_layer.bias": (multiplier * num_transform,),
            }
        )
        for b in range(num_blocks_per_layer):
            block = f"{net}blocks.{b}."
            for j in range(2):
                shapes[f"{block}linear_layers.{j}.weight"] = (h, h)
                shapes[f"{block}linear_layers.{j}.bias"] = (h,)
                if use_batch_norm:
                    bn = f"{block}batch_norm_layers.{j}."
                    for name in ("weight", "bias", "running_mean", "running_var"):
                        shapes[bn + name] = (h,)
                    shapes[bn + "num_batches_tracked"] = ()
        if include_dummy_buffers:
            for prefix in (a, lu, cp):
                shapes[prefix + DUMMY_BUFFER_NAME] = ()
    return shapes


def with_dummy_buffers(state_dict: dict[str, Tensor], *, prefix: str = "") -> dict[str, Tensor]:
    """Add the fork's `dummy_buffer` keys (value 1.0) to a flow state dict, as checkpoints have.

    `prefix` is the flow's prefix inside `state_dict` ("" for a ConditionalGlow's own state
    dict, "flow." for a head's).
    """
    out = dict(state_dict)
    transforms = {
        k[: k.index(".", len(prefix) + len("_transform._transforms.")) + 1]
        for k in state_dict
        if k.startswith(prefix + "_transform._transforms.")
    }
    out[f"{prefix}_transform.{DUMMY_BUFFER_NAME}"] = torch.tensor(1.0)
    for t in sorted(transforms):
        out[t + DUMMY_BUFFER_NAME] = torch.tensor(1.0)
    return out


# -------------------------------------------------------------------------------------------
# internals


def _expect(condition: object, message: str) -> None:
    """Raise AssertionError(message) unless `condition` is truthy (works under python -O)."""
    if not condition:
        raise AssertionError(message)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def _build(
    make_flow: MakeFlow, features: int, context_features: int, seed: int, dtype: torch.dtype
) -> ConditionalGlow:
    with _seeded(seed):
        flow = make_flow(features, context_features)
    if not isinstance(flow, ConditionalGlow):
        raise TypeError(f"make_flow must return a ConditionalGlow, got {type(flow).__name__}")
    flow = flow.to(dtype)
    perturb_parameters(flow, generator=torch.Generator().manual_seed(seed))
    return flow


def _data(
    flow: ConditionalGlow, batch_size: int, num_samples: int, seed: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch_size, flow.features, generator=g, dtype=dtype)
    xs = torch.randn(batch_size, num_samples, flow.features, generator=g, dtype=dtype)
    c = torch.randn(batch_size, flow.context_features, generator=g, dtype=dtype)
    return x, xs, c


def _has_dropout(flow: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in flow.modules())


def _base_log_prob(z: Tensor) -> Tensor:
    d = z.shape[-1]
    return -0.5 * z.pow(2).sum(-1) - 0.5 * d * torch.log(torch.tensor(2 * torch.pi, dtype=z.dtype))


def _shape(name: str, t: Tensor, expected: tuple[int, ...]) -> None:
    _expect(tuple(t.shape) == expected, f"{name}: expected shape {expected}, got {tuple(t.shape)}")


# -------------------------------------------------------------------------------------------
# the battery


def _check_shapes(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    d = flow.features
    x, xs, c = _data(flow, b, n, seed, torch.float64)
    for training in (False, True):
        flow.train(training)
        lp, z = flow.log_prob(x, c)
        _shape("log_prob(x (B, D)).log_prob", lp, (b,))
        _shape("log_prob(x (B, D)).z", z, (b, d))
        lp, z = flow.log_prob(xs, c)
        _shape("log_prob(x (B, N, D)).log_prob", lp, (b, n))
        _shape("log_prob(x (B, N, D)).z", z, (b, n, d))
        sample = flow.sample(c, n)
        for name, t, shape in zip(
            ("x", "log_prob", "z"), sample, ((b, n, d), (b, n), (b, n, d)), strict=True
        ):
            _shape(f"sample(num_samples).{name}", t, shape)
            _expect(t.dtype == torch.float64, f"sample().{name} has dtype {t.dtype}")
        given = torch.zeros(b, n + 2, d, dtype=torch.float64)
        x_out, lp, z = flow.sample(c, z=given)
        _shape("sample(z).x", x_out, (b, n + 2, d))
        _shape("sample(z).log_prob", lp, (b, n + 2))
        _expect(z is given, "sample(z=...) must return the given z")
        _expect(torch.isfinite(x_out).all() and torch.isfinite(lp).all(), "non-finite samples")
    flow.eval()


def _actnorm_outputs(flow: ConditionalGlow) -> tuple[list[Tensor], list]:
    outputs: list[Tensor] = []
    hooks = [
        a.register_forward_hook(lambda _m, _i, out: outputs.append(out[0].detach()))
        for a in flow.actnorms
    ]
    return outputs, hooks


def _expect_uninitialised_error(call: Callable[[], object], what: str) -> None:
    """`call` on a never-initialised flow must raise RuntimeError, not run as the identity."""
    try:
        call()
    except RuntimeError as err:
        _expect("needs initialised ActNorm layers" in str(err), f"{what}: unclear error {err}")
    else:
        _expect(False, f"{what} on a flow with uninitialised ActNorm layers must raise")


def _check_actnorm_initialisation(
    make_flow: MakeFlow, features: int, context_features: int, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed + 2)
    rows = 64
    x = 3.0 + 2.0 * torch.randn(rows, features, generator=g, dtype=torch.float64)
    x[:, 0] = 1.5  # a constant feature: its std is floored at 1e-3
    c = torch.randn(rows, context_features, generator=g, dtype=torch.float64)

    with _seeded(seed):
        flow = make_flow(features, context_features).double()
    _expect(not flow.initialized, "a new flow must not be initialised")
    flow.eval()
    _expect_uninitialised_error(lambda: flow.log_prob(x, c), "log_prob in eval mode")
    _expect(not flow.initialized, "log_prob in eval mode must not initialise ActNorm")
    flow.train()
    _expect_uninitialised_error(lambda: flow.sample(c[:4], 3), "sample")
    _expect(not flow.initialized, "sampling (the inverse) must not initialise ActNorm")

    outputs, hooks = _actnorm_outputs(flow)
    with _seeded(seed):
        flow.log_prob(x, c)
    for h in hooks:
        h.remove()
    _expect(flow.initialized, "the first training-mode log_prob must initialise every ActNorm")
    _expect(
        all(bool(v) for k, v in flow.state_dict().items() if k.endswith(".initialized")),
        "the `initialized` buffers must be True in the state dict",
    )
    first = flow.actnorms[0]
    assert_close(first.log_scale[0], -torch.log(torch.tensor(1e-3, dtype=torch.float64)))
    for out in outputs:  # standardised; a feature still constant here stays constant (std 0)
        assert_close(out.mean(0), torch.zeros_like(out[0]), atol=1e-8, rtol=0)
        std = out.std(0)
        varying = std > 1e-6
        _expect(int(varying.sum()) >= features - 1, "ActNorm outputs are not standardised")
        assert_close(std[varying], torch.ones_like(std[varying]), atol=1e-8, rtol=0)
    before = [a.log_scale.detach().clone() for a in flow.actnorms]
    flow.log_prob(x + 1.0, c)
    for a, old in zip(flow.actnorms, before, strict=True):
        _expect(torch.equal(a.log_scale.detach(), old), "ActNorm must initialise only once")

    # explicit initialisation equals the implicit one (same dropout draws), in any mode
    with _seeded(seed):
        explicit = make_flow(features, context_features).double().train()
    with _seeded(seed):
        explicit.initialize(x, c)
    for a, b in zip(explicit.actnorms, flow.actnorms, strict=True):
        assert_close(a.log_scale, b.log_scale)
        assert_close(a.shift, b.shift)
    with _seeded(seed):
        in_eval = make_flow(features, context_features).double().eval()
    in_eval.initialize(x.view(rows // 4, 4, features), c[: rows // 4])
    _expect(in_eval.initialized, "initialize() must initialise in eval mode too")
    outputs, hooks = _actnorm_outputs(in_eval)
    in_eval.log_prob(x.view(rows // 4, 4, features), c[: rows // 4])
    for h in hooks:
        h.remove()
    assert_close(outputs[-1].mean(0), torch.zeros_like(outputs[-1][0]), atol=1e-8, rtol=0)
    try:
        make_flow(features, context_features).train().log_prob(x[:1].float(), c[:1].float())
    except ValueError as err:
        _expect("at least 2 rows" in str(err), f"unexpected message: {err}")
    else:
        raise AssertionError("initialising ActNorm from one row must raise ValueError")


def _check_round_trip(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    _, xs, c = _data(flow, b, n, seed, torch.float64)
    modes = [False] if _has_dropout(flow) else [False, True]  # dropout differs per call
    for training in modes:
        flow.train(training)
        z = flow.log_prob(xs, c).z
        back = flow.sample(c, z=z).x
        assert_close(back, xs, atol=1e-9, rtol=1e-9)
        zs = torch.randn(b, n, flow.features, dtype=torch.float64)
        assert_close(flow.log_prob(flow.sample(c, z=zs).x, c).z, zs, atol=1e-9, rtol=1e-9)
    flow.eval()


def _check_log_det(flow: ConditionalGlow, seed: int) -> None:
    flow.eval()
    x, _, c = _data(flow, 2, 1, seed, torch.float64)
    for i in range(2):
        ci = c[i : i + 1]

        def forward(row: Tensor, ci: Tensor = ci) -> Tensor:
            return flow.log_prob(row[None], ci).z[0]

        def inverse(row: Tensor, ci: Tensor = ci) -> Tensor:
            return flow.sample(ci, z=row[None, None]).x[0, 0]

        lp, z = flow.log_prob(x[i : i + 1], ci)
        jac = torch.autograd.functional.jacobian(forward, x[i])
        sign, logabsdet = torch.linalg.slogdet(jac)
        _expect(sign != 0, "the Jacobian of the flow is singular")
        assert_close(lp[0] - _base_log_prob(z[0]), logabsdet, atol=1e-8, rtol=1e-8)

        sample = flow.sample(ci, z=z[None])
        jac_inv = torch.autograd.functional.jacobian(inverse, z[0])
        _, logabsdet_inv = torch.linalg.slogdet(jac_inv)
        assert_close(
            _base_log_prob(z[0]) - sample.log_prob[0, 0], logabsdet_inv, atol=1e-8, rtol=1e-8
        )


def _check_sample_consistency(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    flow.eval()
    _, _, c = _data(flow, b, n, seed, torch.float64)
    sample = flow.sample(c, n, generator=torch.Generator().manual_seed(seed))
    lp, z = flow.log_prob(sample.x, c)
    assert_close(z, sample.z, atol=1e-9, rtol=1e-9)
    assert_close(lp, sample.log_prob, atol=1e-8, rtol=1e-8)


def _check_gradients(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    flow.train()
    x, xs, c = _data(flow, b, n, seed, torch.float64)
    c = c.clone().requires_grad_(True)
    flow.zero_grad(set_to_none=True)
    loss = -flow.log_prob(x, c).log_prob.mean() - flow.log_prob(xs, c).log_prob.mean()
    loss = loss + flow.sample(c, n).x.square().mean()
    loss.backward()
    for name, p in flow.named_parameters():
        _expect(p.grad is not None, f"no gradient reaches parameter {name}")
        _expect(torch.isfinite(p.grad).all(), f"non-finite gradient for {name}")
        _expect(p.grad.abs().max() > 0, f"zero gradient for parameter {name}")
    _expect(c.grad is not None and c.grad.abs().max() > 0, "no gradient reaches the context")
    flow.zero_grad(set_to_none=True)
    flow.eval()


def _state_dict_bytes(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


def _check_state_dict_round_trip(
    flow: ConditionalGlow, make_flow: MakeFlow, b: int, n: int, seed: int
) -> None:
    flow.eval()
    _, xs, c = _data(flow, b, n, seed, torch.float64)
    state = torch.load(io.BytesIO(_state_dict_bytes(flow)), weights_only=True)
    _expect(not any(k.endswith(DUMMY_BUFFER_NAME) for k in state), "dummy buffers in state dict")
    copy = make_flow(flow.features, flow.context_features).double()
    copy.load_state_dict(state, strict=True)
    copy.eval()
    _expect(copy.initialized, "the `initialized` flags must travel with the state dict")
    _expect(
        torch.equal(copy.log_prob(xs, c).log_prob, flow.log_prob(xs, c).log_prob),
        "a state-dict copy gives different log-densities",
    )
    z = torch.randn(b, n, flow.features, dtype=torch.float64)
    _expect(
        torch.equal(copy.sample(c, z=z).x, flow.sample(c, z=z).x),
        "a state-dict copy gives different samples",
    )


def _check_determinism_and_mode(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    flow.eval()
    _, _, c = _data(flow, b, n, seed, torch.float64)
    z = torch.randn(b, n, flow.features, dtype=torch.float64)
    first, second = flow.sample(c, z=z), flow.sample(c, z=z)
    for u, v in zip(first, second, strict=True):
        _expect(torch.equal(u, v), "sampling a given z must be deterministic in eval mode")
    one = flow.sample(c, n, generator=torch.Generator().manual_seed(seed))
    two = flow.sample(c, n, generator=torch.Generator().manual_seed(seed))
    other = flow.sample(c, n, generator=torch.Generator().manual_seed(seed + 1))
    _expect(torch.equal(one.x, two.x), "the same generator seed must give the same samples")
    _expect(not torch.equal(one.z, other.z), "different seeds must give different samples")
    for bad in ({}, {"num_samples": n, "z": z}):
        try:
            flow.sample(c, **bad)
        except ValueError as err:
            _expect("exactly one" in str(err), f"unexpected message: {err}")
        else:
            raise AssertionError(f"sample(context, **{bad}) must raise ValueError")
    if flow.coupling != "additive":
        return
    mode = flow.sample(c, z=torch.zeros(b, 1, flow.features, dtype=torch.float64))
    nearby = mode.x + 0.05 * torch.randn(b, 16, flow.features, dtype=torch.float64)
    _expect((flow.log_prob(nearby, c).log_prob < mode.log_prob).all(), "z = 0 is not the mode")


def _check_shared_context(flow: ConditionalGlow, b: int, n: int, seed: int) -> None:
    """Shared context + cached LU (float32) equals per-row context without cache."""
    flow = flow.float()
    _, xs, c = _data(flow, b, n, seed, torch.float32)
    z = torch.randn(b, n, flow.features)
    c_rows = c.repeat_interleave(n, dim=0)
    d = flow.features

    def plain_sample() -> tuple[Tensor, Tensor]:
        out = flow.sample(c_rows, z=z.reshape(b * n, 1, d))
        return out.x.view(b, n, d), out.log_prob.view(b, n)

    def plain_log_prob() -> tuple[Tensor, Tensor]:
        lp, zz = flow.log_prob(xs.reshape(b * n, d), c_rows)
        return lp.view(b, n), zz.view(b, n, d)

    def close(actual: Tensor, expected: Tensor) -> None:
        scale = max(1.0, float(expected.detach().abs().max()))
        assert_close(actual, expected.detach(), atol=SHARED_PATH_TOL * scale, rtol=0)

    flow.eval()
    with torch.enable_grad():  # parameters require grad: no LU cache, per-row context
        expected_sample, expected_lp = plain_sample(), plain_log_prob()
    with torch.no_grad():  # cached LU, shared context
        fast = flow.sample(c, z=z)
        fast_lp = flow.log_prob(xs, c)
    close(fast.x, expected_sample[0])
    close(fast.log_prob, expected_sample[1])
    close(fast_lp.log_prob, expected_lp[0])
    close(fast_lp.z, expected_lp[1])

    # training mode: same rows in each batch-norm batch, same dropout draws (same seed)
    flow.train()
    state = {k: v.clone() for k, v in flow.state_dict().items()}
    with _seeded(seed):
        expected = plain_sample()
    stats_plain = {k: v.clone() for k, v in flow.state_dict().items() if "running" in k}
    flow.load_state_dict(state)
    with _seeded(seed):
        fast = flow.sample(c, z=z)
    close(fast.x, expected[0])
    close(fast.log_prob, expected[1])
    for k, v in stats_plain.items():
        close(flow.state_dict()[k], v)
    flow.load_state_dict(state)
    with _seeded(seed):
        expected = plain_log_prob()
    with _seeded(seed):
        fast_lp = flow.log_prob(xs, c)
    close(fast_lp.log_prob, expected[0])
    close(fast_lp.z, expected[1])
    flow.load_state_dict(state)
    flow.double().eval()


def _check_lu_cache_invalidation(
    flow: ConditionalGlow, make_flow: MakeFlow, b: int, n: int, seed: int
) -> None:
    flow.eval()
    _, _, c = _data(flow, b, n, seed, torch.float64)
    z = torch.randn(b, n, flow.features, dtype=torch.float64)

    def uncached() -> Tensor:
        with torch.enable_grad():
            return flow.sample(c, z=z).x.detach()

    def cached() -> Tensor:
        with torch.no_grad():
            return flow.sample(c, z=z).x

    before = cached()
    lus = [t for t in flow._transform._transforms if isinstance(t, LULinear)]
    _expect(all(t._lu_cache is not None for t in lus), "eval-mode no-grad sampling must cache LU")
    assert_close(before, uncached(), atol=1e-9, rtol=1e-9)
    xs = torch.randn(b, n, flow.features, dtype=torch.float64)
    flow.log_prob(xs, c).log_prob.sum().backward()  # an eval-mode optimiser step: its loss...
    _expect(all(t._lu_cache is None for t in lus), "a call recording gradients must drop it")
    flow.zero_grad(set_to_none=True)
    with torch.no_grad():  # ... and the in-place update
        for t in lus:
            t.lower_entries.add_(0.05)
            t.unconstrained_upper_diag.sub_(0.1)
    after = cached()
    _expect(not torch.allclose(after, before), "the LU cache was not invalidated by a step")
    assert_close(after, uncached(), atol=1e-9, rtol=1e-9)

    other = make_flow(flow.features, flow.context_features).double()
    perturb_parameters(other, generator=torch.Generator().manual_seed(seed + 7))
    cached()  # fill the cache again, then load other parameters
    flow.load_state_dict(other.state_dict())
    other.eval()
    with torch.no_grad():
        assert_close(cached(), other.sample(c, z=z).x, atol=1e-9, rtol=1e-9)
    flow.train()
    _expect(all(t._lu_cache is None for t in lus), "train() must clear the LU cache")
    flow.eval()


def _check_original_layout(
    flow: ConditionalGlow, make_flow: MakeFlow, b: int, n: int, seed: int
) -> None:
    flow.eval()
    expected = original_flow_state_dict_shapes(
        features=flow.features,
        context_features=flow.context_features,
        hidden_features=flow.hidden_features,
        num_layers=flow.num_layers,
        num_blocks_per_layer=flow.num_blocks_per_layer,
        use_batch_norm=flow.use_batch_norm,
        coupling=flow.coupling,
    )
    actual = {k: tuple(v.shape) for k, v in flow.state_dict().items()}
    _expect(
        set(actual) == set(expected),
        f"state-dict keys differ from the original's: missing {sorted(set(expected) - set(actual))}"
        f", extra {sorted(set(actual) - set(expected))}",
    )
    _expect(actual == expected, "state-dict shapes differ from the original's")
    original = with_dummy_buffers(flow.state_dict())
    _expect(
        len(original) == len(expected) + 1 + 3 * flow.num_layers,
        "with_dummy_buffers must add 1 + 3·L keys",
    )
    fresh = make_flow(flow.features, flow.context_features).double()
    report = load_original_state_dict(fresh, original)
    _expect(
        len(report.dropped_keys) == 1 + 3 * flow.num_layers,
        "load_original_state_dict must drop the 1 + 3·L dummy buffers",
    )
    fresh.eval()
    _, xs, c = _data(flow, b, n, seed, torch.float64)
    _expect(
        torch.equal(fresh.log_prob(xs, c).log_prob, flow.log_prob(xs, c).log_prob),
        "an original-layout state dict loads but gives different log-densities",
    )
    for broken, word in (
        ({k: v for k, v in original.items() if not k.endswith("final_layer.bias")}, "missing"),
        ({**original, "_transform._transforms.0.extra": torch.zeros(1)}, "unexpected"),
    ):
        try:
            load_original_state_dict(fresh, broken)
        except ValueError as err:
            _expect(word in str(err), f"expected '{word}' in the message: {err}")
        else:
            raise AssertionError(f"a state dict with {word} keys must raise ValueError")


def check_flow(
    make_flow: MakeFlow,
    *,
    features: int,
    context_features: int,
    batch_size: int = 5,
    num_samples: int = 3,
    seed: int = 0,
    check_jacobian: bool = True,
) -> None:
    """Run the battery (module docstring) on flows built by `make_flow(features, context)`.

    Args:
        make_flow: builds a new ConditionalGlow (any options) for the given sizes.
        features: D (keep small: the Jacobian check is D × D).
        context_features: C.
        batch_size: B of the test data (>= 2 so training-mode batch norm works).
        num_samples: N of the test data.
        seed: seeds parameters and data.
        check_jacobian: include the autograd-Jacobian check (cost grows with D).

    Raises:
        AssertionError: naming the property that failed.
    """
    b, n = batch_size, num_samples
    flow = _build(make_flow, features, context_features, seed, torch.float64)
    _check_shapes(flow, b, n, seed)
    _check_actnorm_initialisation(make_flow, features, context_features, seed)
    _check_round_trip(flow, b, n, seed)
    if check_jacobian:
        _check_log_det(flow, seed)
    _check_sample_consistency(flow, b, n, seed)
    _check_gradients(flow, b, n, seed)
    flow = _build(make_flow, features, context_features, seed, torch.float64)
    _check_state_dict_round_trip(flow, make_flow, b, n, seed)
    _check_determinism_and_mode(flow, b, n, seed)
    _check_shared_context(flow, b, n, seed)
    flow = _build(make_flow, features, context_features, seed, torch.float64)
    _check_lu_cache_invalidation(flow, make_flow, b, n, seed)
    flow = _build(make_flow, features, context_features, seed, torch.float64)
    _check_original_layout(flow, make_flow, b, n, seed)


def check_density_integrates(
    make_flow: MakeFlow, *, context_features: int, seed: int = 0, grid_size: int = 400
) -> None:
    """∫ p(x | c) dx = 1 for a 2-D flow with random parameters (grid quadrature, eval mode).

    The grid covers the samples' range with a wide margin; the integral must be within 1e-2.
    """
    flow = _build(make_flow, 2, context_features, seed, torch.float64).eval()
    c = torch.randn(1, context_features, generator=torch.Generator().manual_seed(seed + 3))
    c = c.double()
    with torch.no_grad():
        samples = flow.sample(c, 4000, generator=torch.Generator().manual_seed(seed)).x[0]
        low, high = samples.min(0).values, samples.max(0).values
        span = high - low
        low, high = low - 1.5 * span, high + 1.5 * span
        axes = [
            torch.linspace(lo, hi, grid_size, dtype=torch.float64)
            for lo, hi in zip(low, high, strict=True)
        ]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(1, -1, 2)
        density = flow.log_prob(grid, c).log_prob.exp()
        cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
        integral = float(density.sum() * cell)
    _expect(abs(integral - 1.0) < 1e-2, f"the density integrates to {integral:.4f}, not 1")


def check_learns_gaussian(
    make_flow: MakeFlow,
    *,
    features: int = 3,
    context_features: int = 4,
    steps: int = 300,
    seed: int = 0,
) -> None:
    """A short maximum-likelihood fit to a correlated Gaussian reproduces its moments.

    Data x = μ + A·ε (ε standard normal, random context ignored by the target); after `steps`
    Adam steps (batch 256, training mode, ActNorm initialised by the first batch) the eval-mode
    samples' mean and covariance must match μ and A·Aᵀ (mean within 0.15, covariance within
    0.15 + 15 % of its entries' scale), and the model's mean log p on held-out data must be within
    0.2 nats of the true one.
    """
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(features, generator=g)
    a = torch.randn(features, features, generator=g) * 0.6 + torch.eye(features)
    cov = a @ a.T
    with _seeded(seed):
        flow = make_flow(features, context_features)
    optimiser = torch.optim.Adam(flow.parameters(), lr=5e-3)
    flow.train()
    with _seeded(seed):
        for _ in range(steps):
            x = mu + torch.randn(256, features, generator=g) @ a.T
            c = torch.randn(256, context_features, generator=g)
            loss = -flow.log_prob(x, c).log_prob.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    flow.eval()
    with torch.no_grad():
        c = torch.randn(8, context_features, generator=g)
        x = flow.sample(c, 1000, generator=g).x.reshape(-1, features)
        mean, sample_cov = x.mean(0), torch.cov(x.T)
        held_out = mu + torch.randn(8, 512, features, generator=g) @ a.T
        model_lp = flow.log_prob(held_out, c).log_prob.mean()
        true_lp = torch.distributions.MultivariateNormal(mu, cov).log_prob(held_out).mean()
    cov_tol = 0.15 + 0.15 * cov.abs().max()
    _expect((mean - mu).abs().max() < 0.15, f"sample mean {mean} differs from {mu}")
    _expect((sample_cov - cov).abs().max() < cov_tol, f"sample covariance {sample_cov} != {cov}")
    _expect(
        abs(float(model_lp - true_lp)) < 0.2, f"mean log p {model_lp:.3f} vs true {true_lp:.3f}"
    )
