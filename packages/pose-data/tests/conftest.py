"""Fixtures for pose-data tests: the repository's assets, the optional real-data folder and
small synthetic datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def assets() -> Path:
    """The repository's ``assets/`` folder (CMU clips, demo examples; see assets/CREDITS.md)."""
    root = REPO_ROOT / "assets"
    if not (root / "CREDITS.md").is_file():
        pytest.fail(f"the repository's assets folder {root} is missing or incomplete")
    return root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The licence-restricted real samples (POSE_SHARED_DATA or <repo>/../shared/data), which
    the repository does not ship; skip if absent."""
    root = Path(os.environ.get("POSE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.skip(f"real sample data not found at {root} (set POSE_SHARED_DATA)")
    return root


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """write_image(path, width, height, seed=0) -> path: a random-noise JPEG/PNG."""

    def write(path: Path, width: int, height: int, seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image)
        return path

    return write


@pytest.fixture
def synthetic_arrays() -> Callable[..., dict[str, np.ndarray]]:
    """synthetic_arrays(n, names) -> dict of complete npz arrays (random but valid)."""

    def make(names: list[str], seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        n = len(names)
        keypoints_2d = np.concatenate(
            [rng.uniform(10, 50, size=(n, 44, 2)), np.ones((n, 44, 1))], axis=-1
        )
        keypoints_3d = np.concatenate(
            [rng.normal(size=(n, 44, 3)) * 0.3, np.ones((n, 44, 1))], axis=-1
        )
        return {
            "imgname": np.asarray(names),
            "center": rng.uniform(25, 35, size=(n, 2)),
            "scale": rng.uniform(30, 50, size=n),
            "body_pose": rng.normal(size=(n, 72)) * 0.3,
            "has_body_pose": np.ones(n),
            "betas": rng.normal(size=(n, 10)),
            "has_betas": np.ones(n),
            "body_keypoints_2d": keypoints_2d[:, :25],
            "extra_keypoints_2d": keypoints_2d[:, 25:],
            "body_keypoints_3d": keypoints_3d[:, :25],
            "extra_keypoints_3d": keypoints_3d[:, 25:],
        }

    return make


@pytest.fixture
def synthetic_dataset(tmp_path, write_image, synthetic_arrays) -> tuple[Path, Path]:
    """(npz path, image folder) of a 4-row dataset over 3 small images."""
    image_dir = tmp_path / "images"
    names = ["a.jpg", "sub/b.png", "c.jpg", "a.jpg"]
    for i, name in enumerate(dict.fromkeys(names)):
        write_image(image_dir / name, 64, 48, seed=i)
    npz = tmp_path / "data.npz"
    np.savez(npz, **synthetic_arrays(names))
    return npz, image_dir
