"""Fit one person through a video: frames + OpenPose JSON -> temporal fit, parameters, pictures.

    python tools/fit_sequence.py --checkpoint outputs/default/checkpoints/last.pt \\
        --image-dir frames/ --keypoint-dir openpose/ --out fit_out
    python tools/fit_sequence.py --checkpoint ckpt.pt --image-dir frames/ \\
        --keypoint-dir openpose/ --out fit_out --smoothness 300 --save-mesh --video

Inputs as the demo's folder mode: every image of ``--image-dir`` (sorted by name) is a frame,
with its OpenPose JSON ``<stem>_keypoints.json`` in ``--keypoint-dir``. One person is followed
through the frames: in the first frame with people, the one with the largest box (or
``--person``); in every later frame, the person whose box (1.2 x the keypoints' extent, as the
demo's) overlaps the previous frame's box most (IoU). A frame without a keypoint file, without
people, or whose best IoU is below ``--min-iou`` has the person *lost*: it is listed in the
report and kept in the fit with no keypoints, its crop at the last box (frames before the first
detection take the first box); the fit then rests on that frame's image, the priors and the
neighbouring frames. At least 3 frames are needed.

The frames are fitted jointly (``Predictor.fit_sequence``: ProHMR's keypoint fitting per frame
in the full image's camera, betas shared by all frames, a smoothness term on the squared
accelerations of the 3D keypoints weighted by ``--smoothness``). Written to ``--out``:

- ``params/<stem>.npz`` and ``.json``: each frame's SMPL parameters and camera
  (prohmr_model.export.prediction_record: axis-angle pose, betas, transl, focal length, ...);
- ``sequence.npz``: the frames' records stacked (leading axis T) with ``frame`` names,
  ``lost`` flags, 2D errors before/after (pixels), iterations and the stopping reason;
- ``meshes/<stem>.obj`` with ``--save-mesh`` (camera frame of the full image);
- ``contact_sheet.png``: a grid of up to ``--max-tiles`` frames (evenly spaced) with the fitted
  mesh drawn over them, lost frames marked;
- ``fit.mp4`` with ``--video``: input | fit side by side at ``--fps``;
- ``report.json``: the frames, the tracking (box, IoU, status per frame), the lost frames, the
  2D errors and the fit's iterations and stopping reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pipeline.cli import add_precision_argument, at_least, check_output_args, positive_float
from pipeline.runtime import pick_device
from pipeline.session import load_prohmr_checkpoint

import pose_data as pdata
from pose_body.render import Mesh, render_meshes
from pose_data.io import atomic_write, atomic_write_npz
from pose_data.openpose import IMAGE_EXTENSIONS
from prohmr_model import Predictor
from prohmr_model.export import prediction_record, save_meshes, save_params
from prohmr_model.fitting import FIT_COLOUR

BOX_RESCALE = 1.2


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of the track: its image, the person's keypoints (None when lost), the box
    (centre, side; image pixels) and what happened."""

    image: Path
    keypoints: np.ndarray | None  # (25, 3)
    center: np.ndarray | None
    size: float | None
    iou: float | None
    status: str  # "tracked", "first", or "lost: <why>"

    @property
    def lost(self) -> bool:
        return self.status.startswith("lost")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--image-dir", type=Path, required=True, help="the frames, by name")
    parser.add_argument(
        "--keypoint-dir", type=Path, required=True, help="<stem>_keypoints.json per frame"
    )
    parser.add_argument("--out", type=Path, default=Path("fit_sequence_out"))
    parser.add_argument(
        "--smoothness", type=float, default=100.0, help="weight W (W² x squared accelerations)"
    )
    parser.add_argument("--max-iters", type=at_least(1), default=30, help="outer L-BFGS iterations")
    parser.add_argument(
        "--focal-length", type=positive_float, default=None,
        help="image focal length in pixels (default 5000 x max(W, H) / 224, as Predictor)",
    )  # fmt: skip
    parser.add_argument("--person", type=at_least(0), default=None, help="person index, frame 1")
    parser.add_argument(
        "--min-iou", type=positive_float, default=0.3, help="below it the person is lost"
    )
    parser.add_argument("--save-mesh", action="store_true", help="an OBJ per frame")
    parser.add_argument("--video", action="store_true", help="input | fit video (fit.mp4)")
    parser.add_argument("--fps", type=positive_float, default=30.0, help="video frame rate")
    parser.add_argument("--tile", type=at_least(16), default=256, help="tile side in pixels")
    parser.add_argument("--max-tiles", type=at_least(1), default=16, help="contact sheet tiles")
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides (key=value)")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.smoothness) and args.smoothness >= 0):
        parser.error(f"--smoothness must be a finite number >= 0, got {args.smoothness}")
    if args.min_iou > 1:
        parser.error(f"--min-iou must be in (0, 1], got {args.min_iou}")
    for name, folder in (("--image-dir", args.image_dir), ("--keypoint-dir", args.keypoint_dir)):
        if not folder.is_dir():
            parser.error(f"{name} {folder} is not a folder")
    check_output_args(parser, dirs={"--out": args.out})
    return args


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


