"""Per-image exports of the evaluation tools: SMPL parameters (npz + JSON), meshes (OBJ) and one
HumanData file, in the camera frame of the FULL dataset image (docs/evaluation.md#exports).

``tools/eval_fitting.py`` exports its fits as they are (`FitExports`: the fit is made in the full
image's camera). ``tools/eval_regression.py`` exports the regression:

A dataset row gives its image and its square box (``center``, ``scale``); the evaluation crops
that box. The export regresses the same crop with ``prohmr_model.Predictor`` (box = the row's
square box, rescale 1) and writes ``Predictor``'s full-frame result: a pinhole camera at the
origin with the principal point at the image centre and focal ``5000 · max(W, H) / 224`` px (the
record's ``focal_length``), so a mesh opens where the person is in the image.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import pose_data as pdata
from pipeline.cli import at_least
from pipeline.data import DatasetEntry
from pose_data.humandata import write_humandata
from prohmr_model import Predictor
from prohmr_model.export import body_record, prediction_record, save_meshes, save_params


def add_export_arguments(parser: argparse.ArgumentParser, *, samples: bool = True) -> None:
    """``--save-params``, ``--save-mesh``, ``--save-samples N`` (if ``samples``) and
    ``--save-humandata``."""
    group = parser.add_argument_group("exports (full-image camera frame; docs/evaluation.md)")
    group.add_argument("--save-params", action="store_true", help="SMPL npz + JSON per image")
    group.add_argument("--save-mesh", action="store_true", help="OBJ mesh per image")
    if samples:
        group.add_argument(
            "--save-samples", type=at_least(0), default=0, help="N random samples too (0: mode)"
        )
    group.add_argument(
        "--save-humandata", action="store_true", help="one HumanData npz per dataset"
    )


def wants_exports(args: argparse.Namespace) -> bool:
    """Whether `add_export_arguments`' flags ask for any file."""
    return bool(args.save_params or args.save_mesh or args.save_humandata)


class FitExports:
    """The exports of ``tools/eval_fitting.py``: each image's ProHMR fit, which is made in the
    full image's camera already (``FittingCamera.full_frame``: the principal point at the image
    centre and the evaluation's focal length), written per image and as one HumanData file."""

    def __init__(self, args: argparse.Namespace, body_model, out: Path) -> None:
        self.args, self.body_model, self.out = args, body_model, out
        self.records: list[dict[str, np.ndarray]] = []
        self.images: list[str] = []

    def add(self, batch: dict, fit, camera, rows: list[int]) -> None:
        """Write the files of one batch's fits (``fit_mode``'s result, its ``FittingCamera``)."""
        orient = fit.global_orient.reshape(-1, 3, 3)
        pose = fit.body_pose.reshape(-1, 23, 3, 3)
        vertices = None
        if self.args.save_mesh:
            with torch.no_grad():
                vertices = self.body_model(
                    global_orient=orient.float(), body_pose=pose.float(), betas=fit.betas.float()
                ).vertices
        for i, row in enumerate(rows):
            record = body_record(
                global_orient=orient[i],
                body_pose=pose[i],
                betas=fit.betas[i],
                transl=fit.camera_translation[i],
                focal_length=camera.focal_px[i].reshape(-1)[0],
                image_size=camera.image_size_px[i],
                keypoints_3d=fit.keypoints_3d[i],
                keypoints_2d=fit.projected_keypoints_2d[i],
                extra={"box_center": batch["box_center"][i], "box_size": batch["box_size"][i]},
            )
            name = str(batch["imgname"][i])
            stem = self.out / "exports" / f"{row:05d}_{Path(name).stem}"
            if self.args.save_params:
                save_params(stem, record)
            if vertices is not None:
                save_meshes(stem, vertices[i].cpu(), fit.camera_translation[i].cpu(), self.faces)
            self.records.append(record)
            self.images.append(name)

    @property
    def faces(self) -> torch.Tensor:
        return self.body_model.faces.cpu()

    def finish(self, image_dir: Path) -> None:
        """Write the HumanData file (``--save-humandata``) of every fit added."""
        if not (self.args.save_humandata and self.records):
            return
        stack = {key: np.stack([r[key] for r in self.records]) for key in self.records[0]}
        sides = stack["box_size"].reshape(-1)
        corners = stack["box_center"] - sides[:, None] / 2
        names = [str(Path(name).relative_to(image_dir)) for name in self.images]
        write_humandata(
            self.out / "exports" / "fits_humandata.npz",
            image_path=names,
            bbox_xywh=np.concatenate([corners, sides[:, None], sides[:, None]], axis=1),
            global_orient=stack["global_orient"],
            body_pose=stack["body_pose"],
            betas=stack["betas"],
            transl=stack["transl"],
            keypoints2d=stack["keypoints_2d"],
            keypoints3d=stack["keypoints_3d"],
            meta={
                "focal_length": stack["focal_length"].tolist(),
                "image_size": stack["image_size"].tolist(),
            },
            config="prohmr_fits",
        )


