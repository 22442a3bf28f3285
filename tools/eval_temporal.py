"""Per-frame vs temporal keypoint fitting on the synthetic world's video sequences.

    python tools/eval_temporal.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/eval_temporal.py --checkpoint ckpt.pt --smoothness 0 30 100 300 \\
        --sequences-dir /tmp/sequences --out /tmp/eval_temporal

The sequences (pipeline.synthetic_sequences; consecutive 30 fps frames of the held-out clips,
made on first use in ``<world>/sequences`` or ``--sequences-dir``) are fitted to their noisy,
detector-like 2D keypoints (OpenPose's 25 keypoints with pixel noise, dropped keypoints and
outliers) in the full image with the sequence's focal length, through ``prohmr_model``'s
`Predictor`: the regression's mode ("regression"), ProHMR's fitting of every frame on its own
(``Predictor.fit``: z, betas, camera per frame) and the temporal fitting of the whole sequence
(``Predictor.fit_sequence``: per-frame z and camera, shared betas, smoothness weight W on the
squared accelerations of the 3D keypoints; one row per ``--smoothness`` value), all with
``--max-iters`` outer L-BFGS iterations.

Metrics against the ground-truth 3D keypoints (LSP-14 joints of the 44 layout, pelvis 39 as
root): PA-MPJPE and MPJPE (mm, mean over frames) and the acceleration error (mm/frame²,
pose_metrics.acceleration_error: mean norm of the difference between predicted and true joint
accelerations, pelvis-relative), per sequence and over all sequences (mean over sequences,
which have the same length). For scale, the table's "(no acceleration)" rows give the error of
a body that does not accelerate, i.e. the mean size of the true accelerations: a method at that
value has smoothed the motion away. Writes ``temporal_summary.md`` and ``temporal_summary.json``
(per sequence, per method, and the fits' iterations and stopping reasons).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from pipeline.cli import add_precision_argument, at_least, check_output_args
from pipeline.runtime import pick_device
from pipeline.session import load_prohmr_checkpoint
from pipeline.synthetic_sequences import SequenceSettings, ensure_sequences, load_sequence

import pose_geometry as pg
import pose_metrics as pm
from pose_data.io import atomic_write
from prohmr_model import Predictor
from prohmr_model.fitting import pose_errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument(
        "--world", type=Path, default=None, help="synthetic world (default: the checkpoint's)"
    )
    parser.add_argument(
        "--sequences-dir", type=Path, default=None, help="where the sequences are (made) "
        "(default <world>/sequences)"
    )  # fmt: skip
    parser.add_argument("--num-sequences", type=at_least(1), default=SequenceSettings.num_sequences)
    parser.add_argument("--length", type=at_least(3), default=SequenceSettings.length)
    parser.add_argument("--seed", type=at_least(0), default=SequenceSettings.seed)
    parser.add_argument(
        "--smoothness",
        type=float,
        nargs="+",
        default=[100.0],
        help="smoothness weights W of the temporal fits (one row each; W² multiplies the "
        "squared accelerations in m/frame²)",
    )
    parser.add_argument("--max-iters", type=at_least(1), default=30, help="outer L-BFGS iterations")
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if any(not (w >= 0 and np.isfinite(w)) for w in args.smoothness):
        parser.error(f"--smoothness values must be finite and >= 0, got {args.smoothness}")
    out = args.out or args.checkpoint.parent.parent / "eval_temporal"
    dirs = {"--out": out}
    if args.sequences_dir is not None:
        dirs["--sequences-dir"] = args.sequences_dir
    check_output_args(parser, dirs=dirs)
    return args


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


def run(args: argparse.Namespace) -> dict:
    """The comparison of ``args`` (``parse_args``); prints and writes the table, returns the
    report (also written as JSON) with its markdown under ``"markdown"``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    world = args.world
    if world is None:
        if config.synthetic is None:
            raise SystemExit(
                f"the checkpoint {args.checkpoint} names no synthetic world: give --world"
            )
        world = Path(config.synthetic.output_dir)
    settings = SequenceSettings(
        num_sequences=args.num_sequences, length=args.length, seed=args.seed
    )
    sequences = ensure_sequences(world, out=args.sequences_dir, settings=settings, progress=True)
    predictor = Predictor(model, crop_size=config.data.image_size, device=device)
    methods = ["regression", "per_frame"] + [f"temporal_w{w:g}" for w in args.smoothness]
    per_sequence: dict[str, dict] = {}
    for index, file in enumerate(sequences.files):
        arrays = load_sequence(file)
        values, fits = evaluate_sequence(
            predictor,
            arrays,
            image_dir=sequences.root / "images",
            smoothness=args.smoothness,
            max_iterations=args.max_iters,
        )
        per_sequence[file.stem] = {"clip": str(arrays["clip"]), "metrics": values, "fits": fits}
        reference = values["no_acceleration"]["accel_error"]
        line = f"true accel {reference:.1f}; " + ", ".join(
            f"{m} {values[m]['pa_mpjpe']:.1f}/{values[m]['accel_error']:.1f}" for m in methods
        )
        print(f"{file.stem} ({index + 1}/{len(sequences.files)}) PA-MPJPE/accel: {line}")
    overall: dict[str, dict[str, float]] = {
        m: {
            key: float(np.mean([s["metrics"][m][key] for s in per_sequence.values()]))
            for key in ("pa_mpjpe", "mpjpe", "accel_error")
        }
        for m in methods
    }
    overall["no_acceleration"] = {
        "accel_error": float(
            np.mean([s["metrics"]["no_acceleration"]["accel_error"] for s in per_sequence.values()])
        )
    }
    header = (
        f"{len(per_sequence)} sequences x {args.length} frames (30 fps) of the held-out clips, "
        f"noisy OpenPose-like 2D keypoints; L-BFGS {args.max_iters} outer iterations; LSP-14 "
        f"joints; checkpoint {args.checkpoint}"
    )
    table = markdown_table(per_sequence, overall, methods)
    print(header)
    print(table)
    out = args.out or args.checkpoint.parent.parent / "eval_temporal"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "checkpoint": str(args.checkpoint),
        "sequences_dir": str(sequences.root),
        "sequence_settings": sequences.info,
        "max_iters": args.max_iters,
        "smoothness": args.smoothness,
        "methods": methods,
        "overall": overall,
        "per_sequence": per_sequence,
    }
    text = header + "\n\n" + table + "\n"
    atomic_write(out / "temporal_summary.md", lambda f: f.write(text.encode()))
    payload = json.dumps(report, indent=2, default=float).encode()
    atomic_write(out / "temporal_summary.json", lambda f: f.write(payload))
    print(f"wrote {out / 'temporal_summary.json'}")
    return {**report, "markdown": text}


