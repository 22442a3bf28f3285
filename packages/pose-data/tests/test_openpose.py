import json

import cv2
import numpy as np
import pytest

from pose_data import (
    OpenPoseDataset,
    openpose_boxes,
    openpose_to_npz,
    read_openpose_json,
)

SPIN = "demo/spin_example"
PROHMR = "demo/prohmr_example"
PROHMR_NAME = "pexels-anete-lusina-4793258"


def test_real_v1_2_and_v1_3_files(assets):
    v12 = read_openpose_json(assets / SPIN / "im1010_openpose.json")
    raw = json.loads((assets / SPIN / "im1010_openpose.json").read_text())
    assert v12.version == 1.2 and len(v12) == 1 and v12.person_ids == (-1,)
    np.testing.assert_allclose(
        v12.keypoints[0].ravel(), raw["people"][0]["pose_keypoints_2d"], rtol=1e-6
    )
    assert (v12.keypoints[0, :, 2] == 0).sum() == 3  # undetected joints are zeros
    v13 = read_openpose_json(assets / PROHMR / f"keypoints/{PROHMR_NAME}_keypoints.json")
    assert v13.version == 1.3 and v13.keypoints.shape == (1, 25, 3)
    assert v13.keypoints.dtype == np.float32


def test_box_of_the_spin_example_matches_its_bbox_file(assets):
    frame = read_openpose_json(assets / SPIN / "im1010_openpose.json")
    centers, sizes, has_box = openpose_boxes(frame.keypoints)
    x, y, w, h = json.loads((assets / SPIN / "im1010_bbox.json").read_text())["bbox"]
    assert has_box.tolist() == [True]
    np.testing.assert_allclose(centers[0], [x + w / 2, y + h / 2], atol=12)
    assert sizes[0] == pytest.approx(max(w, h), rel=0.1)  # 1.2 x the keypoints ~ person box
    visible = frame.keypoints[0][frame.keypoints[0, :, 2] > 0, :2]
    extent = visible.max(0) - visible.min(0)
    assert sizes[0] == pytest.approx(1.2 * extent.max(), rel=1e-6)


def test_demo_dataset_on_the_real_examples(assets):
    for example, keypoint_dir in ((SPIN, SPIN), (PROHMR, f"{PROHMR}/keypoints")):
        image_dir = assets / example / ("images" if example == PROHMR else "")
        if example == SPIN:
            arrays = openpose_to_npz(
                image_dir, assets / keypoint_dir, keypoint_suffix="_openpose.json"
            )
            assert arrays["imgname"].tolist() == ["im1010.jpg"]
            continue
        dataset = OpenPoseDataset(
            image_dir, assets / keypoint_dir, image_size=32, max_people_per_image=1
        )
        assert len(dataset) == 1 and dataset.person_index.tolist() == [0]
        item = dataset[0]
        assert item["img_size"].tolist() == [753.0, 1128.0]  # the shipped copy, 3/16 of 4016x6016
        visible = item["keypoints_2d"][:25, 2] > 0
        # the box holds every detection with a 1.2 margin: |u| <= 0.5 / 1.2
        assert np.abs(item["keypoints_2d"][:25][visible, :2]).max() <= 0.5 / 1.2 + 1e-5
        assert not item["keypoints_3d"].any() and item["has_smpl_params"]["body_pose"] == 0


def test_downscaled_prohmr_example_fits_its_image(assets):
    """The shipped photo is downscaled; its keypoints were scaled with it and stay on it."""
    image = cv2.imread(str(assets / PROHMR / "images" / f"{PROHMR_NAME}.jpg"))
    height, width = image.shape[:2]
    assert (width, height) == (753, 1128)
    frame = read_openpose_json(assets / PROHMR / "keypoints" / f"{PROHMR_NAME}_keypoints.json")
    detected = frame.keypoints[0][frame.keypoints[0, :, 2] > 0]
    assert len(detected) == 24
    assert (detected[:, 0] >= 0).all() and (detected[:, 0] < width).all()
    assert (detected[:, 1] >= 0).all() and (detected[:, 1] < height).all()
    # one standing person: head to feet spans about half of the photo's height
    assert 0.35 * height < np.ptp(detected[:, 1]) < 0.6 * height


def test_downscaled_prohmr_example_is_the_original_scaled(assets, shared_data):
    """Against the full-size original (when the reference copy is at hand): x, y times 3/16,
    confidences and every other field unchanged."""
    original = shared_data / "openpose/prohmr_example"
    scaled = json.loads((assets / PROHMR / f"keypoints/{PROHMR_NAME}_keypoints.json").read_text())
    raw = json.loads((original / f"keypoints/{PROHMR_NAME}_keypoints.json").read_text())
    points = np.reshape(scaled["people"][0].pop("pose_keypoints_2d"), (25, 3))
    full = np.reshape(raw["people"][0].pop("pose_keypoints_2d"), (25, 3))
    assert scaled == raw
    np.testing.assert_allclose(points[:, :2], full[:, :2] * 3 / 16, atol=5e-4)
    np.testing.assert_array_equal(points[:, 2], full[:, 2])
    big = cv2.imread(str(original / f"images/{PROHMR_NAME}.jpg")).shape[:2]
    small = cv2.imread(str(assets / PROHMR / f"images/{PROHMR_NAME}.jpg")).shape[:2]
    assert (small[0] * 16, small[1] * 16) == (big[0] * 3, big[1] * 3)


