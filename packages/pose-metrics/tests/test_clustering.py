import math

import pytest
import torch

from pose_geometry import LSP14_IDX_44
from pose_metrics import best_of_n, kmeans, kmeans_best_of_k


def separated_clusters(generator, num_sets=3, num_clusters=4, per_cluster=50, dim=6):
    """Points around centres 100 apart (spread 0.1), in a shuffled order, with true labels."""
    centres = 100.0 * torch.randn(
        num_sets, num_clusters, dim, dtype=torch.float64, generator=generator
    )
    truth = torch.arange(num_clusters).repeat_interleave(per_cluster)
    order = torch.stack(
        [torch.randperm(truth.numel(), generator=generator) for _ in range(num_sets)]
    )
    labels = truth[order]  # (S, N)
    noise = 0.1 * torch.randn(
        num_sets, truth.numel(), dim, dtype=torch.float64, generator=generator
    )
    points = centres.gather(1, labels[..., None].expand(-1, -1, dim)) + noise
    return points, labels, centres


def test_recovers_well_separated_clusters():
    g = torch.Generator().manual_seed(0)
    points, truth, _ = separated_clusters(g)
    result = kmeans(points, num_clusters=4, generator=torch.Generator().manual_seed(1))
    assert result.converged
    for s in range(points.shape[0]):
        # Same partition up to renumbering: each true cluster maps to exactly one label.
        pairs = set(zip(truth[s].tolist(), result.labels[s].tolist(), strict=True))
        assert len(pairs) == 4
        assert sorted(result.cluster_sizes[s].tolist()) == [50, 50, 50, 50]
        for true_label, label in pairs:
            members = points[s, truth[s] == true_label]
            torch.testing.assert_close(result.centers[s, label], members.mean(0))
    expected_inertia = (
        (points - result.centers.gather(1, result.labels[..., None].expand(-1, -1, 6))) ** 2
    ).sum((-1, -2))
    torch.testing.assert_close(result.inertia, expected_inertia)
    assert (result.inertia < 200 * 6 * 0.1**2 * 2).all()


def test_deterministic_for_a_seed():
    g = torch.Generator().manual_seed(2)
    points = torch.randn(4, 300, 12, generator=g)
    first = kmeans(points, num_clusters=7, generator=torch.Generator().manual_seed(3))
    second = kmeans(points, num_clusters=7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first.labels, second.labels)
    assert torch.equal(first.centers, second.centers)
    assert first.num_iterations == second.num_iterations


def test_one_cluster_is_the_mean_and_any_leading_shape_works():
    g = torch.Generator().manual_seed(4)
    points = torch.randn(2, 3, 40, 5, dtype=torch.float64, generator=g)
    result = kmeans(points, num_clusters=1, generator=torch.Generator().manual_seed(0))
    assert result.centers.shape == (2, 3, 1, 5) and result.labels.shape == (2, 3, 40)
    torch.testing.assert_close(result.centers[..., 0, :], points.mean(-2))
    assert (result.labels == 0).all() and (result.cluster_sizes == 40).all()


def test_k_equal_to_n_keeps_every_point_and_handles_duplicates():
    g = torch.Generator().manual_seed(5)
    points = torch.randn(2, 9, 4, generator=g)
    result = kmeans(points, num_clusters=9, generator=torch.Generator().manual_seed(1))
    assert (result.cluster_sizes == 1).all()
    for s in range(2):
        torch.testing.assert_close(result.centers[s, result.labels[s]], points[s], rtol=0, atol=0)
    # Fewer distinct points than clusters: seeding still picks distinct indices, no error.
    duplicates = torch.zeros(1, 6, 3)
    duplicates[0, 3:] = 1.0
    assert (
        kmeans(
            duplicates, num_clusters=4, generator=torch.Generator().manual_seed(0)
        ).inertia.item()
        == 0
    )


