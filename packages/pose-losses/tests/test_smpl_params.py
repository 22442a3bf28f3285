import math

import pytest
import torch

from pose_geometry import axis_angle_to_rotmat
from pose_losses import smpl_parameter_loss


def test_betas_loss_hand_computed_and_masked_per_image():
    target = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # (B=2, 2)
    pred = torch.tensor([[[1.0, 0.0], [3.0, 2.0]], [[5.0, 5.0], [1.0, 1.0]]])  # (B=2, N=2, 2)
    has_target = torch.tensor([True, False])
    loss = smpl_parameter_loss(pred, target, has_target)
    # image 0: sample 0 (0 + 4) = 4, sample 1 (4 + 0) = 4; image 1 has no annotation: 0.
    torch.testing.assert_close(loss, torch.tensor([[4.0, 4.0], [0.0, 0.0]]))
    mean = smpl_parameter_loss(pred, target, has_target, reduction="mean")
    torch.testing.assert_close(mean, torch.tensor([[2.0, 2.0], [0.0, 0.0]]))


def test_float_flag_scales_the_loss():
    target = torch.zeros(1, 3)
    pred = torch.ones(1, 1, 3)
    loss = smpl_parameter_loss(pred, target, torch.tensor([0.5]))
    torch.testing.assert_close(loss, torch.tensor([[1.5]]))


def test_rotation_matrices_hand_computed():
    # A 90° rotation about z against the identity: ||R - I||_F^2 = 4 (1 - cos θ) = 4 per joint.
    target = torch.eye(3).expand(1, 23, 3, 3)
    rotation = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2]))
    pred = torch.eye(3).repeat(1, 2, 23, 1, 1)
    pred[0, 1, :5] = rotation
    loss = smpl_parameter_loss(pred, target, torch.ones(1))
    torch.testing.assert_close(loss, torch.tensor([[0.0, 5 * 4.0]]), atol=1e-5, rtol=1e-5)


def test_unannotated_images_cannot_leak_nan_into_loss_or_gradient():
    target = torch.tensor([[0.5, 0.5], [float("nan"), float("nan")]])
    pred = torch.randn(2, 3, 2, requires_grad=True)
    loss = smpl_parameter_loss(pred, target, torch.tensor([1.0, 0.0]))
    assert torch.isfinite(loss).all()
    assert torch.equal(loss[1], torch.zeros(3))
    loss.sum().backward()
    assert torch.isfinite(pred.grad).all()
    assert torch.equal(pred.grad[1], torch.zeros(3, 2))
    torch.testing.assert_close(pred.grad[0], 2 * (pred[0] - 0.5).detach())


def test_any_leading_batch_dimensions():
    target = torch.randn(2, 3, 10)
    pred = torch.randn(2, 3, 4, 10)
    has_target = torch.rand(2, 3) > 0.5
    loss = smpl_parameter_loss(pred, target, has_target)
    flat = smpl_parameter_loss(pred.reshape(6, 4, 10), target.reshape(6, 10), has_target.reshape(6))
    assert loss.shape == (2, 3, 4)
    torch.testing.assert_close(loss.reshape(6, 4), flat)


def test_rejects_prediction_without_a_sample_axis():
    with pytest.raises(
        ValueError, match=r"`pred` must have shape \(4, N, 10\) to match `target` \(4, 10\)"
    ):
        smpl_parameter_loss(torch.randn(4, 10), torch.randn(4, 10), torch.ones(4))


def test_rejects_flag_that_does_not_match_the_batch():
    with pytest.raises(ValueError, match=r"`pred` must have shape \(4, 10, N\)"):
        smpl_parameter_loss(torch.randn(4, 1, 10), torch.randn(4, 10), torch.ones(4, 10))
    with pytest.raises(ValueError, match=r"`has_target` must have shape \(4,\), got \(3,\)"):
        smpl_parameter_loss(torch.randn(4, 1, 10), torch.randn(4, 10), torch.ones(3))


def test_rejects_flag_that_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"`has_target` must be a torch.Tensor, got list"):
        smpl_parameter_loss(torch.randn(2, 1, 10), torch.randn(2, 10), [1, 1])


def test_gradcheck_in_float64():
    pred = torch.randn(3, 2, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    has_target = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: smpl_parameter_loss(p, target, has_target), (pred,))
