import io
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pose_data import (
    AugmentationConfig,
    ImageDataset,
    read_prohmr_npz,
    spin_npz_to_prohmr,
    write_prohmr_npz,
)

ITEM_SHAPES = {
    "keypoints_2d": (44, 3),
    "keypoints_3d": (44, 4),
    "orig_keypoints_2d": (44, 3),
    "box_center": (2,),
    "box_size": (),
    "img_size": (2,),
}


def test_item_contract(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    dataset = ImageDataset(npz, image_dir=image_dir, train=True, image_size=32)
    assert len(dataset) == 4
    item = dataset[1]
    assert item["img"].shape == (3, 32, 32) and item["img"].dtype == np.float32
    for key, shape in ITEM_SHAPES.items():
        assert np.shape(item[key]) == shape, key
        assert np.asarray(item[key]).dtype == np.float32, key
    assert {k: v.shape for k, v in item["smpl_params"].items()} == {
        "global_orient": (3,),
        "body_pose": (69,),
        "betas": (10,),
    }
    assert item["has_smpl_params"] == {"global_orient": 1.0, "body_pose": 1.0, "betas": 1.0}
    assert item["smpl_params_is_axis_angle"] == {
        "global_orient": True,
        "body_pose": True,
        "betas": False,
    }
    assert item["imgname"] == str(image_dir / "sub/b.png")
    assert item["idx"] == 1
    np.testing.assert_array_equal(item["img_size"], [64, 48])
    raw = np.load(npz)
    np.testing.assert_allclose(item["box_size"], raw["scale"][1], rtol=1e-6)
    np.testing.assert_allclose(
        item["orig_keypoints_2d"][:25], raw["body_keypoints_2d"][1], rtol=1e-6
    )


def test_default_collate_batches_items(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    dataset = ImageDataset(npz, image_dir=image_dir, train=True, image_size=24)
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch["img"].shape == (3, 3, 24, 24)
    assert batch["keypoints_2d"].shape == (3, 44, 3)
    assert batch["box_size"].shape == (3,) and batch["box_size"].dtype == torch.float32
    assert batch["smpl_params"]["body_pose"].shape == (3, 69)
    assert batch["has_smpl_params"]["betas"].dtype == torch.float32
    assert batch["smpl_params_is_axis_angle"]["betas"].tolist() == [False] * 3
    assert len(batch["imgname"]) == 3


def test_items_are_keyed_by_seed_epoch_and_index(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    a = ImageDataset(npz, image_dir=image_dir, train=True, image_size=16, seed=5)
    b = ImageDataset(npz, image_dir=image_dir, train=True, image_size=16, seed=5)
    for i in range(4):
        np.testing.assert_array_equal(a[i]["img"], b[i]["img"])
    first = a[0]["keypoints_2d"]
    changed = 0
    for epoch in range(1, 4):
        a.set_epoch(epoch)
        changed += not np.allclose(a[0]["keypoints_2d"], first)
    assert changed >= 2
    a.set_epoch(0)
    np.testing.assert_array_equal(a[0]["keypoints_2d"], first)


def test_data_loader_workers_give_the_same_items(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    dataset = ImageDataset(npz, image_dir=image_dir, train=True, image_size=16, seed=1)
    serial = list(torch.utils.data.DataLoader(dataset, batch_size=2))
    parallel = list(torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2))
    for x, y in zip(serial, parallel, strict=True):
        torch.testing.assert_close(x["img"], y["img"], rtol=0, atol=0)
        torch.testing.assert_close(x["keypoints_3d"], y["keypoints_3d"], rtol=0, atol=0)


def test_without_training_the_crop_is_plain(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    dataset = ImageDataset(npz, image_dir=image_dir, train=False, image_size=20)
    assert dataset.augmentation.is_identity
    dataset.set_epoch(3)
    item = dataset[0]
    raw = np.load(npz)
    center, side = raw["center"][0], raw["scale"][0]
    expected = (raw["body_keypoints_2d"][0, :, :2] - center) / side
    np.testing.assert_allclose(item["keypoints_2d"][:25, :2], expected, atol=1e-5)
    np.testing.assert_allclose(item["smpl_params"]["body_pose"], raw["body_pose"][0, 3:], rtol=1e-6)


def test_missing_optional_keys_default_to_zeros_and_2d_scale_takes_the_row_max(
    tmp_path, write_image
):
    write_image(tmp_path / "x.jpg", 40, 30)
    np.savez(
        tmp_path / "d.npz",
        imgname=np.array([b"x.jpg"]),
        center=np.array([[20.0, 15.0]]),
        scale=np.array([[12.0, 25.0]]),
    )
    dataset = ImageDataset(tmp_path / "d.npz", image_dir=tmp_path, train=False, image_size=8)
    item = dataset[0]
    assert item["box_size"] == 25.0
    assert item["imgname"].endswith("x.jpg")
    assert not item["keypoints_3d"].any() and not item["smpl_params"]["betas"].any()
    assert item["has_smpl_params"]["body_pose"] == 0.0


def test_3d_confidence_of_body_joints_1_to_14_is_zeroed(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    dataset = ImageDataset(npz, image_dir=image_dir, train=False, image_size=8)
    confidence = dataset[0]["keypoints_3d"][:, 3]
    assert not confidence[1:15].any()
    assert confidence[[0, *range(15, 44)]].all()
    kept = ImageDataset(
        npz, image_dir=image_dir, train=False, image_size=8, zero_body_keypoints_3d_confidence=False
    )
    assert kept[0]["keypoints_3d"][:, 3].all()


def test_missing_images_are_counted(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    (image_dir / "c.jpg").unlink()
    (image_dir / "sub/b.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"2 of 3 images .* missing .*b\.png"):
        ImageDataset(npz, image_dir=image_dir, train=False)
    dataset = ImageDataset(npz, image_dir=image_dir, train=False, check_images=False)
    with pytest.raises(FileNotFoundError, match=r"image not found: .*c\.jpg"):
        dataset[2]


def test_undecodable_image_is_a_value_error(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    (image_dir / "c.jpg").write_bytes(b"not an image")
    dataset = ImageDataset(npz, image_dir=image_dir, train=False)
    with pytest.raises(ValueError, match=r"cannot decode image .*c\.jpg"):
        dataset[2]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"drop": "center"}, r"lacks required key\(s\) \['center'\]"),
        ({"center": np.zeros((4, 3))}, r"`center` in .* must have shape \(4, 2\), got \(4, 3\)"),
        ({"body_keypoints_2d": np.zeros((4, 24, 3))}, r"`body_keypoints_2d` .* \(4, 25, 3\)"),
        ({"betas": np.array(["a"] * 4)}, r"`betas` in .* must be numeric"),
        ({"scale": np.full(4, np.nan)}, r"`scale` .* NaN"),
        ({"scale": np.zeros(4)}, r"`scale` .* positive"),
        ({"imgname": np.arange(4)}, r"`imgname` .* strings"),
        ({"has_betas": np.ones(3)}, r"`has_betas` .* \(4,\)"),
    ],
)
def test_malformed_files_name_the_key(tmp_path, synthetic_arrays, change, match):
    arrays = synthetic_arrays(["a"] * 4)
    if "drop" in change:
        del arrays[change["drop"]]
    else:
        arrays.update(change)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        read_prohmr_npz(tmp_path / "bad.npz")


def test_spin_layout_files_get_a_hint(tmp_path):
    np.savez(tmp_path / "spin.npz", imgname=np.array(["a"]), part=np.zeros((1, 24, 3)))
    with pytest.raises(ValueError, match="spin_npz_to_prohmr"):
        read_prohmr_npz(tmp_path / "spin.npz")


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="npz file not found"):
        read_prohmr_npz(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"\x00" * 50)
    with pytest.raises(ValueError, match=r"junk\.npz is not an npz file"):
        read_prohmr_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "obj.npz", imgname=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"'imgname' in npz file .*obj\.npz has dtype object"):
        read_prohmr_npz(tmp_path / "obj.npz")


def test_writer_and_reader_round_trip(tmp_path, synthetic_arrays):
    arrays = synthetic_arrays(["p/q.jpg", "r.jpg"])
    write_prohmr_npz(tmp_path / "w.npz", **arrays, gender=["m", "f"])
    annotations = read_prohmr_npz(tmp_path / "w.npz")
    for key, value in arrays.items():
        if key == "imgname":
            assert annotations.imgname.tolist() == ["p/q.jpg", "r.jpg"]
        else:
            np.testing.assert_allclose(getattr(annotations, key), value, rtol=1e-6)
    assert annotations.gender.tolist() == ["m", "f"]
    assert annotations.keypoints_2d.shape == (2, 44, 3)
    for key, value in annotations.to_npz_arrays().items():
        np.testing.assert_array_equal(value, getattr(annotations, key))


def test_warns_about_spin_scale_convention():
    with pytest.warns(UserWarning, match="pixels / 200"):
        read_prohmr_npz(
            {"imgname": np.array(["a"]), "center": np.zeros((1, 2)), "scale": np.ones(1)}
        )


def test_options_are_validated(synthetic_dataset):
    npz, image_dir = synthetic_dataset
    with pytest.raises(ValueError, match="image_size"):
        ImageDataset(npz, image_dir=image_dir, train=False, image_size=0)
    with pytest.raises(ValueError, match="seed"):
        ImageDataset(npz, image_dir=image_dir, train=False, seed=-1)
    with pytest.raises(ValueError, match="keypoint_list"):
        ImageDataset(npz, image_dir=image_dir, train=False, keypoint_list=[44])
    dataset = ImageDataset(
        npz, image_dir=image_dir, train=False, keypoint_list=range(25, 38), use_hips=True
    )
    assert dataset.keypoint_list == tuple(range(25, 38)) and dataset.use_hips
    with pytest.raises(IndexError):
        dataset[4]


# --- fuzzing: malformed arrays give ValueError, never another exception ------------------------

_KEYS = [
    "imgname",
    "center",
    "scale",
    "body_pose",
    "has_body_pose",
    "betas",
    "body_keypoints_2d",
    "extra_keypoints_3d",
    "gender",
]
_DTYPES = [np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64, "U4", "S4"]


@st.composite
def mutated_arrays(draw):
    n = draw(st.integers(0, 3))
    arrays = {
        "imgname": np.array(["a.jpg"] * n),
        "center": np.full((n, 2), 10.0),
        "scale": np.full(n, 20.0),
    }
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(_KEYS))
        action = draw(st.sampled_from(["drop", "shape", "dtype", "value"]))
        if action == "drop":
            arrays.pop(key, None)
            continue
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
        dtype = draw(st.sampled_from(_DTYPES))
        if action == "value":
            value = draw(st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1e30]))
            arrays[key] = np.full(shape, value)
        else:
            arrays[key] = np.zeros(shape, dtype=dtype)
    return arrays


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(arrays=mutated_arrays())
def test_fuzzed_npz_files_raise_value_error_or_load(tmp_path, arrays):
    path = tmp_path / "fuzz.npz"
    np.savez(path, **arrays)
    for source in (path, arrays):
        try:
            annotations = read_prohmr_npz(source)
        except ValueError:
            continue
        n = len(annotations)
        assert annotations.center.shape == (n, 2) and annotations.scale.shape == (n,)
        assert annotations.keypoints_3d.shape == (n, 44, 4)
        assert np.all(annotations.scale > 0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_fuzzed_bytes_raise_value_error(tmp_path, data):
    path = tmp_path / "bytes.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("center.npy", data)
    for payload in (data, buffer.getvalue()):
        path.write_bytes(payload)
        with pytest.raises(ValueError):
            read_prohmr_npz(path)


# --- real data -------------------------------------------------------------------------------


def _h36m_path(name):
    subject, sequence = name.split("_")[0], name.rsplit("_", 1)[0]
    return f"{subject}/{sequence}/{name}"


def test_real_h36m_spin_file_through_the_dataset(shared_data):
    arrays = spin_npz_to_prohmr(shared_data / "h36m/test_h36m.npz", imgname_map=_h36m_path)
    dataset = ImageDataset(
        arrays, image_dir=shared_data / "h36m/images", train=False, image_size=64
    )
    assert len(dataset) == 3
    for i in range(3):
        item = dataset[i]
        visible = item["keypoints_2d"][:, 2] > 0
        assert visible.sum() >= 17
        assert np.abs(item["keypoints_2d"][visible, :2]).max() < 0.5  # the body is in the crop
        assert item["has_smpl_params"]["body_pose"] == 1.0
        assert item["img_size"][0] == 1000
    augmented = ImageDataset(
        arrays,
        image_dir=shared_data / "h36m/images",
        train=True,
        augmentation=AugmentationConfig(),
        image_size=64,
    )
    item = augmented[0]
    assert np.isfinite(item["img"]).all() and np.isfinite(item["keypoints_3d"]).all()


def test_reduced_decoding_keeps_geometry(tmp_path, write_image):
    grid_y, grid_x = np.mgrid[0:600, 0:800].astype(float)
    smooth = 127 + 100 * np.sin(grid_x / 23.0) * np.cos(grid_y / 17.0)
    import cv2

    cv2.imwrite(
        str(tmp_path / "big.jpg"), np.repeat(smooth[:, :, None], 3, axis=2).astype(np.uint8)
    )
    arrays = {
        "imgname": np.array(["big.jpg"]),
        "center": np.array([[400.0, 300.0]]),
        "scale": np.array([500.0]),
    }
    exact = ImageDataset(arrays, image_dir=tmp_path, train=False, image_size=64)[0]
    fast = ImageDataset(
        arrays, image_dir=tmp_path, train=False, image_size=64, max_decode_reduction=8
    )[0]
    assert fast["img_size"].tolist() == [800.0, 600.0]
    np.testing.assert_array_equal(fast["keypoints_2d"], exact["keypoints_2d"])
    assert np.abs(fast["img"] - exact["img"]).mean() < 0.03
    with pytest.raises(ValueError, match="max_decode_reduction"):
        ImageDataset(arrays, image_dir=tmp_path, train=False, max_decode_reduction=3)
