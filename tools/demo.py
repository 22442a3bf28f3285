"""ProHMR demo: an image and OpenPose keypoints (or a box) -> regression, samples, fitting, PNGs.

    python tools/demo.py --checkpoint outputs/default/checkpoints/last.pt \\
        --image assets/demo/spin_example/im1010.jpg \\
        --openpose assets/demo/spin_example/im1010_openpose.json --out demo_out
    python tools/demo.py --checkpoint outputs/default/checkpoints/last.pt \\
        --image-dir assets/demo/prohmr_example/images \\
        --keypoint-dir assets/demo/prohmr_example/keypoints --out demo_out
    python tools/demo.py --checkpoint ckpt.pt --image photo.jpg --box 10 20 200 400

As the original demo (docs/fitting.md#keypoint-fitting): every person with OpenPose keypoints gets a
square box (1.2 x the extent of its detected keypoints; ``--box X Y W H`` or SPIN's ``--bbox-json``
give one directly), the crop is regressed (the mode, pink, and ``--num-samples`` - 1 random samples
in other colours), then the mode is refined by keypoint fitting on z, betas and camera (L-BFGS,
``--max-iters`` outer iterations, 10 as the original demo), in the crop (the original demo's
default) or in the full image (``--full-frame``, focal 5000 px). Without keypoints there is no
fitting. Works with the procedural body model or a real SMPL file (``--set body.model_path=...``)
and any checkpoint of this project (imported official ones included).

Written per person (``<image stem>_p<k>``): ``_regression.png`` (input with keypoints | mode |
mode + samples | samples from the side), ``_fit.png`` (OpenPose keypoints in red and the fitted
model's keypoints in blue | fitted body over the crop | side view and front view of the fit,
blue, with the regression's mode, translucent pink, placed at the fitted camera),
``_fullframe.png`` (the fit drawn over the whole image, at most ``--max-side`` pixels),
``_summary.png`` (the two rows). A line per person
reports the fit: 2D error before and after (pixels of the 224-px crop), iterations and the
stopping reason.

Exports (``prohmr_model.export``; docs/evaluation.md#exports), in the camera frame of the FULL
image (principal point at the image centre; focal ``5000 · max(W, H) / 224`` px as
``prohmr_model.Predictor``, or the fit's 5000 px with ``--full-frame``; each record stores its
``focal_length``): ``--save-params`` writes ``<tag>_regression.{npz,json}`` (the mode; every
sample with ``--save-samples``) and ``<tag>_fit.{npz,json}``; ``--save-mesh`` the same bodies as
``<tag>_regression.obj`` (``_sample001.obj``... with ``--save-samples``) and ``<tag>_fit.obj``;
``--save-humandata`` one ``demo_humandata.npz`` with a row per person (the fit, else the mode).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from pipeline.cli import add_precision_argument, at_least, check_output_args, positive_float
from pipeline.runtime import pick_device
from pipeline.session import load_prohmr_checkpoint

import pose_data as pdata
import pose_geometry as pg
from pose_body.render import Mesh, draw_keypoints, render_meshes, side_view
from pose_data.humandata import write_humandata
from pose_data.io import atomic_write
from pose_fitting import FittingCamera, KeypointFittingOptions, StoppingRules
from prohmr_model.evaluation import check_finite_predictions
from prohmr_model.export import body_record, save_meshes, save_params
from prohmr_model.fitting import FIT_COLOUR, fit_mode, freeze, keypoint_error, mesh_vertices
from prohmr_model.model import VIRTUAL_CROP_PX
from prohmr_model.visualize import MODE_COLOUR, render_hypotheses

TARGET_COLOUR = (1.0, 0.2, 0.2)
FITTED_KEYPOINT_COLOUR = (0.2, 0.45, 1.0)


@dataclass(frozen=True)
class Person:
    """One person to process: the image, its box and (optionally) OpenPose keypoints."""

    image: Path
    tag: str
    center: np.ndarray  # (2,) box centre, image pixels
    size: float  # box side, image pixels
    keypoints: np.ndarray | None  # (44, 3) image pixels + confidence, or None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--image", type=Path, default=None, help="one image")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--openpose", type=Path, default=None, help="its OpenPose JSON")
    source.add_argument(
        "--box", type=float, nargs=4, default=None, metavar=("X", "Y", "W", "H"), help="a box"
    )
    source.add_argument("--bbox-json", type=Path, default=None, help='SPIN {"bbox": [x,y,w,h]}')
    parser.add_argument("--image-dir", type=Path, default=None, help="folder of images")
    parser.add_argument("--keypoint-dir", type=Path, default=None, help="<stem>_keypoints.json")
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--num-samples", type=at_least(1), default=8, help="mode + N-1 samples")
    parser.add_argument("--max-iters", type=at_least(1), default=10, help="outer L-BFGS iterations")
    parser.add_argument("--full-frame", action="store_true", help="fit in the full image")
    parser.add_argument(
        "--rescale", type=positive_float, default=1.2, help="box = rescale x extent"
    )
    parser.add_argument(
        "--display-size", type=at_least(1), default=320, help="panel side in pixels"
    )
    parser.add_argument(
        "--max-side", type=at_least(1), default=1200, help="full-frame picture size"
    )
    parser.add_argument("--max-people", type=at_least(1), default=None, help="per image")
    parser.add_argument("--seed", type=at_least(0), default=0)
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    parser.add_argument("--save-params", action="store_true", help="SMPL npz + JSON per person")
    parser.add_argument("--save-mesh", action="store_true", help="OBJ meshes per person")
    parser.add_argument("--save-samples", action="store_true", help="export every sample too")
    parser.add_argument("--save-humandata", action="store_true", help="demo_humandata.npz")
    args = parser.parse_args(argv)
    if (args.image is None) == (args.image_dir is None):
        parser.error("give either --image (with --openpose, --box or --bbox-json) or --image-dir")
    if args.image_dir is not None and args.keypoint_dir is None:
        parser.error("--image-dir needs --keypoint-dir")
    if args.image is not None and not (args.openpose or args.box or args.bbox_json):
        parser.error("--image needs --openpose, --box or --bbox-json")
    if args.box is not None:
        _, _, w, h = args.box
        if not all(math.isfinite(v) for v in args.box) or w <= 0 or h <= 0:
            parser.error(f"--box X Y W H must be finite with W, H > 0, got {args.box}")
    check_output_args(parser, dirs={"--out": args.out})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    freeze(model)
    people = collect_people(args)
    if not people:
        print("no people found (no OpenPose detections with at least two keypoints)")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    summary = []
    bodies: list[dict] = []
    cache: dict[Path, np.ndarray] = {}
    for person in people:
        if person.image not in cache:
            cache = {person.image: pdata.read_image(str(person.image))}
        record = process_person(
            model,
            config,
            person,
            cache[person.image],
            args=args,
            device=device,
            generator=generator,
            bodies=bodies,
        )
        summary.append(record)
        print(json.dumps(record), flush=True)
    if args.save_humandata:
        _save_humandata(args.out / "demo_humandata.npz", bodies)
    (args.out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {len(summary)} people to {args.out}")
    return 0


def collect_people(args: argparse.Namespace) -> list[Person]:
    """The people to process, from the command line's image / keypoint sources."""
    pairs: list[tuple[Path, Path | None]] = []
    if args.image_dir is not None:
        images = sorted(
            p
            for p in args.image_dir.iterdir()
            if p.is_file() and p.suffix.lower() in pdata.IMAGE_EXTENSIONS
        )
        for image in images:
            json_path = args.keypoint_dir / f"{image.stem}_keypoints.json"
            if json_path.is_file():
                pairs.append((image, json_path))
            else:
                print(f"skipping {image.name}: no {json_path.name}")
    else:
        if not args.image.is_file():
            raise FileNotFoundError(f"image not found: {args.image}")
        pairs.append((args.image, args.openpose))
    people: list[Person] = []
    for image, json_path in pairs:
        if json_path is not None:
            frame = pdata.read_openpose_json(json_path)
            centers, sizes, has_box = pdata.openpose_boxes(frame.keypoints, rescale=args.rescale)
            index = 0
            for p in range(len(frame)):
                if not has_box[p]:
                    continue
                if args.max_people is not None and index >= args.max_people:
                    break
                keypoints = np.zeros((44, 3), dtype=np.float32)
                keypoints[list(pg.BODY25_TO_44)] = frame.keypoints[p]
                people.append(
                    Person(image, f"{image.stem}_p{index}", centers[p], float(sizes[p]), keypoints)
                )
                index += 1
            continue
        if args.box is not None:
            x, y, w, h = args.box
        else:
            data = json.loads(Path(args.bbox_json).read_text())
            if "bbox" not in data or len(data["bbox"]) != 4:
                raise ValueError(f"{args.bbox_json}: expected {{'bbox': [x, y, w, h]}}")
            x, y, w, h = (float(v) for v in data["bbox"])
        if not (w > 0 and h > 0):
            raise ValueError(f"box width and height must be positive, got {w} x {h}")
        center = np.array([x + w / 2, y + h / 2], dtype=np.float32)
        people.append(Person(image, f"{image.stem}_p0", center, args.rescale * max(w, h), None))
    return people


