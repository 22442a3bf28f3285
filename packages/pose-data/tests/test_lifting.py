import numpy as np
import pytest
import torch

from pose_data.h36m_layout import H36M17_TO_44, H36M_CAMERA_IDS
from pose_data.lifting import (
    LIFTING_2D_EXTRA_IDX,
    LIFTING_3D_EXTRA_IDX,
    LiftingDataset,
    compute_lifting_stats,
    make_cmu_lifting_dataset,
    make_h36m_lifting_dataset,
    read_lifting_stats,
    write_lifting_npz,
    write_lifting_stats,
)
from pose_data.lifting_cameras import PinholeCamera, look_at_camera
from pose_data.mocap_skeleton import MocapClip, euler_to_rotmat, forward_kinematics

_EXTRA = [i - 25 for i in H36M17_TO_44]


def _reproject(data, row):
    """Pixels of the converted 3D joints seen by the converted (undistorted) camera."""
    camera = PinholeCamera(
        rotation=np.eye(3),
        translation=np.zeros(3),
        focal_px=data["focal_px"][row],
        center_px=data["center_px"][row],
    )
    return camera.project_camera_points(
        data["extra_keypoints_3d"][row, _EXTRA, :3] + data["pelvis_3d"][row], distort=False
    )


def test_lifting_indices_follow_the_original():
    assert LIFTING_2D_EXTRA_IDX == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 17, 18)
    assert LIFTING_3D_EXTRA_IDX == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18)


def test_write_and_read_lifting_dataset(tmp_path):
    rng = np.random.default_rng(0)
    joints_3d = rng.normal(size=(5, 17, 3)) * 0.3 + [0, 0, 5]
    joints_2d = rng.uniform(100, 900, size=(5, 17, 2))
    write_lifting_npz(
        tmp_path / "train.npz",
        keypoints_2d=joints_2d,
        keypoints_3d=joints_3d,
        imgname=[f"{i}" for i in range(5)],
    )
    mean, std = compute_lifting_stats(tmp_path / "train.npz")
    assert mean.shape == std.shape == (17, 2)
    # LIFTING order: extra 14 (pelvis = H36M-17 joint 0) is the 14th 2D joint.
    np.testing.assert_allclose(mean[13], joints_2d[:, 0].mean(0))
    write_lifting_stats(tmp_path / "stats.npz", mean=mean, std=std)
    dataset = LiftingDataset(tmp_path / "train.npz", stats_path=tmp_path / "stats.npz")
    item = dataset[2]
    assert item["keypoints_2d"].shape == (17, 3) and item["keypoints_3d"].shape == (16, 4)
    assert item["keypoints_2d"].dtype == torch.float32
    all_2d = torch.stack([dataset[i]["keypoints_2d"] for i in range(5)])
    torch.testing.assert_close(all_2d[..., :2].mean(0), torch.zeros(17, 2), atol=1e-5, rtol=0)
    assert torch.all(all_2d[..., 2] == 1)
    # 3D is root-relative; the right ankle (extra 0 = H36M-17 joint 3) comes first.
    np.testing.assert_allclose(
        item["keypoints_3d"][0, :3].numpy(), joints_3d[2, 3] - joints_3d[2, 0], atol=1e-6
    )
    assert torch.all(item["keypoints_3d"][:, 3] == 1)


def test_stats_and_inputs_are_validated(tmp_path):
    np.savez(tmp_path / "stats.npz", mean=np.zeros((17, 2)))
    with pytest.raises(ValueError, match=r"stats\.npz: field\(s\) \['std'\] missing"):
        read_lifting_stats(tmp_path / "stats.npz")
    np.savez(tmp_path / "stats.npz", mean=np.zeros(2), std=np.ones(2))
    mean, std = read_lifting_stats(tmp_path / "stats.npz")  # broadcast like the original
    assert mean.shape == std.shape == (17, 2)
    with pytest.raises(ValueError, match=r"`keypoints_3d` must have shape \(n, 17, 3\)"):
        write_lifting_npz(
            tmp_path / "x.npz",
            keypoints_2d=np.zeros((1, 17, 2)),
            keypoints_3d=np.zeros((1, 16, 3)),
            imgname=["a"],
        )


