"""The three-line API: load, predict, fit; the README's example run as written."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import pose_data as pdata
import pose_geometry as pg
import prohmr_model
from pose_body import BodyModel, write_procedural_model
from prohmr_model import BodyConfig
from prohmr_model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from prohmr_model.loading import DEFAULT_CROP_SIZE, crop_size_from_config
from prohmr_model.testing import save_checkpoint_of, stick_figure, tiny_model

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny problems: one CPU thread is as fast, and does not suffer from a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> prohmr_model.Predictor:
    return prohmr_model.load(checkpoint)


@pytest.fixture(scope="module")
def person() -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB image and its (25, 3) OpenPose person."""
    return stick_figure()


def test_the_readme_example_runs_as_written(checkpoint, example, tmp_path, monkeypatch, capsys):
    blocks = BLOCK.findall(README.read_text())
    assert blocks, f"{README} has no ```python example"
    shutil.copy(checkpoint, tmp_path / "checkpoint.pt")
    for path in example.values():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"prohmr-model/README.md[block {i}]", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    assert "2D error" in printed
    result, fitted = namespace["result"], namespace["fitted"]
    assert result.keypoints_2d.shape == (16, 44, 2) and fitted.keypoints_2d.shape == (1, 44, 2)
    assert float(fitted.keypoint_error_after) < float(fitted.keypoint_error_before)


def test_results_hold_every_field_with_its_shape(model, person) -> None:
    image, keypoints = person
    result = model.predict(image, keypoints_2d=keypoints, num_samples=3, return_vertices=True)
    shapes = {
        "global_orient": (3, 3, 3), "body_pose": (3, 23, 3, 3),
        "global_orient_axis_angle": (3, 3), "body_pose_axis_angle": (3, 69), "betas": (3, 10),
        "keypoints_3d": (3, 44, 3), "camera_translation": (3, 3), "keypoints_2d": (3, 44, 2),
        "log_prob": (3,), "z": (3, 144), "crop_camera": (3, 3), "focal_length": (),
        "image_size": (2,), "box_center": (2,), "box_size": (), "vertices": (3, 6890, 3),
    }  # fmt: skip
    for name, shape in shapes.items():
        value = getattr(result, name)
        assert tuple(value.shape) == shape, name
        assert bool(torch.isfinite(value).all()), name
    torch.testing.assert_close(
        pg.axis_angle_to_rotmat(result.body_pose_axis_angle.reshape(3, 23, 3)),
        result.body_pose,
        atol=1e-4,
        rtol=0,
    )
    assert result.image_size.tolist() == [image.shape[1], image.shape[0]]
    assert not result.batched
    with pytest.raises(TypeError, match="no image axis"):
        result[0]


def test_keypoints_2d_are_the_projection_in_the_full_image(model, person) -> None:
    image, keypoints = person
    result = model.predict(image, keypoints_2d=keypoints, num_samples=4, seed=0)
    height, width = image.shape[:2]
    focal = 5000.0 * max(width, height) / 224.0  # the model's camera scaled to the image
    assert float(result.focal_length) == pytest.approx(focal)
    center = torch.tensor([width / 2.0, height / 2.0])
    projected = pg.project_points(
        result.keypoints_3d, focal_px=focal, center_px=center,
        translation=result.camera_translation,
    )  # fmt: skip
    torch.testing.assert_close(result.keypoints_2d, projected, atol=1e-3, rtol=0)
    # The body origin lands where the crop's weak-perspective camera puts it in the crop, mapped
    # back to image pixels through the box (u = cx + s·tx·side / 2).
    s, tx, ty = result.crop_camera.unbind(-1)
    origin = pg.project_points(
        torch.zeros(4, 1, 3), focal_px=focal, center_px=center,
        translation=result.camera_translation,
    )[:, 0]  # fmt: skip
    side = result.box_size
    expected = torch.stack([tx, ty], dim=-1) * (s * side / 2)[:, None] + result.box_center
    torch.testing.assert_close(origin, expected, atol=1e-2, rtol=0)
    # A given focal length is the one used.
    other = model.predict(image, keypoints_2d=keypoints, focal_length=1000.0)
    assert float(other.focal_length) == 1000.0
    projected = pg.project_points(
        other.keypoints_3d, focal_px=1000.0, center_px=center,
        translation=other.camera_translation,
    )  # fmt: skip
    torch.testing.assert_close(other.keypoints_2d, projected, atol=1e-3, rtol=0)
    # Another focal length moves the body in depth with the same image size: only perspective
    # effects change the picture, by a pixel or two here.
    torch.testing.assert_close(other.keypoints_2d[0], result.keypoints_2d[0], atol=2.0, rtol=0)