def _write(path, people, version=1.3, key="pose_keypoints_2d"):
    path.write_text(json.dumps({"version": version, "people": [{key: p} for p in people]}))
    return path


def test_key_variants_and_coco18(tmp_path):
    body = np.arange(75, dtype=float) + 1
    for version, key in ((1.0, "pose_keypoints"), (0.1, "body_parts"), (1.1, "pose_keypoints_2d")):
        frame = read_openpose_json(_write(tmp_path / f"{key}.json", [body.tolist()], version, key))
        np.testing.assert_allclose(frame.keypoints[0].ravel(), body)
        assert frame.version == version
    (tmp_path / "bodies.json").write_text(json.dumps({"bodies": [{"joints": body.tolist()}]}))
    assert read_openpose_json(tmp_path / "bodies.json").keypoints.shape == (1, 25, 3)
    coco18 = np.arange(54, dtype=float).reshape(18, 3) + 1
    frame = read_openpose_json(_write(tmp_path / "coco.json", [coco18.ravel().tolist()]))
    np.testing.assert_allclose(frame.keypoints[0, 9], coco18[8])  # RHip
    assert frame.keypoints[0, 8].tolist() == [0, 0, 0]  # MidHip absent in COCO-18
    nested = read_openpose_json(_write(tmp_path / "nested.json", [body.reshape(25, 3).tolist()]))
    np.testing.assert_allclose(nested.keypoints[0].ravel(), body)


def test_zero_people_is_an_empty_result(tmp_path):
    images, keypoints = tmp_path / "images", tmp_path / "keypoints"
    images.mkdir()
    keypoints.mkdir()
    frame = read_openpose_json(_write(keypoints / "a_keypoints.json", []))
    assert frame.keypoints.shape == (0, 25, 3) and frame.person_ids == ()
    (images / "a.jpg").write_bytes(b"")
    (images / "notes.txt").write_text("not an image")
    arrays = openpose_to_npz(images, keypoints)
    assert arrays["imgname"].shape == (0,) and arrays["body_keypoints_2d"].shape == (0, 25, 3)
    assert len(OpenPoseDataset(images, keypoints)) == 0


def test_people_selection_and_validity_rule(tmp_path, write_image):
    images, keypoints = tmp_path / "images", tmp_path / "keypoints"
    write_image(images / "b.png", 40, 30)
    person = np.zeros((25, 3))
    person[[0, 1, 8]] = [[10, 5, 0.9], [12, 15, 0.8], [14, 25, 0.7]]
    lonely = np.zeros((25, 3))
    lonely[0] = [3, 3, 0.5]  # one keypoint: no box
    top_row = person.copy()
    top_row[0] = [10, 0, 0.9]  # detected on the top row: y == 0
    keypoints.mkdir()
    _write(
        keypoints / "b_keypoints.json",
        [lonely.ravel().tolist(), person.ravel().tolist(), top_row.ravel().tolist()],
    )
    arrays = openpose_to_npz(images, keypoints)
    assert arrays["person_index"].tolist() == [1, 2]
    np.testing.assert_allclose(arrays["center"][0], [12, 15])
    assert arrays["scale"][0] == pytest.approx(1.2 * 20)
    assert openpose_to_npz(images, keypoints, max_people_per_image=1)["person_index"].tolist() == [
        1
    ]
    by_y = openpose_to_npz(images, keypoints, valid_by="y_positive")
    assert by_y["scale"][1] == pytest.approx(1.2 * 10)  # the original y > 0 rule drops y == 0
    assert arrays["scale"][1] == pytest.approx(1.2 * 25)
    dataset = OpenPoseDataset(images, keypoints, image_size=16)
    assert dataset[1]["img"].shape == (3, 16, 16)


def test_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="OpenPose JSON not found"):
        read_openpose_json(tmp_path / "none.json")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_openpose_json(tmp_path / "empty.json")
    (tmp_path / "nopeople.json").write_text(json.dumps({"version": 1.3}))
    with pytest.raises(ValueError, match="no 'people' list"):
        read_openpose_json(tmp_path / "nopeople.json")
    with pytest.raises(ValueError, match=r"person 0 .* got 74"):
        read_openpose_json(_write(tmp_path / "short.json", [list(range(74))]))
    (tmp_path / "nokey.json").write_text(json.dumps({"people": [{"face_keypoints_2d": []}]}))
    with pytest.raises(ValueError, match=r"person 0 .* none of the keypoint keys"):
        read_openpose_json(tmp_path / "nokey.json")


def test_images_without_keypoint_files_are_counted(tmp_path, write_image):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(tmp_path / "images" / name, 8, 8)
    (tmp_path / "kp").mkdir()
    _write(tmp_path / "kp" / "a_keypoints.json", [])
    with pytest.raises(
        FileNotFoundError, match=r"2 of 3 images .* no keypoint file .*b_keypoints\.json"
    ):
        openpose_to_npz(tmp_path / "images", tmp_path / "kp")
