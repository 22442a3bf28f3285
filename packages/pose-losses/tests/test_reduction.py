import pytest
import torch

from pose_losses import keypoint_2d_loss, split_mode_expectation


def test_hand_computed_mode_and_expectation_with_several_samples():
    per_sample = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # (B=2, N=3)
    split = split_mode_expectation(per_sample)
    torch.testing.assert_close(split.mode, torch.tensor((1.0 + 4.0) / 2))
    torch.testing.assert_close(split.expectation, torch.tensor((2.0 + 3.0 + 5.0 + 6.0) / 4))


def test_single_sample_gives_the_mode_and_an_exact_zero_expectation():
    per_sample = torch.tensor([[1.0], [3.0]], requires_grad=True)
    split = split_mode_expectation(per_sample)
    torch.testing.assert_close(split.mode, torch.tensor(2.0))
    assert split.expectation.item() == 0.0  # the original's mean would be NaN here
    (split.mode + split.expectation).backward()
    torch.testing.assert_close(per_sample.grad, torch.tensor([[0.5], [0.5]]))


def test_matches_the_original_sum_over_batch_reduction_of_keypoint_losses():
    batch, samples = 3, 4
    pred = torch.randn(batch, samples, 44, 2, dtype=torch.float64)
    target = torch.randn(batch, 44, 2, dtype=torch.float64)
    confidence = torch.rand(batch, 44, dtype=torch.float64)
    split = split_mode_expectation(keypoint_2d_loss(pred, target, confidence=confidence))
    elementwise = confidence[:, None, :, None] * (pred - target[:, None]).abs()
    torch.testing.assert_close(split.mode, elementwise[:, 0].sum() / batch)
    torch.testing.assert_close(
        split.expectation, elementwise[:, 1:].sum() / (batch * (samples - 1))
    )


def test_leading_batch_dimensions_are_all_averaged():
    per_sample = torch.arange(12.0).reshape(2, 3, 2)
    split = split_mode_expectation(per_sample)
    torch.testing.assert_close(split.mode, per_sample[..., 0].mean())
    torch.testing.assert_close(split.expectation, per_sample[..., 1].mean())


def test_gradient_weights_mode_and_expectation_samples_separately():
    per_sample = torch.zeros(2, 3, requires_grad=True)
    split = split_mode_expectation(per_sample)
    (split.mode + split.expectation).backward()
    expected = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    torch.testing.assert_close(per_sample.grad, expected)


def test_rejects_values_without_samples():
    with pytest.raises(ValueError, match=r"`per_sample` must have shape \(\.\.\., N\) with N >= 1"):
        split_mode_expectation(torch.zeros(3, 0))
    with pytest.raises(ValueError, match=r"got \(\)"):
        split_mode_expectation(torch.tensor(1.0))