def export_dataset(
    args: argparse.Namespace,
    model: torch.nn.Module,
    config,
    entry: DatasetEntry,
    out: Path,
    *,
    device: torch.device,
) -> list[Path]:
    """The exports `add_export_arguments` asked for, of one dataset, under
    ``<out>/exports/<dataset>/`` (and ``<out>/exports/<dataset>_humandata.npz``)."""
    if not wants_exports(args):
        return []
    predictor = Predictor(model, crop_size=config.data.image_size, device=device)
    folder = out / "exports" / entry.name
    written = export_predictions(
        predictor,
        pdata.read_prohmr_npz(entry.file),
        entry.image_dir,
        folder,
        limit=args.limit,
        params=args.save_params,
        meshes=args.save_mesh,
        samples=args.save_samples,
        humandata=out / "exports" / f"{entry.name}_humandata.npz" if args.save_humandata else None,
        seed=args.seed,
    )
    print(f"{entry.name}: wrote {len(written)} export files under {out / 'exports'}")
    return written


def export_predictions(
    predictor: Predictor,
    annotations: pdata.ImageAnnotations,
    image_dir: Path,
    out: Path,
    *,
    limit: int | None = None,
    params: bool = False,
    meshes: bool = False,
    samples: int = 0,
    humandata: Path | None = None,
    seed: int = 0,
) -> list[Path]:
    """Regress every row (the first ``limit``) and write the asked-for files.

    Args:
        predictor: the model to export.
        annotations: the dataset's rows (``pose_data.read_prohmr_npz``).
        image_dir: the folder ``imgname`` is relative to.
        out: folder of the per-image files ``<row:05d>_<image stem>.{npz,json,obj}``.
        params: write SMPL parameter records (``prohmr_model.export.save_params``).
        meshes: write OBJ meshes (``prohmr_model.export.save_meshes``).
        samples: also write this many random samples after the mode (records with a leading
            axis of 1 + samples; meshes ``_sample001.obj`` ...).
        humandata: write the modes of every row to this HumanData file (``meta`` holds each
            row's ``focal_length`` and ``image_size``).
        seed: seed of the samples.

    Returns:
        The written paths.
    """
    count = len(annotations) if limit is None else min(limit, len(annotations))
    written: list[Path] = []
    rows: dict[str, list[np.ndarray]] = {key: [] for key in ("orient", "pose", "betas", "transl")}
    rows.update(keypoints2d=[], keypoints3d=[], focal=[], size=[])
    boxes = []
    for index in range(count):
        center = annotations.center[index].astype(np.float64)
        side = float(annotations.scale[index])
        box = (center[0] - side / 2, center[1] - side / 2, side, side)
        image = image_dir / str(annotations.imgname[index])
        prediction = predictor.predict(
            image,
            box=box,
            rescale=1.0,
            num_samples=1 + samples,
            seed=seed + index,
            return_vertices=meshes,
        )
        stem = out / f"{index:05d}_{Path(str(annotations.imgname[index])).stem}"
        if params:
            written += save_params(stem, prediction_record(prediction, samples=samples > 0))
        if meshes:
            written += save_meshes(
                stem, prediction.vertices, prediction.camera_translation, predictor.faces
            )
        record = prediction_record(prediction)
        rows["orient"].append(record["global_orient"])
        rows["pose"].append(record["body_pose"])
        rows["betas"].append(record["betas"])
        rows["transl"].append(record["transl"])
        rows["keypoints2d"].append(record["keypoints_2d"])
        rows["keypoints3d"].append(record["keypoints_3d"])
        rows["focal"].append(float(record["focal_length"]))
        rows["size"].append(record["image_size"].tolist())
        boxes.append(box)
    if humandata is not None and count:
        written.append(
            write_humandata(
                humandata,
                image_path=[str(name) for name in annotations.imgname[:count]],
                bbox_xywh=np.asarray(boxes),
                global_orient=np.stack(rows["orient"]),
                body_pose=np.stack(rows["pose"]),
                betas=np.stack(rows["betas"]),
                transl=np.stack(rows["transl"]),
                keypoints2d=np.stack(rows["keypoints2d"]),
                keypoints3d=np.stack(rows["keypoints3d"]),
                meta={"focal_length": rows["focal"], "image_size": rows["size"]},
                config="prohmr_predictions",
            )
        )
    return written
