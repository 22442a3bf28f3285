"""Tiny models, checkpoints and pictures for tests, examples and smoke runs (no file needed).

- `tiny_model`: ProHMR with a ResNet-18, a small flow and the procedural body, its ActNorm
  layers set from poses near the rest pose facing the camera, so that the mode decodes to a
  plausible body; random weights otherwise (an untrained model).
- `save_checkpoint_of`: a model written in this project's checkpoint format with the config
  that built it, as the training program writes it (``model``, ``body``, ``data``, ``train``).
- `stick_figure`: an RGB picture of a stick figure and its OpenPose BODY_25 keypoints.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

import pose_geometry as pg
from pose_body import BodyModel

from .checkpoint import save_checkpoint
from .config import BodyConfig, ModelConfig
from .model import ProHMR, build_prohmr

__all__ = ["TINY_MODEL_CONFIG", "save_checkpoint_of", "stick_figure", "tiny_model"]

#: The sizes of `tiny_model`.
TINY_MODEL_CONFIG = ModelConfig(
    backbone_depth=18,
    flow_num_layers=2,
    flow_hidden_features=32,
    flow_num_blocks=1,
    fc_hidden_features=32,
    discriminator=False,
)


def tiny_model(config: ModelConfig = TINY_MODEL_CONFIG, *, seed: int = 0) -> ProHMR:
    """An untrained ProHMR marked initialised, on the procedural body, in eval mode.

    The weights come from ``seed`` (the global generator is left as it was); the FC head's mean
    camera is (0.9, 0, 0) (the published mean), so the camera scale is positive.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_prohmr(
            config,
            body_model=BodyModel.procedural(),
            mean_camera=np.array([0.9, 0.0, 0.0], dtype=np.float32),
        )
    generator = torch.Generator().manual_seed(seed + 1)
    axis_angle = 0.1 * torch.randn(16, 24, 3, generator=generator)
    axis_angle[:, 0] += torch.tensor([math.pi, 0.0, 0.0])
    pose_6d = pg.rotmat_to_rot6d(pg.axis_angle_to_rotmat(axis_angle)).reshape(16, 144)
    features = torch.randn(16, model.backbone.num_features, generator=generator)
    model.train()
    model.initialize_flow(features, pose_6d, torch.ones(16, dtype=torch.bool))
    return model.eval()


def save_checkpoint_of(
    path: str | os.PathLike[str],
    model: ProHMR,
    *,
    config: ModelConfig = TINY_MODEL_CONFIG,
    body: BodyConfig | None = None,
    crop_size: int = 64,
) -> Path:
    """Write ``model`` as a ProHMR checkpoint of this project: its state dict and the config
    sections the loader reads (``model``: ``config``; ``body``: default the procedural body;
    ``data.image_size``: ``crop_size``; an empty ``train``)."""
    body = BodyConfig(model_path="procedural") if body is None else body
    stored = {
        "model": asdict(config),
        "body": asdict(body),
        "data": {"image_size": crop_size},
        "train": {},
    }
    return save_checkpoint(path, {"step": 0, "model": model.state_dict(), "config": stored})


def stick_figure(width: int = 160, height: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(height, width, 3) uint8 RGB picture of a standing stick figure on a noisy background,
    and its (25, 3) OpenPose BODY_25 keypoints (x, y in pixels, confidence 0.9; feet and hands
    0). Sized for the default 160 x 200 picture; other sizes scale the figure."""
    rng = np.random.default_rng(0)
    image = rng.integers(40, 90, size=(height, width, 3), dtype=np.uint8)
    spots = {
        0: (80, 40), 1: (80, 62), 2: (62, 64), 3: (55, 90), 4: (52, 115), 5: (98, 64),
        6: (105, 90), 7: (108, 115), 8: (80, 115), 9: (70, 116), 10: (68, 150), 11: (67, 185),
        12: (90, 116), 13: (92, 150), 14: (93, 185), 15: (76, 37), 16: (84, 37),
    }  # fmt: skip
    scale = np.array([width / 160.0, height / 200.0])
    keypoints = np.zeros((25, 3), dtype=np.float32)
    for index, spot in spots.items():
        keypoints[index] = (*(np.asarray(spot) * scale), 0.9)
    limbs = ((1, 8), (2, 5), (2, 3), (3, 4), (5, 6), (6, 7), (9, 12), (9, 10), (10, 11))
    for a, b in (*limbs, (12, 13), (13, 14)):
        start = tuple(int(v) for v in np.rint(keypoints[a, :2]))
        end = tuple(int(v) for v in np.rint(keypoints[b, :2]))
        cv2.line(image, start, end, (230, 200, 170), max(2, int(6 * scale.min())))
    head = tuple(int(v) for v in np.rint(keypoints[0, :2]))
    cv2.circle(image, head, max(3, int(12 * scale.min())), (230, 200, 170), -1)
    return image, keypoints
