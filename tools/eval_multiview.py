"""Multi-view refinement: one person seen by several cameras, before and after (docs/evaluation.md).

    python tools/eval_multiview.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/eval_multiview.py --checkpoint ckpt.pt --dataset H36M-VAL-MULTIVIEW \\
        --set body.model_path=data/smpl/SMPL_NEUTRAL.pkl

The protocol of the original's ``eval_multiview.py``: every frame (all views of one instant) is
regressed view by view (the mode), then the per-view latents z_v are refined so the views'
body-pose rotations agree (300² · Σ ‖R_vj − R̄_j‖² + ‖z_v‖², betas = the mean of the views'
regressed betas, L-BFGS, 30 outer iterations), and MPJPE / PA-MPJPE are computed per view image
before ("mode") and after ("refined"). Added here: the views' disagreement (mean Frobenius
distance of the body-pose rotations to their mean over views) before and after, and with
``--reprojection`` a second refinement that also keeps every view on its 2D keypoints (read
from the pickle's ``body_keypoints_2d`` / ``extra_keypoints_2d`` when it has them; an
improvement beyond the original). Frames are refined in groups of ``--frames-per-batch``, each
group independently. A final table is printed and written with the per-image values as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from pipeline.cli import add_precision_argument, at_least, check_output_args, positive_float
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
import pose_geometry as pg
import pose_metrics as pm
from pose_fitting import MultiviewOptions, StoppingRules, refine_multiview
from prohmr_model import to_device
from prohmr_model.evaluation import check_finite_predictions
from prohmr_model.fitting import (
    body_keypoints,
    flow_decoder,
    freeze,
    pose_errors,
    regress,
    rotation_spread,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", default="SYNTH-VAL-MULTIVIEW", help="registry name")
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N frames only")
    parser.add_argument("--frames-per-batch", type=at_least(1), default=8)
    parser.add_argument("--max-iters", type=at_least(1), default=30, help="outer L-BFGS iterations")
    parser.add_argument(
        "--reprojection", action="store_true", help="also refine with the 2D keypoint term"
    )
    parser.add_argument(
        "--focal-px", type=positive_float, default=5000.0, help="for --reprojection"
    )
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    out = args.out or args.checkpoint.parent.parent / "eval_multiview"
    check_output_args(parser, dirs={"--out": out})
    return args


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


def run(args: argparse.Namespace) -> dict:
    """The evaluation of ``args`` (``parse_args``); prints and writes the tables, returns the
    report (also written as JSON) with its markdown under ``"markdown"``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    freeze(model)
    registry = config_registry(config)
    entry = registry_entry(registry, args.dataset, kinds=("multiview",))
    dataset = pdata.MultiviewDataset(
        entry.file, image_dir=entry.image_dir, image_size=config.data.image_size
    )
    keypoints_2d = _pickle_keypoints_2d(entry.file) if args.reprojection else None
    if args.reprojection and keypoints_2d is None:
        raise SystemExit(f"--reprojection: {entry.file} has no 2D keypoints")
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    joints = entry.keypoint_list or pg.LSP14_IDX_44
    out = args.out or args.checkpoint.parent.parent / "eval_multiview"
    out.mkdir(parents=True, exist_ok=True)
    stopping = StoppingRules(max_iterations=args.max_iters)
    variants = {"refined": MultiviewOptions(stopping=stopping)}
    if args.reprojection:
        variants["refined_2d"] = MultiviewOptions(stopping=stopping, use_reprojection=True)
    body = body_keypoints(model.body_model, path="fast")
    accumulator = pm.MetricAccumulator()
    seconds = dict.fromkeys(["mode", *variants], 0.0)
    images = 0
    started = time.perf_counter()
    for group in _groups(dataset, count, args.frames_per_batch):
        batch = to_device(torch.utils.data.default_collate([dataset[i] for i in group]), device)
        G, V = batch["img"].shape[:2]
        flat = batch["img"].reshape(G * V, *batch["img"].shape[2:])
        tic = time.perf_counter()
        output = regress(model, flat)
        seconds["mode"] += time.perf_counter() - tic
        source, where = f"checkpoint {args.checkpoint}", f" for frames {group[0]}-{group[-1]}"
        check_finite_predictions(output.keypoints_3d[:, 0], source=source, where=where)
        target = batch["keypoints_3d"].reshape(G * V, 44, 4).float()
        values: dict[str, torch.Tensor] = {}
        mpjpe, pa = pose_errors(output.keypoints_3d[:, 0], target, joints=joints)
        values["mode_mpjpe"], values["mode_pa_mpjpe"] = mpjpe, pa
        spread = rotation_spread(output.body_pose[:, 0].reshape(G, V, 23, 3, 3))
        values["mode_view_spread"] = spread.repeat_interleave(V).cpu()
        decoder = flow_decoder(model, output.features)
        for name, options in variants.items():
            extra = {}
            if options.use_reprojection:
                extra = _reprojection_inputs(
                    output, batch, keypoints_2d, group, args.focal_px, device=device
                )
            tic = time.perf_counter()
            result = refine_multiview(
                decoder=decoder,
                body_model=body,
                init_z=torch.zeros(G, V, output.z.shape[-1], device=device),
                init_betas=output.betas[:, 0].reshape(G, V, -1),
                options=options,
                **extra,
            )
            seconds[name] += time.perf_counter() - tic
            check_finite_predictions(result.keypoints_3d, source=f"{source} ({name})", where=where)
            mpjpe, pa = pose_errors(
                result.keypoints_3d.reshape(G * V, 44, 3), target, joints=joints
            )
            values[f"{name}_mpjpe"], values[f"{name}_pa_mpjpe"] = mpjpe, pa
            values[f"{name}_view_spread"] = (
                rotation_spread(result.body_pose).repeat_interleave(V).cpu()
            )
        accumulator.add(values)
        images += G * V
        print(
            f"{group[-1] + 1} / {count} frames ({time.perf_counter() - started:.0f} s)", flush=True
        )

    summary = {k: v.mean for k, v in accumulator.summarize()[0].metrics.items()}
    header = (
        f"{args.dataset}: {count} frames, {images} view images, keypoints "
        f"{entry.keypoint_list_name or 'lsp14'}, L-BFGS {args.max_iters} outer iterations"
    )
    labels = {
        "mode": "regression (mode), per view",
        "refined": "multiview refinement (Eq. 12)",
        "refined_2d": "refinement + 2D keypoints",
    }
    lines = [
        "| method | PA-MPJPE (mm) | MPJPE (mm) | view spread (Frobenius) | s / frame |",
        "|---|---|---|---|---|",
    ]
    for name in seconds:
        lines.append(
            f"| {labels[name]} | {summary[f'{name}_pa_mpjpe']:.1f} | "
            f"{summary[f'{name}_mpjpe']:.1f} | {summary[f'{name}_view_spread']:.3f} | "
            f"{seconds[name] / max(count, 1):.3f} |"
        )
    table = "\n".join(lines)
    print(header)
    print(table)
    report = {
        "checkpoint": str(args.checkpoint),
        "dataset": args.dataset,
        "frames": count,
        "images": images,
        "max_iters": args.max_iters,
        "summary": summary,
        "seconds_per_frame": {k: v / max(count, 1) for k, v in seconds.items()},
        "per_image": {k: accumulator.values(k).tolist() for k in accumulator.metric_names},
    }
    (out / "multiview_summary.md").write_text(header + "\n\n" + table + "\n")
    (out / "multiview_summary.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {out / 'multiview_summary.json'}")
    return {**report, "markdown": header + "\n\n" + table}


