"""tools/fit_sequence.py and tools/eval_temporal.py on a few synthetic frames, tiny checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pipeline.synthetic_sequences import SequenceSettings, ensure_sequences, load_sequence
from pipeline.testing import load_tool

from prohmr_model.testing import save_checkpoint_of, tiny_model

fit_sequence = load_tool("fit_sequence")
eval_temporal = load_tool("eval_temporal")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """5 frames of a synthetic sequence: images, OpenPose files, the ground truth."""
    root = tmp_path_factory.mktemp("seq")
    (root / "world").mkdir()
    (root / "world" / "info.json").write_text(json.dumps({"use_mocap": True, "image_size": 96}))
    made = ensure_sequences(root / "world", settings=SequenceSettings(num_sequences=1, length=5))
    images, keypoints = root / "frames", root / "openpose"
    shutil.copytree(made.root / "images" / "seq_000", images)
    shutil.copytree(made.root / "openpose" / "seq_000", keypoints)
    checkpoint = save_checkpoint_of(root / "tiny.pt", tiny_model())
    return {
        "images": images,
        "keypoints": keypoints,
        "npz": made.files[0],
        "ckpt": checkpoint,
        "world": root / "world",
    }


def _add_person(path: Path, shift: float, scale: float = 1.0) -> None:
    document = json.loads(path.read_text())
    person = np.asarray(document["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    other = person.copy()
    other[:, :2] = person[:, :2] * scale + shift
    document["people"].append({"pose_keypoints_2d": other.ravel().tolist()})
    path.write_text(json.dumps(document))


def test_tracks_fits_and_writes_every_frame(frames, tmp_path):
    images, keypoints = tmp_path / "frames", tmp_path / "openpose"
    shutil.copytree(frames["images"], images)
    shutil.copytree(frames["keypoints"], keypoints)
    (keypoints / "000002_keypoints.json").unlink()  # the person is lost in frame 2
    _add_person(keypoints / "000003_keypoints.json", shift=300.0, scale=2.0)  # a bigger stranger
    out = tmp_path / "out"
    args = [
        "--checkpoint", str(frames["ckpt"]), "--image-dir", str(images),
        "--keypoint-dir", str(keypoints), "--out", str(out), "--max-iters", "2",
        "--save-mesh", "--video", "--tile", "64", "--device", "cpu",
    ]  # fmt: skip
    assert fit_sequence.main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["frames"] == 5
    assert [(f["frame"], f["why"]) for f in report["lost_frames"]] == [
        (2, "lost: no keypoint file 000002_keypoints.json")
    ]
    statuses = [f["status"] for f in report["per_frame"]]
    assert statuses == ["first", "tracked", statuses[2], "tracked", "tracked"]
    truth = load_sequence(frames["npz"])["keypoints_2d_noisy"]
    centre = np.asarray(report["per_frame"][3]["box_center"])
    visible = truth[3, :25, 2] > 0
    assert np.linalg.norm(centre - truth[3, :25, :2][visible].mean(axis=0)) < 20  # not the stranger
    assert report["per_frame"][2]["keypoint_error_after_px"] is None
    for stem in ("000000", "000004"):
        assert (out / "params" / f"{stem}.npz").is_file() and (
            out / "params" / f"{stem}.json"
        ).is_file()
        assert (out / "meshes" / f"{stem}.obj").is_file()
    with np.load(out / "sequence.npz", allow_pickle=False) as sequence:
        assert sequence["body_pose"].shape == (5, 69) and sequence["betas"].shape == (5, 10)
        np.testing.assert_array_equal(sequence["betas"], sequence["betas"][:1].repeat(5, axis=0))
        assert sequence["lost"].tolist() == [False, False, True, False, False]
        assert sequence["frame"][2] == "000002.jpg"
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 64 and sheet.shape[1] >= 3 * 64
    assert (out / "fit.mp4").is_file() and (out / "fit.mp4").stat().st_size > 0


def test_a_person_whose_box_jumps_is_lost(frames, tmp_path):
    keypoints = tmp_path / "openpose"
    shutil.copytree(frames["keypoints"], keypoints)
    path = keypoints / "000001_keypoints.json"
    document = json.loads(path.read_text())
    person = np.asarray(document["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
    person[:, :2] += 500.0  # only a far-away detection in frame 1
    document["people"] = [{"pose_keypoints_2d": person.ravel().tolist()}]
    path.write_text(json.dumps(document))
    frames_list = fit_sequence.list_frames(frames["images"])
    track = fit_sequence.track_person(frames_list, keypoints, min_iou=0.3)
    assert [frame.lost for frame in track] == [False, True, False, False, False]
    assert track[1].status.startswith("lost: best box overlap (IoU) 0.00 < 0.3")
    np.testing.assert_allclose(track[1].center, track[0].center)  # kept at the last box
    assert fit_sequence.box_iou((np.zeros(2), 2.0), (np.ones(2), 2.0)) == pytest.approx(1 / 7)
    with pytest.raises(SystemExit, match="needs at least 3"):
        fit_sequence.list_frames(keypoints)


def test_eval_temporal_compares_per_frame_and_temporal_fits(frames, tmp_path):
    out = tmp_path / "eval"
    args = [
        "--checkpoint", str(frames["ckpt"]), "--world", str(frames["world"]),
        "--sequences-dir", str(tmp_path / "sequences"), "--num-sequences", "1", "--length", "4",
        "--smoothness", "0", "50", "--max-iters", "1", "--out", str(out), "--device", "cpu",
    ]  # fmt: skip
    assert eval_temporal.main(args) == 0
    report = json.loads((out / "temporal_summary.json").read_text())
    methods = ["regression", "per_frame", "temporal_w0", "temporal_w50"]
    assert report["methods"] == methods
    sequence = report["per_sequence"]["seq_000"]
    for method in methods:
        for key in ("pa_mpjpe", "mpjpe", "accel_error"):
            assert np.isfinite(sequence["metrics"][method][key]), (method, key)
            assert report["overall"][method][key] == pytest.approx(sequence["metrics"][method][key])
    assert len(sequence["fits"]["temporal_w50"]["keypoint_error_after_px"]) == 4
    assert sequence["fits"]["per_frame"]["iterations"] == [1, 1, 1, 1]
    table = (out / "temporal_summary.md").read_text()
    assert "| temporal_w50 | **all** |" in table and "(no acceleration)" in table
    with pytest.raises(SystemExit):
        eval_temporal.parse_args(["--checkpoint", "x.pt", "--smoothness", "-1"])
