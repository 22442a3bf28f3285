"""Benchmark: one ProHMR training step at the published model sizes; seconds and peak memory.

One step = generator forward with mode + 1 sample, every loss of docs/training.md,
backward and AdamW step, then the discriminator step on a mocap batch of 2 x batch. Published
sizes: ResNet-50 at 224 px, flow D 144 / 4 layers / hidden 1024 / 2 blocks, FC head 1024; the
body model is pose-body's procedural model (SMPL's 6890-vertex layout; keypoints through the
joints-only path, as training uses). Inputs are random tensors shaped like a real batch.

Each configuration runs in a fresh subprocess so its peak memory is its own: peak RSS on CPU
(``ru_maxrss``), peak allocated memory on CUDA (AMP covers the backbone; flow and body in fp32).

    python tools/bench_train.py                       # CPU, batch 32, 2 threads
    python tools/bench_train.py --device cuda --batch 64 --amp
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch


def one_config(batch: int, device_name: str, amp: bool, steps: int, threads: int) -> dict:
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
    model.initialized.fill_(True)
    # Trained-looking flow weights, ActNorm layers marked initialised (sampling refuses others).
    perturb_parameters(model.flow.flow, generator=torch.Generator().manual_seed(0))
    discriminator = pl.PoseDiscriminator().to(device)
    opt_gen = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    opt_disc = torch.optim.AdamW(discriminator.parameters(), lr=1e-4, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
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
            generator=generator, autocast=amp,
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
        "amp": amp,
        "seconds_per_step_best": min(times),
        "seconds_per_step_mean": sum(times) / len(times),
        "peak_memory_gib": peak,
        "memory_kind": "CUDA max allocated" if device.type == "cuda" else "peak RSS",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_config(args.batch, args.device, args.amp, args.steps, args.threads)))
        return 0
    configs = [(args.batch, args.amp)]
    if args.device.startswith("cuda") and args.amp:
        configs.append((args.batch, False))  # the fp32 reference for the AMP ratio
    rows = []
    for batch, amp in configs:
        command = [
            sys.executable, __file__, "--child", "--batch", str(batch), "--device", args.device,
            "--steps", str(args.steps), "--threads", str(args.threads),
        ] + (["--amp"] if amp else [])  # fmt: skip
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print(
        f"# ProHMR training step, published sizes; {platform.machine()}, "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    print("| batch | device | AMP | s/step (best) | s/step (mean) | peak memory (GiB) |")
    print("|---:|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['batch']} | {row['device']} | {row['amp']} | "
            f"{row['seconds_per_step_best']:.2f} | {row['seconds_per_step_mean']:.2f} | "
            f"{row['peak_memory_gib']:.2f} ({row['memory_kind']}) |"
        )
    if len(rows) == 2:
        ratio = rows[1]["seconds_per_step_best"] / rows[0]["seconds_per_step_best"]
        print(f"AMP speed-up: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
