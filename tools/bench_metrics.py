"""Benchmark of pose-metrics' evaluation workloads on this machine's CPU (or a chosen device).

Measures, with synthetic data in the 44-keypoint layout (metres):

1. best-of-4096 PA-MPJPE (and MPJPE) on the 14 LSP joints for one image: `best_of_n`;
2. the same for a batch of 64 images;
3. k-means quantisation of 4096 samples to 25 hypotheses plus best-of-25
   (`kmeans_best_of_k`), for one image and for 64;

and, for 1 and 2, a straightforward per-sample NumPy loop (centre, 3x3 SVD, rotation, scale,
error; float64) measured in the same run on a subset of the samples and extrapolated linearly to
the full workload. The two implementations' PA-MPJPE values are compared on that subset.

Usage:
    python tools/bench_metrics.py            # full run (a minute or two on 2 cores)
    python tools/bench_metrics.py --quick    # smoke run: fewer repeats, smaller NumPy subset
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from pose_geometry import LSP14_IDX_44, PELVIS_IDX_44
from pose_metrics import best_of_n, kmeans_best_of_k

T = TypeVar("T")
NUM_SAMPLES = 4096
NUM_CLUSTERS = 25
TARGET_ONE_IMAGE_MS = 50.0


def synthetic_batch(
    num_images: int, num_samples: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 44, 3) samples around (B, 44, 3) ground truth, float32 metres."""
    g = torch.Generator().manual_seed(seed)
    gt = 0.3 * torch.randn(num_images, 44, 3, generator=g)
    samples = gt[:, None] + 0.05 * torch.randn(num_images, num_samples, 44, 3, generator=g)
    return samples, gt


def numpy_loop_pa_mpjpe(samples: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-sample loop: (B, n, 44, 3), (B, 44, 3) -> (B, n) PA-MPJPE in mm on LSP-14 (float64)."""
    idx = list(LSP14_IDX_44)
    out = np.empty(samples.shape[:2])
    for b in range(samples.shape[0]):
        target = gt[b, idx].astype(np.float64)
        mu_t = target.mean(0)
        Y = target - mu_t
        for n in range(samples.shape[1]):
            pred = samples[b, n, idx].astype(np.float64)
            mu_p = pred.mean(0)
            X = pred - mu_p
            U, S, Vt = np.linalg.svd(X.T @ Y)
            d = np.sign(np.linalg.det(Vt.T @ U.T))
            R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
            scale = (S[0] + S[1] + d * S[2]) / (X * X).sum()
            aligned = scale * X @ R.T + mu_t
            out[b, n] = np.linalg.norm(aligned - target, axis=-1).mean() * 1000.0
    return out


def timed(fn: Callable[[], T], repeats: int, sync: Callable[[], None]) -> tuple[float, float, T]:
    """Run `fn` once to warm up, then `repeats` times; return (median ms, min ms, last result)."""
    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per workload")
    parser.add_argument(
        "--numpy-subset", type=int, default=None, help="samples per image timed in the NumPy loop"
    )
    parser.add_argument("--batch", type=int, default=64, help="images in the batched workload")
    parser.add_argument("--device", default="cpu", help="torch device for pose-metrics (cpu, cuda)")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 7)
    subset = args.numpy_subset or (64 if args.quick else 512)
    km_repeats = 1 if args.quick else 3
    np_repeats = 1 if args.quick else 3
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    options = {"root_idx": PELVIS_IDX_44, "joint_idx": LSP14_IDX_44}

    samples, gt = synthetic_batch(args.batch, NUM_SAMPLES, seed=0)
    samples_dev, gt_dev = samples.to(device), gt.to(device)

    rows = []
    for num_images in (1, args.batch):
        s, t = samples_dev[:num_images], gt_dev[:num_images]
        med, best, _ = timed(lambda s=s, t=t: best_of_n(s, t, **options), repeats, sync)
        # NumPy loop on `subset` samples of (at most) 4 images, extrapolated to the workload.
        loop_images = min(num_images, 4)
        np_samples = samples[:loop_images, :subset].numpy()
        np_gt = gt[:loop_images].numpy()
        loop_ms, _, reference = timed(
            lambda a=np_samples, b=np_gt: numpy_loop_pa_mpjpe(a, b), np_repeats, lambda: None
        )
        per_sample_ms = loop_ms / (loop_images * subset)
        loop_total_ms = per_sample_ms * num_images * NUM_SAMPLES
        ours = best_of_n(samples[:loop_images, :subset], gt[:loop_images], **options)
        max_diff = float(np.abs(ours.sample_pa_mpjpe.double().numpy() - reference).max())
        factor = num_images * NUM_SAMPLES / (loop_images * subset)
        rows.append(
            (
                f"best-of-{NUM_SAMPLES} PA-MPJPE+MPJPE, 14 joints, {num_images} image(s)",
                med,
                best,
                f"{loop_total_ms:.0f}",
                f"{loop_total_ms / med:.0f}x",
                f"NumPy: {loop_images * subset} samples timed, x{factor:.0f}; "
                f"max abs diff {max_diff:.1e} mm",
            )
        )

    for num_images in (1, args.batch):
        s, t = samples_dev[:num_images], gt_dev[:num_images]

        def run(s=s, t=t):
            g = torch.Generator(device=device).manual_seed(0)
            return kmeans_best_of_k(s, t, num_clusters=NUM_CLUSTERS, generator=g, **options)

        med, best, result = timed(run, km_repeats, sync)
        rows.append(
            (
                f"k-means {NUM_SAMPLES}->{NUM_CLUSTERS} + best-of-{NUM_CLUSTERS}, "
                f"{num_images} image(s)",
                med,
                best,
                "-",
                "-",
                f"mean cluster size {result.cluster_sizes.float().mean():.0f}",
            )
        )

    print(f"pose-metrics benchmark ({'quick' if args.quick else 'full'} run)")
    print(
        f"device: {device}; torch {torch.__version__}; torch threads: {torch.get_num_threads()}; "
        f"numpy {np.__version__}; CPU: {platform.processor() or platform.machine()}; "
        f"repeats: {repeats} (k-means {km_repeats}, NumPy loop {np_repeats}) after one warm-up"
    )
    print()
    header = ("workload", "median ms", "min ms", "NumPy loop ms (extrapolated)", "speed-up", "note")
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---|")
    for name, med, best, loop, ratio, note in rows:
        print(f"| {name} | {med:.1f} | {best:.1f} | {loop} | {ratio} | {note} |")
    print()
    one_image = rows[0][1]
    verdict = "met" if one_image < TARGET_ONE_IMAGE_MS else "NOT met"
    print(
        f"target: best-of-{NUM_SAMPLES} PA-MPJPE for one image under {TARGET_ONE_IMAGE_MS:.0f} ms "
        f"-> {one_image:.1f} ms median: {verdict}"
    )
    print(
        "NumPy loop: float64, one np.linalg.svd per sample, median time on the subset noted, "
        "scaled linearly to the workload's sample count; speed-up = extrapolated loop median / "
        "pose-metrics median."
    )


if __name__ == "__main__":
    main()
