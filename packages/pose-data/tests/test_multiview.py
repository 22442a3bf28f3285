import pickle

import numpy as np
import pytest
import torch

from pose_data import (
    MultiviewDataset,
    read_multiview_pickle,
    write_multiview_pickle,
)


@pytest.fixture
def multiview_file(tmp_path, write_image):
    image_dir = tmp_path / "images"
    frames = []
    rng = np.random.default_rng(0)
    for f in range(2):
        names = [f"f{f}_c{c}.jpg" for c in range(3)]
        for i, name in enumerate(names):
            write_image(image_dir / name, 60, 40, seed=10 * f + i)
        frames.append(
            {
                "imgname": names,
                "center": rng.uniform(20, 40, size=(3, 2)),
                "scale": rng.uniform(20, 30, size=3),
                "body_pose": rng.normal(size=(3, 72)),
                "has_body_pose": np.ones(3),
                "extra_keypoints_3d": np.concatenate(
                    [rng.normal(size=(3, 19, 3)), np.ones((3, 19, 1))], axis=-1
                ),
                "extra_keypoints_2d": np.zeros((3, 19, 3)),  # ignored
            }
        )
    path = write_multiview_pickle(tmp_path / "mv.pkl", frames)
    return path, image_dir, frames


def test_views_of_one_instant_form_one_item(multiview_file):
    path, image_dir, frames = multiview_file
    dataset = MultiviewDataset(path, image_dir=image_dir, image_size=16)
    assert len(dataset) == 2 and dataset.total_length() == 6
    item = dataset[1]
    assert item["img"].shape == (3, 3, 16, 16)
    assert item["keypoints_2d"].shape == (3, 44, 3) and not item["keypoints_2d"].any()
    assert item["keypoints_3d"].shape == (3, 44, 4)
    # the extra part is used even without body_keypoints_3d (a deliberate fix), confidences kept
    np.testing.assert_allclose(
        item["keypoints_3d"][:, 25:], frames[1]["extra_keypoints_3d"], rtol=1e-6
    )
    assert not item["keypoints_3d"][:, :25].any()
    np.testing.assert_allclose(item["box_size"], 1.2 * frames[1]["scale"], rtol=1e-6)
    np.testing.assert_allclose(
        item["smpl_params"]["body_pose"], frames[1]["body_pose"][:, 3:], rtol=1e-6
    )
    assert item["has_smpl_params"]["betas"].tolist() == [0.0] * 3
    np.testing.assert_array_equal(item["img_size"], [[60, 40]] * 3)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch["img"].shape == (2, 3, 3, 16, 16)


def test_training_augments_each_view_reproducibly(multiview_file):
    path, image_dir, _ = multiview_file
    a = MultiviewDataset(path, image_dir=image_dir, image_size=16, train=True, seed=3)
    b = MultiviewDataset(path, image_dir=image_dir, image_size=16, train=True, seed=3)
    np.testing.assert_array_equal(a[0]["img"], b[0]["img"])
    plain = MultiviewDataset(path, image_dir=image_dir, image_size=16)
    assert not np.allclose(a[0]["img"], plain[0]["img"])


def test_malformed_frames_are_named(tmp_path):
    with pytest.raises(
        ValueError, match=r"frame 0 of <frames> lacks required key\(s\) \['center'\]"
    ):
        read_multiview_pickle([{"imgname": ["a"], "scale": [1.0]}])
    with pytest.raises(ValueError, match=r"`betas` in frame 0 .* \(1, 10\)"):
        read_multiview_pickle(
            [{"imgname": ["a"], "center": [[0, 0]], "scale": [1.0], "betas": np.zeros((1, 3))}]
        )
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="must hold a list of frames"):
        read_multiview_pickle(tmp_path / "dict.pkl")


def test_missing_images_are_counted(multiview_file):
    path, image_dir, _ = multiview_file
    (image_dir / "f0_c1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 of 6 images"):
        MultiviewDataset(path, image_dir=image_dir)