def process_person(
    model,
    config,
    person: Person,
    image_bgr: np.ndarray,
    *,
    args: argparse.Namespace,
    device: torch.device,
    generator: torch.Generator,
    bodies: list[dict] | None = None,
) -> dict:
    """Regression, samples, fitting and pictures for one person; returns a summary record.

    The person's exported body (the fit, else the mode: a ``body_record``) is appended to
    ``bodies``."""
    keypoints = person.keypoints if person.keypoints is not None else np.zeros((44, 3), np.float32)
    example = pdata.crop_and_augment(
        image_bgr,
        center=person.center,
        box_size=person.size,
        keypoints_2d=keypoints,
        keypoints_3d=np.zeros((44, 4), np.float32),
        global_orient=np.zeros(3, np.float32),
        body_pose=np.zeros(69, np.float32),
        output_size=config.data.image_size,
    )
    size = args.display_size
    matrix = pdata.crop_affine_matrix(person.center, person.size, output_size=size)
    display = np.ascontiguousarray(pdata.crop_image(image_bgr, matrix, output_size=size)[..., ::-1])
    images = torch.from_numpy(example.image)[None].to(device)
    with torch.no_grad():
        features = model.features(images).float()
        output = model.decode(features, num_samples=args.num_samples, generator=generator)
    check_finite_predictions(
        output.keypoints_3d, source=f"checkpoint {args.checkpoint}", where=f" for {person.image}"
    )
    body = model.body_model
    faces = body.faces.cpu().numpy()
    verts = mesh_vertices(body, output.global_orient[0], output.body_pose[0], output.betas[0])
    hypotheses = (verts + output.camera_translation[0, :, None]).cpu().numpy()
    focal_display = model.focal_length * size / VIRTUAL_CROP_PX
    crop_keypoints = example.keypoints_2d.copy()  # normalised crop units + confidence
    crop_keypoints[:, :2] = (crop_keypoints[:, :2] + 0.5) * size
    panel_input = draw_keypoints(display, crop_keypoints, color=TARGET_COLOUR, min_confidence=0.0)
    panel_mode = render_hypotheses(
        hypotheses[:1], faces, image=display, focal_px=focal_display, size=size
    )
    panel_samples = render_hypotheses(
        hypotheses, faces, image=display, focal_px=focal_display, size=size
    )
    panel_side = render_hypotheses(
        hypotheses, faces, image=None, focal_px=focal_display, size=size, side=True
    )
    regression_row = _row(
        [panel_input, panel_mode, panel_samples, panel_side],
        ["input + OpenPose" if person.keypoints is not None else "input", "mode (pink)",
         f"mode + {args.num_samples - 1} samples", "side view"],
    )  # fmt: skip
    _save(args.out / f"{person.tag}_regression.png", regression_row)
    record: dict = {"person": person.tag, "image": str(person.image), "box_size": person.size}
    frame = _FullFrame(model, person, image_bgr, args)
    pick = slice(None) if args.save_samples else slice(0, 1)
    regression = frame.record(
        output.global_orient[0, pick],
        output.body_pose[0, pick],
        output.betas[0, pick],
        output.keypoints_3d[0, pick],
        frame.from_crop_camera(output.camera[0, pick].float()),
        log_prob=output.log_prob[0, pick],
    )
    _export(args, f"{person.tag}_regression", regression, verts[pick], faces)
    if person.keypoints is None:
        record["fit"] = "no keypoints: regression only"
        _save(args.out / f"{person.tag}_summary.png", regression_row)
        if bodies is not None:
            bodies.append(_first(regression, person))
        return record

    fit, camera, targets, scale_to_display = _fit(model, output, person, example, args, device)
    fitted_verts = mesh_vertices(body, fit.global_orient, fit.body_pose, fit.betas)[0]
    if args.full_frame:
        fit_translation = fit.camera_translation.float()
    else:
        fit_translation = frame.from_crop_camera(
            pg.translation_to_weak_perspective(
                fit.camera_translation.float(),
                focal_length_px=model.focal_length,
                crop_size_px=VIRTUAL_CROP_PX,
            )
        )
    fitted = frame.record(
        fit.global_orient, fit.body_pose, fit.betas, fit.keypoints_3d, fit_translation
    )
    _export(args, f"{person.tag}_fit", fitted, fitted_verts[None], faces)
    if bodies is not None:
        bodies.append(_first(fitted, person))
    crop_translation = _crop_translation(fit.camera_translation, person, camera, args, model)
    fitted_crop = (fitted_verts + crop_translation[0]).cpu().numpy()
    fit_mesh = Mesh(vertices=fitted_crop, faces=faces, color=FIT_COLOUR, alpha=1.0)
    # the regression's mode placed at the fitted camera, so the panels compare poses only
    mode_at_fit = (verts[0] + crop_translation[0]).cpu().numpy()
    mode_mesh = Mesh(vertices=mode_at_fit, faces=faces, color=MODE_COLOUR, alpha=0.35)
    projected = fit.projected_keypoints_2d[0].cpu().numpy() * scale_to_display[None]
    projected = projected + _display_offset(person, args, size)
    target_display = crop_keypoints
    panel_keypoints = draw_keypoints(
        draw_keypoints(display, target_display, color=TARGET_COLOUR, min_confidence=0.0),
        np.concatenate([projected, targets[0, :, 2:].cpu().numpy() > 0], axis=1),
        color=FITTED_KEYPOINT_COLOUR,
        min_confidence=0.0,
    )
    render = {
        "image_size": (size, size),
        "focal_px": focal_display,
        "center_px": (size / 2, size / 2),
    }
    panel_fit = render_meshes([fit_mesh], background=display, **render)
    panel_fit_side = render_meshes(side_view([mode_mesh, fit_mesh]), **render)
    panel_fit_front = render_meshes([mode_mesh, fit_mesh], **render)
    fit_row = _row(
        [panel_keypoints, panel_fit, panel_fit_side, panel_fit_front],
        ["OpenPose (red), fit (blue)", "fitting result", "side: fit vs mode",
         "front: fit vs mode"],
    )  # fmt: skip
    _save(args.out / f"{person.tag}_fit.png", fit_row)
    _save(args.out / f"{person.tag}_summary.png", np.concatenate([regression_row, fit_row]))
    _save(
        args.out / f"{person.tag}_fullframe.png",
        _full_frame_picture(
            model, image_bgr, person, fitted_verts, fit.camera_translation, faces, args
        ),
    )
    mode_projected = pg.project_points(
        output.keypoints_3d[:, 0].float(),
        focal_px=camera.focal_px,
        center_px=camera.center_px,
        translation=camera.translation,
    )
    before = keypoint_error(mode_projected, targets)[0]
    after = keypoint_error(fit.projected_keypoints_2d, targets)[0]
    to_crop = VIRTUAL_CROP_PX / _frame_scale(person, args)
    record.update(
        {
            "fit_mode": "full_frame" if args.full_frame else "crop",
            "keypoint_error_crop224_px_before": float(before) * to_crop,
            "keypoint_error_crop224_px_after": float(after) * to_crop,
            "iterations": int(fit.report.iterations[0]),
            "stopping": str(fit.report.reasons[0]),
            "z_norm": float(fit.z[0].norm()),
        }
    )
    return record


