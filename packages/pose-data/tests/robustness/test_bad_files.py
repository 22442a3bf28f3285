"""Every bad file a pose-data reader takes ends in a clear error naming the file (or a
documented recovery), never a silent wrong result.

Each case writes one damaged file into ``tmp_path`` and asserts the exception type and a message
that names the file and what is wrong (expected and received where there is a value).
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import pose_data as pdata
from pose_geometry import COCO17_NAMES

# ---------------------------------------------------------------------------------------------
# Images: truncated, empty, not an image
# ---------------------------------------------------------------------------------------------


def _encoded(suffix: str, size: tuple[int, int] = (48, 64)) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


def _image_cases() -> list:
    jpeg, png = _encoded(".jpg"), _encoded(".png")
    return [
        pytest.param("a.jpg", jpeg[: len(jpeg) // 2], r"truncated JPEG.*FF D9", id="jpeg-half"),
        pytest.param("a.jpg", jpeg[:-2], r"truncated JPEG.*FF D9", id="jpeg-no-eoi"),
        pytest.param("a.png", png[: len(png) // 2], r"truncated PNG.*IEND", id="png-half"),
        pytest.param("a.jpg", b"", r"is empty \(0 bytes\)", id="empty"),
        pytest.param("a.jpg", b"hello, this is text", r"cannot decode.*not an image", id="text"),
    ]


@pytest.mark.parametrize(("name", "data", "match"), _image_cases())
def test_bad_image_is_refused_by_name(tmp_path, name, data, match):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as info:
        pdata.read_image(str(path))
    assert f"image file {path}" in str(info.value)


def test_truncated_image_through_the_dataset_names_the_file(
    synthetic_dataset,
):
    npz, image_dir = synthetic_dataset
    jpeg = (image_dir / "c.jpg").read_bytes()
    (image_dir / "c.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    dataset = pdata.ImageDataset(npz, image_dir=image_dir, train=True, image_size=32)
    dataset[0]  # an intact image still loads
    with pytest.raises(ValueError, match=r"c\.jpg is a truncated JPEG"):
        dataset[2]


def test_jpeg_padding_after_the_end_marker_is_accepted(tmp_path):
    """The documented tolerance: zero/FF padding after FF D9 is not truncation."""
    path = tmp_path / "padded.jpg"
    path.write_bytes(_encoded(".jpg") + b"\x00" * 16)
    assert pdata.read_image(str(path)).shape == (48, 64, 3)


# ---------------------------------------------------------------------------------------------
# The image npz format
# ---------------------------------------------------------------------------------------------


def _write_arrays(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def _npz_cases() -> list:
    def drop(key):
        return lambda a: a.pop(key)

    def set_(key, value):
        return lambda a: a.__setitem__(key, value)

    def nan(key):
        def change(a):
            a[key] = np.array(a[key], dtype=np.float64)
            a[key].flat[0] = np.nan

        return change

    return [
        pytest.param(drop("scale"), r"lacks required key\(s\) \['scale'\]", id="missing-key"),
        pytest.param(
            set_("body_pose", np.zeros((4, 69))),
            r"`body_pose` in .*bad\.npz must have shape \(4, 72\), got \(4, 69\)",
            id="wrong-shape",
        ),
        pytest.param(
            set_("center", np.zeros((3, 2))),
            r"`center` in .*bad\.npz must have shape \(4, 2\), got \(3, 2\)",
            id="row-count-mismatch",
        ),
        pytest.param(
            set_("betas", np.full((4, 10), "x")),
            r"`betas` in .*bad\.npz must be numeric, got dtype <U1",
            id="wrong-dtype",
        ),
        pytest.param(
            nan("body_keypoints_2d"),
            r"`body_keypoints_2d` in .*bad\.npz contains NaN",
            id="nan",
        ),
        pytest.param(
            set_("scale", np.array([30.0, -1.0, 30.0, 30.0])),
            r"`scale` in .*bad\.npz must be positive",
            id="negative-box",
        ),
    ]


@pytest.mark.parametrize(("change", "match"), _npz_cases())
def test_bad_image_npz_names_file_and_key(tmp_path, synthetic_arrays, change, match):
    arrays = synthetic_arrays(["a.jpg"] * 4)
    change(arrays)
    path = _write_arrays(tmp_path / "bad.npz", arrays)
    with pytest.raises(ValueError, match=match):
        pdata.read_prohmr_npz(path)


def _container_cases() -> list:
    def object_array(path):
        np.savez(path, imgname=np.array(["a"], dtype=object), center=np.zeros((1, 2)))

    def single_npy(path):
        with open(path, "wb") as file:
            np.save(file, np.zeros(3))

    def text(path):
        path.write_text("imgname,center\na.jpg,1 2\n")

    def empty(path):
        path.write_bytes(b"")

    def truncated(path):
        np.savez(path, imgname=np.array(["a"] * 50), center=np.zeros((50, 2)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    return [
        pytest.param(object_array, r"'imgname' in .*bad\.npz has dtype object", id="object"),
        pytest.param(single_npy, r"bad\.npz holds a single \.npy array", id="single-npy"),
        pytest.param(text, r"bad\.npz is not an npz file .*starts with b'imgnam'", id="text"),
        pytest.param(empty, r"bad\.npz is empty \(0 bytes\)", id="empty"),
        pytest.param(truncated, r"bad\.npz is truncated or corrupt", id="truncated"),
    ]


@pytest.mark.parametrize(("write", "match"), _container_cases())
def test_bad_npz_container_is_refused_by_name(tmp_path, write, match):
    path = tmp_path / "bad.npz"
    write(path)
    with pytest.raises(ValueError, match=match):
        pdata.read_prohmr_npz(path)
    with pytest.raises(ValueError, match=match):
        pdata.MocapDataset(path)


def test_object_array_is_never_unpickled(tmp_path, monkeypatch):
    """An object array in an npz is refused before any unpickling."""
    np.savez(tmp_path / "obj.npz", body_pose=np.array([object()], dtype=object))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ValueError, match=r"'body_pose' in .*obj\.npz has dtype object"):
        pdata.read_npz(tmp_path / "obj.npz")


# ---------------------------------------------------------------------------------------------
# Mocap npz
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        pytest.param(
            {"body_pose": np.zeros((5, 69)), "betas": np.zeros((5, 10))},
            r"`body_pose` in .*mocap\.npz must have shape \(n, 72\), got \(5, 69\)",
            id="pose-69",
        ),
        pytest.param(
            {"body_pose": np.zeros((5, 72)), "betas": np.zeros((4, 10))},
            r"`betas` in .*mocap\.npz must have shape \(5, 10\), got \(4, 10\)",
            id="rows",
        ),
        pytest.param(
            {"body_pose": np.full((2, 72), np.inf), "betas": np.zeros((2, 10))},
            r"in .*mocap\.npz must be finite",
            id="inf",
        ),
        pytest.param(
            {"betas": np.zeros((2, 10))},
            r"mocap\.npz lacks required key\(s\) \['body_pose'\]",
            id="missing",
        ),
    ],
)
def test_bad_mocap_npz(tmp_path, arrays, match):
    path = _write_arrays(tmp_path / "mocap.npz", arrays)
    with pytest.raises(ValueError, match=match):
        pdata.MocapDataset(path)


# ---------------------------------------------------------------------------------------------
# Lifting npz and statistics
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def lifting_files(tmp_path):
    rng = np.random.default_rng(0)
    train = pdata.write_lifting_npz(
        tmp_path / "train.npz",
        keypoints_2d=rng.uniform(0, 500, (6, 17, 2)),
        keypoints_3d=0.3 * rng.normal(size=(6, 17, 3)),
        imgname=[f"row{i}" for i in range(6)],
    )
    stats = pdata.write_lifting_stats(
        tmp_path / "stats.npz", mean=np.full((17, 2), 250.0), std=np.full((17, 2), 150.0)
    )
    return train, stats


@pytest.mark.parametrize(
    ("target", "change", "match"),
    [
        pytest.param(
            "train",
            {"extra_keypoints_3d": np.zeros((5, 19, 4))},
            r"train\.npz: fields 'extra_keypoints_2d' and 'extra_keypoints_3d' must have the same"
            r" number of rows, got 6 and 5",
            id="rows",
        ),
        pytest.param(
            "train",
            {"extra_keypoints_2d": np.zeros((6, 17, 3))},
            r"`extra_keypoints_2d` in .*train\.npz must have shape \(n, 19, 3\), got \(6, 17, 3\)",
            id="shape",
        ),
        pytest.param(
            "stats",
            {"std": np.full((17, 2), np.nan)},
            r"stats\.npz: fields 'mean' / 'std' contain NaN",
            id="stats-nan",
        ),
        pytest.param(
            "stats",
            {"mean": np.zeros((16, 2))},
            r"stats\.npz: fields 'mean' / 'std' must broadcast to \(17, 2\), got \(16, 2\)",
            id="stats-shape",
        ),
    ],
)
def test_bad_lifting_files(lifting_files, target, change, match):
    train, stats = lifting_files
    path = train if target == "train" else stats
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays.update(change)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        pdata.LiftingDataset(train, stats_path=stats)


def test_lifting_object_array_names_file_and_key(lifting_files):
    train, stats = lifting_files
    np.savez(train, extra_keypoints_2d=np.array([None], dtype=object))
    with pytest.raises(ValueError, match=r"'extra_keypoints_2d' in lifting npz .*has dtype object"):
        pdata.LiftingDataset(train, stats_path=stats)


# ---------------------------------------------------------------------------------------------
# COCO annotations
# ---------------------------------------------------------------------------------------------


def _coco(path: Path, *, keypoint_names=COCO17_NAMES, image_ids=(1,)) -> Path:
    keypoints = []
    for k in range(17):
        keypoints += [10.0 + k, 20.0 + k, 2]
    annotations = [
        {
            "id": 10 + i,
            "image_id": image_id,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [0, 0, 40, 80],
            "keypoints": keypoints,
        }
        for i, image_id in enumerate(image_ids)
    ]
    data = {
        "images": [{"id": 1, "file_name": "img.jpg", "width": 64, "height": 96}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": list(keypoint_names)}],
    }
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("names", "match"),
    [
        pytest.param(
            [*COCO17_NAMES[:5], COCO17_NAMES[6], COCO17_NAMES[5], *COCO17_NAMES[7:]],
            r"coco\.json: keypoint 5 of category 1 \('person'\) is 'right_shoulder', expected "
            r"'left_shoulder'",
            id="swapped",
        ),
        pytest.param(
            [f"kp{i}" for i in range(17)],
            r"coco\.json: keypoint 0 .* is 'kp0', expected 'nose'",
            id="other-names",
        ),
        pytest.param(
            list(COCO17_NAMES[:14]),
            r"coco\.json: category 1 \('person'\) must list the 17 COCO keypoint names, got 14",
            id="fourteen",
        ),
    ],
)
def test_coco_keypoint_names_must_be_coco17(tmp_path, names, match):
    path = _coco(tmp_path / "coco.json", keypoint_names=names)
    with pytest.raises(ValueError, match=match):
        pdata.convert_coco(path)


def test_coco_annotations_of_unknown_images_warn_with_count_and_ids(tmp_path):
    path = _coco(tmp_path / "coco.json", image_ids=(1, 7, 7, 9))
    with pytest.warns(UserWarning, match=r"coco\.json: 3 person annotation\(s\) .* \(ids: 7, 9\)"):
        arrays = pdata.convert_coco(path)
    assert arrays["annotation_id"].tolist() == [10]  # the one placeable annotation is kept


def test_coco_file_without_orphans_does_not_warn(tmp_path):
    path = _coco(tmp_path / "coco.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pdata.convert_coco(path)["imgname"]) == 1


# ---------------------------------------------------------------------------------------------
# OpenPose JSON
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param('{"people": [', r"op\.json is not valid JSON", id="malformed"),
        pytest.param(
            json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]}),
            r"person 0 of .*op\.json: expected 75 numbers \(BODY_25\) or 54 \(COCO-18\).*got 60",
            id="wrong-count",
        ),
        pytest.param(
            '{"people": [{"pose_keypoints_2d": [' + ", ".join(["NaN"] + ["1.0"] * 74) + "]}]}",
            r"person 0 of .*op\.json: keypoints must be finite, got 1 NaN",
            id="nan",
        ),
        pytest.param(
            json.dumps({"people": {"0": []}}), r"'people' in .*op\.json must be a list", id="dict"
        ),
        pytest.param(
            json.dumps({"people": [{"face_keypoints_2d": []}]}),
            r"person 0 of .*op\.json has none of the keypoint keys",
            id="no-body",
        ),
        pytest.param(json.dumps([1, 2]), r"op\.json must hold a JSON object, got list", id="list"),
    ],
)
def test_bad_openpose_json(tmp_path, text, match):
    path = tmp_path / "op.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        pdata.read_openpose_json(path)


# ---------------------------------------------------------------------------------------------
# Multiview and dataset pickles: unexpected structure, refused globals
# ---------------------------------------------------------------------------------------------


def _frame(views: int = 2) -> dict:
    return {
        "imgname": np.array([f"v{v}.jpg" for v in range(views)]),
        "center": np.full((views, 2), 30.0),
        "scale": np.full(views, 40.0),
    }


def _bad_frames() -> list:
    with_3d = _frame()
    with_3d["extra_keypoints_3d"] = np.zeros((2, 17, 4))
    with_2d = _frame()
    with_2d["body_keypoints_2d"] = np.zeros((2, 25, 2))
    nan_pose = _frame()
    nan_pose["body_pose"] = np.full((2, 72), np.nan)
    no_scale = _frame()
    del no_scale["scale"]
    return [
        pytest.param(
            {"frames": [_frame()]}, r"multi\.pkl must hold a list of frames, got dict", id="dict"
        ),
        pytest.param(["frame"], r"frame 0 of .*multi\.pkl must be a dict, got str", id="str"),
        pytest.param([no_scale], r"frame 0 of .*multi\.pkl lacks required key", id="no-scale"),
        pytest.param(
            [with_3d],
            r"`extra_keypoints_3d` in frame 0 of .*multi\.pkl must have shape \(2, 19, 4\), "
            r"got \(2, 17, 4\)",
            id="shape-3d",
        ),
        pytest.param(
            [with_2d],
            r"`body_keypoints_2d` in frame 0 of .*multi\.pkl must have shape \(2, 25, 3\)",
            id="shape-2d",
        ),
        pytest.param([nan_pose], r"`body_pose` in frame 0 .*multi\.pkl contains NaN", id="nan"),
    ]


@pytest.mark.parametrize(("frames", "match"), _bad_frames())
def test_bad_multiview_pickle(tmp_path, frames, match):
    path = tmp_path / "multi.pkl"
    path.write_bytes(pickle.dumps(frames, protocol=4))
    with pytest.raises(ValueError, match=match):
        pdata.read_multiview_pickle(path)


class _Hostile:
    def __reduce__(self):
        return (print, ("executed",))


@pytest.mark.parametrize(
    ("reader", "match"),
    [
        pytest.param(pdata.read_multiview_pickle, r"refusing to load global", id="multiview"),
        pytest.param(pdata.read_3dpw_sequence, r"refusing to load global", id="3dpw"),
        pytest.param(pdata.read_mannequin_annotations, r"refusing to load global", id="mannequin"),
    ],
)
def test_hostile_dataset_pickle_is_refused_by_name(tmp_path, capsys, reader, match):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps([_Hostile()], protocol=2))
    pattern = rf"cannot read pickle {re.escape(str(path))}: {match} '(__builtin__|builtins)\.print'"
    with pytest.raises(ValueError, match=pattern):
        reader(path)
    assert "executed" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("reader", "data", "match"),
    [
        pytest.param(
            pdata.read_3dpw_sequence, [1, 2], r"3dpw\.pkl: expected a dict, got list", id="3dpw"
        ),
        pytest.param(
            pdata.read_mannequin_annotations,
            {"a": 1},
            r"3dpw\.pkl: expected a list of records, got dict",
            id="mannequin",
        ),
        pytest.param(
            pdata.read_3dpw_sequence,
            {"genders": ["m"], "cam_poses": np.zeros((3, 3, 3))},
            r"3dpw\.pkl: field 'cam_poses' must have shape \(N, 4, 4\), got \(3, 3, 3\)",
            id="3dpw-field",
        ),
    ],
)
def test_dataset_pickle_of_the_wrong_structure(tmp_path, reader, data, match):
    path = tmp_path / "3dpw.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    with pytest.raises(ValueError, match=match):
        reader(path)


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "multi.pkl"
    data = pickle.dumps([_frame()], protocol=4)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read pickle .*multi\.pkl: .*"):
        pdata.read_multiview_pickle(path)
