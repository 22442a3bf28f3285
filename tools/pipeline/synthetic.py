"""The embedded synthetic world (docs/data.md): rendered procedural bodies in ProHMR's format.

For every image: a pose (the CMU motion capture of ``assets/cmu_mocap`` retargeted to SMPL, each
frame also mirrored, or the joint-limit sampler with ``use_mocap: false``; missing clips are an
error), random betas, a
random heading and tilt, a perspective camera with a random focal length and distance, a random
background (gradients and blobs) and light; pose-body's procedural model is posed with smplx and
drawn by pose-body's software renderer, each body part in its own colour (left and right
differ). Written per split in the npz format of docs/data.md (2D/3D keypoints in the 44 layout,
SMPL parameters with the global orientation in the camera frame, boxes of 1.2 x the keypoint
extent), plus a mocap npz for the discriminator, a multiview pickle (one pose seen by several
cameras) and mean parameters for the FC head. Deterministic from the seed.

The held-out split (``val`` and the multiview set) is honest: its poses come from the clips of
``HELD_OUT_CLIPS``, which no training image (nor the discriminator's mocap) uses; ``info.json``
names them and gives the median distance from a held-out pose to its nearest training pose
beside that from a training pose to its nearest other one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

import pose_geometry as pg
from pose_body import BodyModel, procedural_body_model
from pose_body.render import Mesh, render_meshes
from pose_data.io import (
    atomic_write,
    write_mocap_npz,
    write_multiview_pickle,
    write_prohmr_npz,
)

from .assets import CMU_MOCAP_DIR, HELD_OUT_CLIPS, cmu_clip_files, read_cmu_clip
from .config import SyntheticConfig
from .retarget import retarget_h36m17_to_smpl, sample_joint_limited_poses

__all__ = ["SyntheticWorld", "generate_synthetic_world"]

FORMAT_VERSION = 2  # 2: held-out split by clip, mirrored poses


@dataclass(frozen=True)
class SyntheticWorld:
    """Paths of a generated world."""

    root: Path
    train: Path
    val: Path
    multiview: Path
    mocap: Path
    mean_params: Path
    images: Path
    info: dict[str, Any]


def _mocap_pools(
    rest_joints: np.ndarray,
    rng: np.random.Generator,
    folder: Path | None = None,
    *,
    held_out: tuple[str, ...] = HELD_OUT_CLIPS,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(training pool, held-out pool, clip file names): (P, 72) axis-angle poses (global
    orientation first, shuffled) from the CMU clips in ``folder`` (default: the repository's
    ``assets/cmu_mocap``) at 30 fps, each with its mirror image. The clips named in ``held_out``
    (file stems) give the held-out pool, every other clip the training pool, so no held-out
    pose comes from a motion that a training image shows. A missing or empty folder, or one
    without every held-out clip, is an error."""
    from pose_data.augment import flip_smpl_pose
    from pose_data.mocap_skeleton import mocap_to_h36m17

    files = cmu_clip_files(folder)
    missing = sorted(set(held_out) - {path.stem for path in files})
    if missing or len(held_out) >= len(files):
        raise ValueError(
            f"CMU clip folder {folder or CMU_MOCAP_DIR}: the held-out clips {list(held_out)} "
            f"must be among its clips and leave at least one for training; it holds "
            f"{[path.stem for path in files]}"
        )
    pools: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for path in files:
        clip = read_cmu_clip(path, step=4)  # 120 -> 30 fps
        joints = np.asarray(mocap_to_h36m17(clip), dtype=np.float64)
        global_orient, body_pose = retarget_h36m17_to_smpl(joints, rest_joints)
        rotmats = np.concatenate([global_orient[:, None], body_pose], axis=1)
        axis_angle = pg.rotmat_to_axis_angle(torch.from_numpy(rotmats)).numpy().reshape(-1, 72)
        pools[path.stem in held_out] += [axis_angle, flip_smpl_pose(axis_angle)]
    train, held = (np.concatenate(pools[key]).astype(np.float32) for key in (False, True))
    return (
        train[rng.permutation(len(train))],
        held[rng.permutation(len(held))],
        [path.name for path in files],
    )


