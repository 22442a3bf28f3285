"""A HumanData file through the project's pipeline: tools/preprocess_humandata.py converts it,
tools/eval_regression.py scores it (``--data-file``) and exports the predictions (parameters,
OBJ meshes, HumanData) in the full image's camera frame. An untrained tiny checkpoint: the
numbers mean nothing, the plumbing is what is tested."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pipeline.testing import load_tool

from pose_body import BodyModel, read_obj
from pose_data.humandata import read_humandata
from prohmr_model.testing import save_checkpoint_of, tiny_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint_of(tmp_path_factory.mktemp("checkpoint") / "tiny.pt", tiny_model())


def _object(value: object) -> np.ndarray:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


@pytest.fixture
def humandata(tmp_path: Path) -> Path:
    """Two people in two 96 x 128 images, as mmhuman3d stores them (object arrays)."""
    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg"):
        assert cv2.imwrite(str(images / name), rng.integers(0, 256, (128, 96, 3), np.uint8))
    smpl = {
        "global_orient": np.tile([[math.pi, 0.0, 0.0]], (2, 1)),
        "body_pose": rng.normal(scale=0.1, size=(2, 23, 3)),
        "betas": np.zeros((2, 10)),
    }
    path = tmp_path / "people_humandata.npz"
    np.savez(
        path,
        image_path=np.asarray(["a.jpg", "b.jpg"]),
        bbox_xywh=np.asarray([[20.0, 10.0, 50.0, 100.0], [10.0, 20.0, 60.0, 90.0]]),
        smpl=_object(smpl),
        meta=_object({"gender": ["female", "male"]}),
        config=np.asarray("synthetic"),
    )
    return path


def test_humandata_is_converted_scored_and_exported(checkpoint, humandata, tmp_path) -> None:
    converted = tmp_path / "people.npz"
    argv = ["--input", str(humandata), "--out", str(converted)]
    argv += ["--image-dir", str(tmp_path / "images"), "--body-model", "procedural"]
    assert load_tool("preprocess_humandata").main(argv) == 0
    arrays = np.load(converted, allow_pickle=False)
    assert arrays["extra_keypoints_3d"].shape == (2, 19, 4)  # the evaluation's targets
    np.testing.assert_allclose(arrays["scale"], [120.0, 108.0])

    out = tmp_path / "eval"
    argv = ["--checkpoint", str(checkpoint), "--data-file", str(converted)]
    argv += ["--image-dir", str(tmp_path / "images"), "--ns", "1", "2", "--device", "cpu"]
    argv += ["--out", str(out), "--save-params", "--save-mesh", "--save-samples", "1"]
    argv += ["--save-humandata"]
    torch.set_num_threads(1)
    assert load_tool("eval_regression").main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())["datasets"]["people"]["summary"]
    assert math.isfinite(summary["mode_mpjpe"]) and summary["best2_mpjpe"] <= summary["mode_mpjpe"]

    exports = out / "exports"
    vertices, faces = read_obj(exports / "people" / "00001_b.obj")
    assert vertices.shape == (6890, 3) and vertices[:, 2].min() > 0
    np.testing.assert_array_equal(faces, BodyModel.procedural().faces.numpy())
    assert (exports / "people" / "00001_b_sample001.obj").is_file()
    record = np.load(exports / "people" / "00001_b.npz")
    assert record["body_pose"].shape == (2, 69)  # the mode and one sample
    # the full image's camera: principal point at the image centre, Predictor's focal
    np.testing.assert_allclose(record["image_size"], [96, 128])
    np.testing.assert_allclose(record["focal_length"], 5000 * 128 / 224, rtol=1e-6)
    np.testing.assert_allclose(record["box_center"], [40.0, 65.0], atol=1e-4)
    written = read_humandata(exports / "people_humandata.npz")
    assert written["image_path"].tolist() == ["a.jpg", "b.jpg"]
    np.testing.assert_allclose(written["smpl"]["transl"][1], record["transl"][0], rtol=1e-6)
    np.testing.assert_allclose(written["bbox_xywh"][1], [-14.0, 11.0, 108.0, 108.0, 1.0])


def test_data_file_needs_its_image_folder(checkpoint, humandata, tmp_path) -> None:
    with pytest.raises(SystemExit, match="--data-file needs --image-dir"):
        load_tool("eval_regression").main(
            ["--checkpoint", str(checkpoint), "--data-file", str(humandata), "--device", "cpu"]
        )
