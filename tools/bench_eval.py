"""Benchmark: best-of-4096 evaluation of one image, fast path vs a straightforward path.

Both paths run the published model sizes (ResNet-50 backbone, flow D 144 / 4 layers / hidden 1024,
context 2048) with the same weights and the same latents z, in one process:

- fast: backbone -> pose-flows sampling in eval mode (context contribution computed once per
  image, cached LU inverses) -> pose-body's joints-only skinning -> batched PA-MPJPE
  (pose-metrics);
- straightforward: backbone -> a plain nflows composition (context repeated for every sample,
  LU solves each call; built by tools/bench_flows.py) -> the full smplx forward (all 6890
  vertices, then the joint regressors) -> the same batched PA-MPJPE.

The 44 keypoints of the two paths are compared. The body model is pose-body's procedural model
(6890 vertices, SMPL's layout), so the cost equals the real SMPL's. The two paths run in
alternating rounds; the speed-up printed is the median over rounds of the per-round ratio (the
machine's speed drifts when it is shared), the times are each path's fastest round.

    python tools/bench_eval.py [--samples 4096] [--repeats 5] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable

import torch
from bench_flows import baseline_sample, build_baseline, timed_pair
from pipeline.config import ModelConfig

import pose_geometry as pg
import pose_metrics as pm
from pose_body import BodyModel
from pose_flows.testing import perturb_parameters
from prohmr_model.model import build_prohmr


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> tuple[float, object]:
    fn()  # warm-up
    best = float("inf")
    result = None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk", type=int, default=1024, help="samples per body-model call")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    body = BodyModel.procedural()
    model = build_prohmr(
        ModelConfig(),
        body_model=body,
        mean_betas=torch.zeros(10).numpy(),
        mean_camera=torch.tensor([0.9, 0.0, 0.0]).numpy(),
    ).eval()
    # A non-trivial flow: random trained-looking weights, ActNorm layers marked initialised.
    perturb_parameters(model.flow.flow, generator=torch.Generator().manual_seed(0))
    baseline = build_baseline()
    baseline.load_state_dict(model.flow.flow.state_dict())
    baseline.eval()
    model.to(device)
    baseline.to(device)
    image = torch.randn(1, 3, 224, 224, device=device)
    z = torch.randn(1, args.samples, 144, device=device)
    z[:, 0] = 0  # sample 0 = the mode
    target = 0.3 * torch.randn(1, 44, 3, device=device)
    joints = list(pg.LSP14_IDX_44)

    @torch.no_grad()
    def fast() -> tuple[torch.Tensor, torch.Tensor]:
        features = model.features(image)
        keypoints = model.decode(features, num_samples=args.samples, z=z).keypoints_3d
        result = pm.best_of_n(keypoints, target, root_idx=pg.PELVIS_IDX_44, joint_idx=joints)
        return keypoints, result.min_pa_mpjpe

    @torch.no_grad()
    def straightforward() -> tuple[torch.Tensor, torch.Tensor]:
        features = model.backbone(image)
        x, _ = baseline_sample(baseline, features, z)
        rotmats = pg.rot6d_to_rotmat(x.reshape(-1, 24, 6))
        betas = _betas(model, features)  # the FC head's, shared by all samples of the image
        chunks = []
        for start in range(0, len(rotmats), args.chunk):
            part = rotmats[start : start + args.chunk]
            output = body(
                global_orient=part[:, :1],
                body_pose=part[:, 1:],
                betas=betas.expand(len(part), -1),
            )
            chunks.append(output.keypoints)
        keypoints = torch.cat(chunks).reshape(1, args.samples, 44, 3)
        result = pm.best_of_n(keypoints, target, root_idx=pg.PELVIS_IDX_44, joint_idx=joints)
        return keypoints, result.min_pa_mpjpe

    k_plain, e_plain = straightforward()
    k_fast, e_fast = fast()
    if device.type == "cuda":
        t_plain, (k_plain, e_plain) = timed(straightforward, args.repeats, device)
        t_fast, (k_fast, e_fast) = timed(fast, args.repeats, device)
        ratio = t_plain / t_fast
    else:
        t_plain, t_fast, ratio = timed_pair(straightforward, fast, args.repeats)
        t_plain, t_fast = t_plain / 1e3, t_fast / 1e3
    difference = float((k_fast - k_plain).abs().max())
    print(
        f"# best-of-{args.samples}, one image; {platform.processor() or platform.machine()}, "
        f"{args.threads} threads, device {device}, torch {torch.__version__}"
    )
    print("| path | ms | speed-up |")
    print("|---|---:|---:|")
    print(f"| straightforward (plain nflows, full smplx forward) | {t_plain * 1e3:.0f} | 1.00x |")
    print(f"| fast (pose-flows, joints-only) | {t_fast * 1e3:.0f} | {ratio:.2f}x |")
    print(
        f"max |keypoints fast - straightforward| = {difference:.2e} m; "
        f"min PA-MPJPE {float(e_fast):.2f} vs {float(e_plain):.2f} mm"
    )
    return 0


def _betas(model, features: torch.Tensor) -> torch.Tensor:
    """(1, 10) the FC head's betas for this image."""
    head = model.flow(features, 1, z=torch.zeros(1, 1, 144, device=features.device))
    return head.betas[:, 0]


if __name__ == "__main__":
    sys.exit(main())