def test_the_box_is_the_demos(model, person) -> None:
    image, keypoints = person
    from_keypoints = model.predict(image, keypoints_2d=keypoints)
    centers, sizes, _ = pdata.openpose_boxes(keypoints[None], rescale=1.2)
    np.testing.assert_allclose(from_keypoints.box_center.numpy(), centers[0], atol=1e-4)
    assert float(from_keypoints.box_size) == pytest.approx(float(sizes[0]))
    boxed = model.predict(image, box=(40, 20, 60, 170))
    assert boxed.box_center.tolist() == [70.0, 105.0]
    assert float(boxed.box_size) == pytest.approx(1.2 * 170)
    whole = model.predict(image)  # neither: the whole image
    assert whole.box_center.tolist() == [80.0, 100.0] and float(whole.box_size) == 200.0


def test_sample_0_is_the_mode_decoded_from_the_demos_crop(model, person) -> None:
    image, keypoints = person
    result = model.predict(image, keypoints_2d=keypoints, num_samples=5, seed=3)
    assert float(result.z[0].abs().max()) == 0.0 and float(result.z[1:].abs().max()) > 0.0
    # The crop as the demo and the datasets make it (BGR image in, identity augmentation).
    keypoints_44 = np.zeros((44, 3), np.float32)
    keypoints_44[:25] = keypoints
    crop = pdata.crop_and_augment(
        np.ascontiguousarray(image[..., ::-1]),
        center=result.box_center.numpy(),
        box_size=float(result.box_size),
        keypoints_2d=keypoints_44,
        keypoints_3d=np.zeros((44, 4), np.float32),
        global_orient=np.zeros(3, np.float32),
        body_pose=np.zeros(69, np.float32),
        output_size=model.crop_size,
    )
    with torch.no_grad():
        mode = model.model(
            torch.from_numpy(crop.image)[None], num_samples=1, z=torch.zeros(1, 1, 144)
        )
    torch.testing.assert_close(result.keypoints_3d[0], mode.keypoints_3d[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(result.betas[0], mode.betas[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(result.crop_camera[0], mode.camera[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(result.log_prob[0], mode.log_prob[0, 0], atol=1e-3, rtol=0)
    again = model.predict(image, keypoints_2d=keypoints, num_samples=5, seed=3)
    torch.testing.assert_close(again.keypoints_3d, result.keypoints_3d)  # seeded: reproducible


def test_a_batch_gives_what_each_image_gives_alone(model, person) -> None:
    image, _ = person
    second = np.ascontiguousarray(image[:, ::-1])  # mirrored: another picture
    boxes = [(40, 20, 80, 170), (50, 10, 70, 180)]
    batch = model.predict([image, second], box=boxes, num_samples=2, seed=0)
    assert batch.batched and len(batch) == 2
    assert batch.keypoints_2d.shape == (2, 2, 44, 2)
    for i, (picture, box) in enumerate(zip([image, second], boxes, strict=True)):
        alone = model.predict(picture, box=box)
        item = batch[i]
        for name in ("keypoints_3d", "keypoints_2d", "camera_translation", "betas", "log_prob"):
            torch.testing.assert_close(
                getattr(item, name)[0], getattr(alone, name)[0], atol=1e-3, rtol=1e-4, msg=name
            )
        torch.testing.assert_close(item.box_center, alone.box_center)


def test_a_path_and_its_pixels_give_the_same_result(model, example) -> None:
    person = pdata.read_openpose_json(example["openpose"]).keypoints[0]
    from_path = model.predict(example["image"], keypoints_2d=person)
    rgb = cv2.imread(str(example["image"]))[..., ::-1]
    from_array = model.predict(np.ascontiguousarray(rgb), keypoints_2d=person)
    for name in ("keypoints_3d", "keypoints_2d", "camera_translation", "log_prob"):
        torch.testing.assert_close(getattr(from_path, name), getattr(from_array, name))
    frame = pdata.read_openpose_json(example["openpose"])  # the reader's result, one person
    from_frame = model.predict(str(example["image"]), keypoints_2d=frame)
    torch.testing.assert_close(from_frame.keypoints_2d, from_path.keypoints_2d)


def test_fit_lowers_the_keypoint_error_in_the_full_image(model, person) -> None:
    image, keypoints = person
    fitted = model.fit(image, keypoints_2d=keypoints, max_iterations=5, return_vertices=True)
    assert isinstance(fitted, prohmr_model.FitResult)
    assert fitted.keypoints_3d.shape == (1, 44, 3) and fitted.vertices.shape == (1, 6890, 3)
    assert float(fitted.keypoint_error_after) < float(fitted.keypoint_error_before)
    assert 1 <= int(fitted.iterations) <= 5 and isinstance(fitted.stopping, str)
    height, width = image.shape[:2]
    projected = pg.project_points(
        fitted.keypoints_3d, focal_px=float(fitted.focal_length),
        center_px=torch.tensor([width / 2.0, height / 2.0]),
        translation=fitted.camera_translation,
    )  # fmt: skip
    torch.testing.assert_close(fitted.keypoints_2d, projected, atol=1e-3, rtol=0)
    confident = torch.from_numpy(keypoints[:, 2] > 0)
    error = (fitted.keypoints_2d[0, :25] - torch.from_numpy(keypoints[:, :2])).norm(dim=-1)
    assert float(error[confident].mean()) == pytest.approx(
        float(fitted.keypoint_error_after), rel=1e-4
    )
    batch = model.fit([image, image], keypoints_2d=[keypoints, keypoints], max_iterations=5)
    assert len(batch) == 2 and len(batch.stopping) == 2 and isinstance(batch[1].stopping, str)
    # Each image is fitted on its own; float rounding differs with the batch, and L-BFGS carries
    # such differences on, so the fits agree to about a pixel.
    torch.testing.assert_close(batch[1].keypoints_2d, fitted.keypoints_2d, atol=2.0, rtol=0)


def test_fit_sequence_shares_the_betas_and_reports_every_frame(model, person) -> None:
    image, keypoints = person
    frames = [np.roll(image, shift, axis=1) for shift in (0, 2, 4, 6)]
    people = []
    for shift in (0, 2, 4, 6):
        moved = keypoints.copy()
        moved[:, 0] += shift * (moved[:, 2] > 0)
        people.append(moved)
    people[2] = None  # the person is lost in frame 2: fitted from the image and its neighbours
    boxes = [None, None, (40, 20, 80, 160), None]
    fitted = model.fit_sequence(frames, keypoints_2d=people, box=boxes, max_iterations=4)
    assert isinstance(fitted, prohmr_model.FitResult) and len(fitted) == 4
    assert fitted.keypoints_3d.shape == (4, 1, 44, 3) and fitted.z.shape == (4, 1, 144)
    torch.testing.assert_close(fitted.betas, fitted.betas[:1].expand_as(fitted.betas))
    assert len(fitted.stopping) == 4 and len(set(fitted.stopping)) == 1
    assert fitted.iterations.shape == (4,) and 1 <= int(fitted.iterations[0]) <= 4
    assert torch.isnan(fitted.keypoint_error_before[2]) and torch.isnan(
        fitted.keypoint_error_after[2]
    )
    seen = torch.tensor([0, 1, 3])
    assert float(fitted.keypoint_error_after[seen].mean()) < float(
        fitted.keypoint_error_before[seen].mean()
    )
    frame = fitted[1]
    assert frame.keypoints_2d.shape == (1, 44, 2) and isinstance(frame.stopping, str)
    with pytest.raises(ValueError, match="at least 3 frames"):
        model.fit_sequence(frames[:2], keypoints_2d=people[:2])
    with pytest.raises(ValueError, match="`keypoints_2d` must be a list of 4"):
        model.fit_sequence(frames, keypoints_2d=people[:3])
    with pytest.raises(ValueError, match=r"`keypoints_2d\[1\]` is None"):
        model.fit([image, image], keypoints_2d=[keypoints, None])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"box": (10, 10, 0, 50)}, ValueError, r"`box` must be \(x, y, w, h\)"),
        ({"box": (10, 10, 50)}, ValueError, r"`box` must be \(x, y, w, h\)"),
        ({"box": (10, float("nan"), 50, 50)}, ValueError, r"`box` must be"),
        ({"keypoints_2d": np.zeros((17, 3))}, ValueError, r"`keypoints_2d` must be a \(25, 3\)"),
        ({"keypoints_2d": np.zeros((25, 3))}, ValueError, r"`keypoints_2d` has fewer than two"),
        ({"num_samples": 0}, ValueError, r"`num_samples` must be an integer >= 1"),
        ({"focal_length": -5.0}, ValueError, r"`focal_length` must be"),
        ({"seed": 1, "generator": torch.Generator()}, ValueError, "`generator` or `seed`"),
    ],
)
def test_bad_arguments_are_named(model, person, kwargs, error, match) -> None:
    image, _ = person
    with pytest.raises(error, match=match):
        model.predict(image, **kwargs)


def test_bad_images_are_named(model, person, tmp_path) -> None:
    image, _ = person
    with pytest.raises(FileNotFoundError, match=r"`image`: no image file .*missing\.jpg"):
        model.predict(tmp_path / "missing.jpg")
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"`image`: cannot decode"):
        model.predict(tmp_path / "notes.jpg")
    with pytest.raises(ValueError, match=r"`image` must be an \(H, W, 3\) uint8 RGB array"):
        model.predict(image.astype(np.float32))
    with pytest.raises(ValueError, match=r"`image\[1\]` must be an \(H, W, 3\) uint8"):
        model.predict([image, image[..., 0]])
    with pytest.raises(TypeError, match=r"`image` must be an image path"):
        model.predict(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"`image` is an empty list"):
        model.predict([])
    with pytest.raises(ValueError, match=r"`box` must be a list of 2 entries"):
        model.predict([image, image], box=[(0, 0, 10, 10)])
    with pytest.raises(ValueError, match=r"one \(x, y, w, h\) per image"):
        model.predict([image] * 4, box=(0, 0, 10, 10))
    with pytest.raises(ValueError, match=r"`box\[1\]` must be"):
        model.predict([image, image], box=[(0, 0, 10, 10), (0, 0, -1, 10)])
    with pytest.raises(ValueError, match="`keypoints_2d` is required"):
        model.fit(image, keypoints_2d=None)


def test_body_model_from_smpl_files_and_overrides(tmp_path, person) -> None:
    files = write_procedural_model(tmp_path / "smpl")
    model = tiny_model()
    state_dict = model.state_dict()
    path = save_checkpoint_of(tmp_path / "a.pt", model)
    state = load_checkpoint(path)
    body = BodyConfig(model_path=str(files.model), extra_regressor_path=str(files.extra_regressor))
    state["config"]["body"] = asdict(body)
    save_checkpoint(tmp_path / "files.pt", state)
    image, keypoints = person
    reference = prohmr_model.load(path).predict(image, keypoints_2d=keypoints)
    # The config's SMPL file (resolved as given), the same file passed as `body_model`, and a
    # BodyModel object: the same body.
    for predictor in (
        prohmr_model.load(tmp_path / "files.pt"),
        prohmr_model.load(tmp_path / "files.pt", body_model=files.model),
        prohmr_model.load(path, body_model=BodyModel.procedural()),
    ):
        result = predictor.predict(image, keypoints_2d=keypoints)
        torch.testing.assert_close(result.keypoints_3d, reference.keypoints_3d, atol=1e-4, rtol=0)
    # A missing SMPL file names where it was named and how to give one.
    state["config"]["body"] = asdict(replace(body, model_path=str(tmp_path / "gone.pkl")))
    save_checkpoint(tmp_path / "gone.pt", state)
    with pytest.raises(FileNotFoundError, match=r"gone\.pkl.*body\.model_path.*`body_model=`"):
        prohmr_model.load(tmp_path / "gone.pt")
    with pytest.raises(TypeError, match="`body_model` must be"):
        prohmr_model.load(path, body_model=3)
    assert set(state_dict) == set(prohmr_model.load(path).model.state_dict())


def test_load_refuses_what_is_not_a_trained_prohmr_checkpoint(tmp_path) -> None:
    model = tiny_model()
    path = save_checkpoint_of(tmp_path / "a.pt", model)
    state = load_checkpoint(path)
    untrained = {**state, "model": {**state["model"], "initialized": torch.tensor(False)}}
    save_checkpoint(tmp_path / "untrained.pt", untrained)
    with pytest.raises(CheckpointError, match="`initialized` flag is False"):
        prohmr_model.load(tmp_path / "untrained.pt")
    save_checkpoint(tmp_path / "bare.pt", state["model"])
    with pytest.raises(CheckpointError, match="bare state dict"):
        prohmr_model.load(tmp_path / "bare.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        prohmr_model.load(tmp_path / "nothing.pt")


def test_the_crop_size_comes_from_the_config() -> None:
    assert crop_size_from_config({"data": {"image_size": 96}}) == 96
    assert crop_size_from_config({"model": {}}) == DEFAULT_CROP_SIZE == 224
    with pytest.raises(ValueError, match=r"checkpoint x: `data.image_size` must be"):
        crop_size_from_config({"data": {"image_size": 0}}, source="checkpoint x")


def test_load_takes_a_device(checkpoint, device) -> None:
    predictor = prohmr_model.load(checkpoint, device=device)
    assert next(predictor.model.parameters()).device.type == device.type
    image, keypoints = stick_figure()
    result = predictor.predict(image, keypoints_2d=keypoints, num_samples=2, seed=0)
    assert result.keypoints_2d.device.type == device.type
