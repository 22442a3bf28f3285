"""Command-line programs of pose-body.

``pose-body-convert-smpl MODEL.pkl OUT.npz``
    Read an official SMPL pickle without chumpy (restricted unpickler) and write a clean
    ``.npz`` (no pickled objects; dense ``J_regressor``) that `pose_body.load_smpl_model` reads.

``pose-body-procedural-model FOLDER``
    Write the procedural body model as ``SMPL_NEUTRAL.pkl``, ``SMPL_to_J19.pkl`` and
    ``J_regressor_h36m.npy`` into FOLDER (``--npz`` also writes ``SMPL_NEUTRAL.npz``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pose_body.model_files import load_smpl_model, write_smpl_model_npz
from pose_body.procedural import procedural_body_model, write_procedural_model

__all__ = ["convert_smpl_main", "procedural_model_main"]


def convert_smpl_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pose-body-convert-smpl``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="pose-body-convert-smpl",
        description="Convert an official SMPL model pickle (chumpy not needed) to a clean .npz.",
    )
    parser.add_argument("model", help="SMPL_{NEUTRAL,MALE,FEMALE}.pkl (or an .npz)")
    parser.add_argument("output", help="the .npz file to write")
    args = parser.parse_args(argv)
    try:
        model = load_smpl_model(args.model)
        path = write_smpl_model_npz(model, args.output)
    except (FileNotFoundError, ValueError) as error:
        print(f"pose-body-convert-smpl: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {path}: {model.num_vertices} vertices, {len(model.faces)} faces, "
        f"{model.num_betas} shape components"
    )
    return 0


def procedural_model_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pose-body-procedural-model``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="pose-body-procedural-model",
        description="Write the procedural SMPL-format body model and its joint regressors.",
    )
    parser.add_argument("folder", help="output folder (created if needed)")
    parser.add_argument("--npz", action="store_true", help="also write SMPL_NEUTRAL.npz")
    args = parser.parse_args(argv)
    files = write_procedural_model(args.folder)
    written = [files.model, files.extra_regressor, files.h36m_regressor]
    if args.npz:
        written.append(
            write_smpl_model_npz(procedural_body_model().model, files.model.with_suffix(".npz"))
        )
    for path in written:
        print(f"wrote {path}")
    return 0