class _FullFrame:
    """The camera of the full image the exports are in (see the module docstring)."""

    def __init__(self, model, person: Person, image_bgr: np.ndarray, args) -> None:
        height, width = image_bgr.shape[:2]
        self.image_size = (float(width), float(height))
        side = max(width, height)
        self.focal = (
            float(model.focal_length)
            if args.full_frame
            else float(model.focal_length) * side / VIRTUAL_CROP_PX
        )
        self.person = person

    def from_crop_camera(self, camera: torch.Tensor) -> torch.Tensor:
        """(N, 3) full-image translations of (N, 3) weak-perspective cameras of the box."""
        return pg.crop_camera_to_full_frame_translation(
            camera,
            box_center_px=torch.as_tensor(self.person.center, dtype=camera.dtype).to(camera),
            box_size_px=float(self.person.size),
            image_size_px=torch.tensor(self.image_size, dtype=camera.dtype).to(camera),
            focal_length_px=self.focal,
        )

    def record(self, orient, pose, betas, keypoints_3d, transl, log_prob=None) -> dict:
        """``prohmr_model.export.body_record`` of N bodies with their projected keypoints."""
        keypoints_2d = pg.project_points(
            keypoints_3d.float(),
            focal_px=self.focal,
            center_px=torch.tensor(self.image_size).to(transl) / 2,
            translation=transl,
        )
        extra = {"box_center": self.person.center, "box_size": self.person.size}
        if log_prob is not None:
            extra["log_prob"] = log_prob
        return body_record(
            global_orient=orient.reshape(-1, 3, 3),
            body_pose=pose,
            betas=betas,
            transl=transl,
            focal_length=self.focal,
            image_size=self.image_size,
            keypoints_3d=keypoints_3d,
            keypoints_2d=keypoints_2d,
            extra=extra,
        )


