"""Benchmark of pose-flows' ConditionalGlow against a straightforward nflows composition.

At ProHMR's sizes (D = 144, 4 layers, hidden 1024, 2 residual blocks, context 2048, additive
coupling, dropout 0.5, batch norm) it measures, with the same weights in both:

1. sampling 4096 latents for ONE context (eval mode, no grad): the workload of best-of-4096
   evaluation;
2. sampling 64 latents for each of 64 contexts (eval mode, no grad): validation's
   NUM_TEST_SAMPLES = 64 at batch 64;
3. log_prob of a batch of 64 (one sample per context) in training mode, forward + backward
   (gradients for the flow and the context): the NLL term of a training step;

by path: the baseline below; pose-flows in plain fp32 eager, which is also the default (no
option changes sampling); and bf16 coupling networks (``inference_dtype``, eval mode only, so
cases 1-2), only where the CPU has native bf16 (``--bf16-emulated`` times it anyway). The
baseline is built here from the same PyPI nflows parts: `nflows.flows.Flow` with a
`CompositeTransform` of nflows' ActNorm, LULinear (no cache: two triangular solves per inverse)
and AdditiveCouplingTransform whose conditioner concatenates the context to every row (the
context repeated N times, as the fork's Flow does). Outputs are compared (x, log p and z within
1e-5 of their scale in float32; the training-mode case with identical dropout draws).

Usage:
    python tools/bench_flows.py            # full run (one to two minutes on 2 cores)
    python tools/bench_flows.py --quick    # smoke run: fewer repeats, 1024 samples
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import torch
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.base import CompositeTransform
from nflows.transforms.coupling import AdditiveCouplingTransform
from nflows.transforms.lu import LULinear as NflowsLULinear
from nflows.transforms.normalization import ActNorm as NflowsActNorm
from pipeline.bench import bf16_path, machine_line, print_table, timed_paths
from torch import Tensor, nn
from torch.nn import functional as F

from pose_flows import ConditionalGlow
from pose_flows.testing import perturb_parameters

FEATURES, CONTEXT, HIDDEN, LAYERS, BLOCKS = 144, 2048, 1024, 4, 2


class PlainBlock(nn.Module):
    """The fork's residual block (same names), written plainly for the baseline."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.batch_norm_layers = nn.ModuleList([nn.BatchNorm1d(features) for _ in range(2)])
        self.linear_layers = nn.ModuleList([nn.Linear(features, features) for _ in range(2)])
        self.dropout = nn.Dropout(0.5)

    def forward(self, h: Tensor) -> Tensor:
        t = self.linear_layers[0](F.relu(self.batch_norm_layers[0](h)))
        t = self.linear_layers[1](self.dropout(F.relu(self.batch_norm_layers[1](t))))
        return h + t


class PlainConditioner(nn.Module):
    """initial_layer(cat(x_I, c)) -> blocks -> final_layer; the context is a (M, C) tensor."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.initial_layer = nn.Linear(in_features + CONTEXT, HIDDEN)
        self.blocks = nn.ModuleList([PlainBlock(HIDDEN) for _ in range(BLOCKS)])
        self.final_layer = nn.Linear(HIDDEN, out_features)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        h = self.initial_layer(torch.cat((x, context), dim=1))
        for block in self.blocks:
            h = block(h)
        return self.final_layer(h)


def build_baseline() -> Flow:
    mask = torch.ones(FEATURES)
    mask[::2] = -1
    transforms: list[nn.Module] = []
    for _ in range(LAYERS):
        transforms += [
            NflowsActNorm(FEATURES),
            NflowsLULinear(FEATURES),
            AdditiveCouplingTransform(mask, PlainConditioner),
        ]
        mask = -mask
    return Flow(CompositeTransform(transforms), StandardNormal([FEATURES]))


def baseline_sample(flow: Flow, context: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
    """The fork's sampling with given noise: repeat the context per sample, invert, log p."""
    b, n, d = z.shape
    rows = z.reshape(b * n, d)
    x, logabsdet = flow._transform.inverse(rows, context=context.repeat_interleave(n, dim=0))
    log_prob = flow._distribution.log_prob(rows) - logabsdet
    return x.view(b, n, d), log_prob.view(b, n)


