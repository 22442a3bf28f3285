import pytest
import torch

from pose_losses import keypoint_2d_loss, keypoint_3d_loss


def test_keypoint_2d_loss_hand_computed_with_confidences():
    # One image, two samples, two keypoints.
    target = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # (1, 2, 2)
    pred = torch.tensor([[[[0.5, -0.5], [1.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    confidence = torch.tensor([[1.0, 0.5]])
    loss = keypoint_2d_loss(pred, target, confidence=confidence)
    # sample 0: 1·(0.5 + 0.5) + 0.5·(0 + 1) = 1.5; sample 1: 1·0 + 0.5·(1 + 1) = 1.0
    torch.testing.assert_close(loss, torch.tensor([[1.5, 1.0]]))
    mean = keypoint_2d_loss(pred, target, confidence=confidence, reduction="mean")
    torch.testing.assert_close(mean, torch.tensor([[1.5, 1.0]]) / 4)


def test_keypoint_2d_loss_without_confidence_weights_every_keypoint_by_one():
    target = torch.zeros(1, 3, 2)
    pred = torch.ones(1, 1, 3, 2)
    torch.testing.assert_close(keypoint_2d_loss(pred, target), torch.tensor([[6.0]]))


def test_zero_confidence_removes_a_keypoint_entirely():
    target = torch.randn(2, 5, 2)
    pred = target.unsqueeze(1).repeat(1, 3, 1, 1)
    pred[:, :, 2] += 100.0  # keypoint 2 is far off ...
    confidence = torch.ones(2, 5)
    confidence[:, 2] = 0.0  # ... but missing
    loss = keypoint_2d_loss(pred, target, confidence=confidence)
    torch.testing.assert_close(loss, torch.zeros(2, 3))


def test_keypoint_3d_loss_hand_computed_after_pelvis_alignment():
    # Three keypoints, pelvis = keypoint 0. The prediction is shifted by (5, 5, 5) everywhere and
    # keypoint 2 is off by (0, 0.5, -1) relative to the pelvis.
    target = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    pred = target.clone() + 5.0
    pred[0, 2] += torch.tensor([0.0, 0.5, -1.0])
    confidence = torch.tensor([[1.0, 1.0, 2.0]])
    loss = keypoint_3d_loss(pred.unsqueeze(1), target, confidence=confidence, pelvis_idx=0)
    torch.testing.assert_close(loss, torch.tensor([[2.0 * (0.5 + 1.0)]]))


def test_keypoint_3d_loss_uses_keypoint_39_as_pelvis_by_default():
    f64 = torch.float64
    target = torch.randn(2, 44, 3, dtype=f64)
    pred = (target + torch.tensor([0.3, -2.0, 7.0], dtype=f64)).unsqueeze(1).repeat(1, 2, 1, 1)
    torch.testing.assert_close(keypoint_3d_loss(pred, target), torch.zeros(2, 2, dtype=f64))
    # Moving only the pelvis moves every aligned keypoint but the pelvis itself.
    pred[:, :, 39] += torch.tensor([0.1, 0.0, 0.0], dtype=f64)
    expected = torch.full((2, 2), 43 * 0.1, dtype=f64)
    torch.testing.assert_close(keypoint_3d_loss(pred, target), expected)


def test_keypoint_3d_loss_for_lifting_has_no_alignment_and_no_confidence():
    # The lifting loss: |gt - pred| summed over 16 joints x 3 coordinates.
    target = torch.zeros(1, 16, 3)
    pred = torch.zeros(1, 2, 16, 3)
    pred[0, 1, 0] = torch.tensor([1.0, -2.0, 0.5])
    loss = keypoint_3d_loss(pred, target, pelvis_idx=None)
    torch.testing.assert_close(loss, torch.tensor([[0.0, 3.5]]))


def test_zero_confidence_in_3d_removes_a_keypoint_but_not_the_pelvis_shift():
    target = torch.zeros(1, 44, 3)
    pred = torch.zeros(1, 1, 44, 3)
    pred[0, 0, 5] = 1.0
    confidence = torch.ones(1, 44)
    confidence[0, 5] = 0.0
    assert keypoint_3d_loss(pred, target, confidence=confidence).item() == 0.0
    assert keypoint_3d_loss(pred, target).item() == 3.0


def test_any_leading_batch_dimensions_give_the_flattened_result():
    target = torch.randn(2, 3, 6, 2)
    pred = torch.randn(2, 3, 4, 6, 2)
    confidence = torch.rand(2, 3, 6)
    loss = keypoint_2d_loss(pred, target, confidence=confidence)
    flat = keypoint_2d_loss(
        pred.reshape(6, 4, 6, 2), target.reshape(6, 6, 2), confidence=confidence.reshape(6, 6)
    )
    assert loss.shape == (2, 3, 4)
    torch.testing.assert_close(loss.reshape(6, 4), flat)


def test_gradient_reaches_the_prediction_only_through_confident_keypoints():
    target = torch.randn(1, 4, 3, dtype=torch.float64)
    pred = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    confidence = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    keypoint_3d_loss(pred, target, confidence=confidence, pelvis_idx=None).sum().backward()
    assert torch.equal(pred.grad[0, :, 1], torch.zeros(2, 3, dtype=torch.float64))
    assert (pred.grad[0, :, [0, 2, 3]].abs() == 1.0).all()


def test_rejects_prediction_without_a_sample_axis():
    with pytest.raises(
        ValueError,
        match=r"`pred_keypoints_2d` must have shape \(2, N, 3, 2\) to match "
        r"`target_keypoints_2d` \(2, 3, 2\), got \(2, 3, 2\)",
    ):
        keypoint_2d_loss(torch.randn(2, 3, 2), torch.randn(2, 3, 2))


def test_rejects_target_with_the_wrong_coordinate_count():
    with pytest.raises(ValueError, match=r"`target_keypoints_3d` must have shape \(\.\.\., N, 3\)"):
        keypoint_3d_loss(torch.randn(2, 1, 4, 2), torch.randn(2, 4, 2))


def test_rejects_confidence_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"`confidence` must have shape \(2, 3\), got \(2, 3, 1\)"):
        keypoint_2d_loss(
            torch.randn(2, 1, 3, 2), torch.randn(2, 3, 2), confidence=torch.ones(2, 3, 1)
        )


def test_rejects_pelvis_index_out_of_range():
    with pytest.raises(
        ValueError, match=r"`pelvis_idx` must lie in \[0, 16\) for 16 keypoints, got 39"
    ):
        keypoint_3d_loss(torch.randn(1, 2, 16, 3), torch.randn(1, 16, 3))


def test_rejects_unknown_reduction():
    with pytest.raises(ValueError, match=r"unknown reduction 'l3'; expected one of 'sum', 'mean'"):
        keypoint_2d_loss(torch.randn(1, 1, 3, 2), torch.randn(1, 3, 2), reduction="l3")


def test_rejects_integer_keypoints():
    with pytest.raises(TypeError, match=r"`pred_keypoints_2d` must be a floating-point tensor"):
        keypoint_2d_loss(torch.zeros(1, 1, 3, 2, dtype=torch.long), torch.zeros(1, 3, 2))


def test_result_follows_the_input_device(device):
    pred = torch.randn(2, 3, 44, 3, device=device)
    target = torch.randn(2, 44, 3, device=device)
    loss = keypoint_3d_loss(pred, target, confidence=torch.ones(2, 44, device=device))
    assert loss.device == pred.device


def test_gradcheck_in_float64():
    pred = torch.randn(2, 2, 5, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 5, 3, dtype=torch.float64)
    confidence = torch.rand(2, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda p: keypoint_3d_loss(p, target, confidence=confidence, pelvis_idx=1), (pred,)
    )
    assert torch.autograd.gradcheck(
        lambda p: keypoint_2d_loss(p[..., :2], target[..., :2], confidence=confidence), (pred,)
    )
