import pytest
import torch

from pose_metrics import best_of_n, gaussian_baseline_samples, training_set_baseline_samples


def test_gaussian_samples_have_the_requested_shape_mean_and_spread():
    g = torch.Generator().manual_seed(0)
    center = torch.randn(3, 14, 3, dtype=torch.float64, generator=g)
    samples = gaussian_baseline_samples(center, num_samples=4000, sigma_m=0.05, generator=g)
    assert samples.shape == (3, 4000, 14, 3) and samples.dtype == torch.float64
    assert torch.equal(samples[:, 0], center)  # sample 0 is the prediction itself
    noise = samples[:, 1:] - center[:, None]
    assert abs(noise.std().item() - 0.05) < 0.05 * 0.01
    assert noise.mean(1).abs().max().item() < 4 * 0.05 / 3999**0.5 * 1.5
    without = gaussian_baseline_samples(
        center, num_samples=2, sigma_m=0.05, generator=g, include_center=False
    )
    assert not torch.equal(without[:, 0], center)


def test_gaussian_samples_are_reproducible_and_zero_sigma_repeats_the_center():
    center = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    a = gaussian_baseline_samples(
        center, num_samples=7, sigma_m=0.1, generator=torch.Generator().manual_seed(1)
    )
    b = gaussian_baseline_samples(
        center, num_samples=7, sigma_m=0.1, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(a, b)
    same = gaussian_baseline_samples(
        center, num_samples=4, sigma_m=0.0, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(same, center[:, None].expand(2, 4, 5, 3))
    # Scored like the model's samples: with σ = 0 the minimum equals the mode.
    result = best_of_n(same, center + 0.01, root_idx=None)
    torch.testing.assert_close(result.min_mpjpe, result.mode_mpjpe)


def test_training_set_samples_are_training_poses_drawn_uniformly():
    g = torch.Generator().manual_seed(2)
    training = torch.arange(10 * 4 * 3, dtype=torch.float32).reshape(10, 4, 3)
    samples = training_set_baseline_samples(training, num_images=5, num_samples=2000, generator=g)
    assert samples.shape == (5, 2000, 4, 3)
    index = samples[..., 0, 0].long() // 12  # which training pose each sample is
    assert torch.equal(samples, training[index])
    counts = torch.bincount(index.reshape(-1), minlength=10).double()
    assert (counts / counts.sum() - 0.1).abs().max() < 0.02  # ~uniform over the 10 poses
    distinct = training_set_baseline_samples(
        training, num_images=3, num_samples=10, generator=g, replacement=False
    )
    for image in distinct:
        assert torch.unique(image[:, 0, 0]).numel() == 10


def test_training_set_samples_are_reproducible():
    training = torch.randn(50, 14, 3, generator=torch.Generator().manual_seed(3))
    a = training_set_baseline_samples(
        training, num_images=2, num_samples=8, generator=torch.Generator().manual_seed(4)
    )
    b = training_set_baseline_samples(
        training, num_images=2, num_samples=8, generator=torch.Generator().manual_seed(4)
    )
    assert torch.equal(a, b)


def test_rejects_bad_inputs():
    with pytest.raises(
        ValueError, match=r"`center` must have shape \(\.\.\., J, 3\), got \(14, 2\)"
    ):
        gaussian_baseline_samples(torch.zeros(14, 2), num_samples=3, sigma_m=0.1)
    with pytest.raises(ValueError, match="`sigma_m` must be a non-negative number of metres"):
        gaussian_baseline_samples(torch.zeros(14, 3), num_samples=3, sigma_m=-1.0)
    with pytest.raises(ValueError, match="`num_samples` must be at least 1, got 0"):
        gaussian_baseline_samples(torch.zeros(14, 3), num_samples=0, sigma_m=0.1)
    with pytest.raises(
        ValueError,
        match=r"`training_poses` must have shape \(M, J, 3\) with M >= 1, got \(2, 5, 14, 3\)",
    ):
        training_set_baseline_samples(torch.zeros(2, 5, 14, 3), num_images=1, num_samples=2)
    with pytest.raises(
        ValueError, match=r"`num_samples` \(6\) must not exceed the number of training poses \(5\)"
    ):
        training_set_baseline_samples(
            torch.zeros(5, 14, 3), num_images=1, num_samples=6, replacement=False
        )