def baseline_log_prob(flow: Flow, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
    z, logabsdet = flow._transform(x, context=context)
    return flow._distribution.log_prob(z) + logabsdet, z


def max_scaled_error(actual: Tensor, expected: Tensor) -> float:
    scale = max(1.0, float(expected.abs().max()))
    return float((actual.detach() - expected.detach()).abs().max()) / scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--bf16-emulated", action="store_true", help="time bf16 without native")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    num_samples = 1024 if args.quick else 4096
    repeats = 2 if args.quick else 7
    device = torch.device("cpu")
    run_bf16, bf16_line = bf16_path(device, args.bf16_emulated)

    ours = ConditionalGlow(
        features=FEATURES,
        context_features=CONTEXT,
        hidden_features=HIDDEN,
        num_layers=LAYERS,
        num_blocks_per_layer=BLOCKS,
    )
    perturb_parameters(ours, generator=torch.Generator().manual_seed(0))
    baseline = build_baseline()
    baseline.load_state_dict(ours.state_dict(), strict=True)
    low = copy.deepcopy(ours)
    for conditioner in low.conditioners:
        conditioner.inference_dtype = torch.bfloat16
    g = torch.Generator().manual_seed(1)
    print(f"# pose-flows benchmark; {machine_line(device)}; {repeats} rotating rounds")
    print(f"ConditionalGlow D={FEATURES}, L={LAYERS}, H={HIDDEN}, K={BLOCKS}, C={CONTEXT}")
    errors = []

    # 1-2: sampling in eval mode
    for module in (ours, baseline, low):
        module.eval()
    for b, n in ((1, num_samples), (64, 64)):
        context = torch.randn(b, CONTEXT, generator=g)
        z = torch.randn(b, n, FEATURES, generator=g)
        with torch.no_grad():
            plain = ours.sample(context, z=z)
            x_ref, lp_ref = baseline_sample(baseline, context, z)
            errors.append(
                (
                    f"sample B={b} N={n}",
                    max_scaled_error(plain.x, x_ref),
                    max_scaled_error(plain.log_prob, lp_ref),
                )
            )
            paths: list[tuple[str, Callable[[], object]]] = [
                ("nflows baseline", lambda c=context, z=z: baseline_sample(baseline, c, z)),
                ("plain fp32 eager = default", lambda c=context, z=z: ours.sample(c, z=z)),
            ]
            if run_bf16:
                paths.append(("bf16 coupling networks", lambda c=context, z=z: low.sample(c, z=z)))
            print_table(f"sample {n} x {b} context(s), eval", timed_paths(paths, repeats))

    # 3: log_prob, training mode, forward + backward (the flow trains in float32)
    ours.train()
    baseline.train()
    x = torch.randn(64, FEATURES, generator=g) * 0.5
    context = torch.randn(64, CONTEXT, generator=g).requires_grad_(True)
    state = {k: v.clone() for k, v in ours.state_dict().items()}
    with torch.random.fork_rng():
        torch.manual_seed(5)
        lp_ref, z_ref = baseline_log_prob(baseline, x, context)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        lp, z = ours.log_prob(x, context)
    errors.append(("log_prob B=64 train", max_scaled_error(z, z_ref), max_scaled_error(lp, lp_ref)))
    ours.load_state_dict(state)
    baseline.load_state_dict(state)

    def step(module: nn.Module, fn: Callable[[], Tensor]) -> None:
        module.zero_grad(set_to_none=True)
        context.grad = None
        (-fn().mean()).backward()

    def baseline_step() -> None:
        step(baseline, lambda: baseline_log_prob(baseline, x, context)[0])

    def our_step() -> None:
        step(ours, lambda: ours.log_prob(x, context).log_prob)

    paths = [("nflows baseline", baseline_step), ("plain fp32 eager = default", our_step)]
    print_table("log_prob 64, train, fwd+bwd", timed_paths(paths, 3 * repeats))
    print("\n| check | max error x or z (/scale) | max error log p (/scale) |")
    print("|---|---:|---:|")
    for name, ex, elp in errors:
        print(f"| {name} | {ex:.2e} | {elp:.2e} |")
    ok_equal = all(ex <= 1e-5 and elp <= 1e-5 for _, ex, elp in errors)
    print(f"\noutputs equal (<= 1e-5 of scale): {'yes' if ok_equal else 'NO'}")
    print(bf16_line)


if __name__ == "__main__":
    main()
