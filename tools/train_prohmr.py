"""Train ProHMR; with no arguments, on the embedded synthetic world, then evaluate it.

    python tools/train_prohmr.py                                  # synthetic world, CPU-sized
    python tools/train_prohmr.py --config tools/configs/prohmr.yaml   # the published setting
    python tools/train_prohmr.py --set train.batch_size=32 model.backbone_depth=18
    python tools/train_prohmr.py --resume                          # continue output_dir's run
    torchrun --nproc_per_node=2 tools/train_prohmr.py ...          # DDP (gloo on CPU, NCCL on GPU)

Outputs under the config's ``output_dir``: ``checkpoints/last.pt`` (atomic, every
``checkpoint_steps``), ``tensorboard/`` (scalars, prediction grids), ``losses_rank*.jsonl``,
``config.yaml``, and after training ``report.json`` / ``report.md`` / ``predictions.png`` with
the held-out evaluation (mode PA-MPJPE, best-of-n and the mean-pose baseline).

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
    session = ProHMRSession(config, ctx=ctx)
    try:
        _train_and_report(args, config, ctx, session, started)
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
) -> None:
    if ctx.is_main:
        print(session.describe(), flush=True)
    result = session.train(
        resume=args.resume,
        progress=not args.no_progress,
        stop_after_step=args.stop_after,
        allow_config_change=args.allow_config_change,
    )
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
        report = session.evaluate_and_report(quick=args.quick)
        print(report["markdown"], flush=True)
        report["wall_seconds"] = time.perf_counter() - started
        path = Path(config.output_dir) / "report.json"
        path.write_text(json.dumps({k: v for k, v in report.items() if k != "markdown"}, indent=2))
        print(f"wrote {path} ({report['wall_seconds']:.0f} s in all)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
