"""The synthetic world's video sequences (pipeline.synthetic_sequences)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pipeline.synthetic_sequences import (
    SequenceSettings,
    detector_keypoints,
    ensure_sequences,
    load_sequence,
)

import pose_data as pdata

SMALL = SequenceSettings(num_sequences=2, length=5)


def world(tmp_path, *, use_mocap=True, image_size=48):
    root = tmp_path / "world"
    root.mkdir(parents=True)
    (root / "info.json").write_text(json.dumps({"use_mocap": use_mocap, "image_size": image_size}))
    return root


def test_sequences_are_made_once_with_consistent_arrays(tmp_path):
    root = world(tmp_path)
    made = ensure_sequences(root, settings=SMALL)
    assert made.root == root / "sequences" and len(made.files) == 2
    assert [s["clip"] for s in made.info["sequences"]] == ["charleston1", "backflip"]
    arrays = load_sequence(made.files[0])
    assert arrays["keypoints_3d"].shape == (5, 44, 3) and arrays["body_pose"].shape == (5, 72)
    assert arrays["betas"].shape == (10,) and float(arrays["fps"]) == 30
    # the 2D keypoints are the projections of the 3D ones
    focal, size = float(arrays["focal"]), float(arrays["image_size"])
    points = arrays["keypoints_3d"].astype(np.float64)
    uv = points[..., :2] / points[..., 2:] * focal + size / 2
    np.testing.assert_allclose(arrays["keypoints_2d"][..., :2], uv, atol=1e-3)
    for name in arrays["imgname"]:
        assert (made.root / "images" / str(name)).is_file()
    # the OpenPose files hold the noisy BODY_25 keypoints
    frame = pdata.read_openpose_json(made.root / "openpose" / "seq_000" / "000003_keypoints.json")
    assert frame.keypoints.shape == (1, 25, 3)
    np.testing.assert_allclose(frame.keypoints[0], arrays["keypoints_2d_noisy"][3, :25], atol=1e-4)
    # reused while the settings match, made again otherwise
    stamp = made.files[0].stat().st_mtime_ns
    again = ensure_sequences(root, settings=SMALL)
    assert again.files[0].stat().st_mtime_ns == stamp
    other = ensure_sequences(root, settings=SequenceSettings(num_sequences=2, length=5, seed=1))
    assert not np.array_equal(load_sequence(other.files[0])["betas"], arrays["betas"])


def test_sequences_are_deterministic(tmp_path):
    root = world(tmp_path)
    first = load_sequence(ensure_sequences(root, out=tmp_path / "a", settings=SMALL).files[1])
    second = load_sequence(ensure_sequences(root, out=tmp_path / "b", settings=SMALL).files[1])
    for key in ("keypoints_3d", "keypoints_2d_noisy", "betas", "translation"):
        np.testing.assert_array_equal(first[key], second[key])


def test_detector_keypoints_are_noisy_dropped_and_body25_only():
    rng = np.random.default_rng(0)
    exact = np.zeros((200, 44, 3))
    exact[..., :2] = rng.uniform(10, 90, size=(200, 44, 2))
    exact[..., 2] = 1.0
    exact[0, 3, 2] = 0.0  # outside the image: never detected
    settings = SequenceSettings(noise_fraction=0.02, drop_probability=0.1, outlier_probability=0.05)
    noisy = detector_keypoints(exact, settings=settings, rng=rng)
    assert (noisy[:, 25:] == 0).all() and noisy[0, 3, 2] == 0
    conf = noisy[:, :25, 2]
    dropped = conf == 0
    assert 0.05 < dropped.mean() < 0.15
    assert (noisy[:, :25, :2][dropped] == 0).all()
    assert ((conf[~dropped] >= 0.4) & (conf[~dropped] <= 0.95)).all()
    error = np.linalg.norm(noisy[:, :25, :2] - exact[:, :25, :2], axis=-1)[~dropped]
    side = 80.0  # about the spread of the uniform keypoints
    assert 0.005 * side < np.median(error) < 0.05 * side
    outliers = (error > 0.25 * side).mean()
    assert 0.02 < outliers < 0.09


def test_bad_worlds_and_settings_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"info\.json"):
        ensure_sequences(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="without motion capture"):
        ensure_sequences(world(tmp_path, use_mocap=False))
    with pytest.raises(ValueError, match="longer than the shortest held-out clip"):
        ensure_sequences(
            world(tmp_path / "x"), settings=SequenceSettings(num_sequences=1, length=500)
        )