def run(args: argparse.Namespace) -> dict:
    """Track, fit and write (module docstring); returns the report."""
    frames = list_frames(args.image_dir)
    track = track_person(frames, args.keypoint_dir, min_iou=args.min_iou, person=args.person)
    lost = [i for i, frame in enumerate(track) if frame.lost]
    for i in lost:
        print(f"frame {i} ({track[i].image.name}): {track[i].status}")
    device = pick_device(args.device)
    model, config = load_prohmr_checkpoint(
        args.checkpoint, device=device, overrides=args.set, precision=args.precision
    )
    predictor = Predictor(model, crop_size=config.data.image_size, device=device)
    fitted = predictor.fit_sequence(
        [str(frame.image) for frame in track],
        keypoints_2d=[frame.keypoints for frame in track],
        box=[_xywh(frame) for frame in track],
        smoothness_weight=args.smoothness,
        max_iterations=args.max_iters,
        return_vertices=True,
        focal_length=args.focal_length,
    )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for t, frame in enumerate(track):
        records.append(prediction_record(fitted[t]))
        save_params(out / "params" / frame.image.stem, records[-1])
        if args.save_mesh:
            save_meshes(
                out / "meshes" / frame.image.stem,
                fitted.vertices[t, 0],
                fitted.camera_translation[t, 0],
                predictor.faces,
            )
    before = fitted.keypoint_error_before.cpu().numpy()
    after = fitted.keypoint_error_after.cpu().numpy()
    record = {key: np.stack([r[key] for r in records]) for key in records[0]}
    record["keypoint_error_before_px"] = before
    record["keypoint_error_after_px"] = after
    record["iterations"] = fitted.iterations.cpu().numpy()
    record["frame"] = np.asarray([frame.image.name for frame in track])
    record["lost"] = np.asarray([frame.lost for frame in track])
    record["stopping"] = np.asarray(fitted.stopping[0])
    atomic_write_npz(out / "sequence.npz", record)
    tiles = [_overlay(predictor, fitted, t, frame, args.tile) for t, frame in enumerate(track)]
    sheet = contact_sheet(tiles, track, max_tiles=args.max_tiles)
    _save_png(out / "contact_sheet.png", sheet)
    if args.video:
        write_video(out / "fit.mp4", track, tiles, fps=args.fps)
    seen = ~np.isnan(before)
    report = {
        "checkpoint": str(args.checkpoint),
        "frames": len(track),
        "smoothness": args.smoothness,
        "max_iters": args.max_iters,
        "iterations": int(fitted.iterations[0]),
        "stopping": fitted.stopping[0],
        "lost_frames": [
            {"frame": i, "image": track[i].image.name, "why": track[i].status} for i in lost
        ],
        "keypoint_error_before_px": float(before[seen].mean()) if seen.any() else None,
        "keypoint_error_after_px": float(after[seen].mean()) if seen.any() else None,
        "per_frame": [
            {
                "image": frame.image.name,
                "status": frame.status,
                "iou": frame.iou,
                "box_center": None if frame.center is None else frame.center.tolist(),
                "box_size": frame.size,
                "keypoint_error_before_px": None if np.isnan(before[t]) else float(before[t]),
                "keypoint_error_after_px": None if np.isnan(after[t]) else float(after[t]),
            }
            for t, frame in enumerate(track)
        ],
    }
    payload = json.dumps(report, indent=2).encode()
    atomic_write(out / "report.json", lambda f: f.write(payload))
    print(
        f"{len(track)} frames, {len(lost)} lost; 2D error {report['keypoint_error_before_px']} "
        f"-> {report['keypoint_error_after_px']} px; {report['iterations']} iterations "
        f"({report['stopping']}); wrote {out}"
    )
    return report


