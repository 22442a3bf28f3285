import numpy as np
import pytest
import torch

from pose_data import MocapDataset, write_mocap_npz


def test_items_drop_the_global_orientation(tmp_path):
    rng = np.random.default_rng(0)
    pose, betas = rng.normal(size=(5, 72)), rng.normal(size=(5, 10))
    dataset = MocapDataset(write_mocap_npz(tmp_path / "m.npz", body_pose=pose, betas=betas))
    assert len(dataset) == 5
    item = dataset[2]
    assert item["body_pose"].shape == (69,) and item["body_pose"].dtype == np.float32
    np.testing.assert_allclose(item["body_pose"], pose[2, 3:], rtol=1e-6)
    np.testing.assert_allclose(item["betas"], betas[2], rtol=1e-6)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert batch["body_pose"].shape == (4, 69)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"body_pose": np.zeros((2, 72))}, r"lacks required key\(s\) \['betas'\]"),
        ({"body_pose": np.zeros((2, 69)), "betas": np.zeros((2, 10))}, r"\(n, 72\)"),
        ({"body_pose": np.zeros((2, 72)), "betas": np.zeros((3, 10))}, r"`betas` .* \(2, 10\)"),
        ({"body_pose": np.full((1, 72), np.nan), "betas": np.zeros((1, 10))}, "finite"),
        ({"body_pose": np.array([["x"] * 72]), "betas": np.zeros((1, 10))}, "numeric"),
    ],
)
def test_malformed_mocap_files(arrays, match):
    with pytest.raises(ValueError, match=match):
        MocapDataset(arrays)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cmu_mocap\.npz"):
        MocapDataset(tmp_path / "cmu_mocap.npz")
