"""Convert Mannequin Challenge SMPL annotations to ProHMR's multiview pickle (docs/data.md).

    python tools/preprocess_mannequin.py --annotations annotations.pkl \\
        --trajectories trajectories/ --out data/datasets/mannequin.pkl [--max-views 8]

The annotation pickle layout (one record per person and frame) and the trajectory format are
documented in pose_data.mannequin and packages/pose-data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import at_least, check_output_args

from pose_data.mannequin import convert_mannequin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=Path, required=True)
    parser.add_argument("--trajectories", type=Path, default=None, help="folder of <sequence>.txt")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-views", type=at_least(1), default=None)
    parser.add_argument("--min-views", type=at_least(1), default=2)
    args = parser.parse_args(argv)
    if args.max_views is not None and args.max_views < args.min_views:
        parser.error(f"--max-views must be >= --min-views {args.min_views}, got {args.max_views}")
    check_output_args(parser, files={"--out": args.out})
    report = convert_mannequin(
        args.annotations,
        args.out,
        trajectory_dir=args.trajectories,
        max_views=args.max_views,
        min_views=args.min_views,
    )
    print(f"{report.num_rows} multiview frames -> {report.output}")
    for problem in report.problems:
        print(f"  left out: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
