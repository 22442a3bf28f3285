"""Generate the embedded synthetic world in the ProHMR formats (docs/data.md).

    python tools/make_synthetic.py                       # outputs/synthetic, the default size
    python tools/make_synthetic.py --num-train 5000 --image-size 160 --out outputs/synth_big

Writes ``train.npz`` / ``val.npz`` (image npz), ``multiview.pkl`` (multiview pickle),
``mocap.npz`` (discriminator), ``mean_params.npz``, ``images/`` and ``info.json``. Poses come from
the CMU clips the repository ships in ``assets/cmu_mocap``, retargeted to SMPL (missing clips
are an error), or from a joint-limit sampler with ``--no-mocap``. Deterministic from ``--seed``;
an existing world with the same settings and clips is reused unless ``--force``.
``--sequences`` also makes the world's video sequences for temporal fitting in
``<out>/sequences`` (pipeline.synthetic_sequences; otherwise they are made on first use by
tools/eval_temporal.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.cli import at_least, check_output_args
from pipeline.config import SyntheticConfig
from pipeline.synthetic import generate_synthetic_world
from pipeline.synthetic_sequences import ensure_sequences


def main(argv: list[str] | None = None) -> int:
    defaults = SyntheticConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(defaults.output_dir))
    parser.add_argument("--num-train", type=at_least(1), default=defaults.num_train)
    parser.add_argument("--num-val", type=at_least(1), default=defaults.num_val)
    parser.add_argument("--image-size", type=at_least(1), default=defaults.image_size)
    parser.add_argument("--seed", type=at_least(0), default=defaults.seed)
    parser.add_argument("--no-mocap", action="store_true", help="joint-limit sampler only")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    parser.add_argument(
        "--sequences", action="store_true", help="also make <out>/sequences (temporal fitting)"
    )
    args = parser.parse_args(argv)
    check_output_args(parser, dirs={"--out": args.out})
    config = SyntheticConfig(
        output_dir=str(args.out),
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.image_size,
        seed=args.seed,
        use_mocap=not args.no_mocap,
    )
    started = time.perf_counter()
    world = generate_synthetic_world(config, force=args.force, progress=True)
    info = world.info
    print(
        f"{world.root}: {info.get('train_images')} train, {info.get('val_images')} val images, "
        f"{info.get('multiview_frames')} multiview frames; poses from {info.get('pose_source')} "
        f"({info.get('pose_pool')} poses); {time.perf_counter() - started:.1f} s"
    )
    if args.sequences:
        sequences = ensure_sequences(world.root, force=args.force, progress=True)
        print(f"{sequences.root}: {len(sequences.files)} sequences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