def test_best_of_k_equals_best_of_n_when_k_equals_n():
    g = torch.Generator().manual_seed(6)
    target = torch.randn(3, 44, 3, dtype=torch.float64, generator=g)
    predictions = target[:, None] + 0.1 * torch.randn(
        3, 12, 44, 3, dtype=torch.float64, generator=g
    )
    quantised = kmeans_best_of_k(
        predictions,
        target,
        num_clusters=12,
        root_idx=39,
        joint_idx=LSP14_IDX_44,
        generator=torch.Generator().manual_seed(0),
    )
    direct = best_of_n(predictions, target, root_idx=39, joint_idx=LSP14_IDX_44)
    torch.testing.assert_close(quantised.min_mpjpe, direct.min_mpjpe)
    torch.testing.assert_close(quantised.min_pa_mpjpe, direct.min_pa_mpjpe)
    # Centre c is the singleton cluster of sample argmin: the same errors.
    sample_of_best = quantised.labels.argsort(-1).gather(-1, quantised.argmin_pa_mpjpe[:, None])[
        :, 0
    ]
    assert torch.equal(sample_of_best, direct.argmin_pa_mpjpe)


def test_best_of_k_on_clustered_samples_finds_the_right_hypothesis():
    g = torch.Generator().manual_seed(7)
    target = torch.randn(2, 14, 3, dtype=torch.float64, generator=g)
    # Three modes: the truth and two shifted poses, 40 samples each, slightly jittered.
    modes = torch.stack([target, target * 1.5 + 0.2, target.flip(-2)], dim=1)  # (2, 3, 14, 3)
    predictions = modes.repeat_interleave(40, dim=1)
    predictions = predictions + 0.002 * torch.randn(
        predictions.shape, dtype=torch.float64, generator=g
    )
    result = kmeans_best_of_k(
        predictions, target, num_clusters=3, root_idx=0, generator=torch.Generator().manual_seed(1)
    )
    assert (result.cluster_sizes == 40).all()
    assert (result.min_mpjpe < 1.0).all()  # the centre of the true mode: averaged jitter, mm
    assert result.center_pa_mpjpe.shape == (2, 3) and result.centers.shape == (2, 3, 14, 3)
    assert set(result.metrics(prefix="k3_")) == {"k3_min_mpjpe", "k3_min_pa_mpjpe"}


def test_image_with_a_nan_sample_gets_nan():
    g = torch.Generator().manual_seed(8)
    target = torch.randn(3, 14, 3, generator=g)
    predictions = target[:, None] + 0.1 * torch.randn(3, 30, 14, 3, generator=g)
    predictions[2, 5, 0, 0] = float("nan")
    result = kmeans_best_of_k(
        predictions, target, num_clusters=5, root_idx=0, generator=torch.Generator().manual_seed(0)
    )
    assert torch.isfinite(result.min_pa_mpjpe[:2]).all()
    assert math.isnan(result.min_pa_mpjpe[2].item()) and math.isnan(result.min_mpjpe[2].item())


def test_rejects_bad_inputs():
    points = torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"`num_clusters` must lie in \[1, N\] = \[1, 10\]"):
        kmeans(points, num_clusters=11)
    with pytest.raises(ValueError, match=r"`points` must have shape \(\.\.\., N, D\), got \(10,\)"):
        kmeans(torch.zeros(10), num_clusters=1)
    with pytest.raises(ValueError, match="`points` must be finite"):
        kmeans(torch.full((1, 4, 2), float("nan")), num_clusters=2)
    with pytest.raises(TypeError, match="`points` must be a floating-point tensor"):
        kmeans(torch.zeros(2, 4, 2, dtype=torch.long), num_clusters=2)
    with pytest.raises(ValueError, match=r"`num_clusters` must lie in \[1, N\] = \[1, 8\]"):
        kmeans_best_of_k(
            torch.zeros(2, 8, 14, 3), torch.zeros(2, 14, 3), num_clusters=0, root_idx=0
        )
    with pytest.raises(ValueError, match=r"same number of joints J .* got 17 and 14"):
        kmeans_best_of_k(
            torch.zeros(2, 8, 17, 3), torch.zeros(2, 14, 3), num_clusters=2, root_idx=0
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_is_deterministic_and_recovers_clusters():
    g = torch.Generator().manual_seed(9)
    points, truth, _ = separated_clusters(g, num_sets=8)
    points = points.float().cuda()
    runs = [
        kmeans(points, num_clusters=4, generator=torch.Generator("cuda").manual_seed(1))
        for _ in range(2)
    ]
    assert torch.equal(runs[0].labels, runs[1].labels)
    assert torch.equal(runs[0].centers, runs[1].centers)
    for s in range(8):
        pairs = set(zip(truth[s].tolist(), runs[0].labels[s].cpu().tolist(), strict=True))
        assert len(pairs) == 4
