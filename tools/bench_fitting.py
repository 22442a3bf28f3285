"""Benchmark ProHMR keypoint fitting: joints-only body path vs the full body model.

    python tools/bench_fitting.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/bench_fitting.py --checkpoint ckpt.pt --batch-sizes 1 32 --iterations 30 \\
        --threads 2

Fits B held-out images (the registry's ``--dataset``, cycled when it has fewer than B) with the
decoder of the checkpoint's flow, 30 outer L-BFGS iterations (early stopping off, so every path
does the same outer iterations; each runs up to 20 inner iterations with a strong-Wolfe line
search), by path, in one process:

- full body forward: every objective evaluation runs the body model's full forward (all
  vertices, then the keypoint regressors), as the original evaluates SMPL; the reference;
- plain fp32 eager = default: the joints-only body path (`BodyModel.keypoints_only`, what the
  fitting tools use), float32, no compilation (the programs' default);
- stand-in: a body model of three tensor operations; its evaluations cost what every path
  shares (decoder, loss terms, autograd, L-BFGS) and almost nothing more, so full / stand-in
  per evaluation bounds the speed-up per evaluation any body model could give;
- compiled (``--compile``): the default with `KeypointFittingOptions(compile=True)` (the
  objective's value and gradient through ``torch.compile``), compiled per batch size before the
  timed rounds (compile time printed);
- bf16: the flow's coupling networks in bf16 (``precision=bf16``), only where the device has
  native bf16 (``--bf16-emulated`` times it anyway).

The paths run in alternating rounds (``--repeats``, default 5); printed are the fastest round's
time per image, objective evaluations and time per evaluation of each path, and the median over
rounds of the per-round ratios against the full path (a fit of one image takes under a second,
so a burst of load on a shared CPU can slow one round by 2x: five rounds keep such a round from
setting the median). Last, per batch size, the cost of one evaluation (forward + backward) split
into decoder and body models. The per-item L-BFGS evaluates the objective for the whole batch
whenever any item needs a value; the table counts the batched calls.

On a CPU shared with other jobs, ``--threads 2`` can be an order of magnitude slower than
``--threads 1`` for these small tensors (OpenMP threads wait for each other at every operation);
compare timings taken with the same thread count on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from pipeline.bench import bf16_path, machine_line, published_size_checkpoint, synchronize
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
import pose_geometry as pg
from pose_fitting import KeypointFittingOptions, StoppingRules, fit_keypoints
from prohmr_model import to_device
from prohmr_model.fitting import body_keypoints, flow_decoder, freeze, regress

FULL_BODY = "body, full path (vertices)"
FULL = "full body forward (as the original)"
PLAIN = "plain fp32 eager = default"
STAND_IN = "stand-in"
COMPILED = "compiled (--compile)"
BF16 = "bf16"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path)
    source.add_argument(
        "--published-size",
        type=Path,
        metavar="FILE",
        help="write a published-size model (ResNet-50, flow hidden 1024; random trained-looking "
        "weights, the synthetic world) to FILE and fit with it",
    )
    parser.add_argument("--dataset", default="SYNTH-VAL", help="registry name")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--iterations", type=int, default=30, help="outer L-BFGS iterations")
    parser.add_argument(
        "--repeats", type=int, default=5, help="rounds per batch size (each runs every path)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--component-repeats", type=int, default=20, help="timed calls per component cost"
    )
    parser.add_argument("--focal-px", type=float, default=5000.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add the compiled path (the objective's value and gradient through "
        "torch.compile); compiled before the timed rounds, compile time printed",
    )
    parser.add_argument("--bf16-emulated", action="store_true", help="time bf16 without native")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.published_size is not None:
        args.checkpoint = published_size_checkpoint(args.published_size)
    model, config = load_prohmr_checkpoint(args.checkpoint, device=device, overrides=args.set)
    freeze(model)
    registry = config_registry(config)
    entry = registry_entry(registry, args.dataset)
    dataset = pdata.ImageDataset(
        entry.file, image_dir=entry.image_dir, train=False, image_size=config.data.image_size
    )
    stopping = StoppingRules(
        max_iterations=args.iterations,
        relative_tolerance=None,
        gradient_tolerance=None,
        stop_on_increase=False,
    )
    eager = KeypointFittingOptions(stopping=stopping)
    # name -> (body path, options, model); the ratios are against the first (FULL)
    paths = {
        FULL: ("full", eager, model),
        PLAIN: ("fast", eager, model),
        STAND_IN: (STAND_IN, eager, model),
    }
    if args.compile:
        paths[COMPILED] = ("fast", replace(eager, compile=True), model)
    run_bf16, bf16_line = bf16_path(device, args.bf16_emulated)
    if run_bf16:
        low = copy.deepcopy(model)
        low.set_precision("bf16", allow_emulated=True)
        paths[BF16] = ("fast", eager, low)
    rows, results, bounds = [], [], {}
    # warm-up (allocator, LU caches, first-call overheads), eagerly
    for body_path, _, net in paths.values():
        _fit(net, _batch(dataset, 2, device), body_path, eager, args.focal_px, iterations=1)
    warmup_seconds = {}
    for size in args.batch_sizes:
        batch = _batch(dataset, size, device)
        if args.compile:  # compiled per batch size: compile before the timed rounds
            tic = time.perf_counter()
            body_path, options, net = paths[COMPILED]
            _fit(net, batch, body_path, options, args.focal_px, iterations=1)
            warmup_seconds[size] = time.perf_counter() - tic
        # Rounds alternate the order of the paths; the CPU may be shared, so the ratios
        # reported are medians over rounds of ratios taken within a round.
        names = list(paths)
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
        for r in range(args.repeats):
            for name in names if r % 2 == 0 else names[::-1]:
                body_path, options, net = paths[name]
                runs[name].append(_fit(net, batch, body_path, options, args.focal_px))

        for name in names:
            seconds, evaluations = min(runs[name])
            row = {
                "batch": size,
                "path": name,
                "seconds_total": seconds,
                "seconds_per_image": seconds / size,
                "evaluations": evaluations,
                "ms_per_evaluation": 1000 * seconds / evaluations,
                "ratio_per_image_vs_full": _median_ratio(
                    runs[FULL], runs[name], per_evaluation=False
                ),
                "ratio_per_evaluation_vs_full": _median_ratio(
                    runs[FULL], runs[name], per_evaluation=True
                ),
                "rounds_seconds": [run[0] for run in runs[name]],
            }
            results.append(row)
            if name == STAND_IN:
                bounds[size] = row["ratio_per_evaluation_vs_full"]
            rows.append(
                f"| {size} | {name} | {seconds / size:.3f} | {evaluations} | "
                f"{row['ms_per_evaluation']:.2f} | {row['ratio_per_image_vs_full']:.2f}x | "
                f"{row['ratio_per_evaluation_vs_full']:.2f}x |"
            )
    components = {
        size: _component_costs(model, _batch(dataset, size, device), repeats=args.component_repeats)
        for size in args.batch_sizes
    }
    flow_size = (
        f"flow hidden {config.model.flow_hidden_features}, {config.model.flow_num_layers} layers, "
        f"context {model.backbone.num_features}"
    )
    print(
        f"ProHMR keypoint fitting, {args.iterations} outer L-BFGS iterations (no early stop); "
        f"{machine_line(device)}; {flow_size}; body model {config.body.model_path} "
        f"({model.body_model.num_vertices} vertices)"
    )
    for size, seconds in warmup_seconds.items():
        print(f"batch {size}: compile + one-iteration warm-up fit {seconds:.1f} s")
    print(
        "| batch | path | s / image | objective evaluations (batched) | ms / evaluation | "
        "speed-up / image vs full (median of rounds) | speed-up / evaluation vs full (median) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(bf16_line)
    print(
        f"{STAND_IN}: the same fitting with a body model of three tensor operations (rest "
        "keypoints moved by 1 cm times rotation entries): what every path shares per evaluation "
        "(decoder, loss terms, autograd, L-BFGS). full / stand-in per evaluation bounds the "
        "speed-up any body model can give."
    )
    print()
    print("one objective evaluation (forward + backward), ms (fastest of 3 interleaved rounds):")
    print("| batch | " + " | ".join(components[args.batch_sizes[0]]) + " |")
    print("|---|" + "---|" * len(components[args.batch_sizes[0]]))
    for size, parts in components.items():
        print(f"| {size} | " + " | ".join(f"{value:.2f}" for value in parts.values()) + " |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "fits": results,
            "evaluation_ms": {str(size): parts for size, parts in components.items()},
            "bound_per_evaluation": {str(size): value for size, value in bounds.items()},
            "compiled": args.compile,
            "bf16": run_bf16,
            "compile_warmup_seconds": {str(size): v for size, v in warmup_seconds.items()},
        }
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


def _batch(dataset, size: int, device: torch.device) -> dict:
    items = [dataset[i % len(dataset)] for i in range(size)]
    return to_device(torch.utils.data.default_collate(items), device)


def _fit(
    model,
    batch: dict,
    path: str,
    options: KeypointFittingOptions,
    focal_px: float,
    *,
    iterations: int | None = None,
) -> tuple[float, int]:
    """One timed fit; returns (seconds, batched objective evaluations).

    The per-item L-BFGS evaluates the objective for the whole batch whenever any item needs a
    value, so the count is at least the slowest item's own count.
    """
    if iterations is not None:
        options = replace(
            options, stopping=StoppingRules(max_iterations=iterations, relative_tolerance=None)
        )
    output = regress(model, batch["img"])
    translation = pg.crop_camera_to_full_frame_translation(
        output.camera[:, 0].float(),
        box_center_px=batch["box_center"].float(),
        box_size_px=batch["box_size"].float(),
        image_size_px=batch["img_size"].float(),
        focal_length_px=focal_px,
    )
    decoder = flow_decoder(model, output.features)
    body = (
        _stand_in_body(model.body_model)
        if path == STAND_IN
        else body_keypoints(model.body_model, path=path)  # type: ignore[arg-type]
    )
    synchronize(batch["img"].device)
    tic = time.perf_counter()
    result = fit_keypoints(
        decoder=decoder,
        body_model=body,
        keypoints_2d=batch["orig_keypoints_2d"].float(),
        init_z=torch.zeros_like(output.z[:, 0]),
        init_betas=output.betas[:, 0],
        init_camera_translation=translation,
        focal_px=focal_px,
        image_size_px=batch["img_size"].float(),
        options=options,
    )
    synchronize(batch["img"].device)
    seconds = time.perf_counter() - tic
    return seconds, result.report.objective_calls


def _median_ratio(
    full: list[tuple[float, int]], other: list[tuple[float, int]], *, per_evaluation: bool
) -> float:
    """Median over rounds of full / other, in total time or in time per evaluation."""
    ratios = []
    for (full_s, full_n), (other_s, other_n) in zip(full, other, strict=True):
        ratios.append(
            (full_s / full_n) / (other_s / other_n) if per_evaluation else full_s / other_s
        )
    return statistics.median(ratios)


def _stand_in_body(body_model):
    """Keypoints from three tensor operations: rest keypoints + 1 cm × rotation entries + betas.

    Differentiable in the body pose and betas (so the decoder's backward runs as with a real
    body model), at almost no cost: a fit with it measures what the body paths share.
    """
    eye = torch.eye(3, device=next(body_model.buffers()).device)
    with torch.no_grad():
        rest = body_model.keypoints_only(
            global_orient=eye.expand(1, 1, 3, 3),
            body_pose=eye.expand(1, 23, 3, 3),
            betas=torch.zeros(1, body_model.num_betas, device=eye.device),
        ).keypoints

    def stand_in(global_orient, body_pose, betas):
        moves = body_pose.flatten(1)[:, : rest[0].numel()] + betas.sum(-1, keepdim=True)
        return rest + 0.01 * moves.view(-1, *rest.shape[1:])

    return stand_in


def _component_costs(model, batch: dict, repeats: int = 20) -> dict[str, float]:
    """Milliseconds of one forward + backward of the decoder, and of each body path."""
    output = regress(model, batch["img"])
    decoder = flow_decoder(model, output.features)
    z = torch.zeros_like(output.z[:, 0]).requires_grad_(True)
    betas = output.betas[:, 0].clone().requires_grad_(True)
    with torch.no_grad():
        orient0, pose0 = decoder(z)
    device = batch["img"].device

    def timed(fn) -> float:
        fn()
        synchronize(device)
        tic = time.perf_counter()
        for _ in range(repeats):
            fn()
        synchronize(device)
        return 1000 * (time.perf_counter() - tic) / repeats

    def decode() -> None:
        orient, pose = decoder(z)
        (orient.sum() + pose.sum()).backward()

    def body(path: str):
        call = body_keypoints(model.body_model, path=path)  # type: ignore[arg-type]
        orient = orient0.clone().requires_grad_(True)
        pose = pose0.clone().requires_grad_(True)

        def run() -> None:
            call(orient, pose, betas).sum().backward()

        return run

    parts = {
        "decoder (flow, z -> rotations)": decode,
        "body, joints-only path": body("fast"),
        FULL_BODY: body("full"),
    }
    # interleaved rounds, fastest kept (the CPU may be shared)
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(3):
        for name, fn in parts.items():
            times[name].append(timed(fn))
    return {name: min(values) for name, values in times.items()}


if __name__ == "__main__":
    sys.exit(main())
