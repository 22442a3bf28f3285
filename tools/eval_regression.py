"""Evaluate a ProHMR checkpoint with the paper's protocols (docs/evaluation.md).

    python tools/eval_regression.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/eval_regression.py --checkpoint ckpt.pt --dataset H36M-VAL-P2 3DPW-TEST \\
        --ns 1 5 10 25 4096 --kmeans 5 10 25 --baselines --truncate

For each dataset (registry name; its keypoint list picks LSP-14 / H36M-17 / MPI-INF-17, all 44
without one): mode and best-of-n MPJPE / PA-MPJPE for n in ``--ns`` (the first n of one draw of
``--num-samples`` hypotheses per image, by default max(--ns), as in the paper), k-means-quantised n
(``--kmeans``: all the drawn samples clustered to n; the paper clusters 4096; best-of-n is
also given at each k-means n, to compare with), PCK/AUC for
MPI-INF-3DHP, per-group breakdowns (``--group-by action``), the Gaussian (σ = 1, 10, 20 cm around
the mode), training-set and mean-pose baselines (``--baselines``), an error-versus-n plot, and a
truncation option (``--truncate``: every crop gets the extreme-cropping augmentation, so parts of
the body are cut off, in the spirit of AH36M). A final table is printed and saved as JSON.

Uncertainty metrics (docs/evaluation.md#uncertainty-metrics) come with every dataset: the
diversity of ``--uncertainty-samples`` random samples of the same draw (100 by default; the mode
left out), for visible and for occluded or truncated joints (2D ground-truth confidence 0 or
outside the crop), their calibration curve (``{dataset}_calibration.png``) and its ECE, the
rank correlation of spread and mode error, and the log-likelihood of the ground-truth SMPL pose
under the flow (a density over the 6D embedding, see the caveat printed with it).

The scoring is ``prohmr_model.evaluation.evaluate_regression``, the protocol of the training
run's own report: with that report's seed (``--seed``, 1234 by default), sample count (its
largest best-of-n) and batch size (16), the figures it shares with the report are the report's;
with ``--baselines --kmeans 5 10 25`` it gives every figure of the report. K-means and the
baselines draw from a generator of their own (seed + 1), so asking for them leaves the model's
figures alone. The summary ends with "The seed's claims" (``pipeline/claims.py``): claims 1-4
tested on each dataset's numbers, each with a computed verdict ("not measured" without
``--baselines`` or ``--kmeans``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from pipeline.claims import claims_json, claims_markdown, sampling_claims
from pipeline.cli import add_precision_argument, at_least, check_output_args
from pipeline.data import add_data_file_arguments, data_file_entries
from pipeline.exports import add_export_arguments, export_dataset
from pipeline.runtime import pick_device
from pipeline.session import (
    REPORT_NS,
    REPORT_SEED,
    config_registry,
    load_prohmr_checkpoint,
    registry_entry,
    training_keypoints,
    training_smpl,
)

import pose_data as pdata
from prohmr_model.evaluation import (
    GAUSSIAN_SIGMAS_M,
    UNCERTAINTY_SAMPLES,
    calibration_plot,
    error_vs_n_plot,
    evaluate_regression,
    mean_pose_keypoints,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", nargs="*", default=None, help="registry names (default: val)")
    add_data_file_arguments(parser)
    add_export_arguments(parser)
    parser.add_argument(
        "--num-samples",
        type=at_least(1),
        default=None,
        help="hypotheses drawn per image (default: the largest --ns)",
    )
    parser.add_argument(
        "--ns", type=at_least(1), nargs="*", default=None, help="best-of-n values (1 ... 4096)"
    )
    parser.add_argument(
        "--kmeans", type=at_least(1), nargs="*", default=[], help="k-means n values"
    )
    parser.add_argument(
        "--baselines", action="store_true", help="Gaussian, training-set and mean-pose"
    )
    parser.add_argument("--truncate", action="store_true", help="extreme-crop every image")
    parser.add_argument(
        "--uncertainty-samples",
        type=at_least(0),
        default=UNCERTAINTY_SAMPLES,
        help="random samples per image (of the same draw, after the mode) for the uncertainty "
        f"metrics; 0 = none (default {UNCERTAINTY_SAMPLES}, at most --num-samples - 1)",
    )
    parser.add_argument("--group-by", default="", help="npz key for a breakdown, e.g. action")
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N images only")
    parser.add_argument("--batch-size", type=at_least(1), default=16)
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument(
        "--seed", type=at_least(0), default=REPORT_SEED, help="random seed (default: the report's)"
    )
    args = parser.parse_args(argv)
    defaulted = args.num_samples is None
    if defaulted:
        args.num_samples = max(args.ns or REPORT_NS)
    too_many = [n for n in [*(args.ns or []), *args.kmeans] if n > args.num_samples]
    if too_many:
        parser.error(
            f"--ns / --kmeans values must be <= --num-samples {args.num_samples}, got {too_many}"
            + (" (--num-samples defaults to the largest --ns)" if defaulted else "")
        )
    check_output_args(parser, dirs={"--out": args.out or args.checkpoint.parent.parent / "eval"})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    registry = config_registry(config)
    names = list(args.dataset or ([] if args.data_file else config.data.val))
    entries = {name: registry_entry(registry, name, kinds=("image",)) for name in names}
    files = data_file_entries(args)
    entries.update(files)
    names += list(files)
    # k-means n is compared with n random samples: best-of-n at every k-means n too
    ns = {n for n in (args.ns or REPORT_NS) if n <= args.num_samples}
    ns = tuple(sorted(ns | set(args.kmeans)))
    out = args.out or args.checkpoint.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    baseline_generator = torch.Generator(device=device).manual_seed(args.seed + 1)
    training_poses, extra_predictions = None, {}
    if args.baselines:
        training_poses = training_keypoints(config, registry)
        if training_poses is None:
            print("--baselines: no training set has 3D keypoints; no training-set baseline")
        files = [registry.entry(name, key="data.train").file for name in config.data.train]
        smpl = training_smpl(files)
        if smpl is not None:
            mean_keypoints = mean_pose_keypoints(model.body_model, *smpl).to(device)
            extra_predictions["mean_pose"] = lambda batch: mean_keypoints.expand(
                len(batch["img"]), 1, 44, 3
            )
        else:
            print("--baselines: no training set has SMPL poses; no mean-pose baseline")
    report: dict[str, object] = {"checkpoint": str(args.checkpoint), "datasets": {}}
    lines = ["| dataset | metric | value (mm; PCK and AUC in %) |", "|---|---|---|"]
    claim_tables = []
    uncertainty_tables = []
    for name in names:
        entry = entries[name]
        augmentation = None
        if args.truncate:
            augmentation = pdata.AugmentationConfig(
                scale_factor=0.0,
                rotation_factor_deg=0.0,
                rotation_probability=0.0,
                translation_factor=0.0,
                flip_probability=0.0,
                extreme_crop_probability=1.0,
                color_scale=0.0,
            )
        dataset = pdata.ImageDataset(
            entry.file,
            image_dir=entry.image_dir,
            train=args.truncate,
            augmentation=augmentation,
            image_size=config.data.image_size,
            keypoint_list=entry.keypoint_list,
            use_hips=entry.use_hips,
            seed=args.seed,
        )
        group_labels = {}
        if args.group_by:
            group_labels[args.group_by] = _group_labels(dataset, args.group_by)
        if args.limit is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(args.limit, len(dataset))))
        evaluation = evaluate_regression(
            model,
            dataset,
            keypoint_list=entry.keypoint_list,
            num_samples=args.num_samples,
            best_of=ns,
            kmeans_clusters=args.kmeans,
            gaussian_sigmas_m=GAUSSIAN_SIGMAS_M if args.baselines else (),
            training_poses=training_poses,
            pck_auc=entry.keypoint_list_name == "mpi_inf17",
            batch_size=args.batch_size,
            device=device,
            generator=generator,
            baseline_generator=baseline_generator,
            group_labels=group_labels,
            extra_predictions=extra_predictions,
            source=f"checkpoint {args.checkpoint}",
            uncertainty_samples=args.uncertainty_samples,
        )
        summary = evaluation.summary
        claims = sampling_claims(summary)
        report["datasets"][name] = {  # type: ignore[index]
            "summary": summary,
            "claims": claims_json(claims),
            "breakdown": evaluation.accumulator.to_dict(group_by=args.group_by or None),
            "uncertainty": None,
        }
        for metric, value in summary.items():
            lines.append(f"| {name} | {metric} | {value:.1f} |")
        error_vs_n_plot(summary, ns, out / f"{name}_error_vs_n.png", title=name)
        if evaluation.uncertainty is not None:
            plot = calibration_plot(
                evaluation.uncertainty, out / f"{name}_calibration.png", title=name
            )
            report["datasets"][name]["uncertainty"] = {  # type: ignore[index]
                **evaluation.uncertainty.to_dict(),
                "plot": str(plot),
            }
            markdown = evaluation.uncertainty.to_markdown()
            uncertainty_tables.append(f"### {name}\n\n{markdown}\n![calibration]({plot.name})")
        claim_tables.append(f"### {name}\n\n{claims_markdown(claims)}")
        export_dataset(args, model, config, entry, out, device=device)
    table = "\n".join(lines)
    if uncertainty_tables:
        table += "\n\n## Uncertainty (docs/evaluation.md#uncertainty-metrics)\n\n"
        table += "\n\n".join(uncertainty_tables)
    table += "\n\n## The seed's claims (claims 1-4; 5 is eval_fitting's and eval_multiview's)\n\n"
    table += "\n\n".join(claim_tables)
    print(table)
    text = json.dumps(report, indent=2, default=float)
    pdata.atomic_write(out / "summary.md", lambda f: f.write((table + "\n").encode()))
    pdata.atomic_write(out / "summary.json", lambda f: f.write(text.encode()))
    print(f"wrote {out / 'summary.json'}")
    return 0


def _group_labels(dataset: pdata.ImageDataset, key: str) -> list[str]:
    """The labels of every row of the dataset's npz array ``key`` (``--group-by``)."""
    path = dataset.annotations.source
    arrays = pdata.read_npz(path, what="--group-by's dataset file")
    if key not in arrays:
        raise SystemExit(f"--group-by {key!r}: {path} has no array '{key}' ({sorted(arrays)})")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in arrays[key].tolist()]


if __name__ == "__main__":
    sys.exit(main())
