import pytest
import torch

from pose_metrics import acceleration_error, acceleration_errors, joint_accelerations


def test_constant_velocity_has_no_acceleration():
    t = torch.arange(6, dtype=torch.float64)[:, None, None]
    points = t * torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64) + torch.randn(
        1, 4, 3, dtype=torch.float64
    )
    assert joint_accelerations(points).shape == (4, 4, 3)
    torch.testing.assert_close(
        joint_accelerations(points), torch.zeros(4, 4, 3, dtype=torch.float64)
    )


def test_known_acceleration_error_in_mm():
    # x(t) = 0.5 a t^2 along x: second difference a per frame^2 at every inner frame
    t = torch.arange(5, dtype=torch.float64)
    target = torch.zeros(5, 2, 3, dtype=torch.float64)
    prediction = target.clone()
    prediction[:, 0, 0] = 0.5 * 0.004 * t**2  # joint 0 accelerates 4 mm / frame^2
    per_frame = acceleration_errors(prediction, target)
    torch.testing.assert_close(
        per_frame, torch.full((3,), 2.0, dtype=torch.float64)
    )  # 4 / 2 joints
    assert float(acceleration_error(prediction, target)) == pytest.approx(2.0)
    only_joint_0 = acceleration_error(prediction, target, joint_idx=[0])
    assert float(only_joint_0) == pytest.approx(4.0)
    # relative to joint 0, both joints' accelerations differ by the same amount
    assert float(acceleration_error(prediction, target, root_idx=0)) == pytest.approx(2.0)
    assert float(acceleration_error(prediction, target, mm_per_unit=1.0)) == pytest.approx(0.002)


def test_batched_and_translation_invariance_with_root():
    torch.manual_seed(0)
    prediction = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    target = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    errors = acceleration_error(prediction, target)
    assert errors.shape == (2,)
    for b in range(2):
        torch.testing.assert_close(errors[b], acceleration_error(prediction[b], target[b]))
    # a per-frame translation of the whole body leaves the root-relative error unchanged
    shift = torch.randn(2, 7, 1, 3, dtype=torch.float64)
    torch.testing.assert_close(
        acceleration_error(prediction + shift, target, root_idx=2),
        acceleration_error(prediction, target, root_idx=2),
    )
    assert float(acceleration_error(target, target).abs().max()) == 0.0


def test_bad_inputs_are_named():
    good = torch.zeros(4, 3, 3)
    with pytest.raises(ValueError, match="at least 3 frames"):
        acceleration_error(torch.zeros(2, 3, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="same shape"):
        acceleration_error(good, torch.zeros(5, 3, 3))
    with pytest.raises(ValueError, match="same number of joints"):
        acceleration_error(good, torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match="root_idx"):
        acceleration_error(good, good, root_idx=3)
    with pytest.raises(ValueError, match="points"):
        joint_accelerations(torch.zeros(4, 3, 2))
