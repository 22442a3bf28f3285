"""Benchmark of pose-body: joints-only fast path vs the full smplx forward; the renderer.

Measures, in one run on this machine (torch threads fixed, default 2):

1. 4096 samples of random poses (rotation matrices, as ProHMR passes them) and shapes:
   `BodyModel.keypoints_only` (44 keypoints + 24 SMPL joints + 17 H36M joints) against
   `BodyModel.forward` (smplx's full forward: 6890 vertices, then the same joints), on
   a. the procedural body model as it ships (sparse skinning weights, zero pose blend shapes);
   b. an SMPL-like variant of it: every vertex skinned by about 4 nearby bones and random
      non-zero pose blend shapes, so that the work per keypoint is about what a real SMPL model
      costs;
2. the same at batch 64 (a fitting step), forward and backward;
3. the software renderer: one posed body, 224x224, smooth and flat shading, 2x supersampling,
   and a front + side pair.

The full forward runs in chunks (default 1024 samples) to bound its memory (a single 4096 batch
needs several GB for smplx's per-vertex 4x4 transforms); the chunk size is printed. The fast
path runs the 4096 samples in one call. Both paths' keypoints are compared in the same run.

Usage:
    python tools/bench_body.py            # full run (about a minute on 2 cores)
    python tools/bench_body.py --quick    # smoke run: fewer repeats
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

from pose_body import (
    BodyModel,
    Mesh,
    SMPLModelData,
    procedural_body_model,
    render_meshes,
    side_view,
)
from pose_geometry import axis_angle_to_rotmat
from pose_geometry.testing import random_rotmat

T = TypeVar("T")
NUM_SAMPLES = 4096
TARGET_RATIO = 15.0
TARGET_RENDER_MS = 100.0


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, float, T]:
    """Run `fn` once to warm up, then `repeats` times; return (median ms, min ms, last result)."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), min(times), result


def smpl_like(model: SMPLModelData, seed: int) -> SMPLModelData:
    """The procedural model with SMPL-like skinning and dense random pose blend shapes.

    Every vertex keeps its bone(s) and gains small weights on the parent, one child and the
    grandparent of its main bone (about 4 nearby influences per vertex, as in artist-style
    skinning), so that each keypoint depends on about as many bones as with a real model.
    """
    rng = np.random.default_rng(seed)
    weights = np.array(model.weights)
    parents = model.parents
    children: dict[int, list[int]] = {j: [] for j in range(24)}
    for j in range(1, 24):
        children[int(parents[j])].append(j)
    main = weights.argmax(1)
    for v, k in enumerate(main):
        parent = max(int(parents[k]), 0)
        near = [parent, max(int(parents[parent]), 0), *children[int(k)][:1]]
        weights[v, near] += 0.02 + 0.08 * rng.random(len(near))
    weights /= weights.sum(1, keepdims=True)
    return SMPLModelData(
        v_template=model.v_template,
        shapedirs=model.shapedirs,
        posedirs=0.005 * rng.standard_normal(model.posedirs.shape),
        J_regressor=model.J_regressor,
        weights=weights,
        kintree_table=model.kintree_table,
        faces=model.faces,
    )


