import numpy as np
import pytest
import roma
import torch

from pose_data.h36m_layout import H36M17_NAMES, H36M17_PARENTS
from pose_data.mocap_skeleton import (
    CMU_ASF_TO_H36M17,
    MocapClip,
    bone_lengths,
    euler_to_rotmat,
    forward_kinematics,
    mocap_to_h36m17,
    subsample_clip,
)


def _random_clip(num_frames=5, seed=0):
    rng = np.random.default_rng(seed)
    parents = (-1, 0, 1, 1, 3)
    offsets = np.concatenate([np.zeros((1, 3)), rng.normal(size=(4, 3))])
    angles = rng.uniform(-np.pi, np.pi, size=(num_frames, 5, 3))
    local = euler_to_rotmat(angles, "XYZ")
    root = rng.normal(size=(num_frames, 3))
    positions, rotations = forward_kinematics(parents, offsets, local, root)
    return MocapClip(
        joint_names=("a", "b", "c", "d", "e"),
        parents=parents,
        offsets=offsets,
        local_rotations=local,
        global_rotations=rotations,
        root_translation=root,
        positions=positions,
        fps=30.0,
        source="random",
    )


def test_euler_matches_roma_extrinsic_convention():
    angles = np.random.default_rng(1).uniform(-3, 3, size=(7, 3))
    for axes in ("XYZ", "ZYX", "YXZ"):
        expected = roma.euler_to_rotmat(axes.lower(), torch.from_numpy(angles)).numpy()
        np.testing.assert_allclose(euler_to_rotmat(angles, axes), expected, atol=1e-12)


def test_forward_kinematics_rest_pose_and_rigidity():
    clip = _random_clip()
    identity = np.broadcast_to(np.eye(3), clip.local_rotations.shape)
    rest, _ = forward_kinematics(clip.parents, clip.offsets, identity, clip.root_translation)
    np.testing.assert_allclose(
        rest[:, 4] - rest[:, 0], clip.offsets[[1, 3, 4]].sum(0) + 0 * rest[:, 0]
    )
    for joint, parent in enumerate(clip.parents[1:], start=1):
        np.testing.assert_allclose(
            np.linalg.norm(clip.positions[:, joint] - clip.positions[:, parent], axis=-1),
            np.linalg.norm(clip.offsets[joint]),
        )
    # global = parent global @ local
    np.testing.assert_allclose(
        clip.global_rotations[:, 4], clip.global_rotations[:, 3] @ clip.local_rotations[:, 4]
    )
    assert bone_lengths(clip)["c"] == pytest.approx(np.linalg.norm(clip.offsets[2]))


def test_forward_kinematics_rejects_bad_input():
    clip = _random_clip()
    with pytest.raises(ValueError, match=r"`parents\[2\]` is 3"):
        forward_kinematics(
            (-1, 0, 3, 1, 3), clip.offsets, clip.local_rotations, clip.root_translation
        )
    with pytest.raises(ValueError, match=r"`offsets` must have shape \(5, 3\)"):
        forward_kinematics(
            clip.parents, clip.offsets[:4], clip.local_rotations, clip.root_translation
        )


def test_subsample_clip():
    clip = _random_clip(num_frames=7)
    sub = subsample_clip(clip, step=3)
    assert sub.num_frames == 3 and sub.fps == 10.0
    np.testing.assert_allclose(sub.positions, clip.positions[[0, 3, 6]])
    with pytest.raises(ValueError, match="`step`"):
        subsample_clip(clip, step=0)


def test_custom_joint_map_and_errors():
    clip = _random_clip()
    joint_map = {name: "a" for name in H36M17_NAMES}
    joint_map["head"] = ("d", "e")
    joints = mocap_to_h36m17(clip, joint_map=joint_map)
    assert joints.shape == (5, 17, 3)
    np.testing.assert_allclose(joints[:, 10], clip.positions[:, 3:5].mean(axis=1))
    with pytest.raises(ValueError, match="no built-in H36M-17 map fits"):
        mocap_to_h36m17(clip)
    del joint_map["spine"]
    with pytest.raises(ValueError, match=r"lacks H36M-17 joint\(s\) \['spine'\]"):
        mocap_to_h36m17(clip, joint_map=joint_map)
    joint_map["spine"] = "zzz"
    with pytest.raises(KeyError, match="joint 'zzz' not in clip"):
        mocap_to_h36m17(clip, joint_map=joint_map)


@pytest.fixture(scope="module")
def real_h36m17(assets):
    from pose_data.asf_amc import read_amc, read_asf
    from pose_data.bvh import read_bvh
    from pose_data.mocap_skeleton import CMU_UNIT_TO_METRES

    folder = assets / "cmu_mocap"
    asf = read_amc(
        folder / "asf_amc" / "charleston1.amc",
        read_asf(folder / "asf_amc" / "charleston.asf"),
        step=5,
    )
    bvh = read_bvh(folder / "bvh" / "131_01.bvh", unit_scale=CMU_UNIT_TO_METRES, step=5)
    return {"asf": mocap_to_h36m17(asf), "bvh": mocap_to_h36m17(bvh)}


@pytest.mark.parametrize("kind", ["asf", "bvh"])
def test_real_clips_map_to_a_plausible_h36m17_skeleton(real_h36m17, kind):
    joints = real_h36m17[kind]
    assert joints.shape[1:] == (17, 3)
    lengths = {
        (H36M17_NAMES[j], H36M17_NAMES[p]): np.linalg.norm(joints[:, j] - joints[:, p], axis=-1)
        for j, p in enumerate(H36M17_PARENTS)
        if p >= 0
    }
    for limb in [
        ("right_knee", "right_hip"),
        ("left_wrist", "left_elbow"),
        ("left_elbow", "left_shoulder"),
    ]:
        assert lengths[limb].std() < 1e-6  # one mocap segment: rigid
    name = {n: i for i, n in enumerate(H36M17_NAMES)}
    assert 0.35 < lengths[("right_knee", "right_hip")][0] < 0.55
    assert 0.3 < lengths[("right_ankle", "right_knee")][0] < 0.5
    assert 0.2 < lengths[("left_elbow", "left_shoulder")][0] < 0.35
    np.testing.assert_allclose(
        lengths[("left_hip", "pelvis")], lengths[("right_hip", "pelvis")], rtol=0.15
    )
    # Standing motions (y up): the head is above the thorax above the pelvis.
    assert np.all(joints[:, name["head"], 1] > joints[:, name["thorax"], 1])
    assert np.all(joints[:, name["thorax"], 1] > joints[:, name["pelvis"], 1] + 0.2)


def test_cmu_asf_map_covers_h36m17():
    assert set(CMU_ASF_TO_H36M17) == set(H36M17_NAMES)