def list_frames(image_dir: Path) -> list[Path]:
    """The images of a folder sorted by name; at least 3 (SystemExit otherwise)."""
    frames = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(frames) < 3:
        raise SystemExit(
            f"--image-dir {image_dir} holds {len(frames)} images; a sequence needs at least 3"
        )
    return frames


def box_iou(a: tuple[np.ndarray, float], b: tuple[np.ndarray, float]) -> float:
    """Intersection over union of two square boxes given as (centre (2,), side)."""
    (ca, sa), (cb, sb) = a, b
    low = np.maximum(ca - sa / 2, cb - sb / 2)
    high = np.minimum(ca + sa / 2, cb + sb / 2)
    inter = float(np.prod(np.clip(high - low, 0, None)))
    union = sa * sa + sb * sb - inter
    return inter / union if union > 0 else 0.0


def track_person(
    frames: list[Path], keypoint_dir: Path, *, min_iou: float, person: int | None = None
) -> list[TrackedFrame]:
    """Follow one person through the frames by box overlap (module docstring).

    Raises:
        SystemExit: when no frame has a person, or ``person`` is not in the first frame with
            people.
    """
    detections: list[tuple[np.ndarray, np.ndarray, np.ndarray] | str] = []
    for image in frames:
        path = keypoint_dir / f"{image.stem}_keypoints.json"
        if not path.is_file():
            detections.append(f"lost: no keypoint file {path.name}")
            continue
        people = pdata.read_openpose_json(path).keypoints
        centers, sizes, has_box = pdata.openpose_boxes(people, rescale=BOX_RESCALE)
        if not has_box.any():
            detections.append("lost: no person detected")
            continue
        detections.append((people[has_box], centers[has_box], sizes[has_box]))
    first = next((i for i, d in enumerate(detections) if not isinstance(d, str)), None)
    if first is None:
        raise SystemExit(f"no frame has a detected person (keypoint files in {keypoint_dir})")
    track: list[TrackedFrame] = []
    previous: tuple[np.ndarray, float] | None = None
    for index, (image, detection) in enumerate(zip(frames, detections, strict=True)):
        if isinstance(detection, str):
            track.append(TrackedFrame(image, None, None, None, None, detection))
            continue
        people, centers, sizes = detection
        if previous is None:
            if person is None:
                pick = int(np.argmax(sizes))
            elif person < len(people):
                pick = person
            else:
                raise SystemExit(
                    f"--person {person}: frame {index} ({image.name}) has {len(people)} people"
                )
            iou, status = None, "first"
        else:
            overlaps = [
                box_iou(previous, (c, float(s))) for c, s in zip(centers, sizes, strict=True)
            ]
            pick = int(np.argmax(overlaps))
            iou = overlaps[pick]
            if iou < min_iou:
                status = f"lost: best box overlap (IoU) {iou:.2f} < {min_iou:g}"
                track.append(TrackedFrame(image, None, None, None, iou, status))
                continue
            status = "tracked"
        box = (centers[pick].astype(np.float64), float(sizes[pick]))
        track.append(TrackedFrame(image, people[pick], box[0], box[1], iou, status))
        previous = box
    # lost frames take the last box seen (the first box before the first detection)
    last = (track[first].center, track[first].size)
    filled = []
    for frame in track:
        if frame.center is not None:
            last = (frame.center, frame.size)
            filled.append(frame)
        else:
            filled.append(
                TrackedFrame(frame.image, None, last[0], last[1], frame.iou, frame.status)
            )
    return filled


