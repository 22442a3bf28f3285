"""The synthetic world: retargeting, file formats, projection consistency, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pipeline.assets import cmu_clip_files
from pipeline.config import SyntheticConfig
from pipeline.retarget import _SWING_BONES, retarget_h36m17_to_smpl, sample_joint_limited_poses
from pipeline.synthetic import generate_synthetic_world, rest_joints

import pose_data as pdata
from pose_body import BodyModel

ROOT = Path(__file__).resolve().parents[1]


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_retargeted_bones_point_where_the_captured_bones_point() -> None:
    body = BodyModel.procedural()
    rng = np.random.default_rng(0)
    poses = torch.from_numpy(sample_joint_limited_poses(16, rng))
    with torch.no_grad():
        source = body.keypoints_only(
            global_orient=0.5 * torch.randn(16, 3), body_pose=poses, betas=torch.zeros(16, 10)
        )
    captured = source.h36m_joints.numpy().astype(np.float64)
    global_orient, body_pose = retarget_h36m17_to_smpl(captured, rest_joints(body))
    with torch.no_grad():
        posed = body.keypoints_only(
            global_orient=torch.from_numpy(global_orient)[:, None],
            body_pose=torch.from_numpy(body_pose),
            betas=torch.zeros(16, 10),
        ).smpl_joints.numpy()
    for joint, child, start, end in _SWING_BONES:
        bone = _normalize(posed[:, child] - posed[:, joint])
        target = _normalize(captured[:, end] - captured[:, start])
        cosine = np.sum(bone * target, axis=-1)
        assert cosine.min() > 0.999, (joint, cosine.min())
    hips = _normalize(posed[:, 1] - posed[:, 2])
    captured_hips = _normalize(captured[:, 4] - captured[:, 1])
    assert np.sum(hips * captured_hips, axis=-1).min() > 0.999


def test_joint_limited_poses_are_within_limits_and_seeded() -> None:
    a = sample_joint_limited_poses(100, np.random.default_rng(1))
    b = sample_joint_limited_poses(100, np.random.default_rng(1))
    assert a.shape == (100, 69)
    assert np.array_equal(a, b)
    knees = a.reshape(100, 23, 3)[:, [3, 4], 0]  # SMPL joints 4, 5: knee flexion about x
    assert knees.min() >= 0.0
    assert knees.max() <= 2.2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    config = SyntheticConfig(
        output_dir=str(tmp_path_factory.mktemp("world")), num_train=6, num_val=2, image_size=48
    )
    return config, generate_synthetic_world(config)


def test_world_files_follow_the_formats(world) -> None:
    _, generated = world
    train = pdata.read_prohmr_npz(generated.train)
    assert len(train) == 6
    assert len(pdata.read_prohmr_npz(generated.val)) == 2
    assert pdata.MocapDataset(generated.mocap)[0]["body_pose"].shape == (69,)
    frames = pdata.read_multiview_pickle(generated.multiview)
    assert len(frames) >= 1
    dataset = pdata.ImageDataset(
        generated.train, image_dir=generated.images, train=False, image_size=32
    )
    item = dataset[0]
    assert item["img"].shape == (3, 32, 32)
    info = json.loads((generated.root / "info.json").read_text())
    assert info["train_images"] == 6
    # the poses come from the clips the repository ships, whatever is beside it
    assert info["pose_source"] == "cmu_mocap"
    assert info["clips"] == [path.name for path in cmu_clip_files(ROOT / "assets" / "cmu_mocap")]
    assert info["clips"] == [
        "backflip.amc", "charleston1.amc", "lambada.amc", "131_01.bvh", "131_02.bvh"
    ]  # fmt: skip
    # held out by clip, and measurably farther from the training poses than they are apart
    assert info["held_out_clips"] == ["charleston1", "backflip"]
    assert info["training_pose_pool"] > 4 * info["held_out_pose_pool"] > 0
    assert info["held_out_to_nearest_train_mm"] > 1.5 * info["train_to_nearest_other_train_mm"]


def test_held_out_poses_come_from_the_held_out_clips_only() -> None:
    from pipeline.assets import read_cmu_clip
    from pipeline.synthetic import _mocap_pools

    rest = rest_joints(BodyModel.procedural())
    train, held, names = _mocap_pools(rest, np.random.default_rng(0))
    frames = {
        name: len(read_cmu_clip(ROOT / "assets" / "cmu_mocap" / sub / name, step=4).positions)
        for sub, name in (("asf_amc", "charleston1.amc"), ("asf_amc", "backflip.amc"))
    }
    # every frame of the held-out clips, and its mirror image
    assert len(held) == 2 * sum(frames.values())
    assert len(train) % 2 == 0 and len(names) == 5
    # no held-out pose is a training pose
    gaps = np.abs(held[:, None, 3:] - train[None, :, 3:]).max(axis=-1)
    assert gaps.min() > 1e-3


def test_projected_3d_keypoints_land_on_the_2d_keypoints(world) -> None:
    config, generated = world
    arrays = np.load(generated.train)
    points = np.concatenate([arrays["body_keypoints_3d"], arrays["extra_keypoints_3d"]], 1)[..., :3]
    uv = np.concatenate([arrays["body_keypoints_2d"], arrays["extra_keypoints_2d"]], 1)[..., :2]
    focal = arrays["focal"][:, None, None]
    projected = points[..., :2] / points[..., 2:3] * focal + config.image_size / 2
    np.testing.assert_allclose(projected, uv, atol=1e-3)


def test_generation_is_deterministic(world, tmp_path, monkeypatch) -> None:
    """The same world again, here with the reference data folder variable pointing nowhere:
    the world does not depend on anything outside the repository."""
    config, generated = world
    monkeypatch.setenv("POSE_SHARED_DATA", str(tmp_path / "no_shared_data"))
    again = generate_synthetic_world(
        SyntheticConfig(
            output_dir=str(tmp_path / "again"), num_train=6, num_val=2, image_size=48,
            seed=config.seed,
        )
    )  # fmt: skip
    first, second = np.load(generated.train), np.load(again.train)
    for key in first.files:
        assert np.array_equal(first[key], second[key]), key
    assert again.info == generated.info
    for image in sorted(generated.images.rglob("*.jpg")):
        twin = again.images / image.relative_to(generated.images)
        assert image.read_bytes() == twin.read_bytes(), image.name


def test_joint_limit_sampler_only_when_asked(tmp_path) -> None:
    config = SyntheticConfig(
        output_dir=str(tmp_path), num_train=2, num_val=1, image_size=32, use_mocap=False
    )
    info = generate_synthetic_world(config).info
    assert info["pose_source"] == "joint_limits" and info["clips"] == []
