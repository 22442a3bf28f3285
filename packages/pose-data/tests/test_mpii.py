import json

import numpy as np
import pytest
import scipy.io

from pose_data import ImageDataset, convert_mpii_json, convert_mpii_mat
from pose_geometry import MPII16_TO_44

MPII_JSON = "mpii/annot/mpii_subset.json"


def test_real_mpii_json(shared_data):
    source = shared_data / MPII_JSON
    entries = json.loads(source.read_text())
    arrays = convert_mpii_json(source, image_dir=shared_data / "mpii/images")
    assert arrays["imgname"].tolist() == [e["image"] for e in entries]
    for row, entry in enumerate(entries):
        np.testing.assert_allclose(
            arrays["center"][row], np.asarray(entry["center"]) - 1, rtol=1e-6
        )
        assert arrays["scale"][row] == pytest.approx(1.25 * 200 * entry["scale"], rel=1e-6)
        extra = arrays["extra_keypoints_2d"][row]
        for joint, slot in enumerate(MPII16_TO_44):
            if entry["joints_vis"][joint]:
                expected = [*(np.asarray(entry["joints"][joint]) - 1), 1.0]
            else:  # not annotated ([-1, -1] in the file): zeros
                expected = [0.0, 0.0, 0.0]
            np.testing.assert_allclose(extra[slot - 25], expected, rtol=1e-6)
    assert arrays["extra_keypoints_2d"][2, :, 2].sum() == 14  # two ankles missing
    # head top (MPII 9) goes to "Top of Head (LSP)" (extra 13), above the neck (extra 12)
    assert (arrays["extra_keypoints_2d"][:, 13, 1] < arrays["extra_keypoints_2d"][:, 12, 1]).all()
    dataset = ImageDataset(
        arrays, image_dir=shared_data / "mpii/images", train=False, image_size=32
    )
    visible = dataset[0]["keypoints_2d"][25:, 2] > 0
    assert np.abs(dataset[0]["keypoints_2d"][25:][visible, :2]).max() < 0.5


def _struct_array(records, fields):
    array = np.zeros((1, len(records)), dtype=[(f, "O") for f in fields])
    for i, record in enumerate(records):
        for f in fields:
            array[0, i][f] = record.get(f, np.zeros((0, 0)))
    return array


def _write_release(path, images):
    """A MATLAB file shaped like mpii_human_pose_v1_u12_1.mat (RELEASE struct)."""
    annolist = []
    for image in images:
        rects = []
        for person in image["people"]:
            rect = {"x1": 1.0, "y1": 1.0, "x2": 9.0, "y2": 9.0}
            if "scale" in person:
                rect["scale"] = person["scale"]
                rect["objpos"] = {"x": person["center"][0], "y": person["center"][1]}
            if "joints" in person:
                points = [
                    {"id": j, "x": xy[0], "y": xy[1], "is_visible": "1" if j % 2 else 0}
                    for j, (xy, v) in enumerate(zip(person["joints"], person["vis"], strict=True))
                    if v
                ]
                rect["annopoints"] = {
                    "point": _struct_array(points, ["id", "x", "y", "is_visible"])
                }
            rects.append(rect)
        annolist.append(
            {
                "image": {"name": image["name"]},
                "annorect": _struct_array(
                    rects, ["x1", "y1", "x2", "y2", "scale", "objpos", "annopoints"]
                )
                if rects
                else np.zeros((0, 0)),
                "frame_sec": 1.0,
                "vididx": 1.0,
            }
        )
    release = {
        "annolist": _struct_array(annolist, ["image", "annorect", "frame_sec", "vididx"]),
        "img_train": np.array([[image["train"] for image in images]], dtype=float),
        "version": "12",
    }
    scipy.io.savemat(path, {"RELEASE": release})


def test_official_mat_layout_converts_like_the_json(tmp_path, shared_data):
    entries = json.loads((shared_data / MPII_JSON).read_text())
    images = [
        {
            "name": e["image"],
            "train": 1,
            "people": [
                {
                    "center": e["center"],
                    "scale": e["scale"],
                    "joints": e["joints"],
                    "vis": e["joints_vis"],
                }
            ],
        }
        for e in entries
    ]
    # a test image, an image without people, an unannotated person and a person missing joints
    images.insert(1, {"name": "test.jpg", "train": 0, "people": [{"center": [5, 5], "scale": 1.0}]})
    images.append({"name": "empty.jpg", "train": 1, "people": []})
    partial_vis = [1] * 16
    partial_vis[9] = 0
    images.append(
        {
            "name": "two.jpg",
            "train": 1,
            "people": [
                {},
                {
                    "center": [50, 60],
                    "scale": 2.0,
                    "joints": [[10.0 + j, 20.0] for j in range(16)],
                    "vis": partial_vis,
                },
            ],
        }
    )
    _write_release(tmp_path / "release.mat", images)
    from_mat = convert_mpii_mat(tmp_path / "release.mat")
    from_json = convert_mpii_json(shared_data / MPII_JSON)
    assert from_mat["imgname"].tolist() == [*from_json["imgname"].tolist(), "two.jpg"]
    for key in ("center", "scale", "extra_keypoints_2d"):
        np.testing.assert_allclose(from_mat[key][:3], from_json[key], rtol=1e-6)
    last = from_mat["extra_keypoints_2d"][3]
    assert last[13, 2] == 0 and last[[0, 12], 2].tolist() == [1.0, 1.0]  # head top missing
    np.testing.assert_allclose(last[0, :2], [9.0, 19.0])  # right ankle, minus 1
    test_split = convert_mpii_mat(tmp_path / "release.mat", split="test")
    assert test_split["imgname"].tolist() == ["test.jpg"]
    assert not test_split["extra_keypoints_2d"].any()
    assert len(convert_mpii_mat(tmp_path / "release.mat", split="all")["imgname"]) == 5
    assert len(convert_mpii_mat(tmp_path / "release.mat", require_all_joints=True)["imgname"]) == 2


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="MPII annotation file not found"):
        convert_mpii_json(tmp_path / "none.json")
    (tmp_path / "a.json").write_text(
        json.dumps([{"image": "x.jpg", "center": [1, 2], "scale": 1.0, "joints": [[0, 0]] * 15}])
    )
    with pytest.raises(ValueError, match=r"entry 0 .* 'joints' must have shape \(16, 2\)"):
        convert_mpii_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps([{"image": "x.jpg"}]))
    with pytest.raises(
        ValueError, match=r"entry 0 .* lacks key\(s\) \['center', 'scale', 'joints'\]"
    ):
        convert_mpii_json(tmp_path / "b.json")
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.ones(3)})
    with pytest.raises(ValueError, match="not an MPII release file"):
        convert_mpii_mat(tmp_path / "other.mat")
    (tmp_path / "junk.mat").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match="cannot read MATLAB file"):
        convert_mpii_mat(tmp_path / "junk.mat")
    with pytest.raises(ValueError, match="split"):
        convert_mpii_mat(tmp_path / "junk.mat", split="val")