def _export(args, name: str, record: dict, vertices: torch.Tensor, faces) -> None:
    """``--save-params`` / ``--save-mesh`` files of one person's record (N bodies)."""
    if args.save_params:
        save_params(args.out / name, record if len(record["betas"]) > 1 else _first(record))
    if args.save_mesh:
        save_meshes(
            args.out / name,
            vertices.cpu(),
            torch.from_numpy(record["transl"]),
            torch.as_tensor(faces),
        )


def _first(record: dict, person: Person | None = None) -> dict:
    """The first body of an N-body record (N axis dropped), with the person's image."""
    first = {key: value[0] if key not in _SHARED_KEYS else value for key, value in record.items()}
    if person is not None:
        first["image_path"] = str(person.image)
    return first


_SHARED_KEYS = {"focal_length", "image_size", "box_center", "box_size"}


def _save_humandata(path: Path, bodies: list[dict]) -> None:
    """One HumanData file of every person's exported body (boxes: the square crop boxes)."""
    boxes = [
        [*(np.asarray(b["box_center"]) - b["box_size"] / 2), b["box_size"], b["box_size"]]
        for b in bodies
    ]
    write_humandata(
        path,
        image_path=[b["image_path"] for b in bodies],
        bbox_xywh=np.asarray(boxes, dtype=np.float64),
        global_orient=np.stack([b["global_orient"] for b in bodies]),
        body_pose=np.stack([b["body_pose"] for b in bodies]),
        betas=np.stack([b["betas"] for b in bodies]),
        transl=np.stack([b["transl"] for b in bodies]),
        keypoints2d=np.stack([b["keypoints_2d"] for b in bodies]),
        keypoints3d=np.stack([b["keypoints_3d"] for b in bodies]),
        meta={
            "focal_length": [float(b["focal_length"]) for b in bodies],
            "image_size": [np.asarray(b["image_size"]).tolist() for b in bodies],
        },
        config="prohmr_demo",
    )
    print(f"wrote {len(bodies)} people to {path}")


