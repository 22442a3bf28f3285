"""Pictures of predictions: crops with the mode (pink) and samples overlaid, and side views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

import pose_geometry as pg
from pose_body.render import Mesh, render_meshes
from pose_data.io import atomic_write

from .batch import to_device

__all__ = ["MODE_COLOUR", "SAMPLE_COLOURS", "render_hypotheses", "save_prediction_grid"]

MODE_COLOUR = (1.0, 0.45, 0.75)  # pink, as in the paper's figures
SAMPLE_COLOURS = (
    (0.35, 0.65, 1.0),
    (0.45, 0.9, 0.5),
    (1.0, 0.8, 0.3),
    (0.7, 0.5, 1.0),
    (0.3, 0.9, 0.9),
    (1.0, 0.55, 0.35),
    (0.6, 0.6, 0.6),
)
IMAGE_MEAN = np.array([0.485, 0.456, 0.406])
IMAGE_STD = np.array([0.229, 0.224, 0.225])


def denormalize(image: torch.Tensor) -> np.ndarray:
    """(3, S, S) normalised crop -> (S, S, 3) uint8 RGB."""
    array = image.detach().cpu().float().numpy().transpose(1, 2, 0)
    return np.clip((array * IMAGE_STD + IMAGE_MEAN) * 255, 0, 255).astype(np.uint8)


def side_rotation(vertices: np.ndarray, angle_deg: float = 90.0) -> np.ndarray:
    """Rotate (V, 3) camera-frame vertices about the vertical (y) axis through their centre."""
    centre = vertices.mean(axis=0)
    rotation = pg.axis_angle_to_rotmat(torch.tensor([0.0, np.deg2rad(angle_deg), 0.0])).numpy()
    return (vertices - centre) @ rotation.T + centre


def render_hypotheses(
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    image: np.ndarray | None,
    focal_px: float,
    size: int,
    side: bool = False,
    alpha_samples: float = 0.45,
) -> np.ndarray:
    """Render (N, V, 3) hypotheses (0 = mode, pink) over ``image`` or white."""
    meshes = []
    for index in range(len(vertices)):
        verts = side_rotation(vertices[index]) if side else vertices[index]
        if index == 0:
            meshes.append(Mesh(vertices=verts, faces=faces, color=MODE_COLOUR, alpha=1.0))
        else:
            colour = SAMPLE_COLOURS[(index - 1) % len(SAMPLE_COLOURS)]
            meshes.append(Mesh(vertices=verts, faces=faces, color=colour, alpha=alpha_samples))
    background = image if image is not None else np.full((size, size, 3), 255, np.uint8)
    return render_meshes(
        meshes,
        image_size=(size, size),
        focal_px=(focal_px, focal_px),
        center_px=(size / 2, size / 2),
        background=background,
    )


@torch.no_grad()
def save_prediction_grid(
    model: Any, batch: dict[str, Any], path: str | Path, *, num_samples: int = 8, size: int = 160
) -> np.ndarray:
    """A row per image: crop | mode | mode + samples | side view. Returns the (H, W, 3) grid."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batch = to_device(batch, device)
    generator = torch.Generator(device=device).manual_seed(0)
    output = model(batch["img"], num_samples=num_samples, generator=generator)
    body = model.body_model
    count, samples = output.betas.shape[:2]
    full = body(
        global_orient=output.global_orient.reshape(-1, 1, 3, 3),
        body_pose=output.body_pose.reshape(-1, 23, 3, 3),
        betas=output.betas.reshape(count * samples, -1),
    )
    vertices = full.vertices.reshape(count, samples, -1, 3) + output.camera_translation[:, :, None]
    vertices = vertices.cpu().numpy()
    faces = body.faces.cpu().numpy()
    focal = model.focal_length * size / 224.0
    rows = []
    for b in range(count):
        crop = cv2.resize(denormalize(batch["img"][b]), (size, size))
        mode = render_hypotheses(vertices[b, :1], faces, image=crop, focal_px=focal, size=size)
        multi = render_hypotheses(vertices[b], faces, image=crop, focal_px=focal, size=size)
        side = render_hypotheses(
            vertices[b], faces, image=None, focal_px=focal, size=size, side=True
        )
        rows.append(np.concatenate([crop, mode, multi, side], axis=1))
    grid = np.concatenate(rows, axis=0)
    ok, encoded = cv2.imencode(".png", grid[..., ::-1])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    atomic_write(path, lambda f: f.write(encoded.tobytes()))
    if was_training:
        model.train()
    return grid
