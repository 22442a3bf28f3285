"""HumanData (mmhuman3d) npz: restricted reading, conversion to the project's npz, writing."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pose_data import read_prohmr_npz
from pose_data.humandata import convert_humandata, read_humandata, write_humandata
from pose_geometry import BODY25_TO_44, COCO17_TO_44


def _object(value):
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def _humandata(path: Path, n: int = 3, *, compressed: bool = False, **extra) -> dict:
    """A HumanData file as mmhuman3d writes it (np.savez with object arrays)."""
    rng = np.random.default_rng(0)
    smpl = {
        "global_orient": rng.normal(size=(n, 3)),
        "body_pose": rng.normal(scale=0.2, size=(n, 23, 3)),
        "betas": rng.normal(size=(n, 10)),
        "transl": rng.normal(size=(n, 3)),
    }
    coco = np.concatenate([rng.uniform(0, 100, (n, 17, 2)), np.ones((n, 17, 1))], axis=2)
    mask = np.ones(17)
    mask[3] = 0  # left ear not annotated
    arrays = {
        "__key_strict__": np.asarray(True),
        "__data_len__": np.asarray(n),
        "__keypoints_compressed__": np.asarray(compressed),
        "image_path": np.asarray([f"images/{i:03d}.jpg" for i in range(n)]),
        "bbox_xywh": np.tile([[10.0, 20.0, 30.0, 60.0, 0.9]], (n, 1)),
        "smpl": _object(smpl),
        "meta": _object({"gender": ["male", "female", "neutral"][:n]}),
        "config": np.asarray("synthetic"),
        "keypoints2d": coco[:, mask > 0] if compressed else coco,
        "keypoints2d_mask": mask,
        "keypoints2d_convention": np.asarray("coco"),
        "keypoints3d": np.zeros((n, 190, 4)),
        "keypoints3d_mask": np.ones(190),
        "keypoints3d_convention": np.asarray("human_data"),
        **extra,
    }
    np.savez(path, **arrays)
    return {"smpl": smpl, "coco": coco, "mask": mask}


@pytest.mark.parametrize("compressed", [False, True])
def test_synthetic_humandata_is_read_and_converted(tmp_path, compressed) -> None:
    made = _humandata(tmp_path / "hd.npz", compressed=compressed)
    content = read_humandata(tmp_path / "hd.npz")
    assert content["config"] == "synthetic" and content["__data_len__"] == 3
    np.testing.assert_array_equal(content["smpl"]["body_pose"], made["smpl"]["body_pose"])
    assert content["keypoints2d"].shape == (3, 17, 3)  # expanded when compressed
    expected = made["coco"] * np.where(made["mask"] > 0, 1.0, 0.0)[None, :, None]
    np.testing.assert_array_equal(content["keypoints2d"] * made["mask"][None, :, None], expected)

    report = convert_humandata(tmp_path / "hd.npz", tmp_path / "out.npz")
    assert report.num_rows == 3
    # the 190-joint human_data convention is not one we map: left out, with the reason
    assert len(report.problems) == 1 and "'keypoints3d' left out" in report.problems[0]
    assert "human_data" in report.problems[0]
    out = np.load(tmp_path / "out.npz", allow_pickle=False)
    np.testing.assert_allclose(out["center"], [[25.0, 50.0]] * 3)
    np.testing.assert_allclose(out["scale"], [72.0] * 3)  # 1.2 x max(w, h)
    pose = np.concatenate(
        [made["smpl"]["global_orient"], made["smpl"]["body_pose"].reshape(3, 69)], axis=1
    )
    np.testing.assert_allclose(out["body_pose"], pose)
    np.testing.assert_allclose(out["smpl_transl"], made["smpl"]["transl"])
    assert out["gender"].tolist() == ["m", "f", "n"]
    body = out["body_keypoints_2d"]
    kept = made["mask"] > 0
    np.testing.assert_allclose(body[:, list(COCO17_TO_44)][:, kept, :2], made["coco"][:, kept, :2])
    assert body[0, COCO17_TO_44[3], 2] == 0  # masked joint -> confidence 0
    assert body[0, COCO17_TO_44[0], 2] == 1
    annotations = read_prohmr_npz(tmp_path / "out.npz")  # the project's reader accepts it
    assert len(annotations.imgname) == 3


def test_smpl_keypoints_fill_the_evaluation_targets(tmp_path) -> None:
    _humandata(tmp_path / "hd.npz", n=2)
    calls = []

    def smpl_keypoints(global_orient, body_pose, betas, gender):
        calls.append(gender)
        return np.full((len(betas), 44, 3), 0.5)

    convert_humandata(tmp_path / "hd.npz", tmp_path / "out.npz", smpl_keypoints=smpl_keypoints)
    out = np.load(tmp_path / "out.npz", allow_pickle=False)
    assert sorted(calls) == ["f", "m"]
    np.testing.assert_allclose(out["extra_keypoints_3d"][..., :3], 0.5)
    np.testing.assert_allclose(out["extra_keypoints_3d"][..., 3], 1.0)


def test_written_humandata_reads_back(tmp_path) -> None:
    rng = np.random.default_rng(1)
    n = 2
    keypoints2d = rng.uniform(0, 200, (n, 44, 2))
    keypoints3d = rng.normal(size=(n, 44, 3))
    path = write_humandata(
        tmp_path / "pred.npz",
        image_path=["a.jpg", "b.jpg"],
        bbox_xywh=[[1.0, 2.0, 30.0, 40.0], [5.0, 6.0, 70.0, 80.0]],
        global_orient=rng.normal(size=(n, 3)),
        body_pose=rng.normal(size=(n, 69)),
        betas=rng.normal(size=(n, 10)),
        transl=rng.normal(size=(n, 3)),
        keypoints2d=keypoints2d,
        keypoints3d=keypoints3d,
        gender=["f", "n"],
    )
    with pytest.raises(ValueError, match="allow_pickle"):  # object arrays, as HumanData has
        np.load(path, allow_pickle=False)["smpl"]
    content = read_humandata(path)
    assert content["smpl"]["body_pose"].shape == (n, 23, 3)
    assert content["smpl"]["global_orient"].shape == (n, 3)
    assert content["bbox_xywh"].shape == (n, 5)
    assert content["meta"]["gender"] == ["f", "n"]
    assert content["keypoints2d_convention"] == "openpose_25"
    np.testing.assert_allclose(content["keypoints2d"][..., :2], keypoints2d[:, list(BODY25_TO_44)])
    np.testing.assert_allclose(content["keypoints3d"][..., 3], 1.0)
    # and converts back: the same bodies and the BODY_25 keypoints
    convert_humandata(path, tmp_path / "back.npz")
    back = np.load(tmp_path / "back.npz", allow_pickle=False)
    np.testing.assert_allclose(
        back["body_pose"][:, 3:], content["smpl"]["body_pose"].reshape(n, 69)
    )
    np.testing.assert_allclose(back["body_keypoints_2d"][..., :2], keypoints2d[:, :25])
    np.testing.assert_allclose(back["center"], [[16.0, 22.0], [40.0, 46.0]])


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_hostile_object_array_is_refused_without_running_code(tmp_path, monkeypatch) -> None:
    _humandata(tmp_path / "hd.npz", meta=_object({"gender": _Boom()}))  # pickles os.system
    ran = []
    monkeypatch.setattr(os, "system", lambda command: ran.append(command))
    with pytest.raises(ValueError, match=r"meta.*refusing to load global '(posix|os)\.system'"):
        read_humandata(tmp_path / "hd.npz")
    assert ran == []


def test_missing_keys_and_bad_files_are_named(tmp_path) -> None:
    np.savez(tmp_path / "nobox.npz", image_path=np.asarray(["a.jpg"]))
    with pytest.raises(ValueError, match=r"nobox\.npz lacks key\(s\) \['bbox_xywh'\]"):
        convert_humandata(tmp_path / "nobox.npz", tmp_path / "out.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"text\.npz is not an npz file"):
        read_humandata(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError, match="HumanData file not found"):
        read_humandata(tmp_path / "absent.npz")
    with zipfile.ZipFile(tmp_path / "trunc.npz", "w") as archive:
        archive.writestr("smpl.npy", pickle.dumps(1)[:3])
    with pytest.raises(ValueError, match=r"array 'smpl' in HumanData file .*trunc\.npz"):
        read_humandata(tmp_path / "trunc.npz")
    np.savez(
        tmp_path / "badbox.npz",
        image_path=np.asarray(["a.jpg"]),
        bbox_xywh=np.asarray([[0.0, 0.0, 0.0, 5.0]]),
    )
    with pytest.raises(ValueError, match=r"'bbox_xywh' rows \[0\]"):
        convert_humandata(tmp_path / "badbox.npz", tmp_path / "out.npz")


def test_the_3dpw_humandata_sample(shared_data, tmp_path) -> None:
    sample = shared_data / "3dpw" / "sample_3dpw_train_humandata.npz"
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    content = read_humandata(sample)
    assert content["config"] == "3dpw"
    assert content["smpl"]["body_pose"].shape == (1, 23, 3)
    assert content["smpl"]["body_pose"].dtype == np.float64
    report = convert_humandata(sample, tmp_path / "3dpw_hd.npz", image_dir=shared_data / "3dpw")
    assert report.num_rows == 1 and report.problems == ()
    out = np.load(tmp_path / "3dpw_hd.npz", allow_pickle=False)
    x, y, w, h = content["bbox_xywh"][0, :4]
    np.testing.assert_allclose(out["center"][0], [x + w / 2, y + h / 2])
    np.testing.assert_allclose(out["scale"][0], 1.2 * max(w, h))
    assert out["gender"].tolist() == ["f"]
    assert out["imgname"][0] == "imageFiles/courtyard_rangeOfMotions_00/image_00311.jpg"