def _frame_scale(person: Person, args: argparse.Namespace) -> float:
    """Pixels of the fitting frame per box side: the box in the image, or the 224-px crop."""
    return person.size if args.full_frame else VIRTUAL_CROP_PX


def _fit(model, output, person: Person, example, args, device):
    """Keypoint fitting of the mode; returns (result, camera, targets (1, 44, 3), scale)."""
    stopping = StoppingRules(max_iterations=args.max_iters)
    camera_in = output.camera[:, 0].float()
    if args.full_frame:
        height, width = _image_size(person)
        size_px = torch.tensor([[width, height]], dtype=torch.float32, device=device)
        camera = FittingCamera.full_frame(
            camera_in,
            box_center_px=torch.as_tensor(person.center, device=device)[None].float(),
            box_size_px=float(person.size),
            image_size_px=size_px,
            focal_length_px=model.focal_length,
        )
        targets = torch.as_tensor(person.keypoints, device=device)[None].float()
        scale = np.full(2, args.display_size / person.size)
    else:
        camera = FittingCamera.crop(
            camera_in, crop_size_px=VIRTUAL_CROP_PX, focal_length_px=model.focal_length
        )
        crop = torch.as_tensor(example.keypoints_2d, device=device)[None].float()
        targets = torch.cat([(crop[..., :2] + 0.5) * VIRTUAL_CROP_PX, crop[..., 2:]], dim=-1)
        scale = np.full(2, args.display_size / VIRTUAL_CROP_PX)
    fit = fit_mode(
        model, output, targets, camera, options=KeypointFittingOptions(stopping=stopping)
    )
    return fit, camera, targets, scale


