"""Fixtures: a tiny ProHMR checkpoint in this project's format, an image and an OpenPose file.

Everything is made with the package and its siblings only (no tools/, no other file of the
checkout), so the tests also run against the installed wheel. The image is the repository's
demo photo when the checkout has it (``assets/demo/spin_example``), otherwise
`prohmr_model.testing.stick_figure` with its OpenPose person.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from prohmr_model.testing import save_checkpoint_of, stick_figure, tiny_model

#: The demo photo and its OpenPose file, when the checkout has them.
ASSETS = Path(__file__).resolve().parents[3] / "assets" / "demo" / "spin_example"


@pytest.fixture(autouse=True)
def _seeded():
    """Seed torch's global generator for the test and restore the previous state afterwards."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`tiny_model` saved as a checkpoint of this project (64-px crops, procedural body)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    return save_checkpoint_of(folder / "checkpoint.pt", tiny_model())


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder with ``im1010.jpg`` and ``im1010_openpose.json``: the demo photo and its
    OpenPose file when the checkout has them, otherwise a stick figure and its person."""
    folder = tmp_path_factory.mktemp("example")
    image_path, json_path = folder / "im1010.jpg", folder / "im1010_openpose.json"
    if (ASSETS / image_path.name).is_file() and (ASSETS / json_path.name).is_file():
        image_path.write_bytes((ASSETS / image_path.name).read_bytes())
        json_path.write_bytes((ASSETS / json_path.name).read_bytes())
    else:
        image, keypoints = stick_figure()
        cv2.imwrite(str(image_path), np.ascontiguousarray(image[..., ::-1]))
        people = {"version": 1.3, "people": [{"pose_keypoints_2d": keypoints.ravel().tolist()}]}
        json_path.write_text(json.dumps(people))
    return {"image": image_path, "openpose": json_path}