def _xywh(frame: TrackedFrame) -> tuple[float, float, float, float] | None:
    """The box to give `Predictor` for a lost frame (it rescales by 1.2); None otherwise."""
    if not frame.lost:
        return None
    side = frame.size / BOX_RESCALE
    x, y = frame.center - side / 2
    return (float(x), float(y), side, side)


def _overlay(predictor: Predictor, fitted, t: int, frame: TrackedFrame, tile: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB: frame t at most ``tile`` pixels a side, the fitted mesh over it."""
    bgr = pdata.read_image(str(frame.image))
    height, width = bgr.shape[:2]
    scale = tile / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.ascontiguousarray(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[..., ::-1])
    vertices = fitted.vertices[t, 0] + fitted.camera_translation[t, 0]
    mesh = Mesh(
        vertices=vertices.cpu().numpy(), faces=predictor.faces.cpu().numpy(), color=FIT_COLOUR
    )
    return render_meshes(
        [mesh],
        image_size=small.shape[:2],
        focal_px=float(fitted.focal_length[t]) * scale,
        center_px=(width / 2 * scale, height / 2 * scale),
        background=small,
    )


def _label(image: np.ndarray, text: str, colour=(0, 0, 0)) -> np.ndarray:
    out = np.ascontiguousarray(image.copy())
    scale = max(0.35, image.shape[1] / 600)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 8, h + base + 6), (255, 255, 255), -1)
    cv2.putText(out, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out


def contact_sheet(
    tiles: list[np.ndarray], track: list[TrackedFrame], *, max_tiles: int
) -> np.ndarray:
    """A grid of up to ``max_tiles`` evenly spaced tiles (labelled; lost frames in red)."""
    count = min(max_tiles, len(tiles))
    picks = np.unique(np.linspace(0, len(tiles) - 1, count).round().astype(int))
    columns = math.ceil(math.sqrt(len(picks)))
    rows = math.ceil(len(picks) / columns)
    height = max(tile.shape[0] for tile in tiles)
    width = max(tile.shape[1] for tile in tiles)
    sheet = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for slot, t in enumerate(picks):
        lost = track[t].lost
        text = f"{t}: {track[t].image.stem}" + (" LOST" if lost else "")
        tile = _label(tiles[t], text, (200, 0, 0) if lost else (0, 0, 0))
        r, c = divmod(slot, columns)
        sheet[r * height : r * height + tile.shape[0], c * width : c * width + tile.shape[1]] = tile
    return sheet


def write_video(
    path: Path, track: list[TrackedFrame], tiles: list[np.ndarray], *, fps: float
) -> None:
    """``path``: input | fit side by side per frame (mp4v), written atomically."""
    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    temporary = path.with_name(f".{path.stem}.tmp{os.getpid()}.mp4")
    writer = cv2.VideoWriter(
        str(temporary), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (2 * width, height)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an mp4v video to {temporary}")
    try:
        for frame, fit in zip(track, tiles, strict=True):
            bgr = pdata.read_image(str(frame.image))
            size = (fit.shape[1], fit.shape[0])
            source = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            canvas = np.zeros((height, 2 * width, 3), dtype=np.uint8)
            canvas[: size[1], : size[0]] = source
            canvas[: size[1], width : width + size[0]] = fit[..., ::-1]
            writer.write(canvas)
    finally:
        writer.release()
    os.replace(temporary, path)


def _save_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write(path, lambda f: f.write(encoded.tobytes()))


if __name__ == "__main__":
    sys.exit(main())
