"""Convert the original 3DPW sequence pickles to a ProHMR npz (docs/data.md#converters).

    python tools/preprocess_3dpw.py --root /data/3DPW --split test --out data/datasets/3dpw_test.npz

Reads <root>/sequenceFiles/<split>/*.pkl (latin-1 pickles, loaded without running code). SMPL
parameters (global orientation rotated into the camera), 2D keypoints, genders and camera-axis
SMPL joints are stored; ProHMR's extra_keypoints_3d need an SMPL model and are computed by the
training tools from the stored parameters (this program does not load SMPL).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import check_output_args

from pose_data.pw3d import PW3D_DEFAULT_IMGNAME, convert_3dpw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="3DPW folder (sequenceFiles/)")
    parser.add_argument("--split", choices=["train", "validation", "test"], default="test")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--imgname-template", default=PW3D_DEFAULT_IMGNAME)
    parser.add_argument("--skip-bad", action="store_true", help="report bad files, go on")
    args = parser.parse_args(argv)
    check_output_args(parser, files={"--out": args.out})
    report = convert_3dpw(
        args.root / "sequenceFiles" / args.split,
        args.out,
        imgname_template=args.imgname_template,
        on_error="skip" if args.skip_bad else "raise",
    )
    print(f"{args.split}: {report.num_rows} rows -> {report.output}")
    for problem in report.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
