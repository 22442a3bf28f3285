"""Uncertainty metrics on cases with a known answer: Gaussian samplers, fixed configurations."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pose_metrics import (
    DEFAULT_LEVELS,
    UncertaintyAccumulator,
    average_ranks,
    central_region_coverage,
    sample_diversity,
    spearman,
)

# Calibration fixture: B images x J joints, N samples per image, float64, fixed seed.
B, N, J = 200, 200, 10


def gaussian_batch(sample_sigma: float, *, seed: int = 0):
    """Samples N(mu, sample_sigma² I) per joint, ground truth N(mu, I): calibrated when
    sample_sigma = 1, over-confident below, under-confident above."""
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(B, J, 3, generator=generator, dtype=torch.float64)
    noise = torch.randn(B, N, J, 3, generator=generator, dtype=torch.float64)
    samples = mu[:, None] + sample_sigma * noise
    target = mu + torch.randn(B, J, 3, generator=generator, dtype=torch.float64)
    return samples, target, mu


def summarize(sample_sigma: float):
    samples, target, mu = gaussian_batch(sample_sigma)
    accumulator = UncertaintyAccumulator()
    accumulator.add(samples, target, mode=mu, root_idx=None)
    return accumulator.summarize()


def test_calibrated_sampler_has_coverage_p():
    summary = summarize(1.0)
    levels = torch.tensor(DEFAULT_LEVELS, dtype=torch.float64)
    coverage = torch.tensor(summary.coverage)
    # Each coverage is a mean of B·J = 2000 Bernoulli(p) indicators (plus the per-image
    # quantile noise, which also averages out over the images): standard deviation
    # <= sqrt(0.25 / 2000) = 0.011. The estimated centre and quantile bias it by O(1/N) = 0.005.
    # 0.045 is 4 standard deviations plus that bias, at every level.
    assert torch.all((coverage - levels).abs() < 0.045), coverage
    assert summary.ece < 0.02
    # the curve is monotone: a larger ball covers at least what a smaller one does
    assert torch.all(coverage[1:] >= coverage[:-1])


def test_over_confident_sampler_covers_less_than_p():
    # samples with half the spread: at p = 0.95 the ball has radius 0.5·2.80 = 1.40 sigma,
    # which holds a 3D standard normal with probability 0.42; far below p at every level
    summary = summarize(0.5)
    coverage = torch.tensor(summary.coverage)
    assert torch.all(coverage < torch.tensor(DEFAULT_LEVELS) - 0.03), coverage
    assert summary.coverage_at(0.95) == pytest.approx(0.42, abs=0.05)
    assert summary.ece > 0.3


def test_under_confident_sampler_covers_more_than_p():
    summary = summarize(2.0)
    coverage = torch.tensor(summary.coverage)
    assert torch.all(coverage > torch.tensor(DEFAULT_LEVELS)), coverage
    assert summary.ece > 0.3
    for joint_curve in summary.coverage_per_joint:
        assert joint_curve[len(DEFAULT_LEVELS) // 2] > 0.8  # p = 0.5 -> 0.97 expected


def test_diversity_of_known_configurations():
    samples = torch.zeros(1, 2, 3, 3, dtype=torch.float64)
    # joint 1 of sample 1 moved by 0.5 m
    samples[0, 1, 1] = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)
    diversity = sample_diversity(samples, root_idx=None)
    expected = torch.tensor([[0.0, 500.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(diversity, expected, rtol=1e-12, atol=0.0)
    # three samples on a line at 0, 1 and 3 mm: pairs 1, 3, 2 -> mean 2 mm
    line = torch.zeros(1, 3, 2, 3, dtype=torch.float64)
    line[0, :, 1, 0] = torch.tensor([0.0, 1.0, 3.0])
    assert sample_diversity(line, root_idx=0, mm_per_unit=1.0)[0, 1] == pytest.approx(2.0)
    # identical samples -> 0; root alignment removes a per-sample translation
    shifted = torch.randn(4, 1, 5, 3).repeat(1, 6, 1, 1) + torch.randn(4, 6, 1, 3)
    assert torch.allclose(sample_diversity(shifted, root_idx=2), torch.zeros(4, 5), atol=1e-3)
    assert sample_diversity(shifted, root_idx=2, joint_idx=[4, 0]).shape == (4, 2)


def test_visible_and_occluded_split_and_root_left_out():
    # joint 1 has samples 100 mm apart, joint 2 200 mm; joint 0 is the root
    samples = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    samples[:, 1, 1, 0] = 0.1
    samples[:, 1, 2, 0] = 0.2
    target = torch.zeros(2, 3, 3, dtype=torch.float64)
    visible = torch.tensor([[True, True, False], [True, True, True]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])  # image 1 has no joint 1
    accumulator = UncertaintyAccumulator(joint_names=["root", "elbow", "wrist"])
    accumulator.add(samples, target, mode=samples[:, 0], root_idx=0, mask=mask, visible=visible)
    summary = accumulator.summarize()
    assert summary.num_pairs == 3  # (0, 1), (0, 2), (1, 2): the root and masked joint left out
    assert summary.diversity_mm == pytest.approx((100 + 200 + 200) / 3)
    assert summary.diversity_visible_mm == pytest.approx((100 + 200) / 2)
    assert summary.diversity_occluded_mm == pytest.approx(200.0)
    assert (summary.num_visible, summary.num_occluded) == (2, 1)
    assert summary.joints == ("root", "elbow", "wrist")
    assert math.isnan(summary.diversity_per_joint_mm[0])
    assert summary.diversity_per_joint_mm[1:] == pytest.approx((100.0, 200.0))
    per_image = accumulator.per_image()["diversity_mm"]
    assert per_image.tolist() == pytest.approx([150.0, 200.0])
    text = summary.to_markdown()
    assert "| diversity, occluded/truncated joints (mm) | 200.0 (1) |" in text
    assert summary.to_dict()["diversity_mm"]["visible"] == pytest.approx(150.0)
    # JSON-ready: the root's NaN per-joint values become None
    loaded = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert loaded["per_joint"]["root"]["diversity_mm"] is None


def test_accumulator_streams_like_one_batch():
    samples, target, mu = gaussian_batch(1.0)
    whole = UncertaintyAccumulator()
    whole.add(samples, target, mode=mu, root_idx=3)
    pieces = UncertaintyAccumulator()
    for start in range(0, B, 64):
        part = slice(start, start + 64)
        pieces.add(samples[part], target[part], mode=mu[part], root_idx=3)
    assert pieces.summarize().to_dict() == whole.summarize().to_dict()


def test_coverage_of_a_known_configuration():
    # four samples at distances 1, 1, 3, 3 from their mean (0): radius at p = 0.5 is 2
    samples = torch.zeros(1, 4, 1, 3, dtype=torch.float64)
    samples[0, :, 0, 0] = torch.tensor([1.0, -1.0, 3.0, -3.0])
    inside = torch.tensor([[[1.9, 0.0, 0.0]]], dtype=torch.float64)
    outside = torch.tensor([[[0.0, 2.1, 0.0]]], dtype=torch.float64)
    assert central_region_coverage(samples, inside, root_idx=None, levels=[0.5]).tolist() == [
        [[True]]
    ]
    assert central_region_coverage(samples, outside, root_idx=None, levels=[0.5]).tolist() == [
        [[False]]
    ]


def test_spearman_known_ranking_with_ties():
    assert average_ranks(torch.tensor([10.0, 30.0, 20.0, 30.0])).tolist() == [1.0, 3.5, 2.0, 3.5]
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    y = torch.tensor([5.0, 6.0, 7.0, 8.0, 7.0])
    # ranks of y: 1, 2, 3.5, 5, 3.5 -> sum dx·dy = 8, sum dx² = 10, sum dy² = 9.5
    assert spearman(x, y) == pytest.approx(8 / math.sqrt(95), abs=1e-12)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)
    assert math.isnan(spearman(x, torch.ones(5)))
    assert math.isnan(spearman(x[:1], y[:1]))


def test_spearman_matches_scipy_on_ties():
    stats = pytest.importorskip("scipy.stats")
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, 5, (50,), generator=generator).double()
    y = x + torch.randint(0, 3, (50,), generator=generator).double()
    expected = stats.spearmanr(x.numpy(), y.numpy()).statistic
    assert spearman(x, y) == pytest.approx(float(expected), abs=1e-12)


def test_spread_ranks_with_error_when_the_model_knows_its_uncertainty():
    # every joint has its own spread sigma, shared by the samples and the ground truth: joints
    # with a wider spread are further off, so the rank correlation is clearly positive
    generator = torch.Generator().manual_seed(2)
    sigma = torch.rand(100, 1, 8, 1, generator=generator, dtype=torch.float64) * 0.2 + 0.01
    samples = sigma * torch.randn(100, 50, 8, 3, generator=generator, dtype=torch.float64)
    target = sigma[:, 0] * torch.randn(100, 8, 3, generator=generator, dtype=torch.float64)
    accumulator = UncertaintyAccumulator()
    accumulator.add(samples, target, mode=torch.zeros_like(target), root_idx=None)
    summary = accumulator.summarize()
    assert summary.spearman > 0.5
    assert all(rho > 0.3 for rho in summary.spearman_per_joint)


def test_log_likelihood_mean_and_missing_count():
    samples, target, mu = gaussian_batch(1.0)
    accumulator = UncertaintyAccumulator(density="6D rotations in R^144")
    likelihood = torch.full((B,), float("nan"), dtype=torch.float64)
    likelihood[:4] = torch.tensor([-1.0, -2.0, -3.0, -6.0])
    accumulator.add(samples, target, mode=mu, root_idx=None, log_likelihood=likelihood)
    summary = accumulator.summarize()
    assert summary.log_likelihood == pytest.approx(-3.0)
    assert (summary.num_log_likelihood, summary.num_without_log_likelihood) == (4, B - 4)
    assert "Log-likelihood: 6D rotations in R^144" in summary.to_markdown()


def test_bad_inputs_give_clear_errors():
    samples, target, mu = gaussian_batch(1.0)
    accumulator = UncertaintyAccumulator()
    with pytest.raises(ValueError, match=r"`target` must have shape \(B, J, 3\)"):
        accumulator.add(samples, target[:, :5], mode=mu, root_idx=None)
    with pytest.raises(ValueError, match=r"`samples` must have shape \(B, N, J, 3\)"):
        accumulator.add(samples[0], target, mode=mu, root_idx=None)
    with pytest.raises(ValueError, match=r"at least 2 samples"):
        sample_diversity(samples[:, :1], root_idx=None)
    with pytest.raises(ValueError, match=r"`levels` must lie in the open interval \(0, 1\)"):
        UncertaintyAccumulator(levels=[0.5, 1.0])
    with pytest.raises(ValueError, match=r"`levels` must lie in the open interval"):
        central_region_coverage(samples, target, root_idx=None, levels=[0.0])
    with pytest.raises(ValueError, match=r"`visible` must be a bool tensor of shape \(B, J\)"):
        accumulator.add(samples, target, mode=mu, root_idx=None, visible=torch.ones(B, J))
    with pytest.raises(ValueError, match=r"`log_likelihood` must have shape \(B,\)"):
        accumulator.add(samples, target, mode=mu, root_idx=None, log_likelihood=torch.ones(3))
    with pytest.raises(ValueError, match=r"`root_idx` must lie in \[0, 10\)"):
        accumulator.add(samples, target, mode=mu, root_idx=10)
    with pytest.raises(ValueError, match=r"same length"):
        spearman(torch.ones(3), torch.ones(4))
    with pytest.raises(ValueError, match=r"no batch was added"):
        accumulator.summarize()
    broken = target.clone()
    broken[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"1 \(image, joint\) pairs hold NaN"):
        accumulator.add(samples, broken, mode=mu, root_idx=None)
    mask = torch.ones(B, J)
    mask[0, 1] = 0  # a NaN at a left-out joint is ignored
    accumulator.add(samples, broken, mode=mu, root_idx=None, mask=mask)
    with pytest.raises(ValueError, match=r"same number of samples N, got 100 after 200"):
        accumulator.add(samples[:, :100], target, mode=mu, root_idx=None)
    with pytest.raises(ValueError, match=r"`visible` must be given for every batch or for none"):
        accumulator.add(
            samples, target, mode=mu, root_idx=None, visible=torch.ones(B, J, dtype=torch.bool)
        )