def _walking_clip(name, seed):
    """A synthetic clip with named joints and a custom H36M-17 map."""
    rng = np.random.default_rng(seed)
    parents = (-1, *([0] * 16))
    offsets = np.concatenate([np.zeros((1, 3)), rng.normal(scale=0.3, size=(16, 3))])
    frames = 20
    local = euler_to_rotmat(rng.normal(scale=0.2, size=(frames, 17, 3)), "XYZ")
    root = np.stack([np.linspace(0, 1, frames), np.full(frames, 1.0), np.zeros(frames)], axis=1)
    positions, rotations = forward_kinematics(parents, offsets, local, root)
    names = tuple(f"j{i}" for i in range(17))
    return MocapClip(names, parents, offsets, local, rotations, root, positions, 120.0, name)


def test_make_cmu_lifting_dataset_splits_by_clip_and_projects(tmp_path):
    from pose_data.h36m_layout import H36M17_NAMES

    clips = {f"clip{i}": _walking_clip(f"clip{i}", i) for i in range(4)}
    joint_map = {name: f"j{i}" for i, name in enumerate(H36M17_NAMES)}
    files = make_cmu_lifting_dataset(
        clips, tmp_path, num_cameras=2, step=2, joint_map=joint_map,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert len(files.test_sequences) == 1 and set(files.train_sequences).isdisjoint(
        files.test_sequences
    )
    assert files.num_train == 3 * 2 * 10 and files.num_test == 2 * 10
    train, test = np.load(files.train), np.load(files.test)
    assert set(train["sequence"]) == set(files.train_sequences)
    assert set(test["sequence"]) == set(files.test_sequences)
    for row in (0, 7, 25):
        np.testing.assert_allclose(
            _reproject(train, row), train["extra_keypoints_2d"][row, _EXTRA, :2], atol=1e-6
        )
    # Statistics come from the training split only.
    mean, _ = read_lifting_stats(files.stats)
    np.testing.assert_allclose(mean, compute_lifting_stats(files.train)[0])
    # Same generator seed, same dataset.
    again = make_cmu_lifting_dataset(
        clips,
        tmp_path / "again",
        num_cameras=2,
        step=2,
        joint_map=joint_map,
        generator=torch.Generator().manual_seed(0),
    )
    np.testing.assert_array_equal(
        np.load(again.train)["extra_keypoints_2d"], train["extra_keypoints_2d"]
    )
    with pytest.raises(ValueError, match="unknown clip"):
        make_cmu_lifting_dataset(clips, tmp_path, test_clips=["nope"], joint_map=joint_map)


def test_make_cmu_lifting_dataset_from_real_clips(assets, tmp_path):
    from pose_data.asf_amc import read_amc, read_asf
    from pose_data.bvh import read_bvh
    from pose_data.mocap_skeleton import CMU_UNIT_TO_METRES

    folder = assets / "cmu_mocap"
    clips = {
        "backflip": read_amc(
            folder / "asf_amc/backflip.amc", read_asf(folder / "asf_amc/backflip.asf"), step=8
        ),
        "charleston1": read_amc(
            folder / "asf_amc/charleston1.amc", read_asf(folder / "asf_amc/charleston.asf"), step=8
        ),
        "131_02": read_bvh(folder / "bvh/131_02.bvh", unit_scale=CMU_UNIT_TO_METRES, step=8),
    }
    files = make_cmu_lifting_dataset(
        clips, tmp_path, test_clips=["131_02"], generator=torch.Generator().manual_seed(1)
    )
    assert files.test_sequences == ("131_02",) and files.num_test == 4 * 156
    data = np.load(files.train)
    for row in range(0, files.num_train, 97):
        np.testing.assert_allclose(
            _reproject(data, row), data["extra_keypoints_2d"][row, _EXTRA, :2], atol=1e-6
        )
    # People are a few metres away and mostly inside the 1000 x 1000 virtual image.
    assert 3.0 < np.median(data["pelvis_3d"][:, 2]) < 7.0
    assert np.mean((data["center"] > 0) & (data["center"] < 1000)) > 0.95
    item = LiftingDataset(files.test, stats_path=files.stats)[0]
    assert torch.isfinite(item["keypoints_2d"]).all()


def _h36m_inputs():
    rng = np.random.default_rng(1)
    positions_3d = {}
    for subject, actions in (("S1", ("Directions 1", "Walking")), ("S9", ("Walking 1",))):
        positions_3d[subject] = {
            a: rng.normal(scale=0.3, size=(11, 32, 3)) + np.array([0, 0, 1]) for a in actions
        }
    cameras = {}
    for subject in positions_3d:
        for index, camera_id in enumerate(H36M_CAMERA_IDS):
            angle = index * np.pi / 2 + 0.3
            camera = look_at_camera(
                [5 * np.cos(angle), 5 * np.sin(angle), 1.5],
                [0, 0, 1],
                up=[0, 0, 1],
                focal_px=1145,
                width=1000,
                height=1000,
            )
            cameras[(subject, camera_id)] = PinholeCamera(
                rotation=camera.rotation, translation=camera.translation, focal_px=camera.focal_px,
                center_px=camera.center_px, radial=[-0.2, 0.2, 0.0], tangential=[0.001, -0.001], name=camera_id,
            )  # fmt: skip
    return positions_3d, cameras


def test_make_h36m_lifting_dataset_with_ground_truth_2d(tmp_path):
    positions_3d, cameras = _h36m_inputs()
    files = make_h36m_lifting_dataset(
        positions_3d, cameras, tmp_path, train_subjects=["S1"], test_subjects=["S9"], step=5
    )
    assert (
        files.num_train == 2 * 4 * 3 and files.num_test == 1 * 1 * 3
    )  # test: camera 60457274 only
    test = np.load(files.test)
    assert set(test["camera"]) == {"60457274"}
    assert test["imgname"][1] == "images/S9_Walking_1.60457274_000006.jpg"
    camera = cameras[("S9", "60457274")]
    world = positions_3d["S9"]["Walking 1"][5][
        [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    ]
    np.testing.assert_allclose(
        test["extra_keypoints_2d"][1, _EXTRA, :2], camera.project(world), atol=1e-6
    )
    np.testing.assert_allclose(
        test["pelvis_3d"][1], camera.world_to_camera(world[:1])[0], atol=1e-9
    )


def test_make_h36m_lifting_dataset_with_detections(tmp_path):
    positions_3d, cameras = _h36m_inputs()
    rng = np.random.default_rng(2)
    detections = {
        s: {
            a: [rng.uniform(0, 1000, size=(len(p) + 3, 17, 3)) for _ in range(4)]
            for a, p in actions.items()
        }
        for s, actions in positions_3d.items()
    }
    detections["S1"]["Walking"][2] = detections["S1"]["Walking"][2][:5]  # too short: left out
    files = make_h36m_lifting_dataset(
        positions_3d, cameras, tmp_path, positions_2d=detections, train_subjects=["S1"],
        test_subjects=["S9"], test_cameras=None, step=5,
    )  # fmt: skip
    assert files.num_train == (2 * 4 - 1) * 3 and files.num_test == 4 * 3
    assert any("S1_Walking.58860488: 2D has 5 frames" in p for p in files.problems)
    train = np.load(files.train)
    row = 0  # S1 Directions 1, camera 54138969, frame 0
    np.testing.assert_allclose(
        train["extra_keypoints_2d"][row, _EXTRA], detections["S1"]["Directions 1"][0][0]
    )
    with pytest.raises(ValueError, match=r"subjects \['S1'\] are in both splits"):
        make_h36m_lifting_dataset(
            positions_3d, cameras, tmp_path, train_subjects=["S1"], test_subjects=["S1"]
        )
