from pathlib import Path

import numpy as np
import pytest

from pose_data import (
    H36M17_TO_44,
    SPIN_JOINT_LAYOUTS,
    ImageDataset,
    read_prohmr_npz,
    spin_npz_to_prohmr,
)


def test_h36m_spin_file(shared_data, tmp_path):
    source = shared_data / "h36m/test_h36m.npz"
    raw = np.load(source)
    arrays = spin_npz_to_prohmr(source, tmp_path / "h36m.npz")
    np.testing.assert_allclose(arrays["scale"], 200 * raw["scale"], rtol=1e-6)
    np.testing.assert_allclose(arrays["extra_keypoints_2d"], raw["part"][:, :19], rtol=1e-6)
    np.testing.assert_allclose(arrays["extra_keypoints_3d"], raw["S"][:, :19], rtol=1e-6)
    np.testing.assert_allclose(arrays["body_pose"], raw["pose"], rtol=1e-6)
    np.testing.assert_allclose(arrays["betas"], raw["shape"], rtol=1e-6)
    assert arrays["has_body_pose"].tolist() == [1, 1, 1] == arrays["has_betas"].tolist()
    # H36M has no face points: the OpenPose part stays empty; top of head and thorax too
    assert not arrays["body_keypoints_2d"].any()
    assert not arrays["extra_keypoints_3d"][:, [13, 15]].any()
    annotations = read_prohmr_npz(tmp_path / "h36m.npz")
    assert annotations.imgname.tolist() == raw["imgname"].tolist()
    # the pelvis (extra 14) lies between the hips (extra 2 and 3)
    pelvis, hips = arrays["extra_keypoints_3d"][:, 14, :3], arrays["extra_keypoints_3d"][:, 2:4, :3]
    assert np.linalg.norm(pelvis - hips.mean(1), axis=-1).max() < 0.05


def test_mpi_inf_3dhp_files(shared_data):
    for name in ("test_3dhp_train.npz", "test_3dhp_test.npz"):
        source = shared_data / "mpi_inf_3dhp" / name
        raw = np.load(source)
        with pytest.raises(ValueError, match="17 joints per row; pass joint_layout"):
            spin_npz_to_prohmr(source)
        arrays = spin_npz_to_prohmr(source, joint_layout="mpi_inf_3dhp17")
        extra = arrays["extra_keypoints_3d"][0]
        np.testing.assert_allclose(extra[14], raw["S"][0, 14], rtol=1e-6)  # pelvis
        np.testing.assert_allclose(extra[13], raw["S"][0, 0], rtol=1e-6)  # head top
        assert extra[13, 1] < extra[12, 1] < extra[14, 1]  # head top above neck above pelvis
        # 17 joints land on ProHMR's MPI-INF evaluation subset (extra 0..14, 16, 17)
        assert np.flatnonzero(extra[:, 3]).tolist() == [*range(15), 16, 17]
        dataset = ImageDataset(
            arrays, image_dir=shared_data / "mpi_inf_3dhp/images", train=False, image_size=32
        )
        item = dataset[0]
        visible = item["keypoints_2d"][:, 2] > 0
        assert np.abs(item["keypoints_2d"][visible, :2]).max() < 0.5


def test_synthetic_spin_file_with_face_points_and_openpose(tmp_path):
    rng = np.random.default_rng(0)
    part = np.concatenate([rng.uniform(0, 100, (2, 24, 2)), np.ones((2, 24, 1))], axis=-1)
    part[1, 21, 2] = 0  # right eye not annotated on row 1
    openpose = np.concatenate([rng.uniform(0, 100, (2, 25, 2)), np.full((2, 25, 1), 0.5)], axis=-1)
    arrays = spin_npz_to_prohmr(
        {
            "imgname": np.array([b"x.jpg", b"y.jpg"]),
            "center": np.zeros((2, 2)),
            "scale": np.ones((2, 1)),
            "part": part,
            "openpose": openpose,
            "pose": np.zeros((2, 72)),
            "has_smpl": np.array([1.0, 0.0]),
        },
        imgname_map=lambda n: "imgs/" + n,
    )
    assert arrays["imgname"].tolist() == ["imgs/x.jpg", "imgs/y.jpg"]
    body = arrays["body_keypoints_2d"]
    np.testing.assert_allclose(body[:, 0], part[:, 19])  # nose
    np.testing.assert_allclose(body[0, 15], part[0, 21])  # right eye -> OP REye
    np.testing.assert_allclose(body[1, 15], openpose[1, 15])  # not annotated: detection kept
    np.testing.assert_allclose(body[:, 1], openpose[:, 1])
    assert arrays["has_body_pose"].tolist() == [1.0, 0.0] and "betas" not in arrays
    np.testing.assert_allclose(arrays["scale"], [200.0, 200.0])


def test_errors():
    with pytest.raises(ValueError, match=r"lacks key\(s\) \['part or S'\]"):
        spin_npz_to_prohmr(
            {"imgname": np.array(["a"]), "center": np.zeros((1, 2)), "scale": np.ones(1)}
        )
    base = {
        "imgname": np.array(["a"]),
        "center": np.zeros((1, 2)),
        "scale": np.ones(1),
        "part": np.zeros((1, 24, 3)),
    }
    with pytest.raises(ValueError, match="unknown joint_layout 'coco'"):
        spin_npz_to_prohmr(base, joint_layout="coco")
    with pytest.raises(ValueError, match="has 17 joints but"):
        spin_npz_to_prohmr(base, joint_layout="mpi_inf_3dhp17")
    with pytest.raises(ValueError, match=r"`part` .* \(1, 24, 3\)"):
        spin_npz_to_prohmr({**base, "part": np.zeros((1, 24, 2))})


