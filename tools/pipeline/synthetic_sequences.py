"""Video sequences of the synthetic world, for temporal fitting (docs/data.md#sequences).

Consecutive frames of the held-out CMU clips (``HELD_OUT_CLIPS``: no training image uses their
poses) at 30 fps (the 120 fps clips, every 4th frame), each retargeted to SMPL with its own
root rotation over time, a random shape per sequence, and rendered as the world's validation
images are (pose-body's procedural body drawn in part colours over a random background) by a
slowly moving camera: it turns about the person's vertical axis by up to 1° per frame, its
distance breathes by ±8 % over the sequence, and it follows the person (the body's keypoint
centre stays near a slowly drifting point of the image). Stored per sequence with the
ground-truth 3D keypoints (camera frame, metres), the exact 2D keypoints, and noisy 2D
keypoints as a detector gives them: only the 25 OpenPose BODY_25 keypoints, Gaussian pixel
noise (`noise_fraction` of the person's box side), dropped keypoints (confidence 0, coordinates
0, as OpenPose writes them), a few outliers (displaced by a third to a half of the box side,
with an ordinary confidence) and confidences drawn in [0.4, 0.95]; all seeded.

Made lazily, in their own folder with their own ``info.json`` (the world's arrays and images
are untouched, and the main job does not pay for them): `ensure_sequences` makes them on first
use (``tools/eval_temporal.py``, ``tools/make_synthetic.py --sequences``) and reuses them while
the settings match. Layout of ``<out>`` (default ``<world>/sequences``)::

    info.json                  settings, format version, the clips and frame ranges
    seq_000.npz ...            one npz per sequence (arrays below)
    images/seq_000/000000.jpg  the frames
    openpose/seq_000/000000_keypoints.json   the noisy keypoints in OpenPose's JSON format

npz arrays: ``imgname`` (T,) paths relative to ``<out>/images``; ``keypoints_3d`` (T, 44, 3)
camera frame, metres; ``keypoints_2d`` (T, 44, 3) exact projections with confidence 1 inside
the image; ``keypoints_2d_noisy`` (T, 44, 3) the detector-like keypoints; ``body_pose``
(T, 72) axis-angle, global orientation (camera frame) first; ``betas`` (10,); ``translation``
(T, 3) metres; ``focal`` () pixels; ``image_size`` () pixels; ``fps`` (); ``clip`` () and
``first_frame`` () the source.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

import pose_geometry as pg
from pose_body import BodyModel
from pose_body.render import render_meshes
from pose_data.io import atomic_write, atomic_write_npz

from .assets import HELD_OUT_CLIPS, cmu_clip_files, read_cmu_clip
from .retarget import retarget_h36m17_to_smpl
from .synthetic import PartMeshes, _background, face_parts, rest_joints

__all__ = [
    "SEQUENCE_FORMAT_VERSION",
    "SequenceSettings",
    "SyntheticSequences",
    "ensure_sequences",
    "load_sequence",
]

SEQUENCE_FORMAT_VERSION = 1
#: Frames of the 120 fps clips skipped between sequence frames (30 fps).
CLIP_STEP = 4


@dataclass(frozen=True)
class SequenceSettings:
    """What the sequences are made from (a folder made with other settings is made again).

    Attributes:
        num_sequences: sequences, alternating over the held-out clips.
        length: frames per sequence (at most the shortest held-out clip's, 62 at 30 fps).
        seed: random seed (shapes, cameras, backgrounds, windows, detector noise).
        noise_fraction: standard deviation of the 2D noise as a fraction of the box side.
        drop_probability: chance that a detected keypoint is dropped (confidence 0).
        outlier_probability: chance that a detected keypoint is an outlier.
    """

    num_sequences: int = 4
    length: int = 40
    seed: int = 0
    noise_fraction: float = 0.02
    drop_probability: float = 0.05
    outlier_probability: float = 0.02


@dataclass(frozen=True)
class SyntheticSequences:
    """A made sequence folder: its root, the npz files in order and its ``info.json``."""

    root: Path
    files: tuple[Path, ...]
    info: dict[str, Any]


def load_sequence(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one sequence npz (module docstring), read without pickle."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sequence file not found: {path}")
    with np.load(path, allow_pickle=False) as arrays:
        return {key: arrays[key] for key in arrays}


def ensure_sequences(
    world_root: str | Path,
    *,
    out: str | Path | None = None,
    settings: SequenceSettings | None = None,
    force: bool = False,
    progress: bool = False,
) -> SyntheticSequences:
    """Make (or reuse, when ``info.json`` matches) the sequences of the world at ``world_root``.

    Args:
        world_root: a synthetic world (its ``info.json`` gives the image size; it must have
            been made from the CMU clips).
        out: where to write; default ``<world_root>/sequences``.
        settings: `SequenceSettings`.
        force: make them again even if up to date.
        progress: print a line per sequence.

    Raises:
        FileNotFoundError: naming the world's ``info.json`` when it is missing.
        ValueError: for a world made without motion capture, or a `length` longer than a
            held-out clip.
    """
    settings = SequenceSettings() if settings is None else settings
    world_root = Path(world_root)
    world_info_path = world_root / "info.json"
    if not world_info_path.is_file():
        raise FileNotFoundError(
            f"{world_info_path} not found: make the world first (tools/make_synthetic.py)"
        )
    world_info = json.loads(world_info_path.read_text())
    if not world_info.get("use_mocap", False):
        raise ValueError(
            f"the world {world_root} was made without motion capture (use_mocap false): its "
            "sequences come from the held-out CMU clips"
        )
    if settings.num_sequences < 1 or settings.length < 3:
        raise ValueError(
            f"need num_sequences >= 1 and length >= 3, got {settings.num_sequences} and "
            f"{settings.length}"
        )
    root = Path(out) if out is not None else world_root / "sequences"
    image_size = int(world_info["image_size"])
    wanted = {
        "format_version": SEQUENCE_FORMAT_VERSION,
        "world_image_size": image_size,
        "held_out_clips": list(HELD_OUT_CLIPS),
        **asdict(settings),
    }
    info_path = root / "info.json"
    files = tuple(root / f"seq_{index:03d}.npz" for index in range(settings.num_sequences))
    if not force and info_path.is_file() and all(f.is_file() for f in files):
        existing = json.loads(info_path.read_text())
        if {k: existing.get(k) for k in wanted} == wanted:
            return SyntheticSequences(root=root, files=files, info=existing)

    rng = np.random.default_rng([settings.seed, 7919])  # independent of the world's stream
    body = BodyModel.procedural()
    rest = rest_joints(body)
    parts = PartMeshes(body.faces.cpu().numpy(), face_parts(body))
    clips = _held_out_motions(rest)
    shortest = min(len(orient) for orient, _ in clips.values())
    if settings.length > shortest:
        raise ValueError(
            f"length {settings.length} is longer than the shortest held-out clip ({shortest} "
            f"frames at {120 // CLIP_STEP} fps)"
        )
    sources = []
    for index in range(settings.num_sequences):
        name = HELD_OUT_CLIPS[index % len(HELD_OUT_CLIPS)]
        orient, pose = clips[name]
        first = int(rng.integers(0, len(orient) - settings.length + 1))
        window = slice(first, first + settings.length)
        arrays = _render_sequence(
            f"seq_{index:03d}",
            orient[window],
            pose[window],
            body=body,
            parts=parts,
            image_size=image_size,
            settings=settings,
            rng=rng,
            out=root,
        )
        arrays["clip"] = np.asarray(name)
        arrays["first_frame"] = np.asarray(first)
        atomic_write_npz(files[index], arrays)
        sources.append({"file": files[index].name, "clip": name, "first_frame": first})
        if progress:
            print(f"sequence {index}: {name} frames {first}..{first + settings.length - 1}")
    info = {**wanted, "fps": 120 // CLIP_STEP, "sequences": sources}
    atomic_write(info_path, lambda f: f.write(json.dumps(info, indent=2).encode()))
    return SyntheticSequences(root=root, files=files, info=info)


def _held_out_motions(rest: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{clip: (global_orient (F, 3, 3) in the clip's y-up world, body_pose (F, 23, 3, 3))}."""
    from pose_data.mocap_skeleton import mocap_to_h36m17

    motions = {}
    for path in cmu_clip_files():
        if path.stem in HELD_OUT_CLIPS:
            clip = read_cmu_clip(path, step=CLIP_STEP)
            joints = np.asarray(mocap_to_h36m17(clip), dtype=np.float64)
            motions[path.stem] = retarget_h36m17_to_smpl(joints, rest)
    missing = sorted(set(HELD_OUT_CLIPS) - set(motions))
    if missing:
        raise FileNotFoundError(f"held-out clips {missing} are not in assets/cmu_mocap")
    return motions


def _rotation(axis_angle: list[float]) -> np.ndarray:
    return pg.axis_angle_to_rotmat(torch.tensor(axis_angle, dtype=torch.float64)).numpy()


def _render_sequence(
    name: str,
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    *,
    body: BodyModel,
    parts: PartMeshes,
    image_size: int,
    settings: SequenceSettings,
    rng: np.random.Generator,
    out: Path,
) -> dict[str, np.ndarray]:
    """Render one sequence (module docstring) and return its npz arrays."""
    frames = len(global_orient)
    t = np.arange(frames)
    # The camera: upright (y up -> image y down), a small tilt, a heading that turns slowly.
    heading = rng.uniform(-np.pi, np.pi) + np.deg2rad(rng.uniform(-1.0, 1.0)) * t
    tilt = rng.normal(0, 0.12, size=2)
    cameras = [
        _rotation([np.pi, 0.0, 0.0])
        @ _rotation([tilt[0], 0.0, tilt[1]])
        @ _rotation([0.0, float(h), 0.0])
        for h in heading
    ]
    orient_cam = np.stack([c @ r for c, r in zip(cameras, global_orient, strict=True)])
    betas = np.clip(rng.normal(0, 1, size=10), -2.5, 2.5).astype(np.float32)
    orient_aa = pg.rotmat_to_axis_angle(torch.from_numpy(orient_cam)).float()
    pose_aa = pg.rotmat_to_axis_angle(torch.from_numpy(body_pose)).float().reshape(frames, 69)
    with torch.no_grad():
        output = body(
            global_orient=orient_aa,
            body_pose=pose_aa,
            betas=torch.from_numpy(betas).expand(frames, 10),
        )
    vertices = output.vertices.numpy().astype(np.float64)
    keypoints = output.keypoints.numpy().astype(np.float64)
    focal = float(image_size * rng.uniform(1.2, 2.2))
    extent = max(np.ptp(k[:, :2], axis=0).max() for k in keypoints)
    fill = rng.uniform(0.6, 0.8)
    depth = (
        focal
        * extent
        / (fill * image_size)
        * (1.0 + 0.08 * np.sin(2 * np.pi * t / frames + rng.uniform(0, 2 * np.pi)))
    )
    drift = rng.uniform(-0.08, 0.08, size=(2, 2))
    offset = drift[0] + np.outer(t / max(frames - 1, 1), drift[1] - drift[0])  # image fraction
    centre = keypoints.mean(axis=1)
    translation = np.stack(
        [
            offset[:, 0] * depth * image_size / focal - centre[:, 0],
            offset[:, 1] * depth * image_size / focal - centre[:, 1],
            depth,
        ],
        axis=1,
    )
    background = _background(image_size, rng)
    light = rng.normal(size=3)
    light[2] = -abs(light[2]) - 0.5
    light /= np.linalg.norm(light)
    center_px = np.array([image_size / 2, image_size / 2])
    points = keypoints + translation[:, None]
    uv = points[..., :2] / points[..., 2:3] * focal + center_px
    inside = np.all((uv >= 0) & (uv < image_size), axis=-1).astype(np.float64)
    names = []
    for frame in range(frames):
        noise = rng.normal(0, 3.0, size=background.shape)
        image = render_meshes(
            parts.meshes(vertices[frame] + translation[frame]),
            image_size=(image_size, image_size),
            focal_px=(focal, focal),
            center_px=tuple(center_px),
            background=np.clip(background + noise, 0, 255).astype(np.uint8),
            light_direction=light,
        )
        file_name = f"{name}/{frame:06d}.jpg"
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"could not encode {file_name}")
        payload = encoded.tobytes()
        atomic_write(out / "images" / file_name, lambda f, data=payload: f.write(data))
        names.append(file_name)
    exact = np.concatenate([uv, inside[..., None]], axis=-1)
    noisy = detector_keypoints(exact, settings=settings, rng=rng)
    for frame in range(frames):
        person = {"pose_keypoints_2d": noisy[frame, :25].ravel().tolist()}
        document = {"version": 1.3, "people": [person]}
        path = out / "openpose" / name / f"{frame:06d}_keypoints.json"
        atomic_write(path, lambda f, doc=document: f.write(json.dumps(doc).encode()))
    body_pose_72 = np.concatenate([orient_aa.numpy(), pose_aa.numpy()], axis=1)
    return {
        "imgname": np.asarray(names),
        "keypoints_3d": points.astype(np.float32),
        "keypoints_2d": exact.astype(np.float32),
        "keypoints_2d_noisy": noisy.astype(np.float32),
        "body_pose": body_pose_72.astype(np.float32),
        "betas": betas,
        "translation": translation.astype(np.float32),
        "focal": np.asarray(focal),
        "image_size": np.asarray(image_size),
        "fps": np.asarray(120 // CLIP_STEP),
    }


def detector_keypoints(
    exact: np.ndarray, *, settings: SequenceSettings, rng: np.random.Generator
) -> np.ndarray:
    """(T, 44, 3) detector-like keypoints from exact (T, 44, 3) ones (module docstring): the 25
    OpenPose keypoints with noise, drops and outliers; the other 19 with confidence 0."""
    frames = exact.shape[0]
    noisy = np.zeros_like(exact)
    body = exact[:, :25].copy()
    visible = body[..., 2] > 0
    low = np.where(visible[..., None], body[..., :2], np.inf).min(axis=1)
    high = np.where(visible[..., None], body[..., :2], -np.inf).max(axis=1)
    side = np.where(np.isfinite(high - low), high - low, 0.0).max(axis=1)  # (T,)
    sigma = settings.noise_fraction * side[:, None, None]
    coords = body[..., :2] + rng.normal(0, 1, size=(frames, 25, 2)) * sigma
    outlier = rng.random((frames, 25)) < settings.outlier_probability
    angle = rng.uniform(0, 2 * np.pi, size=(frames, 25))
    distance = rng.uniform(1 / 3, 1 / 2, size=(frames, 25)) * side[:, None]
    jump = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * distance[..., None]
    coords = np.where(outlier[..., None], coords + jump, coords)
    confidence = rng.uniform(0.4, 0.95, size=(frames, 25))
    dropped = rng.random((frames, 25)) < settings.drop_probability
    keep = visible & ~dropped
    noisy[:, :25, :2] = np.where(keep[..., None], coords, 0.0)
    noisy[:, :25, 2] = np.where(keep, confidence, 0.0)
    return noisy