def inputs(num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    root = random_rotmat(num, generator=g)
    body = axis_angle_to_rotmat(0.5 * torch.randn(num, 23, 3, generator=g))
    betas = torch.randn(num, 10, generator=g)
    return root, body, betas


def full_forward(model: BodyModel, root, body, betas, chunk: int) -> torch.Tensor:
    outs = []
    for i in range(0, len(root), chunk):
        part = slice(i, i + chunk)
        outs.append(
            model(global_orient=root[part], body_pose=body[part], betas=betas[part]).keypoints
        )
    return torch.cat(outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer repeats")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--chunk", type=int, default=1024, help="samples per full-forward call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    render_repeats = 5 if args.quick else 20

    start = time.perf_counter()
    body = procedural_body_model.__wrapped__()  # uncached: time the build
    build_ms = (time.perf_counter() - start) * 1000.0
    variants = {
        "procedural model": body.model,
        "SMPL-like weights + posedirs": smpl_like(body.model, seed=0),
    }
    root, pose, betas = inputs(NUM_SAMPLES, seed=1)
    rows = []
    ratios = {}
    for label, model_data in variants.items():
        model = BodyModel(
            model_data, extra_regressor=body.extra_regressor, h36m_regressor=body.h36m_regressor
        )
        with torch.no_grad():
            full_med, full_min, full_kp = timed(
                lambda m=model: full_forward(m, root, pose, betas, args.chunk), repeats
            )
            fast_med, fast_min, fast_out = timed(
                lambda m=model: m.keypoints_only(global_orient=root, body_pose=pose, betas=betas),
                repeats,
            )
        diff = (full_kp - fast_out.keypoints).abs().max().item()
        ratios[label] = (full_med / fast_med, full_min / fast_min)
        note = (
            f"{model.fast.num_used_vertices} vertices read, {model.fast.num_pairs} (point, bone) "
            f"pairs; max |diff| {diff:.1e} m"
        )
        rows.append(
            (f"{NUM_SAMPLES} samples, {label}", full_med, full_min, fast_med, fast_min, note)
        )

        # A fitting-sized batch, forward and backward through the keypoints.
        small = (root[:64], pose[:64].clone(), betas[:64].clone())

        def step(path: str, m: BodyModel = model, small: tuple = small) -> None:
            p = small[1].clone().requires_grad_()
            b = small[2].clone().requires_grad_()
            fn = m.forward if path == "full" else m.keypoints_only
            fn(global_orient=small[0], body_pose=p, betas=b).keypoints.square().sum().backward()

        f_med, f_min, _ = timed(lambda: step("full"), repeats)
        k_med, k_min, _ = timed(lambda: step("fast"), repeats)
        rows.append((f"64 samples fwd+bwd, {label}", f_med, f_min, k_med, k_min, "fitting step"))

    # Renderer: one posed body in a 224 x 224 crop (ProHMR's camera: f = 5000 px).
    model = BodyModel(body.model, extra_regressor=body.extra_regressor)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    with torch.no_grad():
        out = model(
            global_orient=flip @ root[0],
            body_pose=pose[0],
            betas=betas[0],
            transl=torch.tensor([0.0, 0.2, 2 * 5000 / (224 * 0.8)]),
        )
    mesh = Mesh(out.vertices, model.faces, color=(0.9, 0.6, 0.65))
    options = dict(image_size=(224, 224), focal_px=5000.0)
    render_rows = []
    for label, fn in [
        ("smooth shading", lambda: render_meshes([mesh], **options)),
        ("flat shading", lambda: render_meshes([mesh], shading="flat", **options)),
        ("smooth, 2x supersampling", lambda: render_meshes([mesh], supersample=2, **options)),
        (
            "front + side view (2 renders)",
            lambda: (render_meshes([mesh], **options), render_meshes(side_view([mesh]), **options)),
        ),
    ]:
        med, best, _ = timed(fn, render_repeats)
        render_rows.append((label, med, best))
    coverage = (render_meshes([mesh], **options) != 255).any(-1).mean()

    print(f"pose-body benchmark ({'quick' if args.quick else 'full'} run)")
    print(
        f"torch {torch.__version__}; torch threads: {torch.get_num_threads()}; numpy "
        f"{np.__version__}; CPU: {platform.processor() or platform.machine()}; repeats: "
        f"{repeats} (renderer {render_repeats}) after one warm-up; full forward in chunks of "
        f"{args.chunk}; procedural model build {build_ms:.0f} ms"
    )
    print()
    columns = ("workload", "full forward median ms", "min ms", "keypoints_only median ms")
    print("| " + " | ".join(columns) + " | min ms | speed-up (medians) | note |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, fm, fmin, km, kmin, note in rows:
        print(
            f"| {name} | {fm:.1f} | {fmin:.1f} | {km:.1f} | {kmin:.1f} | {fm / km:.1f}x | {note} |"
        )
    print()
    print("| renderer, 224x224, one body (6890 vertices, 13716 faces) | median ms | min ms |")
    print("|---|---:|---:|")
    for name, med, best in render_rows:
        print(f"| {name} | {med:.1f} | {best:.1f} |")
    print(f"(body covers {100 * coverage:.0f}% of the crop)")
    print()
    for label, (ratio, ratio_min) in ratios.items():
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(
            f"target: keypoints_only >= {TARGET_RATIO:.0f}x the full forward, {NUM_SAMPLES} "
            f"samples, {label}: {ratio:.1f}x (medians; {ratio_min:.1f}x minima): {verdict}"
        )
    render_ms = render_rows[0][1]
    verdict = "met" if render_ms < TARGET_RENDER_MS else "NOT met"
    print(
        f"target: 224x224 render well under {TARGET_RENDER_MS:.0f} ms: {render_ms:.1f} ms median: "
        f"{verdict}"
    )
    print(
        "Timings on a shared machine are noisy: the minima are the least disturbed runs; both "
        "paths of a row ran in the same process, one after the other."
    )


if __name__ == "__main__":
    main()
