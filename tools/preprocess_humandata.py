"""Convert an mmhuman3d HumanData npz to a ProHMR npz (docs/data.md#humandata).

    python tools/preprocess_humandata.py --input 3dpw_train_humandata.npz \\
        --out data/datasets/3dpw_humandata.npz --image-dir data/datasets/3DPW \\
        --body-model procedural

The file is read without running code (object arrays are unpickled with NumPy arrays and
containers only). Boxes become centre / side (1.2 x the longer side of ``bbox_xywh``), SMPL
parameters become ``body_pose`` / ``betas``, ``meta['gender']`` the genders, and 2D / 3D keypoints
of a known convention (coco, openpose_25) the 44-keypoint layout; anything left out is listed.
With ``--body-model`` (``procedural``, or an SMPL file) the evaluation's 3D targets
(``extra_keypoints_3d``) are computed from the SMPL parameters, so that
``tools/eval_regression.py --data-file`` can score the converted file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from pipeline.cli import check_output_args, positive_float

from pose_body import BodyModel
from pose_data.humandata import convert_humandata


def smpl_keypoints_of(body_model: BodyModel):
    """A ``convert_humandata`` keypoint function: (n, 44, 3) metres of one body model, no
    translation (the gender is ignored: one model for every row)."""

    def keypoints(global_orient, body_pose, betas, gender):
        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(array, dtype=np.float32))

        with torch.no_grad():
            output = body_model.keypoints_only(
                global_orient=tensor(global_orient),
                body_pose=tensor(body_pose),
                betas=tensor(betas),
            )
        return output.keypoints.double().numpy()

    return keypoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="the HumanData .npz")
    parser.add_argument("--out", type=Path, required=True, help="the ProHMR .npz to write")
    parser.add_argument("--image-dir", type=Path, default=None, help="check the images there")
    parser.add_argument("--rescale", type=positive_float, default=1.2, help="box side factor")
    parser.add_argument(
        "--body-model",
        default=None,
        help="'procedural' or an SMPL file: compute extra_keypoints_3d from the SMPL parameters",
    )
    parser.add_argument(
        "--extra-regressor", type=Path, default=None, help="SMPL_to_J19.pkl (with an SMPL file)"
    )
    args = parser.parse_args(argv)
    check_output_args(parser, files={"--out": args.out})
    smpl_keypoints = None
    if args.body_model == "procedural":
        smpl_keypoints = smpl_keypoints_of(BodyModel.procedural())
    elif args.body_model is not None:
        if args.extra_regressor is None:
            parser.error("--body-model with an SMPL file needs --extra-regressor")
        model = BodyModel.from_files(args.body_model, extra_regressor_path=args.extra_regressor)
        smpl_keypoints = smpl_keypoints_of(model)
    report = convert_humandata(
        args.input,
        args.out,
        rescale=args.rescale,
        image_dir=args.image_dir,
        smpl_keypoints=smpl_keypoints,
    )
    print(f"{args.input}: {report.num_rows} rows -> {report.output}")
    for problem in report.problems:
        print(f"  problem: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (FileNotFoundError, ImportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
