"""ProHMR keypoint fitting vs an SMPLify baseline on held-out images (docs/evaluation.md).

    python tools/eval_fitting.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/eval_fitting.py --checkpoint ckpt.pt --dataset H36M-VAL-P2 --focal-px 5000 \\
        --gmm data/gmm_08.pkl --set body.model_path=data/smpl/SMPL_NEUTRAL.pkl

The protocol of the original's ``eval_keypoint_fitting.py``: regression (the mode), then
L-BFGS on (z, betas, camera translation) against the 2D keypoints of the original image
(full-frame mode, 30 outer iterations), PA-MPJPE before ("mode") and after ("prohmr_fit") on the
dataset's keypoint list. Added here: the SMPLify baseline started from the same regression
(pose-fitting's ``fit_smplify`` with SPIN's weights: a camera stage, then 100 Adam steps, or
L-BFGS as the ProHMR fit with ``--smplify-optimizer lbfgs``; its Gaussian-mixture pose prior
is SMPLify's ``gmm_08.pkl`` given with ``--gmm``, otherwise a mixture fitted by EM to the
training sets' poses), MPJPE, the mean 2D reprojection error in pixels and the time per image.
A final table is printed and written with the per-image values as JSON.

Targets are the dataset's 2D keypoints (``orig_keypoints_2d``: ground truth in the synthetic
world, or detections such as H36M-VAL-P2-OPENPOSE). The focal length of the full image follows
the dataset: by default (``--focal-px auto``) each image's own focal length from the npz's
``focal`` array when it has one (the synthetic world does), so the camera model matches how the
images were made, and ProHMR's 5000 px otherwise; ``--focal-px dataset`` requires the array,
a number fixes the focal length for every image.

``--save-params`` / ``--save-mesh`` / ``--save-humandata`` export each image's ProHMR fit, in
the full image's camera it was fitted in (``<out>/exports/``; docs/evaluation.md#exports).
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
from pipeline.exports import FitExports, add_export_arguments, wants_exports
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
import pose_geometry as pg
import pose_metrics as pm
from pose_fitting import (
    FittingCamera,
    KeypointFittingOptions,
    SMPLifyOptions,
    StoppingRules,
    fit_smplify,
)
from prohmr_model import to_device
from prohmr_model.evaluation import check_finite_predictions
from prohmr_model.fitting import (
    body_keypoints,
    fit_mode,
    freeze,
    keypoint_error,
    load_pose_prior,
    pose_errors,
    regress,
)

METHODS = ("mode", "prohmr_fit", "smplify")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", default="SYNTH-VAL", help="registry name")
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N images only")
    parser.add_argument("--batch-size", type=at_least(1), default=16)
    parser.add_argument("--max-iters", type=at_least(1), default=30, help="outer L-BFGS iterations")
    parser.add_argument(
        "--focal-px",
        type=focal_option,
        default="auto",
        help="full-image focal length in pixels; 'dataset': the npz's per-image 'focal' array; "
        "'auto' (default): that array when the npz has one, else 5000",
    )
    parser.add_argument("--gmm", type=Path, default=None, help="SMPLify gmm_08.pkl (or .npz)")
    parser.add_argument("--no-smplify", action="store_true", help="skip the SMPLify baseline")
    parser.add_argument(
        "--smplify-optimizer",
        choices=("adam", "lbfgs"),
        default="adam",
        help="adam: SPIN's 100 fixed steps per stage; lbfgs: as the ProHMR fit (--max-iters)",
    )
    parser.add_argument(
        "--smplify-iters", type=at_least(1), default=100, help="Adam steps per stage"
    )
    parser.add_argument(
        "--use-hips",
        choices=("dataset", "true", "false"),
        default="dataset",
        help="keep the hip keypoints in the data term (default: the registry's use_hips)",
    )
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--threads", type=at_least(1), default=None, help="torch CPU threads")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="ProHMR fitting with its objective (value and gradient) through torch.compile "
        "(KeypointFittingOptions.compile; compiled on the first batch, same values up to "
        "rounding)",
    )
    add_export_arguments(parser, samples=False)
    args = parser.parse_args(argv)
    out = args.out or args.checkpoint.parent.parent / "eval_fitting"
    check_output_args(parser, dirs={"--out": out})
    return args


def focal_option(text: str) -> str:
    """``--focal-px``: 'auto', 'dataset' or a finite number > 0 (kept as text)."""
    if text not in ("auto", "dataset"):
        positive_float(text)
    return text


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
    entry = registry_entry(registry, args.dataset, kinds=("image",))
    dataset = pdata.ImageDataset(
        entry.file, image_dir=entry.image_dir, train=False, image_size=config.data.image_size
    )
    focal_per_image, focal_label = _focal_lengths(args.focal_px, entry.file, len(dataset))
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    joints = entry.keypoint_list or pg.LSP14_IDX_44
    use_hips = entry.use_hips if args.use_hips == "dataset" else args.use_hips == "true"
    out = args.out or args.checkpoint.parent.parent / "eval_fitting"
    out.mkdir(parents=True, exist_ok=True)

    prior, prior_source = None, ""
    if not args.no_smplify:
        training_files = [
            registry.entry(name, key="data.train", kinds=("image",)).require_file()
            for name in config.data.train
        ]
        prior, prior_source = load_pose_prior(args.gmm, training_files=training_files)
        prior = prior.to(device)
        print(f"SMPLify pose prior: {prior_source}", flush=True)

    stopping = StoppingRules(max_iterations=args.max_iters)
    fit_options = KeypointFittingOptions(stopping=stopping, use_hips=use_hips, compile=args.compile)
    if args.smplify_optimizer == "adam":
        smplify_stopping = StoppingRules(
            max_iterations=args.smplify_iters,
            relative_tolerance=None,
            gradient_tolerance=None,
            stop_on_increase=False,
        )
    else:
        smplify_stopping = StoppingRules(max_iterations=args.max_iters)
    smplify_options = SMPLifyOptions(
        use_hips=use_hips, optimizer=args.smplify_optimizer, stopping=smplify_stopping
    )
    methods = METHODS if prior is not None else METHODS[:2]
    accumulator = pm.MetricAccumulator()
    seconds = dict.fromkeys(methods, 0.0)
    fit_reasons: dict[str, int] = {}
    body_fast = body_keypoints(model.body_model, path="fast")
    exports = FitExports(args, model.body_model, out) if wants_exports(args) else None
    started = time.perf_counter()
    for start in range(0, count, args.batch_size):
        rows = list(range(start, min(start + args.batch_size, count)))
        batch = to_device(torch.utils.data.default_collate([dataset[i] for i in rows]), device)
        focal = focal_per_image[rows].to(device)
        kept: dict = {}
        values, times, reasons = evaluate_batch(
            model,
            batch,
            focal_px=focal,
            joints=joints,
            body=body_fast,
            prior=prior,
            fit_options=fit_options,
            smplify_options=smplify_options,
            source=f"checkpoint {args.checkpoint}",
            where=f" for images {rows[0]}-{rows[-1]}",
            keep=kept if exports is not None else None,
        )
        if exports is not None:
            exports.add(batch, kept["fit"], kept["camera"], rows)
        accumulator.add(values)
        for name, value in times.items():
            seconds[name] += value
        for reason in reasons:
            fit_reasons[reason] = fit_reasons.get(reason, 0) + 1
        done = rows[-1] + 1
        print(f"{done} / {count} images ({time.perf_counter() - started:.0f} s)", flush=True)

    if exports is not None:
        exports.finish(entry.image_dir)
        print(f"wrote the fits' exports under {out / 'exports'}")
    summary = {k: v.mean for k, v in accumulator.summarize()[0].metrics.items()}
    table = _table(summary, seconds, count, methods)
    header = (
        f"{args.dataset}: {count} images, keypoints {entry.keypoint_list_name or 'lsp14'}, "
        f"focal {focal_label}, L-BFGS {args.max_iters} outer iterations, "
        f"use_hips {use_hips}, SMPLify optimiser {args.smplify_optimizer}"
    )
    print(header)
    print(table)
    print(f"ProHMR fit stopping reasons: {fit_reasons}")
    report = {
        "checkpoint": str(args.checkpoint),
        "dataset": args.dataset,
        "images": count,
        "focal_px": focal_label,
        "max_iters": args.max_iters,
        "use_hips": use_hips,
        "smplify_prior": prior_source,
        "smplify_optimizer": args.smplify_optimizer,
        "summary": summary,
        "seconds_per_image": {k: v / max(count, 1) for k, v in seconds.items()},
        "fit_stopping_reasons": fit_reasons,
        "per_image": {k: accumulator.values(k).tolist() for k in accumulator.metric_names},
    }
    (out / "fitting_summary.md").write_text(header + "\n\n" + table + "\n")
    (out / "fitting_summary.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {out / 'fitting_summary.json'}")
    return {**report, "markdown": header + "\n\n" + table}


def _focal_lengths(option: str, npz_file: Path, length: int) -> tuple[torch.Tensor, str]:
    """(N,) focal length per image and what it is: a constant, or the npz's ``focal`` array
    ('dataset'; with 'auto' when the npz has one, else ProHMR's 5000 px)."""
    if option in ("auto", "dataset"):
        with np.load(npz_file) as arrays:
            if "focal" in arrays:
                focal = np.asarray(arrays["focal"], dtype=np.float32)
                return torch.from_numpy(focal), "per image (the dataset's 'focal')"
        if option == "dataset":
            raise SystemExit(f"--focal-px dataset: {npz_file} has no 'focal' array")
        option = "5000"
    try:
        value = float(option)
    except ValueError:
        raise SystemExit(f"--focal-px must be a number or 'dataset', got {option!r}") from None
    return torch.full((length,), value), f"{value:g} px"


def evaluate_batch(
    model,
    batch: dict,
    *,
    focal_px: torch.Tensor,
    joints,
    body,
    prior,
    fit_options: KeypointFittingOptions,
    smplify_options: SMPLifyOptions,
    source: str = "the model",
    where: str = "",
    keep: dict | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float], list[str]]:
    """Regression, ProHMR fitting and SMPLify on one batch; per-image metric values.

    ``keep``, if given, receives the ProHMR ``fit`` and its ``camera`` (for the exports).

    Raises:
        NonFinitePredictionError: naming ``source`` (with the method) and the count, if the
            regression or a fit gives a NaN or infinite pose.
    """
    target_3d = batch["keypoints_3d"].float()
    keypoints_2d = batch["orig_keypoints_2d"].float()
    times: dict[str, float] = {}
    tic = time.perf_counter()
    output = regress(model, batch["img"])
    times["mode"] = time.perf_counter() - tic
    check_finite_predictions(output.keypoints_3d[:, 0], source=source, where=where)
    image_size = batch["img_size"].float()
    camera = FittingCamera.full_frame(
        output.camera[:, 0].float(),
        box_center_px=batch["box_center"].float(),
        box_size_px=batch["box_size"].float(),
        image_size_px=image_size,
        focal_length_px=focal_px.float(),
    )
    predictions = {"mode": output.keypoints_3d[:, 0]}
    translations = {"mode": camera.translation}
    tic = time.perf_counter()
    fit = fit_mode(model, output, keypoints_2d, camera, options=fit_options, body=body)
    times["prohmr_fit"] = time.perf_counter() - tic
    predictions["prohmr_fit"] = fit.keypoints_3d
    translations["prohmr_fit"] = fit.camera_translation
    if keep is not None:
        keep.update(fit=fit, camera=camera)
    if prior is not None:
        tic = time.perf_counter()
        smplify = fit_smplify(
            body_model=body,
            pose_prior=prior,
            keypoints_2d=keypoints_2d,
            init_global_orient=output.global_orient[:, 0],
            init_body_pose=output.body_pose[:, 0],
            init_betas=output.betas[:, 0],
            init_camera_translation=camera.translation,
            focal_px=camera.focal_px,
            image_size_px=camera.image_size_px,
            center_px=camera.center_px,
            options=smplify_options,
        )
        times["smplify"] = time.perf_counter() - tic
        predictions["smplify"] = smplify.keypoints_3d
        translations["smplify"] = smplify.camera_translation
    values: dict[str, torch.Tensor] = {}
    for name, prediction in predictions.items():
        check_finite_predictions(prediction, source=f"{source} ({name})", where=where)
        mpjpe, pa = pose_errors(prediction, target_3d, joints=joints)
        values[f"{name}_pa_mpjpe"] = pa
        values[f"{name}_mpjpe"] = mpjpe
        projected = pg.project_points(
            prediction.float(),
            focal_px=camera.focal_px,
            center_px=camera.center_px,
            translation=translations[name].float(),
        )
        values[f"{name}_reproj_px"] = keypoint_error(projected, keypoints_2d).cpu()
    reasons = [str(r).split(":")[0] for r in fit.report.reasons]
    return values, times, reasons


def _table(summary: dict[str, float], seconds: dict[str, float], count: int, methods) -> str:
    labels = {
        "mode": "regression (mode)",
        "prohmr_fit": "ProHMR fitting",
        "smplify": "SMPLify (same init)",
    }
    lines = [
        "| method | PA-MPJPE (mm) | MPJPE (mm) | 2D error (px) | s / image |",
        "|---|---|---|---|---|",
    ]
    for name in methods:
        lines.append(
            f"| {labels[name]} | {summary[f'{name}_pa_mpjpe']:.1f} | "
            f"{summary[f'{name}_mpjpe']:.1f} | {summary[f'{name}_reproj_px']:.2f} | "
            f"{seconds[name] / max(count, 1):.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
