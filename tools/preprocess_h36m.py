"""Convert the original Human3.6M files to ProHMR npz files (docs/data.md#converters).

    python tools/preprocess_h36m.py --root /data/h36m --out-dir data/datasets \\
        --split train val val-p2 multiview [--extract-images data/h36m] [--cameras cameras.pkl]

Splits (ProHMR): train = S1, S5, S6, S7, S8, all cameras; val = S9, S11, all cameras; val-p2 =
S9, S11, camera 60457274 (Protocol 2); multiview = the val npz grouped by instant into a
multiview pickle. Every 5th frame. Writes h36m_train.npz, h36m_val.npz, h36m_val_p2.npz and
h36m_val_multiview.pkl. The expected folder layout is in packages/pose-data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import at_least, check_output_args, positive_float

from pose_data.h36m import (
    H36M_DEFAULT_IMGNAME,
    convert_h36m,
    group_h36m_multiview,
    read_h36m_cameras,
)
from pose_data.h36m_layout import H36M_PROTOCOL2_CAMERA, H36M_TEST_SUBJECTS, H36M_TRAIN_SUBJECTS

SPLITS = {
    "train": ("h36m_train.npz", H36M_TRAIN_SUBJECTS, None),
    "val": ("h36m_val.npz", H36M_TEST_SUBJECTS, None),
    "val-p2": ("h36m_val_p2.npz", H36M_TEST_SUBJECTS, (H36M_PROTOCOL2_CAMERA,)),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="folder with S1, S5, ... ")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument(
        "--split", nargs="+", default=["train", "val", "val-p2", "multiview"],
        choices=[*SPLITS, "multiview"],
    )  # fmt: skip
    parser.add_argument("--step", type=at_least(1), default=5, help="keep every N-th frame")
    parser.add_argument("--box-source", choices=["keypoints", "masks"], default="keypoints")
    parser.add_argument("--box-rescale", type=positive_float, default=None)
    parser.add_argument("--imgname-template", default=H36M_DEFAULT_IMGNAME)
    parser.add_argument("--extract-images", type=Path, default=None, help="image root to fill")
    parser.add_argument("--cameras", type=Path, default=None, help="cameras.pkl (mmpose layout)")
    parser.add_argument("--skip-bad", action="store_true", help="report bad files, go on")
    args = parser.parse_args(argv)
    check_output_args(
        parser, dirs={"--out-dir": args.out_dir, "--extract-images": args.extract_images}
    )
    cameras = read_h36m_cameras(args.cameras) if args.cameras else None
    splits = list(args.split)
    if (
        "multiview" in splits
        and "val" not in splits
        and not (args.out_dir / "h36m_val.npz").is_file()
    ):
        splits.insert(0, "val")
    status = 0
    for split in splits:
        if split == "multiview":
            report = group_h36m_multiview(
                args.out_dir / "h36m_val.npz", args.out_dir / "h36m_val_multiview.pkl"
            )
        else:
            name, subjects, camera_ids = SPLITS[split]
            report = convert_h36m(
                args.root,
                args.out_dir / name,
                subjects=subjects,
                cameras=camera_ids,
                step=args.step,
                box_source=args.box_source,
                box_rescale=args.box_rescale,
                imgname_template=args.imgname_template,
                image_root=args.extract_images,
                camera_parameters=cameras,
                on_error="skip" if args.skip_bad else "raise",
            )
        print(f"{split}: {report.num_rows} rows -> {report.output}")
        for problem in report.problems:
            print(f"  problem: {problem}", file=sys.stderr)
            status = 1 if split != "multiview" else status
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