def _image_size(person: Person) -> tuple[int, int]:
    width, height = pdata.image_size_from_header(str(person.image)) or (0, 0)
    if not width:
        image = pdata.read_image(str(person.image))
        height, width = image.shape[:2]
    return int(height), int(width)


def _display_offset(person: Person, args: argparse.Namespace, size: int) -> np.ndarray:
    """Added to scaled fitting-frame pixels to land in the display crop."""
    if not args.full_frame:
        return np.zeros(2)
    corner = person.center - person.size / 2  # image pixel at the display crop's origin
    return -corner * size / person.size


def _crop_translation(translation, person: Person, camera, args, model) -> torch.Tensor:
    """The fitted translation expressed for the 224-px virtual crop (for the crop panels)."""
    if not args.full_frame:
        return translation
    crop_camera = pg.full_frame_translation_to_crop_camera(
        translation,
        box_center_px=torch.as_tensor(person.center, device=translation.device)[None].float(),
        box_size_px=float(person.size),
        image_size_px=camera.image_size_px,
        focal_length_px=model.focal_length,
    )
    return pg.weak_perspective_to_translation(
        crop_camera, focal_length_px=model.focal_length, crop_size_px=VIRTUAL_CROP_PX
    )


def _full_frame_picture(
    model, image_bgr, person: Person, vertices, translation, faces, args
) -> np.ndarray:
    """The fitted body drawn over the whole image (scaled to at most ``--max-side`` pixels).

    Drawn with the camera it was fitted in: a crop-mode fit with the crop's camera expressed in
    image pixels (focal 5000 · box / 224, principal point at the box centre: the crop is a
    scaled window of the image, so the overlay is exact); a full-frame fit with focal 5000 and
    the principal point at the image centre.
    """
    height, width = image_bgr.shape[:2]
    scale = min(1.0, args.max_side / max(height, width))
    small = cv2.resize(image_bgr, (round(width * scale), round(height * scale)))[..., ::-1]
    small = np.ascontiguousarray(small)
    if args.full_frame:
        focal = model.focal_length
        center = np.array([width / 2, height / 2])
    else:
        focal = model.focal_length * person.size / VIRTUAL_CROP_PX
        center = np.asarray(person.center, dtype=np.float64)
    mesh = Mesh(vertices=(vertices + translation[0]).cpu().numpy(), faces=faces, color=FIT_COLOUR)
    return render_meshes(
        [mesh],
        image_size=small.shape[:2],
        focal_px=focal * scale,
        center_px=tuple(center * scale),
        background=small,
    )


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(panel.copy())
    scale = max(0.35, panel.shape[1] / 700)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 8, h + base + 6), (255, 255, 255), -1)
    cv2.putText(out, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _row(panels: list[np.ndarray], titles: list[str]) -> np.ndarray:
    return np.concatenate([_label(p, t) for p, t in zip(panels, titles, strict=True)], axis=1)


def _save(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write(path, lambda f: f.write(encoded.tobytes()))


if __name__ == "__main__":
    sys.exit(main())
