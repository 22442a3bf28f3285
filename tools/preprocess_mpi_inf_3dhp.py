"""Convert the original MPI-INF-3DHP annotations to ProHMR npz files (17 joints).

    python tools/preprocess_mpi_inf_3dhp.py --root /data/mpi_inf_3dhp --split train \\
        --annot3 annot3 --out data/datasets/mpi_inf_3dhp_train.npz [--extract-images DIR]
    python tools/preprocess_mpi_inf_3dhp.py --root /data/mpi_inf_3dhp --split test \\
        --annot3 univ_annot3 --out data/datasets/mpi_inf_3dhp_test.npz

Training: S1..S8 / Seq1, Seq2, cameras 0, 1, 2, 4, 5, 6, 7, 8, every 10th frame, frames with a
joint outside the image dropped (SPIN). Test: TS1..TS6, valid frames. --annot3 chooses the
camera-true 3D ('annot3') or the height-normalised 3D ('univ_annot3'); it has no default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import at_least, check_output_args

from pose_data.mpi_inf import (
    MPI_INF_TEST_IMGNAME,
    MPI_INF_TRAIN_CAMERAS,
    MPI_INF_TRAIN_IMGNAME,
    convert_mpi_inf_test,
    convert_mpi_inf_train,
    read_mpi_inf_cameras_pickle,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--split", choices=["train", "test"], required=True)
    parser.add_argument("--annot3", choices=["annot3", "univ_annot3"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--step", type=at_least(1), default=10, help="training: keep every N-th frame"
    )
    parser.add_argument(
        "--cameras", type=at_least(0), nargs="+", default=list(MPI_INF_TRAIN_CAMERAS)
    )
    parser.add_argument(
        "--keep-outside", action="store_true", help="keep frames with joints outside the image"
    )
    parser.add_argument("--imgname-template", default=None)
    parser.add_argument("--extract-images", type=Path, default=None, help="training: image root")
    parser.add_argument("--test-cameras", type=Path, default=None, help="cameras_test.pkl (mmpose)")
    parser.add_argument("--skip-bad", action="store_true", help="report bad files, go on")
    args = parser.parse_args(argv)
    check_output_args(parser, files={"--out": args.out})
    on_error = "skip" if args.skip_bad else "raise"
    if args.split == "train":
        report = convert_mpi_inf_train(
            args.root,
            args.out,
            annot3_key=args.annot3,
            cameras=args.cameras,
            step=args.step,
            drop_outside=not args.keep_outside,
            imgname_template=args.imgname_template or MPI_INF_TRAIN_IMGNAME,
            image_root=args.extract_images,
            on_error=on_error,
        )
    else:
        cameras = read_mpi_inf_cameras_pickle(args.test_cameras) if args.test_cameras else None
        report = convert_mpi_inf_test(
            args.root,
            args.out,
            annot3_key=args.annot3,
            cameras=cameras,
            imgname_template=args.imgname_template or MPI_INF_TEST_IMGNAME,
            on_error=on_error,
        )
    print(f"{args.split}: {report.num_rows} rows -> {report.output}")
    for problem in report.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