def _groups(dataset, count: int, size: int) -> list[list[int]]:
    """Consecutive frames with the same number of views, at most ``size`` per group."""
    groups: list[list[int]] = []
    for index in range(count):
        views = len(dataset.frames[index]["imgname"])
        if (
            groups
            and len(groups[-1]) < size
            and len(dataset.frames[groups[-1][0]]["imgname"]) == views
        ):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _pickle_keypoints_2d(path: Path) -> list[np.ndarray] | None:
    """Per frame (V, 44, 3) image-pixel keypoints from the pickle, or None when absent."""
    frames = pdata.restricted_pickle_load(path)
    out = []
    for frame in frames:
        if "body_keypoints_2d" not in frame or "extra_keypoints_2d" not in frame:
            return None
        out.append(
            np.concatenate(
                [np.asarray(frame["body_keypoints_2d"]), np.asarray(frame["extra_keypoints_2d"])],
                axis=1,
            ).astype(np.float32)
        )
    return out


def _reprojection_inputs(
    output, batch, keypoints_2d, group, focal_px: float, *, device
) -> dict[str, torch.Tensor | float]:
    G, V = batch["img"].shape[:2]
    translation = pg.crop_camera_to_full_frame_translation(
        output.camera[:, 0].float(),
        box_center_px=batch["box_center"].reshape(G * V, 2).float(),
        box_size_px=batch["box_size"].reshape(G * V).float(),
        image_size_px=batch["img_size"].reshape(G * V, 2).float(),
        focal_length_px=focal_px,
    )
    kp = torch.from_numpy(np.stack([keypoints_2d[i] for i in group])).to(device)
    return {
        "keypoints_2d": kp,
        "init_camera_translation": translation.reshape(G, V, 3),
        "focal_px": focal_px,
        "image_size_px": batch["img_size"].float(),
    }


if __name__ == "__main__":
    sys.exit(main())
