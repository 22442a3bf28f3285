"""Train the probabilistic 2D-to-3D lifting model (ProSkeleton, docs/model.md).

    python tools/train_lifting.py                 # CMU lifting set from assets/, CPU-sized
    python tools/train_lifting.py --config tools/configs/lifting.yaml \\
        --train h36m_train.npz --val h36m_val_p2.npz --stats h36m_train_mean_stats.npz
                                                  # the published setting (or --published)

The run's settings come from ``--config`` (a LiftingConfig YAML, read by
``pipeline.config.load_config``) and ``--set`` overrides. The default file,
``tools/configs/lifting_cpu.yaml``, is sized for a 2-core CPU (about 12 minutes); its comments
say what differs from the published setting, ``tools/configs/lifting.yaml`` (FC-ResNet 1024 with
2 blocks, flow D 48 / 4 layers / hidden 1024, AdamW lr 1e-4 constant, wd 1e-4, batch 64, 300K
steps, fp32). With no ``--train``, the CMU clips the repository ships in ``assets/cmu_mocap``
are projected through random virtual cameras (pose-data's ``make_cmu_lifting_dataset``; train
and test split by clip, the test clips are ``pipeline.assets.HELD_OUT_CLIPS``).
``--resume`` continues ``output_dir``'s checkpoint exactly.

One run per output folder: ``run.lock`` there names the owner (pid, host, start time) and a
second run is refused; the lock of a run that died on this host is taken over, one of another
host only with ``--take-over-lock``. ``--resume`` refuses a config that differs from the
checkpoint's in a key that changes the result (the keys that do not are listed in
pipeline/run_guard.py) unless ``--allow-config-change``; ``losses.jsonl`` keeps each step once;
``config.yaml`` is written after these checks and records allowed changes.
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
from pipeline.assets import HELD_OUT_CLIPS, read_cmu_clips
from pipeline.cli import check_output_dir
from pipeline.config import LiftingConfig, apply_overrides, load_config
from pipeline.lifting_training import train_lifting
from pipeline.run_guard import add_run_folder_arguments, run_in_folder
from pipeline.runtime import DistributedContext, init_distributed, seed_everything

from pose_data.lifting import LiftingDataset, LiftingDatasetFiles
from prohmr_model.lifting import build_lifting_model

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS / "lifting_cpu.yaml"
PUBLISHED_CONFIG = CONFIGS / "lifting.yaml"


def make_cmu_lifting_set(out: Path, seed: int = 0) -> LiftingDatasetFiles:
    """The CMU lifting set of ``assets/cmu_mocap`` (train on some clips, test on others) under
    ``out``."""
    from pose_data.lifting import make_cmu_lifting_dataset

    clips = read_cmu_clips(step=4)  # assets/cmu_mocap, 120 -> 30 fps
    generator = torch.Generator().manual_seed(seed)
    return make_cmu_lifting_dataset(
        clips, out, test_clips=list(HELD_OUT_CLIPS), num_cameras=4, generator=generator
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=None, help="lifting/image npz (train)")
    parser.add_argument("--val", type=Path, default=None, help="lifting/image npz (test)")
    parser.add_argument("--stats", type=Path, default=None, help="training statistics npz")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="LiftingConfig YAML (default: CPU)"
    )
    which.add_argument(
        "--published", action="store_true", help=f"shorthand for --config {PUBLISHED_CONFIG}"
    )
    parser.add_argument("--set", nargs="*", default=[], help="LiftingConfig overrides key=value")
    add_run_folder_arguments(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    given = [f"--{name}" for name in ("train", "val", "stats") if getattr(args, name) is not None]
    if given and len(given) < 3:
        parser.error(f"--train, --val and --stats go together; got only {', '.join(given)}")
    path = PUBLISHED_CONFIG if args.published else args.config
    config: LiftingConfig = load_config(LiftingConfig, path, list(args.set))
    check_output_dir(config.output_dir, "output_dir")
    ctx = init_distributed(args.device)
    return run_in_folder(
        "train_lifting.py",
        config.output_dir,
        ctx,
        lambda: _run(args, config, ctx),
        resume=args.resume,
        take_over_foreign=args.take_over_lock,
    )


def _run(args: argparse.Namespace, config: LiftingConfig, ctx: DistributedContext) -> int:
    seed_everything(config.seed)
    out = Path(config.output_dir)
    if args.train is None:
        files = make_cmu_lifting_set(out / "data", seed=config.seed)
        train, val, stats = files.train, files.test, files.stats
        print(
            f"CMU lifting set: {files.num_train} train / {files.num_test} test rows; "
            f"test clips {files.test_sequences}"
        )
    else:
        train, val, stats = args.train, args.val, args.stats
    config = apply_overrides(
        config, [f"train_file={train}", f"val_file={val}", f"stats_file={stats}"]
    )
    dataset = LiftingDataset(train, stats_path=stats)
    model = build_lifting_model(config.model)
    started = time.perf_counter()
    result = train_lifting(
        config, model=model, train_data=dataset, ctx=ctx, resume=args.resume,
        progress=not args.no_progress, allow_config_change=args.allow_config_change,
    )  # fmt: skip
    summary = {
        "steps": [result.start_step, result.end_step],
        "seconds": time.perf_counter() - started,
        "final_loss": result.losses[-1] if result.losses else None,
        "checkpoint": str(out / "checkpoints" / "last.pt"),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
