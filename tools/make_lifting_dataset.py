"""Make 2D-to-3D lifting datasets: train/test npz + training 2D statistics (docs/data.md).

    python tools/make_lifting_dataset.py cmu      # assets/cmu_mocap -> outputs/synthetic/lifting
    python tools/make_lifting_dataset.py cmu --cmu-dir my_clips --out-dir data/lifting
    python tools/make_lifting_dataset.py h36m --data-3d data_3d_h36m.npz --cameras cameras.pkl \\
        [--data-2d data_2d_h36m_cpn_ft_h36m_dbb.npz] --out-dir data/lifting

cmu: every ASF/AMC pair (<stem><digits>.amc with <stem>.asf, or CMU's <subject>_<trial>.amc with
<subject>.asf) and BVH file (CMU units) under --cmu-dir (default: the clips the repository ships
in assets/cmu_mocap), seen by random virtual cameras; split by clip. h36m: VideoPose3D's npz
files with the Human3.6M calibrations; ground-truth 2D (projected) unless --data-2d gives
detections; train S1, S5, S6, S7, S8 (all cameras), test S9, S11 (camera 60457274, or all with
--test-all-cameras).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from pipeline.assets import CMU_MOCAP_DIR, read_cmu_clips
from pipeline.cli import at_least, check_output_args, fraction

from pose_data.h36m import read_h36m_cameras
from pose_data.h36m_videopose3d import read_videopose3d_2d, read_videopose3d_3d
from pose_data.lifting import make_cmu_lifting_dataset, make_h36m_lifting_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="source", required=True)
    cmu = sub.add_parser("cmu", help="CMU ASF/AMC and BVH clips")
    cmu.add_argument("--cmu-dir", type=Path, default=CMU_MOCAP_DIR, help="default: %(default)s")
    cmu.add_argument("--out-dir", type=Path, default=Path("outputs/synthetic/lifting"))
    cmu.add_argument(
        "--step", type=at_least(1), default=4, help="frame step (120 fps / 4 = 30 fps)"
    )
    cmu.add_argument("--num-cameras", type=at_least(1), default=4)
    cmu.add_argument("--test-clips", nargs="*", default=None)
    cmu.add_argument("--test-fraction", type=fraction, default=0.2)
    cmu.add_argument("--seed", type=at_least(0), default=0)
    h36m = sub.add_parser("h36m", help="VideoPose3D npz files")
    h36m.add_argument("--data-3d", type=Path, required=True)
    h36m.add_argument("--data-2d", type=Path, default=None, help="2D detections (default: GT)")
    h36m.add_argument("--cameras", type=Path, required=True, help="cameras.pkl (mmpose layout)")
    h36m.add_argument("--out-dir", type=Path, required=True)
    h36m.add_argument("--step", type=at_least(1), default=5)
    h36m.add_argument("--test-all-cameras", action="store_true")
    h36m.add_argument("--prefix", default="h36m")
    args = parser.parse_args(argv)
    check_output_args(parser, dirs={"--out-dir": args.out_dir})
    if args.source == "cmu":
        clips = read_cmu_clips(args.cmu_dir, step=args.step)
        files = make_cmu_lifting_dataset(
            clips,
            args.out_dir,
            test_clips=args.test_clips,
            test_fraction=args.test_fraction,
            num_cameras=args.num_cameras,
            generator=torch.Generator().manual_seed(args.seed),
        )
    else:
        positions_2d = read_videopose3d_2d(args.data_2d)[0] if args.data_2d else None
        files = make_h36m_lifting_dataset(
            read_videopose3d_3d(args.data_3d),
            read_h36m_cameras(args.cameras),
            args.out_dir,
            positions_2d=positions_2d,
            test_cameras=None if args.test_all_cameras else ("60457274",),
            step=args.step,
            prefix=args.prefix,
        )
    print(
        f"train: {files.num_train} rows ({len(files.train_sequences)} sequences) -> {files.train}"
    )
    print(f"test:  {files.num_test} rows ({len(files.test_sequences)} sequences) -> {files.test}")
    print(f"stats: {files.stats}")
    for problem in files.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