def _h36m17_skeleton(n: int, seed: int = 0) -> np.ndarray:
    """(n, 17, 4) H36M-17 joints (metres, confidence 1): a standing body, jittered."""
    rest = np.array(
        [
            [0.0, 0.0, 0.0], [-0.12, 0.0, 0.0], [-0.12, 0.45, 0.0], [-0.12, 0.9, 0.0],
            [0.12, 0.0, 0.0], [0.12, 0.45, 0.0], [0.12, 0.9, 0.0], [0.0, -0.25, 0.0],
            [0.0, -0.5, 0.0], [0.0, -0.6, -0.05], [0.0, -0.7, 0.0], [0.18, -0.5, 0.0],
            [0.2, -0.25, 0.0], [0.22, 0.0, 0.0], [-0.18, -0.5, 0.0], [-0.2, -0.25, 0.0],
            [-0.22, 0.0, 0.0],
        ]
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    joints = rest + rng.normal(scale=0.01, size=(n, 17, 3)) + [0.0, 0.0, 4.0]
    joints[:, 0] = (joints[:, 1] + joints[:, 4]) / 2  # the pelvis between the hips
    return np.concatenate([joints, np.ones((n, 17, 1))], axis=-1)


def test_h36m17_layout_on_synthetic_arrays() -> None:
    S = _h36m17_skeleton(3)
    arrays = {"imgname": np.array(["a", "b", "c"]), "center": np.zeros((3, 2))}
    arrays.update(scale=np.ones(3), S=S)
    out = spin_npz_to_prohmr(arrays, joint_layout="h36m17")
    extra = out["extra_keypoints_3d"]
    np.testing.assert_allclose(extra[:, 14], S[:, 0], rtol=1e-6)  # pelvis
    np.testing.assert_allclose(extra[:, 0], S[:, 3], rtol=1e-6)  # right ankle
    np.testing.assert_allclose(extra[:, 18], S[:, 10], rtol=1e-6)  # head -> Head (H36M)
    np.testing.assert_allclose(extra[:, 12], S[:, 8], rtol=1e-6)  # thorax -> Neck (LSP)
    assert not extra[:, [13, 15], 3].any()  # no top of head, no MPII thorax
    # the same file said to be MPI-INF-3DHP's order is refused, naming the layout it fits
    with pytest.raises(
        ValueError, match=r"does not look like joint_layout 'mpi_inf_3dhp17'.*fits 'h36m17'"
    ):
        spin_npz_to_prohmr(arrays, joint_layout="mpi_inf_3dhp17")
    with pytest.raises(ValueError, match=r"pass joint_layout.*geometry fits \['h36m17'\]"):
        spin_npz_to_prohmr(arrays)
    converted = spin_npz_to_prohmr(arrays, joint_layout="mpi_inf_3dhp17", check_layout=False)
    assert converted["extra_keypoints_3d"].shape == (3, 19, 4)
    # in MPI-INF-3DHP's order (put there through the 44 layout) the same body is accepted
    mpi = np.zeros_like(S)
    mpi_order = np.asarray(SPIN_JOINT_LAYOUTS["mpi_inf_3dhp17"])
    for source, target in enumerate(SPIN_JOINT_LAYOUTS["h36m17"]):
        mpi[:, np.flatnonzero(mpi_order == target)] = S[:, [source]]
    mpi[:, 0] = S[:, 10] + [0.0, -0.1, 0.0, 0.0]  # MPI-INF-3DHP's head top
    spin_npz_to_prohmr({**arrays, "S": mpi}, joint_layout="mpi_inf_3dhp17")
    with pytest.raises(ValueError, match="does not look like joint_layout 'h36m17'"):
        spin_npz_to_prohmr({**arrays, "S": mpi}, joint_layout="h36m17")


def test_h36m17_file_agrees_with_the_24_joint_file_of_the_same_frames(shared_data) -> None:
    body3d = shared_data / "h36m/test_h36m_body3d.npz"
    arrays = spin_npz_to_prohmr(body3d, joint_layout="h36m17")
    spin = spin_npz_to_prohmr(shared_data / "h36m/test_h36m.npz")
    names = [Path(str(name)).name for name in arrays["imgname"]]
    assert names == spin["imgname"].tolist()  # the same frames (mmpose adds folders)
    slots = [index - 25 for index in H36M17_TO_44]
    # metres to 1e-6; pixels to 0.05 (the two files' 2D pelvis differ by 0.02 px)
    for key, atol in (("extra_keypoints_3d", 1e-6), ("extra_keypoints_2d", 0.05)):
        np.testing.assert_allclose(arrays[key][:, slots], spin[key][:, slots], atol=atol)
    with pytest.raises(ValueError, match="geometry fits 'h36m17'"):
        spin_npz_to_prohmr(body3d, joint_layout="mpi_inf_3dhp17")
    for name in ("test_3dhp_train.npz", "test_3dhp_test.npz"):
        with pytest.raises(ValueError, match="geometry fits 'mpi_inf_3dhp17'"):
            spin_npz_to_prohmr(shared_data / "mpi_inf_3dhp" / name, joint_layout="h36m17")