def evaluate_sequence(
    predictor: Predictor,
    arrays: dict[str, np.ndarray],
    *,
    image_dir: Path,
    smoothness: list[float],
    max_iterations: int,
) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
    """Metrics of every method on one sequence, and what its fits did."""
    images = [str(image_dir / str(name)) for name in arrays["imgname"]]
    keypoints = list(arrays["keypoints_2d_noisy"])
    focal = float(arrays["focal"])
    target = torch.from_numpy(arrays["keypoints_3d"]).float()
    target = torch.cat([target, torch.ones_like(target[..., :1])], dim=-1)  # (T, 44, 4)
    predictions: dict[str, torch.Tensor] = {}
    fits: dict[str, dict] = {}
    regression = predictor.predict(images, keypoints_2d=keypoints, focal_length=focal)
    predictions["regression"] = regression.keypoints_3d[:, 0]
    per_frame = predictor.fit(
        images, keypoints_2d=keypoints, max_iterations=max_iterations, focal_length=focal
    )
    predictions["per_frame"] = per_frame.keypoints_3d[:, 0]
    fits["per_frame"] = _fit_report(per_frame)
    for weight in smoothness:
        temporal = predictor.fit_sequence(
            images,
            keypoints_2d=keypoints,
            smoothness_weight=weight,
            max_iterations=max_iterations,
            focal_length=focal,
        )
        predictions[f"temporal_w{weight:g}"] = temporal.keypoints_3d[:, 0]
        fits[f"temporal_w{weight:g}"] = _fit_report(temporal)
    # the acceleration error of a prediction without acceleration: the true accelerations' size
    still = target[..., :3].mean(dim=0, keepdim=True).expand_as(target[..., :3])
    values = {
        "no_acceleration": {
            "accel_error": float(
                pm.acceleration_error(
                    still, target[..., :3], root_idx=pg.PELVIS_IDX_44, joint_idx=pg.LSP14_IDX_44
                )
            )
        }
    }
    for name, prediction in predictions.items():
        mpjpe, pa = pose_errors(prediction, target, joints=pg.LSP14_IDX_44)
        accel = pm.acceleration_error(
            prediction.float().cpu(),
            target[..., :3],
            root_idx=pg.PELVIS_IDX_44,
            joint_idx=pg.LSP14_IDX_44,
        )
        values[name] = {
            "pa_mpjpe": float(pa.mean()),
            "mpjpe": float(mpjpe.mean()),
            "accel_error": float(accel),
        }
    return values, fits


def _fit_report(result) -> dict:
    """Per-frame 2D errors before/after (pixels), iterations and stopping reasons of a fit."""
    stopping = result.stopping if isinstance(result.stopping, tuple) else (result.stopping,)
    return {
        "keypoint_error_before_px": result.keypoint_error_before.cpu().tolist(),
        "keypoint_error_after_px": result.keypoint_error_after.cpu().tolist(),
        "iterations": result.iterations.cpu().tolist(),
        "stopping": list(stopping),
    }


def markdown_table(per_sequence: dict[str, dict], overall: dict, methods: list[str]) -> str:
    """Rows: method x (overall, each sequence); columns PA-MPJPE, MPJPE, acceleration error."""
    lines = [
        "| method | sequence | PA-MPJPE (mm) | MPJPE (mm) | accel error (mm/frame²) |",
        "|---|---|---|---|---|",
    ]
    still = "(no acceleration)"
    for method in methods:
        row = overall[method]
        lines.append(
            f"| {method} | **all** | {row['pa_mpjpe']:.1f} | {row['mpjpe']:.1f} | "
            f"{row['accel_error']:.1f} |"
        )
    lines.append(f"| {still} | **all** | - | - | {overall['no_acceleration']['accel_error']:.1f} |")
    for name, sequence in per_sequence.items():
        reference = sequence["metrics"]["no_acceleration"]["accel_error"]
        lines.append(f"| {still} | {name} ({sequence['clip']}) | - | - | {reference:.1f} |")
        for method in methods:
            row = sequence["metrics"][method]
            lines.append(
                f"| {method} | {name} ({sequence['clip']}) | {row['pa_mpjpe']:.1f} | "
                f"{row['mpjpe']:.1f} | {row['accel_error']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
