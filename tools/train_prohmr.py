"""Train ProHMR; with no arguments, on the embedded synthetic world, then evaluate it.

    python tools/train_prohmr.py                                  # synthetic world, CPU-sized
    python tools/train_prohmr.py --config tools/configs/prohmr.yaml   # the published setting
    python tools/train_prohmr.py --set train.batch_size=32 model.backbone_depth=18
    python tools/train_prohmr.py --resume                          # continue output_dir's run
    torchrun --nproc_per_node=2 tools/train_prohmr.py ...          # DDP (gloo on CPU, NCCL on GPU)

Outputs under the config's ``output_dir``: ``checkpoints/last.pt`` (atomic, every
``checkpoint_steps``), ``tensorboard/`` (scalars, prediction grids), ``losses_rank*.jsonl``,
``config.yaml``, and after training ``report.json`` / ``report.md`` / ``predictions.png`` /
``<dataset>_error_vs_n.png``: the held-out evaluation with the paper's protocol (mode, best-of-n
to 4096, k-means, the Gaussian, training-set and mean-pose baselines; eval_regression.py's), on
the synthetic world also eval_fitting.py and eval_multiview.py on a few images (the ``report:``
config section sizes all three), the seed's claims with verdicts computed from these numbers
(pipeline/claims.py) and the wall time of each phase (docs/evaluation.md#held-out-report).

One run per output folder: ``run.lock`` there names the owner (pid, host, start time) and a
second run is refused; the lock of a run that died on this host is taken over (so ``--resume``
of a killed run just works), one of another host only with ``--take-over-lock``. ``--resume``
refuses a config that differs from the checkpoint's in a key that changes the result (the keys
that do not are listed in pipeline/run_guard.py) unless ``--allow-config-change``; the loss log
keeps each step once; ``config.yaml`` is written after these checks and records allowed changes.
A start without ``--resume`` in a folder that holds an earlier run's files moves them to
``previous/<time>/``, so no run overwrites another's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from pipeline.claims import claims_json, claims_markdown, fitting_claims, sampling_claims
from pipeline.cli import at_least, check_output_dir
from pipeline.config import ProHMRConfig, load_config
from pipeline.run_guard import add_run_folder_arguments, run_in_folder
from pipeline.runtime import (
    DistributedContext,
    init_distributed,
    save_checkpoint,
    seed_everything,
)
from pipeline.session import ProHMRSession

from pose_data.io import atomic_write

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "synthetic_cpu.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment YAML")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted config overrides"
    )
    add_run_folder_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    parser.add_argument(
        "--stop-after",
        type=at_least(1),
        default=None,
        help="stop (with a checkpoint) after this step",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny world, 20 steps, small evaluation (for CI)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--save-rank-weights",
        action="store_true",
        help="every rank writes its final weights to weights_rank<r>.pt (DDP check)",
    )
    return parser.parse_args(argv)


QUICK_OVERRIDES = [
    "output_dir=outputs/quick",
    "synthetic.output_dir=outputs/synthetic_quick",
    "synthetic.num_train=64",
    "synthetic.num_val=16",
    "synthetic.image_size=96",
    "train.total_steps=20",
    "train.batch_size=8",
    "train.val_steps=10",
    "train.image_log_steps=20",
    "train.checkpoint_steps=10",
    "train.num_val_samples=4",
    "report.max_samples=4",
    "report.fitting_images=4",
    "report.multiview_frames=2",
    "data.image_size=64",
    "data.num_workers=0",
    "model.flow_hidden_features=64",
    "model.fc_hidden_features=64",
]


def main(argv: list[str] | None = None) -> int:
    """Train (and evaluate); exits with the message when the folder is locked by another run
    or a resume's config changes are refused."""
    args = parse_args(argv)
    overrides = [*(QUICK_OVERRIDES if args.quick else []), *args.set]
    config: ProHMRConfig = load_config(ProHMRConfig, args.config, overrides)
    check_output_dir(config.output_dir, "output_dir")
    if config.synthetic is not None:
        check_output_dir(config.synthetic.output_dir, "synthetic.output_dir")
    ctx = init_distributed(args.device)
    return run_in_folder(
        "train_prohmr.py",
        config.output_dir,
        ctx,
        lambda: _run(args, config, ctx),
        resume=args.resume,
        take_over_foreign=args.take_over_lock,
    )


def _run(args: argparse.Namespace, config: ProHMRConfig, ctx: DistributedContext) -> int:
    seed_everything(config.train.seed + ctx.rank)
    torch.set_float32_matmul_precision("high")
    started = time.perf_counter()
    session = ProHMRSession(config, ctx=ctx, progress=not args.no_progress)
    phases = {"world and set-up": time.perf_counter() - started}
    try:
        _train_and_report(args, config, ctx, session, started, phases)
    finally:
        session.close()
    if ctx.distributed:
        torch.distributed.barrier()  # every rank's files are written before the lock goes
        torch.distributed.destroy_process_group()
    return 0


