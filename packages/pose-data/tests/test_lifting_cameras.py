import numpy as np
import pytest
import torch

from pose_data.lifting_cameras import (
    PinholeCamera,
    look_at_camera,
    sample_look_at_cameras,
    square_boxes_from_keypoints,
)


def test_look_at_camera_centres_the_target_and_keeps_up_up():
    camera = look_at_camera(
        [4.0, 1.0, 3.0], [0.0, 1.0, 0.0], up=[0, 1, 0], focal_px=1000, width=800, height=600
    )
    np.testing.assert_allclose(camera.project(np.array([[0.0, 1.0, 0.0]])), [[400, 300]], atol=1e-9)
    np.testing.assert_allclose(camera.world_to_camera(np.array([[0.0, 1.0, 0.0]]))[0, 2], 5.0)
    above = camera.project(np.array([[0.0, 2.0, 0.0]]))[0]
    assert above[1] < 300 and abs(above[0] - 400) < 1e-9  # image y points down
    np.testing.assert_allclose(camera.position, [4, 1, 3], atol=1e-12)
    with pytest.raises(ValueError, match="parallel to `up`"):
        look_at_camera([0, 5, 0], [0, 0, 0], up=[0, 1, 0], focal_px=1000, width=8, height=8)


def test_pinhole_camera_validates_fields():
    with pytest.raises(ValueError, match="`rotation` must be a rotation matrix"):
        PinholeCamera(
            rotation=np.diag([1.0, 1.0, -1.0]),
            translation=np.zeros(3),
            focal_px=[1, 1],
            center_px=[0, 0],
        )
    with pytest.raises(ValueError, match="`focal_px` must have 2 values"):
        PinholeCamera(
            rotation=np.eye(3), translation=np.zeros(3), focal_px=[1, 1, 1], center_px=[0, 0]
        )
    with pytest.raises(ValueError, match="`points` must have shape"):
        PinholeCamera(
            rotation=np.eye(3), translation=np.zeros(3), focal_px=[1, 1], center_px=[0, 0]
        ).project(np.zeros((2, 2)))


def test_distortion_is_applied_to_normalised_coordinates():
    camera = PinholeCamera(
        rotation=np.eye(3), translation=np.zeros(3), focal_px=[100, 200], center_px=[10, 20],
        radial=[0.1, 0.0, 0.0], tangential=[0.01, 0.02],
    )  # fmt: skip
    x, y = 0.3, -0.2
    r2 = x * x + y * y
    d = 1 + 0.1 * r2 + 0.01 * y + 0.02 * x
    expected = [100 * (x * d + 0.02 * r2) + 10, 200 * (y * d + 0.01 * r2) + 20]
    np.testing.assert_allclose(camera.project(np.array([[x * 2, y * 2, 2.0]]))[0], expected)
    np.testing.assert_allclose(
        camera.project(np.array([[x, y, 1.0]]), distort=False)[0], [100 * x + 10, 200 * y + 20]
    )


def test_sampled_cameras_are_reproducible_and_in_range():
    target = np.array([1.0, 0.9, -2.0])
    cameras = sample_look_at_cameras(
        4, target=target, up=[0, 1, 0], generator=torch.Generator().manual_seed(3)
    )
    again = sample_look_at_cameras(
        4, target=target, up=[0, 1, 0], generator=torch.Generator().manual_seed(3)
    )
    for camera, same in zip(cameras, again, strict=True):
        np.testing.assert_allclose(camera.rotation, same.rotation)
        distance = np.linalg.norm(camera.position - target)
        assert 4.0 <= distance <= 6.0
        elevation = np.degrees(np.arcsin((camera.position - target)[1] / distance))
        assert -5.0 - 1e-9 <= elevation <= 25.0 + 1e-9
        np.testing.assert_allclose(camera.project(target[None]), [[500, 500]], atol=1e-6)
    azimuths = sorted(np.degrees(np.arctan2(*(c.position - target)[[2, 0]])) % 360 for c in cameras)
    np.testing.assert_allclose(np.diff(azimuths), 90.0, atol=1e-6)


def test_square_boxes_use_visible_keypoints_only():
    keypoints = np.array([[[10, 20, 1], [30, 60, 1], [500, 500, 0]]], dtype=float)
    center, scale = square_boxes_from_keypoints(keypoints, rescale=1.2)
    np.testing.assert_allclose(center, [[20, 40]])
    np.testing.assert_allclose(scale, [48.0])
    with pytest.raises(ValueError, match=r"rows \[0\] have no keypoint"):
        square_boxes_from_keypoints(np.zeros((1, 3, 3)))
