"""Exports: SMPL parameters as npz and JSON, meshes as OBJ in the full image's camera frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import pose_geometry as pg
import prohmr_model
from pose_body import read_obj
from prohmr_model.export import body_record, prediction_record, save_meshes, save_params
from prohmr_model.testing import stick_figure


@pytest.fixture(scope="module")
def prediction(checkpoint: Path) -> tuple[prohmr_model.Predictor, prohmr_model.Prediction]:
    torch.set_num_threads(1)
    model = prohmr_model.load(checkpoint)
    image, person = stick_figure()
    result = model.predict(image, keypoints_2d=person, num_samples=3, seed=0, return_vertices=True)
    return model, result


def test_params_round_trip_through_npz_and_json(prediction, tmp_path) -> None:
    _, result = prediction
    record = prediction_record(result)
    npz, js = save_params(tmp_path / "person0", record)
    stored = np.load(npz, allow_pickle=False)
    from_json = json.loads(js.read_text())
    assert set(stored.files) == set(from_json) == set(record)
    for key, value in record.items():
        np.testing.assert_array_equal(stored[key], value)
        np.testing.assert_allclose(np.asarray(from_json[key]), value, rtol=0, atol=0)
    assert record["global_orient"].shape == (3,) and record["body_pose"].shape == (69,)
    assert record["betas"].shape == (10,) and record["transl"].shape == (3,)
    rotmats = pg.axis_angle_to_rotmat(torch.from_numpy(record["body_pose"]).reshape(23, 3))
    torch.testing.assert_close(rotmats, result.body_pose[0].double(), atol=1e-5, rtol=0)
    # keypoints are stored in the camera frame: they project to the stored 2D keypoints
    projected = pg.project_points(
        torch.from_numpy(record["keypoints_3d"]),
        focal_px=torch.tensor(float(record["focal_length"]), dtype=torch.float64),
        center_px=torch.from_numpy(record["image_size"] / 2),
    )
    np.testing.assert_allclose(projected.numpy(), record["keypoints_2d"], atol=1e-2)


def test_samples_keep_a_leading_axis_with_the_mode_first(prediction) -> None:
    _, result = prediction
    mode, every = prediction_record(result), prediction_record(result, samples=True)
    assert every["body_pose"].shape == (3, 69) and every["log_prob"].shape == (3,)
    np.testing.assert_array_equal(every["body_pose"][0], mode["body_pose"])


def test_meshes_are_written_in_the_camera_frame_with_the_body_faces(prediction, tmp_path):
    model, result = prediction
    paths = save_meshes(tmp_path / "mesh", result.vertices, result.camera_translation, model.faces)
    assert [p.name for p in paths] == ["mesh.obj", "mesh_sample001.obj", "mesh_sample002.obj"]
    vertices, faces = read_obj(paths[0])
    assert vertices.shape == (6890, 3)
    np.testing.assert_array_equal(faces, model.faces.numpy())
    expected = (result.vertices[0] + result.camera_translation[0]).double().numpy()
    np.testing.assert_allclose(vertices, expected, atol=1e-6)
    assert vertices[:, 2].min() > 0  # in front of the camera


def test_shapes_that_do_not_match_are_named() -> None:
    eye = torch.eye(3)
    with pytest.raises(ValueError, match="`body_pose` must have shape"):
        body_record(
            global_orient=eye,
            body_pose=eye.expand(22, 3, 3),
            betas=torch.zeros(10),
            transl=torch.zeros(3),
            focal_length=500.0,
            image_size=(64, 64),
        )
    with pytest.raises(ValueError, match="`transl` must have shape"):
        save_meshes("x", torch.zeros(2, 4, 3), torch.zeros(3, 3), torch.zeros(1, 3))


def test_prediction_save_writes_params_and_meshes(prediction, tmp_path) -> None:
    model, result = prediction
    paths = result.save(tmp_path / "person", faces=model.faces)
    assert [p.name for p in paths] == ["person.npz", "person.json", "person.obj"]
    assert np.load(paths[0])["body_pose"].shape == (69,)
    vertices, faces = read_obj(paths[2])
    assert vertices.shape == (6890, 3)
    np.testing.assert_array_equal(faces, model.faces.numpy())
    every = result.save(tmp_path / "all", faces=model.faces, samples=True)
    assert [p.name for p in every[2:]] == ["all.obj", "all_sample001.obj", "all_sample002.obj"]
    assert np.load(every[0])["body_pose"].shape == (3, 69)


def test_a_fit_saves_in_the_camera_it_was_fitted_in(prediction, tmp_path) -> None:
    model, _ = prediction
    image, person = stick_figure()
    fitted = model.fit(image, keypoints_2d=person, max_iterations=2, return_vertices=True)
    paths = fitted.save(tmp_path / "fit", faces=model.faces)
    record = np.load(paths[0])
    np.testing.assert_allclose(
        record["keypoints_2d"], fitted.keypoints_2d[0].double().numpy(), atol=1e-3
    )
    vertices, _ = read_obj(paths[2])
    expected = (fitted.vertices[0] + fitted.camera_translation[0]).double().numpy()
    np.testing.assert_allclose(vertices, expected, atol=1e-5)
    with pytest.raises(TypeError, match="one image's result"):
        model.predict([image, image], num_samples=1).save(tmp_path / "x")
