"""Benchmark: one ProHMR training step at the published model sizes; seconds and peak memory.

One step = generator forward with mode + 1 sample, every loss of docs/training.md,
backward and AdamW step, then the discriminator step on a mocap batch of 2 x batch. Published
sizes: ResNet-50 at 224 px, flow D 144 / 4 layers / hidden 1024 / 2 blocks, FC head 1024; the
body model is pose-body's procedural model (SMPL's 6890-vertex layout; keypoints through the
joints-only path, as training uses). Inputs are random tensors shaped like a real batch.

The paths, each in a fresh subprocess so its peak memory is its own (peak RSS on CPU,
``ru_maxrss``; peak allocated memory on CUDA):

- plain fp32 eager: float32, the backbone in the contiguous (NCHW) layout;
- default: what ``tools/train_prohmr.py`` runs with no option (float32, the layout
  ``build_prohmr`` gives the backbone);
- bf16: ``train.precision=bf16`` (backbone under bf16 autocast; flow, body and losses float32),
  only where the device has native bf16 (``--bf16-emulated`` times it anyway);
- fp16 (CUDA only): ``train.precision=fp16`` with the gradient scaler.

    python tools/bench_train.py                       # CPU, batch 32, 2 threads
    python tools/bench_train.py --device cuda --batch 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def one_config(
    batch: int, device_name: str, precision: str, contiguous: bool, steps: int, threads: int
) -> dict:
    from pipeline.config import ProHMRConfig
    from pipeline.prohmr_training import generator_step_losses

    import pose_geometry as pg
    import pose_losses as pl
    from pose_body import BodyModel
    from pose_flows.testing import perturb_parameters
    from prohmr_model.model import build_prohmr

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(device_name)
    config = ProHMRConfig()
    model = build_prohmr(
        config.model,
        body_model=BodyModel.procedural(),
        mean_betas=torch.zeros(10).numpy(),
        mean_camera=torch.tensor([0.9, 0.0, 0.0]).numpy(),
    ).to(device)
    if contiguous:
        model.backbone.to(memory_format=torch.contiguous_format)
    channels_last = model.backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    model.set_precision(precision, allow_emulated=True)
    model.initialized.fill_(True)
    # Trained-looking flow weights, ActNorm layers marked initialised (sampling refuses others).
    perturb_parameters(model.flow.flow, generator=torch.Generator().manual_seed(0))
    discriminator = pl.PoseDiscriminator().to(device)
    opt_gen = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    opt_disc = torch.optim.AdamW(discriminator.parameters(), lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    generator = torch.Generator(device=device).manual_seed(0)

    def batch_tensors() -> dict:
        pose = 0.2 * torch.randn(batch, 72, device=device)
        keypoints_2d = torch.rand(batch, 44, 3, device=device) - 0.5
        keypoints_2d[..., 2] = 1.0  # confidences
        keypoints_3d = torch.randn(batch, 44, 4, device=device)
        keypoints_3d[..., 3] = 1.0
        return {
            "img": torch.randn(batch, 3, 224, 224, device=device),
            "keypoints_2d": keypoints_2d,
            "keypoints_3d": keypoints_3d,
            "smpl_params": {
                "global_orient": pose[:, :3],
                "body_pose": pose[:, 3:],
                "betas": torch.randn(batch, 10, device=device),
            },
            "has_smpl_params": {
                k: torch.ones(batch, device=device) for k in ("global_orient", "body_pose", "betas")
            },
            "imgname": ["bench"] * batch,
        }

    data = batch_tensors()
    mocap_pose = 0.2 * torch.randn(2 * batch, 69, device=device)
    mocap_betas = torch.randn(2 * batch, 10, device=device)

    def step() -> None:
        model.train()
        combined, output = generator_step_losses(
            model, discriminator, data, config=config, num_samples=2, train=True,
            generator=generator,
        )  # fmt: skip
        opt_gen.zero_grad(set_to_none=True)
        scaler.scale(combined.total).backward()
        scaler.step(opt_gen)
        fake_pose = output.body_pose.reshape(-1, 23, 3, 3).detach()
        fake_betas = output.betas.reshape(-1, 10).detach()
        real_pose = pg.axis_angle_to_rotmat(mocap_pose.reshape(-1, 23, 3))
        scores = discriminator(
            torch.cat([fake_pose, real_pose]), torch.cat([fake_betas, mocap_betas])
        )
        loss = pl.lsgan_discriminator_loss(scores[len(fake_pose) :], scores[: len(fake_pose)])
        opt_disc.zero_grad(set_to_none=True)
        scaler.scale(0.0005 * loss).backward()
        scaler.step(opt_disc)
        scaler.update()

    step()  # warm-up (allocations, autotuning)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return {
        "batch": batch,
        "device": device_name,
        "precision": precision,
        "channels_last": channels_last,
        "seconds_per_step_best": min(times),
        "seconds_per_step_mean": sum(times) / len(times),
        "peak_memory_gib": peak,
        "memory_kind": "CUDA max allocated" if device.type == "cuda" else "peak RSS",
    }


def main(argv: list[str] | None = None) -> int:
    from pipeline.bench import bf16_path, machine_line

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16-emulated", action="store_true", help="time bf16 without native")
    parser.add_argument(
        "--child", nargs=2, metavar=("PRECISION", "CONTIGUOUS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        precision, contiguous = args.child[0], args.child[1] == "1"
        row = one_config(args.batch, args.device, precision, contiguous, args.steps, args.threads)
        print(json.dumps(row))
        return 0
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    run_bf16, bf16_line = bf16_path(device, args.bf16_emulated)
    paths = [("plain fp32 eager", "fp32", True), ("default", "fp32", False)]
    if run_bf16:
        paths.append(("bf16", "bf16", False))
    if device.type == "cuda":
        paths.append(("fp16", "fp16", False))
    print(f"# ProHMR training step, published sizes, batch {args.batch}; {machine_line(device)}")
    rows = []
    for name, precision, contiguous in paths:
        command = [
            sys.executable, __file__, "--child", precision, "1" if contiguous else "0",
            "--batch", str(args.batch), "--device", args.device, "--steps", str(args.steps),
            "--threads", str(args.threads),
        ]  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows.append((name, json.loads(output.strip().splitlines()[-1])))
    reference = rows[0][1]["seconds_per_step_best"]
    print(
        "| path | precision | channels-last | s/step (best) | s/step (mean) | speed-up vs "
        "plain (best) | peak memory (GiB) |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for name, row in rows:
        print(
            f"| {name} | {row['precision']} | {row['channels_last']} | "
            f"{row['seconds_per_step_best']:.2f} | {row['seconds_per_step_mean']:.2f} | "
            f"{reference / row['seconds_per_step_best']:.2f}x | "
            f"{row['peak_memory_gib']:.2f} ({row['memory_kind']}) |"
        )
    print(bf16_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
