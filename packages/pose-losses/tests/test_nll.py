import pytest
import torch

from pose_losses import add_target_noise, negative_log_likelihood


def test_negative_log_likelihood_is_minus_the_mean():
    log_prob = torch.tensor([[-1.0], [-3.0], [2.0]])
    torch.testing.assert_close(negative_log_likelihood(log_prob), torch.tensor(2.0 / 3.0))


def test_mask_keeps_only_annotated_images():
    log_prob = torch.tensor([[-1.0], [-3.0], [2.0]])
    valid = torch.tensor([True, True, False])
    # (B,) mask for (B, 1) log-probabilities; -(−1 − 3) / 2 = 2.
    torch.testing.assert_close(negative_log_likelihood(log_prob, valid=valid), torch.tensor(2.0))
    same_shape = negative_log_likelihood(log_prob, valid=valid[:, None])
    torch.testing.assert_close(same_shape, torch.tensor(2.0))


def test_no_annotated_image_gives_exactly_zero_attached_to_the_graph():
    log_prob = torch.randn(4, 1, requires_grad=True)
    loss = negative_log_likelihood(log_prob, valid=torch.zeros(4, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(log_prob.grad, torch.zeros(4, 1))


def test_invalid_entries_cannot_leak_nan_into_loss_or_gradient():
    log_prob = torch.tensor([-2.0, float("nan"), float("-inf")], requires_grad=True)
    valid = torch.tensor([True, False, False])
    loss = negative_log_likelihood(log_prob, valid=valid)
    assert loss.item() == 2.0
    loss.backward()
    assert torch.equal(log_prob.grad, torch.tensor([-1.0, 0.0, 0.0]))


def test_rejects_a_mask_that_is_not_boolean():
    with pytest.raises(TypeError, match=r"`valid` must be a bool tensor, got dtype torch.float32"):
        negative_log_likelihood(torch.zeros(3), valid=torch.ones(3))


def test_rejects_a_mask_of_the_wrong_shape():
    with pytest.raises(
        ValueError, match=r"`valid` must have the shape of `log_prob` \(3, 1\) or of its leading"
    ):
        negative_log_likelihood(torch.zeros(3, 1), valid=torch.ones(2, dtype=torch.bool))


def test_rejects_integer_log_probabilities():
    with pytest.raises(TypeError, match=r"`log_prob` must be a floating-point tensor"):
        negative_log_likelihood(torch.zeros(3, dtype=torch.long))


def test_target_noise_has_the_requested_std_and_follows_the_generator():
    target = torch.zeros(20_000, 6, dtype=torch.float64)
    first = add_target_noise(target, std=0.005, generator=torch.Generator().manual_seed(1))
    second = add_target_noise(target, std=0.005, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, second)
    assert first.dtype == torch.float64 and first.shape == target.shape
    assert abs(first.std().item() / 0.005 - 1) < 0.02
    assert abs(first.mean().item()) < 1e-4


def test_zero_noise_returns_the_target_unchanged():
    target = torch.randn(3, 144)
    assert torch.equal(add_target_noise(target, std=0.0), target)


def test_rejects_negative_noise():
    with pytest.raises(ValueError, match=r"`std` must be >= 0, got -0.1"):
        add_target_noise(torch.zeros(3), std=-0.1)
