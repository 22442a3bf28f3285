"""Evaluate a ProHMR checkpoint with the paper's protocols (docs/evaluation.md).

    python tools/eval_regression.py --checkpoint outputs/default/checkpoints/last.pt
    python tools/eval_regression.py --checkpoint ckpt.pt --dataset H36M-VAL-P2 3DPW-TEST \\
        --num-samples 4096 --kmeans 5 10 25 --baselines --truncate

For each dataset (registry name; its keypoint list picks LSP-14 / H36M-17 / MPI-INF-17): mode and
best-of-n MPJPE / PA-MPJPE (n up to ``--num-samples``, batched on the device through the
joints-only body path), k-means-quantised n (``--kmeans``; 4096 samples clustered to n), PCK/AUC
for MPI-INF-3DHP, per-group breakdowns (``--group-by action``), the Gaussian (σ = 1, 10, 20 cm
around the mode) and training-set baselines (``--baselines``), an error-versus-n plot, and a
truncation option (``--truncate``: every crop gets the extreme-cropping augmentation, so parts of
the body are cut off, in the spirit of AH36M). A final table is printed and saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from pipeline.cli import at_least, check_output_args
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
import pose_geometry as pg
import pose_metrics as pm
from prohmr_model import to_device
from prohmr_model.evaluation import batch_images, check_finite_predictions, error_vs_n_plot

DEFAULT_NS = (1, 4, 16, 64, 256, 1024, 4096)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--dataset", nargs="*", default=None, help="registry names (default: val)")
    parser.add_argument("--num-samples", type=at_least(1), default=4096)
    parser.add_argument("--ns", type=at_least(1), nargs="*", default=None, help="best-of-n values")
    parser.add_argument(
        "--kmeans", type=at_least(1), nargs="*", default=[], help="k-means n values"
    )
    parser.add_argument("--baselines", action="store_true", help="Gaussian and training set")
    parser.add_argument("--truncate", action="store_true", help="extreme-crop every image")
    parser.add_argument("--group-by", default="", help="npz key for a breakdown, e.g. action")
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N images only")
    parser.add_argument("--batch-size", type=at_least(1), default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--seed", type=at_least(0), default=0)
    args = parser.parse_args(argv)
    too_many = [n for n in [*(args.ns or []), *args.kmeans] if n > args.num_samples]
    if too_many:
        parser.error(
            f"--ns / --kmeans values must be <= --num-samples {args.num_samples}, got {too_many}"
        )
    check_output_args(parser, dirs={"--out": args.out or args.checkpoint.parent.parent / "eval"})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(args.checkpoint, device=device, overrides=args.set)
    registry = config_registry(config)
    names = args.dataset or list(config.data.val)
    entries = {name: registry_entry(registry, name, kinds=("image",)) for name in names}
    ns = tuple(n for n in (args.ns or DEFAULT_NS) if n <= args.num_samples)
    out = args.out or args.checkpoint.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    training_poses = None
    if args.baselines:
        training_poses = _training_keypoints(config, registry).to(device)
    report: dict[str, object] = {"checkpoint": str(args.checkpoint), "datasets": {}}
    lines = ["| dataset | metric | mean (mm) |", "|---|---|---|"]
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
            seed=args.seed,
        )
        if args.limit is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(args.limit, len(dataset))))
        joints = entry.keypoint_list or pg.LSP14_IDX_44
        summary, accumulator = evaluate(
            model,
            dataset,
            joints=joints,
            num_samples=args.num_samples,
            ns=ns,
            kmeans=args.kmeans,
            training_poses=training_poses,
            batch_size=args.batch_size,
            generator=generator,
            group_by=args.group_by,
            pck=entry.keypoint_list_name == "mpi_inf17",
            device=device,
            source=f"checkpoint {args.checkpoint}",
        )
        report["datasets"][name] = {  # type: ignore[index]
            "summary": summary,
            "breakdown": accumulator.to_dict(group_by=args.group_by or None),
        }
        for metric, value in summary.items():
            lines.append(f"| {name} | {metric} | {value:.1f} |")
        error_vs_n_plot(summary, ns, out / f"{name}_error_vs_n.png", title=name)
    table = "\n".join(lines)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=float))
    print(f"wrote {out / 'summary.json'}")
    return 0


def _training_keypoints(config, registry) -> torch.Tensor:
    """(M, 44, 3) pelvis-centred 3D keypoints of the training sets (training-set baseline)."""
    poses = []
    for name in config.data.train:
        entry = registry.entry(name, key="data.train", kinds=("image",))
        annotations = pdata.read_prohmr_npz(entry.require_file())
        keypoints = torch.from_numpy(np.asarray(annotations.keypoints_3d[..., :3])).float()
        poses.append(keypoints - keypoints[:, pg.PELVIS_IDX_44 : pg.PELVIS_IDX_44 + 1])
    return torch.cat(poses)


@torch.no_grad()
def evaluate(
    model,
    dataset,
    *,
    joints,
    num_samples: int,
    ns,
    kmeans,
    training_poses: torch.Tensor | None,
    batch_size: int,
    generator: torch.Generator,
    group_by: str,
    pck: bool,
    device: torch.device,
    source: str = "the model",
) -> tuple[dict[str, float], pm.MetricAccumulator]:
    """Score every image; returns the overall means and the accumulator.

    Raises:
        NonFinitePredictionError: naming ``source`` and the count of NaN/infinite poses.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    accumulator = pm.MetricAccumulator()
    names_file = None
    for number, batch in enumerate(loader):
        batch = to_device(batch, device)
        target = batch["keypoints_3d"].float()
        mask = target[..., 3]
        features = model.features(batch["img"]).float()
        chunks = []
        for start in range(0, num_samples, 1024):
            count = min(1024, num_samples - start)
            out = model.decode(
                features, num_samples=count, generator=generator, include_mode=start == 0
            )
            chunks.append(out.keypoints_3d)
        predictions = torch.cat(chunks, dim=1)
        check_finite_predictions(predictions, source=source, where=batch_images(batch, number))
        options = {"root_idx": pg.PELVIS_IDX_44, "joint_idx": list(joints), "mask": mask}
        result = pm.best_of_n(predictions, target[..., :3], **options)
        values = {"mode_mpjpe": result.mode_mpjpe, "mode_pa_mpjpe": result.mode_pa_mpjpe}
        for n in ns:
            first = result.best_of_first(n)
            values[f"best{n}_mpjpe"] = first.mpjpe
            values[f"best{n}_pa_mpjpe"] = first.pa_mpjpe
        for k in kmeans:
            clustered = pm.kmeans_best_of_k(
                predictions, target[..., :3], num_clusters=k, generator=generator, **options
            )
            values[f"kmeans{k}_mpjpe"] = clustered.min_mpjpe
            values[f"kmeans{k}_pa_mpjpe"] = clustered.min_pa_mpjpe
        if training_poses is not None:
            mode = predictions[:, 0]
            for sigma in (0.01, 0.10, 0.20):
                samples = pm.gaussian_baseline_samples(
                    mode, num_samples=num_samples, sigma_m=sigma, generator=generator
                )
                scored = pm.best_of_n(samples, target[..., :3], **options)
                for n in ns:
                    first = scored.best_of_first(n)
                    tag = f"gauss{round(sigma * 100)}cm_best{n}"
                    values[f"{tag}_mpjpe"] = first.mpjpe
                    values[f"{tag}_pa_mpjpe"] = first.pa_mpjpe
            drawn = pm.training_set_baseline_samples(
                training_poses, num_images=len(target), num_samples=num_samples, generator=generator
            )
            scored = pm.best_of_n(drawn, target[..., :3], **options)
            for n in ns:
                first = scored.best_of_first(n)
                values[f"trainset_best{n}_mpjpe"] = first.mpjpe
                values[f"trainset_best{n}_pa_mpjpe"] = first.pa_mpjpe
        if pck:
            errors = pm.joint_position_errors(
                predictions[:, 0], target[..., :3], root_idx=pg.PELVIS_IDX_44, joint_idx=joints
            )
            values["mode_pck150"] = pm.pck(errors)
            values["mode_auc"] = pm.auc(errors)
        groups = None
        if group_by:
            if names_file is None:
                names_file = _group_labels(dataset, group_by)
            groups = {group_by: [names_file[int(i)] for i in batch["idx"]]}
        accumulator.add({k: v.cpu() for k, v in values.items()}, groups=groups)
    overall = accumulator.summarize()[0]
    return {name: item.mean for name, item in overall.metrics.items()}, accumulator


def _group_labels(dataset, key: str) -> list[str]:
    base = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
    path = base.annotations.source
    arrays = np.load(path)
    if key not in arrays:
        raise KeyError(f"--group-by {key!r}: {path} has no array '{key}' ({sorted(arrays)})")
    return [str(v) for v in arrays[key]]


if __name__ == "__main__":
    sys.exit(main())
