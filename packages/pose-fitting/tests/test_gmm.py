"""GaussianMixturePrior against hand-computed densities; fit_pose_gmm recovers a mixture."""

import math

import numpy as np
import pytest
import torch

from pose_fitting import GaussianMixturePrior, fit_pose_gmm
from pose_fitting.testing import synthetic_gaussian_mixture

F64 = torch.float64


def two_component_2d():
    means = np.array([[0.0, 0.0], [1.0, -1.0]])
    covs = np.array([np.diag([1.0, 4.0]), np.diag([0.25, 0.25])])
    weights = np.array([0.75, 0.25])
    return means, covs, weights


def hand_energies(x, means, covs, weights):
    """-log(w_k N(x; mu_k, diag cov_k)) written out for diagonal 2-D Gaussians."""
    out = []
    for mu, cov, w in zip(means, covs, weights, strict=True):
        var = np.diag(cov)
        maha = float(((x - mu) ** 2 / var).sum())
        log_norm = 0.5 * math.log((2 * math.pi) ** 2 * float(np.prod(var)))
        out.append(0.5 * maha - math.log(w) + log_norm)
    return out


def test_max_and_exact_mixture_by_hand():
    means, covs, weights = two_component_2d()
    x = np.array([[0.3, -0.2], [1.1, -0.9], [5.0, 5.0]])
    prior_max = GaussianMixturePrior.from_arrays(means, covs, weights)
    prior_exact = GaussianMixturePrior.from_arrays(means, covs, weights, mixture="exact")
    pose = torch.from_numpy(x)
    for i, row in enumerate(x):
        e = hand_energies(row, means, covs, weights)
        assert float(prior_max(pose)[i]) == pytest.approx(min(e), rel=1e-12)
        exact = -math.log(sum(math.exp(-v) for v in e))
        assert float(prior_exact(pose)[i]) == pytest.approx(exact, rel=1e-12)
        torch.testing.assert_close(
            prior_max.component_energies(pose)[i], torch.tensor(e, dtype=F64)
        )
    # The exact NLL is never above the best component's.
    assert (prior_exact(pose) <= prior_max(pose) + 1e-12).all()


def test_matches_torch_multivariate_normal_in_69_dimensions():
    arrays = synthetic_gaussian_mixture(generator=torch.Generator().manual_seed(0))
    prior = GaussianMixturePrior.from_mapping(arrays, mixture="exact")
    pose = 0.2 * torch.randn(5, 69, dtype=F64)
    mvn = torch.distributions.MultivariateNormal(
        torch.from_numpy(arrays["means"]), covariance_matrix=torch.from_numpy(arrays["covars"])
    )
    log_p = mvn.log_prob(pose.unsqueeze(1)) + torch.log(torch.from_numpy(arrays["weights"]))
    torch.testing.assert_close(prior(pose), -torch.logsumexp(log_p, dim=1))
    prior_max = GaussianMixturePrior.from_mapping(arrays)
    torch.testing.assert_close(prior_max(pose), (-log_p).amin(dim=1))


def test_from_mapping_accepts_covars_or_covariances_and_names_missing_keys():
    means, covs, weights = two_component_2d()
    a = GaussianMixturePrior.from_mapping({"means": means, "covars": covs, "weights": weights})
    b = GaussianMixturePrior.from_mapping(
        {"means": means, "covariances": covs, "weights": weights, "extra": 1}
    )
    torch.testing.assert_close(a.precisions, b.precisions)
    assert a.num_components == 2 and a.dim == 2
    with pytest.raises(ValueError, match=r"key 'weights'; found keys \['covars', 'means'\]"):
        GaussianMixturePrior.from_mapping({"means": means, "covars": covs})
    with pytest.raises(ValueError, match="'covars' or 'covariances'"):
        GaussianMixturePrior.from_mapping({"means": means, "weights": weights})


def test_rejects_bad_arrays():
    means, covs, weights = two_component_2d()
    with pytest.raises(
        ValueError, match=r"`covariances` must have shape \(K, D, D\) = \(2, 2, 2\)"
    ):
        GaussianMixturePrior.from_arrays(means, covs[:, :1], weights)
    with pytest.raises(ValueError, match="`weights` must have shape"):
        GaussianMixturePrior.from_arrays(means, covs, weights[:1])
    not_pd = covs.copy()
    not_pd[1] = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match=r"positive definite; components \[1\]"):
        GaussianMixturePrior.from_arrays(means, not_pd, weights)
    asym = covs.copy()
    asym[0, 0, 1] = 0.5
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixturePrior.from_arrays(means, asym, weights)
    with pytest.raises(ValueError, match="positive"):
        GaussianMixturePrior.from_arrays(means, covs, np.array([1.0, 0.0]))
    with pytest.raises(TypeError, match=r"numpy array or a torch\.Tensor"):
        GaussianMixturePrior.from_arrays(means.tolist(), covs, weights)
    with pytest.raises(ValueError, match=r"`pose` must have shape \(\.\.\., 2\)"):
        GaussianMixturePrior.from_arrays(means, covs, weights)(torch.zeros(3, 4, dtype=F64))


def test_gradient_is_finite_and_follows_dtype_and_module_moves():
    prior = GaussianMixturePrior.from_mapping(
        synthetic_gaussian_mixture(
            num_components=3, dim=6, generator=torch.Generator().manual_seed(1)
        )
    )
    pose = torch.randn(4, 6, requires_grad=True)
    prior(pose).sum().backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all()
    assert prior(pose.detach()).dtype == torch.float32
    prior32 = prior.to(torch.float32)
    assert prior32.precisions.dtype == torch.float32
    assert set(dict(prior.named_buffers())) == {"means", "precisions", "component_costs"}


def test_fit_pose_gmm_recovers_a_known_mixture():
    rng = np.random.default_rng(0)
    means = np.array([[2.0, 0.0, 0.0], [-2.0, 1.0, 0.0]])
    samples = np.concatenate(
        [rng.normal(means[0], 0.1, size=(600, 3)), rng.normal(means[1], 0.2, size=(200, 3))]
    )
    gmm = fit_pose_gmm(samples, num_components=2, seed=1, regularization=1e-6)
    order = np.argsort(-gmm["means"][:, 0])
    np.testing.assert_allclose(gmm["means"][order], means, atol=0.05)
    np.testing.assert_allclose(gmm["weights"][order], [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(np.diagonal(gmm["covars"][order[1]]), [0.04] * 3, rtol=0.25)
    prior = GaussianMixturePrior.from_mapping(gmm)
    assert prior.num_components == 2


def test_fit_pose_gmm_refuses_too_few_or_non_finite_poses():
    with pytest.raises(ValueError, match=r"P >= num_components \(8\)"):
        fit_pose_gmm(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_pose_gmm(np.full((10, 2), np.nan), num_components=2)
