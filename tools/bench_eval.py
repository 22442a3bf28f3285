"""Benchmark: best-of-4096 evaluation of one image, by path, in one process.

Every path runs the published model sizes (ResNet-50 backbone, flow D 144 / 4 layers / hidden
1024, context 2048) with the same weights and the same latents z:

- straightforward: backbone -> a plain nflows composition (context repeated for every sample,
  LU solves at each call; built by tools/bench_flows.py) -> the full smplx-style forward (all
  6890 vertices, then the joint regressors) -> batched PA-MPJPE; the stand-in for the
  original code, which is not available here;
- plain fp32 eager: this project's model (context term once per image, LU inverses cached in
  eval mode, pose-body's joints-only skinning), float32, contiguous backbone layout;
- default: what ``tools/eval_regression.py`` runs with no option (the layout ``build_prohmr``
  gives the backbone);
- compiled (``--compile``): the default with ``torch.compile(model.decode)`` at the call site;
- bf16: ``precision=bf16`` (backbone and coupling networks under bf16 autocast), only where the
  device has native bf16 (``--bf16-emulated`` times it anyway).

The 44 keypoints and the min PA-MPJPE of each path are compared with the straightforward one.
The body model is pose-body's procedural model (6890 vertices, SMPL's layout), so the cost
equals the real SMPL's. The paths run in rotating rounds (pipeline.bench.timed_paths).

    python tools/bench_eval.py [--samples 4096] [--repeats 5] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import sys

import torch
from bench_flows import baseline_sample, build_baseline
from pipeline.bench import bf16_path, machine_line, print_table, timed_paths
from pipeline.config import ModelConfig

import pose_geometry as pg
import pose_metrics as pm
from pose_body import BodyModel
from pose_flows.testing import perturb_parameters
from prohmr_model.model import build_prohmr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk", type=int, default=1024, help="samples per body-model call")
    parser.add_argument("--compile", action="store_true", help="add the compiled path")
    parser.add_argument("--bf16-emulated", action="store_true", help="time bf16 without native")
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
    plain = copy.deepcopy(model)
    plain.backbone.to(memory_format=torch.contiguous_format)
    image = torch.randn(1, 3, 224, 224, device=device)
    z = torch.randn(1, args.samples, 144, device=device)
    z[:, 0] = 0  # sample 0 = the mode
    target = 0.3 * torch.randn(1, 44, 3, device=device)
    joints = list(pg.LSP14_IDX_44)

    def ours(net, decode=None):
        decode = decode or net.decode

        @torch.no_grad()
        def run() -> tuple[torch.Tensor, torch.Tensor]:
            features = net.features(image)
            keypoints = decode(features, num_samples=args.samples, z=z).keypoints_3d
            result = pm.best_of_n(keypoints, target, root_idx=pg.PELVIS_IDX_44, joint_idx=joints)
            return keypoints, result.min_pa_mpjpe

        return run

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

    paths = [
        ("straightforward (nflows, full body forward)", straightforward),
        ("plain fp32 eager", ours(plain)),
        ("default", ours(model)),
    ]
    if args.compile:
        paths.append(
            ("compiled (torch.compile of decode)", ours(model, torch.compile(model.decode)))
        )
    run_bf16, bf16_line = bf16_path(device, args.bf16_emulated)
    if run_bf16:
        low = copy.deepcopy(model)
        low.set_precision("bf16", allow_emulated=True)
        paths.append(("bf16", ours(low)))
    header = f"# best-of-{args.samples}, one image; {machine_line(device)}"
    timings = timed_paths(paths, args.repeats, device=device)
    print_table(header, timings)
    reference_keypoints, _ = straightforward()
    print("\n| path | max abs keypoint difference (m) | min PA-MPJPE (mm) |")
    print("|---|---:|---:|")
    for name, fn in paths:
        keypoints, error = fn()
        difference = float((keypoints - reference_keypoints).abs().max())
        print(f"| {name} | {difference:.2e} | {float(error):.2f} |")
    print(bf16_line)
    return 0


def _betas(model, features: torch.Tensor) -> torch.Tensor:
    """(1, 10) the FC head's betas for this image."""
    head = model.flow(features, 1, z=torch.zeros(1, 1, 144, device=features.device))
    return head.betas[:, 0]


if __name__ == "__main__":
    sys.exit(main())