def nearest_pose_distances_mm(
    body: BodyModel, train_pool: np.ndarray, held_pool: np.ndarray
) -> dict[str, float]:
    """How far held-out poses are from the training poses, against how far training poses are
    from each other: medians over poses of the distance to the nearest training pose (not
    itself), in mm per joint (root-mean-square over the 24 SMPL joints of the zero shape, body
    pose only, root at the origin)."""

    def joints(pool: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            output = body.keypoints_only(
                global_orient=torch.zeros(len(pool), 3),
                body_pose=torch.from_numpy(pool[:, 3:]).float(),
                betas=torch.zeros(len(pool), 10),
            )
        points = output.smpl_joints.double()
        return (points - points[:, :1]).flatten(1) * 1000 / np.sqrt(24)

    train, held = joints(train_pool), joints(held_pool)
    to_train = torch.cdist(train, train)
    to_train.fill_diagonal_(float("inf"))
    return {
        "train_to_nearest_other_train_mm": float(to_train.min(dim=1).values.median()),
        "held_out_to_nearest_train_mm": float(torch.cdist(held, train).min(dim=1).values.median()),
    }


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth colour gradient with a few soft blobs, (size, size, 3) uint8."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(30, 220, size=(2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y + 1) / 2
    image = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        image += blob[..., None] * rng.uniform(-80, 80, size=3)[None, None]
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


# Colours per SMPL joint's body part (left parts warm, right parts cool, trunk neutral).
_PART_COLOURS = np.array(
    [
        (0.80, 0.80, 0.75), (0.95, 0.55, 0.25), (0.25, 0.55, 0.95), (0.75, 0.75, 0.70),
        (0.95, 0.70, 0.20), (0.20, 0.70, 0.90), (0.70, 0.72, 0.70), (0.90, 0.40, 0.20),
        (0.20, 0.40, 0.90), (0.72, 0.70, 0.68), (0.85, 0.35, 0.15), (0.15, 0.35, 0.85),
        (0.85, 0.75, 0.65), (0.95, 0.35, 0.45), (0.35, 0.45, 0.95), (0.90, 0.80, 0.70),
        (0.95, 0.25, 0.35), (0.25, 0.35, 0.95), (0.95, 0.60, 0.60), (0.60, 0.60, 0.95),
        (0.85, 0.50, 0.55), (0.50, 0.55, 0.85), (0.80, 0.45, 0.50), (0.45, 0.50, 0.80),
    ]
)  # fmt: skip


class PartMeshes:
    """The body split into one compact mesh per body part (faces grouped by dominant joint)."""

    def __init__(self, faces: np.ndarray, part_of_face: np.ndarray) -> None:
        self.groups = []
        for part in np.unique(part_of_face):
            part_faces = faces[part_of_face == part]
            used, local = np.unique(part_faces, return_inverse=True)
            self.groups.append((used, local.reshape(-1, 3), tuple(_PART_COLOURS[part])))

    def meshes(self, vertices: np.ndarray) -> list[Mesh]:
        return [
            Mesh(vertices=vertices[used], faces=local, color=colour)
            for used, local, colour in self.groups
        ]


def face_parts(model: BodyModel) -> np.ndarray:
    """(F,) dominant skinning joint of each face of the procedural model."""
    weights = np.asarray(procedural_body_model().model.weights)
    faces = model.faces.cpu().numpy()
    return weights[faces].sum(axis=1).argmax(axis=1)


def rest_joints(model: BodyModel) -> np.ndarray:
    """(24, 3) SMPL joints of the zero pose and zero betas."""
    with torch.no_grad():
        output = model.keypoints_only(
            global_orient=torch.zeros(1, 3),
            body_pose=torch.zeros(1, 69),
            betas=torch.zeros(1, 10),
        )
    return output.smpl_joints[0].numpy().astype(np.float64)


def _look(rng: np.random.Generator) -> np.ndarray:
    """Global orientation in the camera frame: upright body (y up -> camera y down), random
    heading, small tilt."""
    heading = rng.uniform(-np.pi, np.pi)
    tilt = rng.normal(0, 0.12, size=2)
    flip = np.array([np.pi, 0.0, 0.0])
    parts = [
        pg.axis_angle_to_rotmat(torch.tensor(flip, dtype=torch.float64)),
        pg.axis_angle_to_rotmat(torch.tensor([tilt[0], 0.0, tilt[1]], dtype=torch.float64)),
        pg.axis_angle_to_rotmat(torch.tensor([0.0, heading, 0.0], dtype=torch.float64)),
    ]
    return (parts[0] @ parts[1] @ parts[2]).numpy()


def _render_split(
    name: str,
    count: int,
    *,
    body: BodyModel,
    parts: PartMeshes,
    pose_pool: np.ndarray,
    image_size: int,
    rng: np.random.Generator,
    out: Path,
    views: int = 1,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Render ``count`` instants (× ``views`` cameras each); returns the npz arrays.

    All parameters are drawn first, the body model runs batched, then every image is drawn.
    """
    image_dir = out / "images" / name
    image_dir.mkdir(parents=True, exist_ok=True)
    global_orients, body_poses, betas_all, instants, cameras = [], [], [], [], []
    for index in range(count):
        body_pose = pose_pool[int(rng.integers(len(pose_pool)))][3:].copy()
        body_pose += rng.normal(0, 0.03, size=69).astype(np.float32)
        betas = np.clip(rng.normal(0, 1, size=10), -2.5, 2.5).astype(np.float32)
        base_heading = _look(rng)
        for view in range(views):
            global_rot = base_heading
            if view > 0:
                angle = 2 * np.pi * view / views + rng.normal(0, 0.1)
                turn = pg.axis_angle_to_rotmat(
                    torch.tensor([0.0, angle, 0.0], dtype=torch.float64)
                ).numpy()
                global_rot = base_heading @ turn
            global_orients.append(
                pg.rotmat_to_axis_angle(torch.from_numpy(global_rot)).numpy().astype(np.float32)
            )
            body_poses.append(body_pose)
            betas_all.append(betas)
            instants.append(index)
            cameras.append(view)
    global_orient = torch.from_numpy(np.stack(global_orients))
    body_pose_t = torch.from_numpy(np.stack(body_poses))
    betas_t = torch.from_numpy(np.stack(betas_all))
    vertices_all, keypoints_all = [], []
    with torch.no_grad():
        for start in range(0, len(global_orient), 64):
            chunk = slice(start, start + 64)
            output = body(
                global_orient=global_orient[chunk],
                body_pose=body_pose_t[chunk],
                betas=betas_t[chunk],
            )
            vertices_all.append(output.vertices.numpy())
            keypoints_all.append(output.keypoints.numpy())
    vertices_all = np.concatenate(vertices_all)
    keypoints_all = np.concatenate(keypoints_all)
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "imgname", "center", "scale", "body_pose", "betas", "body_keypoints_2d",
            "extra_keypoints_2d", "body_keypoints_3d", "extra_keypoints_3d", "camera",
            "instant", "focal", "translation",
        )
    }  # fmt: skip
    rendering = tqdm(
        range(len(global_orient)), desc=f"rendering {name}", unit="image", disable=not progress
    )
    for row in rendering:
        keypoints = keypoints_all[row]
        focal = float(image_size * rng.uniform(1.2, 2.2))
        extent = np.ptp(keypoints[:, :2], axis=0).max()
        fill = rng.uniform(0.55, 0.9)
        depth = focal * extent / (fill * image_size)
        offset = rng.uniform(-0.12, 0.12, size=2) * depth * image_size / focal
        centre = keypoints.mean(axis=0)
        translation = np.array([offset[0] - centre[0], offset[1] - centre[1], depth])
        points = keypoints + translation
        center_px = np.array([image_size / 2, image_size / 2])
        uv = points[:, :2] / points[:, 2:3] * focal + center_px
        light = rng.normal(size=3)
        light[2] = -abs(light[2]) - 0.5
        image = render_meshes(
            parts.meshes(vertices_all[row] + translation),
            image_size=(image_size, image_size),
            focal_px=(focal, focal),
            center_px=tuple(center_px),
            background=_background(image_size, rng),
            light_direction=light / np.linalg.norm(light),
        )
        file_name = f"{name}/{instants[row]:06d}_{cameras[row]}.jpg"
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise RuntimeError(f"could not encode {file_name}")
        payload = encoded.tobytes()
        atomic_write(out / "images" / file_name, lambda f, data=payload: f.write(data))
        inside = np.all((uv >= 0) & (uv < image_size), axis=1).astype(np.float32)
        kp2d = np.concatenate([uv, inside[:, None]], axis=1)
        kp3d = np.concatenate([points, np.ones((44, 1))], axis=1)
        low, high = uv.min(axis=0), uv.max(axis=0)
        rows["imgname"].append(file_name)
        rows["center"].append((low + high) / 2)
        rows["scale"].append(1.2 * float((high - low).max()))
        rows["body_pose"].append(np.concatenate([global_orients[row], body_poses[row]]))
        rows["betas"].append(betas_all[row])
        rows["body_keypoints_2d"].append(kp2d[:25])
        rows["extra_keypoints_2d"].append(kp2d[25:])
        rows["body_keypoints_3d"].append(kp3d[:25])
        rows["extra_keypoints_3d"].append(kp3d[25:])
        rows["camera"].append(cameras[row])
        rows["instant"].append(instants[row])
        rows["focal"].append(focal)
        rows["translation"].append(translation)
    return {k: np.asarray(v) for k, v in rows.items()}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    num = len(arrays["imgname"])
    write_prohmr_npz(
        path,
        imgname=arrays["imgname"],
        center=arrays["center"],
        scale=arrays["scale"],
        body_pose=arrays["body_pose"],
        has_body_pose=np.ones(num),
        betas=arrays["betas"],
        has_betas=np.ones(num),
        body_keypoints_2d=arrays["body_keypoints_2d"],
        extra_keypoints_2d=arrays["extra_keypoints_2d"],
        body_keypoints_3d=arrays["body_keypoints_3d"],
        extra_keypoints_3d=arrays["extra_keypoints_3d"],
        extra={
            "camera": arrays["camera"],
            "instant": arrays["instant"],
            "focal": arrays["focal"],
            "translation": arrays["translation"],
        },
    )


def generate_synthetic_world(
    config: SyntheticConfig, *, force: bool = False, progress: bool = False
) -> SyntheticWorld:
    """Generate (or reuse, when ``info.json`` matches the config) the synthetic world; with
    ``progress``, a line says so and a bar per split counts the images drawn."""
    root = Path(config.output_dir)
    info_path = root / "info.json"
    wanted = {
        "format_version": FORMAT_VERSION,
        "num_train": config.num_train,
        "num_val": config.num_val,
        "image_size": config.image_size,
        "seed": config.seed,
        "use_mocap": config.use_mocap,
        # the clips in use (a world made from other clips, or none, is made again)
        "clips": [path.name for path in cmu_clip_files()] if config.use_mocap else [],
        "held_out_clips": list(HELD_OUT_CLIPS) if config.use_mocap else [],
    }
    world = SyntheticWorld(
        root=root,
        train=root / "train.npz",
        val=root / "val.npz",
        multiview=root / "multiview.pkl",
        mocap=root / "mocap.npz",
        mean_params=root / "mean_params.npz",
        images=root / "images",
        info=wanted,
    )
    if not force and info_path.is_file():
        existing = json.loads(info_path.read_text())
        if {k: existing.get(k) for k in wanted} == wanted:
            return SyntheticWorld(**{**world.__dict__, "info": existing})
    if progress:
        print(f"making the synthetic world in {root} (poses, then images)", flush=True)
    rng = np.random.default_rng(config.seed)
    body = BodyModel.procedural()
    rest = rest_joints(body)
    if config.use_mocap:
        train_pool, val_pool, _ = _mocap_pools(rest, rng)
        split_info = {
            "split": "by clip: the held-out images' poses come from the held-out clips only",
            **nearest_pose_distances_mm(body, train_pool, val_pool),
        }
        source = "cmu_mocap"
    else:
        source = "joint_limits"
        sampled = sample_joint_limited_poses(max(4 * config.num_train, 1000), rng)
        pool = np.concatenate([np.zeros((len(sampled), 3), np.float32), sampled], axis=1)
        # independent draws: the last 15% never appear in training images
        split = int(0.85 * len(pool))
        train_pool, val_pool = pool[:split], pool[split:]
        split_info = {"split": "independent draws: 85% training, 15% held out"}
    parts = PartMeshes(body.faces.cpu().numpy(), face_parts(body))
    train = _render_split(
        "train", config.num_train, body=body, parts=parts, pose_pool=train_pool,
        image_size=config.image_size, rng=rng, out=root, progress=progress,
    )  # fmt: skip
    val = _render_split(
        "val", config.num_val, body=body, parts=parts, pose_pool=val_pool,
        image_size=config.image_size, rng=rng, out=root, progress=progress,
    )  # fmt: skip
    multiview = _render_split(
        "multiview", max(8, config.num_val // 10), body=body, parts=parts, pose_pool=val_pool,
        image_size=config.image_size, rng=rng, out=root, views=4, progress=progress,
    )  # fmt: skip
    _write_npz(world.train, train)
    _write_npz(world.val, val)
    frames = []
    for instant in np.unique(multiview["instant"]):
        rows = multiview["instant"] == instant
        frames.append(
            {
                "imgname": multiview["imgname"][rows],
                "center": multiview["center"][rows],
                "scale": multiview["scale"][rows] / 1.2,  # the multiview reader multiplies by 1.2
                "body_pose": multiview["body_pose"][rows],
                "betas": multiview["betas"][rows],
                "has_body_pose": np.ones(rows.sum()),
                "has_betas": np.ones(rows.sum()),
                "body_keypoints_3d": multiview["body_keypoints_3d"][rows],
                "extra_keypoints_3d": multiview["extra_keypoints_3d"][rows],
                "body_keypoints_2d": multiview["body_keypoints_2d"][rows],
                "extra_keypoints_2d": multiview["extra_keypoints_2d"][rows],
            }
        )
    write_multiview_pickle(world.multiview, frames)
    mocap_betas = np.clip(rng.normal(0, 1, size=(len(train_pool), 10)), -2.5, 2.5)
    write_mocap_npz(world.mocap, body_pose=train_pool, betas=mocap_betas)
    # Mean parameters for the FC head: mean betas (0 by construction) and the mean crop camera.
    write_mean_params_for(world.mean_params, train)
    info = {
        **wanted,
        "pose_source": source,
        "training_pose_pool": len(train_pool),
        "held_out_pose_pool": len(val_pool),
        **split_info,
        "train_images": len(train["imgname"]),
        "val_images": len(val["imgname"]),
        "multiview_frames": len(frames),
    }
    atomic_write(info_path, lambda f: f.write(json.dumps(info, indent=2).encode()))
    return SyntheticWorld(**{**world.__dict__, "info": info})


def write_mean_params_for(path: Path, rows: dict[str, np.ndarray]) -> None:
    """Mean parameters in smpl_mean_params.npz layout from a rendered split.

    'shape' = mean betas, 'cam' = mean weak-perspective crop camera (s, tx, ty) implied by the
    translations and boxes, 'pose' = 6D of the mean rotation per joint (unused by ProHMR).
    """
    from pose_body import write_mean_params

    translation = torch.from_numpy(rows["translation"]).float()
    # the crop camera with the 5000 px / 224 px convention: s = 2 f / (224 * depth) scaled to
    # the crop, and (tx, ty) such that the box centre maps to the crop centre
    focal = torch.from_numpy(rows["focal"]).float()
    box = torch.from_numpy(rows["scale"]).float()
    depth_crop = translation[:, 2] * (box / 224.0) * (5000.0 / focal)
    scale = 2 * 5000.0 / (224.0 * depth_crop)
    camera = torch.stack([scale, torch.zeros_like(scale), torch.zeros_like(scale)], dim=1)
    pose = pg.rotmat_to_rot6d(torch.eye(3).expand(24, 3, 3)).reshape(144)
    write_mean_params(
        path,
        pose_6d=pose.numpy(),
        betas=rows["betas"].mean(axis=0),
        camera=camera.mean(dim=0).numpy(),
    )