def _train_and_report(
    args: argparse.Namespace,
    config: ProHMRConfig,
    ctx: DistributedContext,
    session: ProHMRSession,
    started: float,
    phases: dict[str, float],
) -> None:
    if ctx.is_main:
        print(session.describe(), flush=True)
    result = session.train(
        resume=args.resume,
        progress=not args.no_progress,
        stop_after_step=args.stop_after,
        allow_config_change=args.allow_config_change,
    )
    phases["training"] = result.seconds
    if ctx.is_main:
        print(
            f"trained steps {result.start_step} -> {result.end_step} in {result.seconds:.1f} s",
            flush=True,
        )
    if args.save_rank_weights:
        weights = {f"model.{k}": v for k, v in session.model.state_dict().items()}
        if session.discriminator is not None:
            weights.update(
                {f"discriminator.{k}": v for k, v in session.discriminator.state_dict().items()}
            )
        save_checkpoint(Path(config.output_dir) / f"weights_rank{ctx.rank}.pt", weights)
    if ctx.is_main and not args.no_eval and result.end_step >= config.train.total_steps:
        report = _report(args, config, session, phases)
        report["wall_seconds"] = time.perf_counter() - started
        out = Path(config.output_dir)
        markdown = report.pop("markdown")
        markdown += f"\n\nWall time in all: {report['wall_seconds']:.0f} s.\n"
        atomic_write(out / "report.md", lambda f: f.write(markdown.encode()))
        text = json.dumps(report, indent=2, default=float)
        atomic_write(out / "report.json", lambda f: f.write(text.encode()))
        print(markdown, flush=True)
        print(f"wrote {out / 'report.md'} and report.json", flush=True)


def _report(
    args: argparse.Namespace,
    config: ProHMRConfig,
    session: ProHMRSession,
    phases: dict[str, float],
) -> dict:
    """The held-out evaluation, keypoint fitting against SMPLify and multiview refinement (on
    the synthetic world), and the seed's claims tested on their numbers."""
    tic = time.perf_counter()
    regression = session.evaluate_and_report(progress=not args.no_progress)
    phases["evaluation"] = time.perf_counter() - tic
    fitting = multiview = None
    checkpoint = str(Path(config.output_dir) / "checkpoints" / "last.pt")
    device = ["--device", str(session.ctx.device)]
    images, frames = config.report.fitting_images, config.report.multiview_frames
    if config.synthetic is not None and images:
        import eval_fitting  # the programs beside this one (their protocol, files and tables)

        tic = time.perf_counter()
        fitting = eval_fitting.run(
            eval_fitting.parse_args(["--checkpoint", checkpoint, "--limit", str(images), *device])
        )
        phases["keypoint fitting"] = time.perf_counter() - tic
    if config.synthetic is not None and frames:
        import eval_multiview

        tic = time.perf_counter()
        multiview = eval_multiview.run(
            eval_multiview.parse_args(["--checkpoint", checkpoint, "--limit", str(frames), *device])
        )
        phases["multiview refinement"] = time.perf_counter() - tic
    first = next(iter(regression["results"]))
    claims = sampling_claims(regression["results"][first]) + fitting_claims(
        None if fitting is None else fitting["summary"],
        None if multiview is None else multiview["summary"],
    )
    plot = Path(regression["plots"][first])
    sections = [
        f"# Report: {config.output_dir}",
        "## The seed's claims",
        f"Claims 1-4 on {first} (best-of-n from one draw of samples per image, the Gaussian "
        "and training-set baselines, k-means of all samples); claim 5 on the fitting and "
        "multiview sets below. The verdicts are computed from these numbers "
        "(tools/pipeline/claims.py).",
        claims_markdown(claims),
        f"![error versus n]({plot.name})",
        "## Held-out evaluation",
        regression["markdown"],
    ]
    if fitting is not None:
        sections += ["## Keypoint fitting (eval_fitting.py)", fitting["markdown"]]
    if multiview is not None:
        sections += ["## Multiview refinement (eval_multiview.py)", multiview["markdown"]]
    sections += [
        "## Wall time per phase",
        "\n".join(["| phase | seconds |", "|---|---|"])
        + "".join(f"\n| {name} | {seconds:.0f} |" for name, seconds in phases.items()),
        f"![predictions]({Path(regression['figure']).name})",
    ]
    return {
        "results": regression["results"],
        "uncertainty": regression["uncertainty"],
        "claims": claims_json(claims),
        "fitting": None if fitting is None else fitting["summary"],
        "multiview": None if multiview is None else multiview["summary"],
        "plots": regression["plots"],
        "calibration_plots": regression["calibration_plots"],
        "figure": regression["figure"],
        "phases_seconds": phases,
        "markdown": "\n\n".join(sections),
    }


if __name__ == "__main__":
    sys.exit(main())
