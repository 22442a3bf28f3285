"""Evaluate a lifting checkpoint: mode, best-of-n, k-means n, baselines, plot.

    python tools/eval_lifting.py --checkpoint outputs/lifting/checkpoints/last.pt

Errors are MPJPE / PA-MPJPE in mm over 17 joints with the original's zero pelvis prepended to
prediction and ground truth. Reported for n = 1, 10, 100, 1000, 4096 (``--ns``), k-means n
(``--kmeans``: all samples clustered to n), the Gaussian baselines (σ = 1, 10, 20 cm around the
mode) and the training-set baseline (n random training poses), best-of-n also at each k-means
n; the error-versus-n plot is saved as PNG beside ``summary.json`` and ``summary.md``, which end
with the seed's claims 1-4 tested on these numbers (``pipeline/claims.py``).

Uncertainty metrics (docs/evaluation.md#uncertainty-metrics): the diversity of
``--uncertainty-samples`` random samples of the same draw (100 by default, the mode left out)
over the 16 joints, split by the 2D input's confidence (visible > 0), their calibration curve
(``calibration.png``) and ECE, the rank correlation of spread and mode error, and the
log-likelihood of the ground-truth joints under the flow (a density over root-relative metres
in R^48: comparable only between models over the same joints and units).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from pipeline.claims import claims_json, claims_markdown, sampling_claims
from pipeline.cli import at_least, check_output_args
from pipeline.config import LiftingConfig, _build
from pipeline.runtime import load_checkpoint, load_model_state, pick_device

import pose_data as pdata
from pose_data.lifting import LiftingDataset
from prohmr_model.evaluation import (
    UNCERTAINTY_SAMPLES,
    calibration_plot,
    error_vs_n_plot,
    evaluate_lifting,
)
from prohmr_model.lifting import build_lifting_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--test", type=Path, default=None, help="test npz (default: config's)")
    parser.add_argument("--ns", type=at_least(1), nargs="+", default=[1, 10, 100, 1000, 4096])
    parser.add_argument("--kmeans", type=at_least(1), nargs="*", default=[])
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N test rows only")
    parser.add_argument("--batch-size", type=at_least(1), default=8)
    parser.add_argument(
        "--uncertainty-samples",
        type=at_least(0),
        default=UNCERTAINTY_SAMPLES,
        help="random samples per row (of the same draw, after the mode) for the uncertainty "
        f"metrics; 0 = none (default {UNCERTAINTY_SAMPLES}, at most max(--ns) - 1)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    too_many = [k for k in args.kmeans if k > max(args.ns)]
    if too_many:
        parser.error(f"--kmeans values must be <= the largest --ns {max(args.ns)}, got {too_many}")
    check_output_args(parser, dirs={"--out": args.out or args.checkpoint.parent.parent / "eval"})
    device = pick_device(args.device)
    state = load_checkpoint(args.checkpoint, kind="lifting")
    config: LiftingConfig = _build(LiftingConfig, state["config"], "", str(args.checkpoint))
    model = build_lifting_model(config.model)
    load_model_state(model, state["model"], path=args.checkpoint, what="lifting model")
    model.to(device).eval()
    test = LiftingDataset(args.test or config.val_file, stats_path=config.stats_file)
    if args.limit is not None:
        test = torch.utils.data.Subset(test, range(min(args.limit, len(test))))
    training = LiftingDataset(config.train_file, stats_path=config.stats_file)
    # k-means n is compared with n random samples: best-of-n at every k-means n too
    ns = sorted(set(args.ns) | set(args.kmeans))
    result = evaluate_lifting(
        model,
        test,
        ns=ns,
        kmeans_ns=args.kmeans,
        training_poses=training.keypoints_3d[..., :3],
        batch_size=args.batch_size,
        device=device,
        source=f"checkpoint {args.checkpoint}",
        uncertainty_samples=args.uncertainty_samples,
    )
    summary = result["summary"]
    out = args.out or args.checkpoint.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    plot = error_vs_n_plot(summary, ns, out / "error_vs_n.png", title="lifting")
    lines = ["| metric | MPJPE (mm) | PA-MPJPE (mm) |", "|---|---|---|"]
    for name in sorted({k.rsplit("_", 1)[0].removesuffix("_pa") for k in summary}):
        mpjpe = summary.get(f"{name}_mpjpe", float("nan"))
        pa = summary.get(f"{name}_pa_mpjpe", float("nan"))
        lines.append(f"| {name} | {mpjpe:.1f} | {pa:.1f} |")
    claims = sampling_claims(summary)
    table = "\n".join(lines)
    uncertainty = result["uncertainty"]
    calibration = None
    if uncertainty is not None:
        calibration = calibration_plot(uncertainty, out / "calibration.png", title="lifting")
        table += "\n\n## Uncertainty (docs/evaluation.md#uncertainty-metrics)\n\n"
        table += f"{uncertainty.to_markdown()}\n![calibration]({calibration.name})"
    table += "\n\n## The seed's claims (1-4)\n\n" + claims_markdown(claims)
    print(table)
    text = json.dumps(
        {
            "checkpoint": str(args.checkpoint),
            "summary": summary,
            "claims": claims_json(claims),
            "plot": str(plot),
            "uncertainty": None
            if uncertainty is None
            else {**uncertainty.to_dict(), "plot": str(calibration)},
        },
        indent=2,
    )
    pdata.atomic_write(out / "summary.md", lambda f: f.write((table + "\n").encode()))
    pdata.atomic_write(out / "summary.json", lambda f: f.write(text.encode()))
    print(f"wrote {out / 'summary.json'} and {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
