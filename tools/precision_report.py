"""What bf16 does to a trained model's results: fp32 against bf16, side by side.

    python tools/precision_report.py --checkpoint outputs/default/checkpoints/last.pt

For one checkpoint and its validation sets (the default world's, for the default run):

1. evaluation: mode and best-of-n MPJPE / PA-MPJPE with the same latents in both precisions
   (``prohmr_model.evaluation.evaluate_regression``, the protocol of every report);
2. log p of the ground-truth poses of those images under the flow, per image, in both
   precisions (the flow's coupling networks are what bf16 changes there);
3. a short training run: ``--train-steps`` steps from the checkpoint's weights on the same
   training batches, the same latents, in fp32 and in bf16 (the backbone under autocast, as
   ``train.precision=bf16`` runs it), every generator loss of every step.

This measures numbers, not speed: on a device without native bf16 it runs bf16 emulated (slow,
and said so), because the question is what the lower precision does to the results. Writes
``precision_report.json`` and ``precision_report.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
from pipeline.cli import at_least, check_output_args
from pipeline.prohmr_training import generator_step_losses
from pipeline.runtime import pick_device
from pipeline.session import config_registry, load_prohmr_checkpoint, registry_entry

import pose_data as pdata
from prohmr_model import to_device
from prohmr_model.evaluation import evaluate_regression
from prohmr_model.losses import gt_pose_6d
from prohmr_model.precision import native_bf16

NS = (1, 4, 16)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--limit", type=at_least(1), default=None, help="first N images only")
    parser.add_argument("--num-samples", type=at_least(1), default=max(NS))
    parser.add_argument("--train-steps", type=at_least(0), default=10)
    parser.add_argument("--batch-size", type=at_least(1), default=16)
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    args = parser.parse_args(argv)
    check_output_args(parser, dirs={"--out": args.out})
    return args


def _datasets(config, registry, names, *, train: bool, limit: int | None, seed: int):
    datasets = {}
    for name in names:
        entry = registry_entry(registry, name, kinds=("image",))
        dataset = pdata.ImageDataset(
            entry.file,
            image_dir=entry.image_dir,
            train=train,
            image_size=config.data.image_size,
            keypoint_list=entry.keypoint_list,
            use_hips=entry.use_hips,
            seed=seed,
        )
        if limit is not None:
            dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
        datasets[name] = (entry, dataset)
    return datasets


def _evaluate(model, entry, dataset, args, device) -> dict[str, float]:
    ns = tuple(n for n in NS if n <= args.num_samples)
    evaluation = evaluate_regression(
        model,
        dataset,
        keypoint_list=entry.keypoint_list,
        num_samples=args.num_samples,
        best_of=ns,
        batch_size=args.batch_size,
        device=device,
        generator=torch.Generator(device=device).manual_seed(args.seed),
    )
    return {k: float(v) for k, v in evaluation.summary.items()}


@torch.no_grad()
def _log_prob(model, dataset, args, device) -> torch.Tensor:
    """log p of each image's ground-truth pose (NaN where it has none)."""
    values = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size)
    for batch in loader:
        batch = to_device(batch, device)
        pose_6d = gt_pose_6d({k: v.float() for k, v in batch["smpl_params"].items()})
        has = batch["has_smpl_params"]["body_pose"].bool()
        features = model.features(batch["img"])
        log_prob, _ = model.flow.log_prob(pose_6d[:, None], features)
        values.append(torch.where(has, log_prob[:, 0], torch.nan))
    return torch.cat(values).cpu()


def _train(model, config, batches, args, device) -> list[dict[str, float]]:
    """``len(batches)`` generator steps from the model's weights; the losses of each."""
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.train.lr,
        weight_decay=config.train.weight_decay,
    )
    generator = torch.Generator(device=device).manual_seed(args.seed)
    history = []
    for batch in batches:
        combined, _ = generator_step_losses(
            model,
            None,
            to_device(batch, device),
            config=config,
            num_samples=config.train.num_train_samples,
            train=True,
            generator=generator,
        )
        optimizer.zero_grad(set_to_none=True)
        combined.total.backward()
        optimizer.step()
        history.append({k: float(v) for k, v in combined.logs.items()})
    return history


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(args.checkpoint, device=device, overrides=args.set)
    models = {"fp32": model, "bf16": copy.deepcopy(model)}
    models["bf16"].set_precision("bf16", allow_emulated=True)
    native, why = native_bf16(device)
    registry = config_registry(config)
    out = args.out or Path(args.checkpoint).parent.parent / "precision"
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"checkpoint": str(args.checkpoint), "bf16_native": native, "bf16": why}
    lines = [
        f"# fp32 against bf16: {args.checkpoint}",
        "",
        f"bf16 {'native' if native else 'EMULATED'} on {device}: {why}.",
        "",
    ]
    val = _datasets(
        config, registry, list(config.data.val), train=False, limit=args.limit, seed=args.seed
    )
    for name, (entry, dataset) in val.items():
        summaries = {p: _evaluate(m, entry, dataset, args, device) for p, m in models.items()}
        log_probs = {p: _log_prob(m, dataset, args, device) for p, m in models.items()}
        difference = (log_probs["bf16"] - log_probs["fp32"]).abs()
        has = ~torch.isnan(difference)
        report[name] = {
            "summary": summaries,
            "log_prob_mean": {p: float(v[has].mean()) for p, v in log_probs.items()},
            "log_prob_max_abs_difference": float(difference[has].max()) if has.any() else None,
            "images": len(dataset),
            "images_with_pose": int(has.sum()),
        }
        lines += [
            f"## {name} ({len(dataset)} images)",
            "",
            "| metric | fp32 | bf16 | bf16 - fp32 |",
        ]
        lines.append("|---|---:|---:|---:|")
        for key in summaries["fp32"]:
            a, b = summaries["fp32"][key], summaries["bf16"][key]
            lines.append(f"| {key} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
        if has.any():
            a, b = (float(log_probs[p][has].mean()) for p in ("fp32", "bf16"))
            lines.append(
                f"| mean log p of the given poses ({int(has.sum())} images) | {a:.3f} | "
                f"{b:.3f} | {b - a:+.3f} (max per image {float(difference[has].max()):.3f}) |"
            )
        lines.append("")
    if args.train_steps:
        train = _datasets(
            config, registry, list(config.data.train), train=True, limit=None, seed=args.seed
        )
        mixed = pdata.MixedDataset(
            [dataset for _, dataset in train.values()],
            list(config.data.train.values()),
            seed=args.seed,
        )
        batches = [
            torch.utils.data.default_collate(
                [mixed[step * args.batch_size + i] for i in range(args.batch_size)]
            )
            for step in range(args.train_steps)
        ]
        histories = {p: _train(m, config, batches, args, device) for p, m in models.items()}
        report["training"] = histories
        lines += [
            f"## {args.train_steps} training steps from the checkpoint (batch {args.batch_size})",
            "",
            "| step | total fp32 | total bf16 | NLL fp32 | NLL bf16 |",
            "|---:|---:|---:|---:|---:|",
        ]
        for step, (a, b) in enumerate(zip(histories["fp32"], histories["bf16"], strict=True)):
            lines.append(
                f"| {step + 1} | {a['loss']:.4f} | {b['loss']:.4f} | {a['loss_nll']:.4f} | "
                f"{b['loss_nll']:.4f} |"
            )
        lines.append("")
    (out / "precision_report.json").write_text(json.dumps(report, indent=2))
    (out / "precision_report.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"written: {out / 'precision_report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
