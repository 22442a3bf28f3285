"""Gaussian-mixture pose prior (SMPLify, Bogo et al. 2016), built from arrays.

SMPLify's prior is a mixture of K Gaussians (8 in ``gmm_08.pkl``) over the 69 axis-angle numbers
of the SMPL body pose (joints 1..23), fitted to CMU motion capture. Its negative log-likelihood is
approximated by the best single component ("max-mixture"):

    E(θ) = min_k [ ½ (θ - μ_k)ᵀ Σ_k⁻¹ (θ - μ_k) - log w_k + ½ log det(2π Σ_k) ]

which is what SMPLify and its PyTorch ports minimise. The exact mixture
``-log Σ_k w_k N(θ; μ_k, Σ_k)`` is available with ``mixture="exact"``.

This module never reads files: a tool reads ``gmm_08.pkl`` with a safe unpickler and passes the
arrays (keys ``means``, ``covars``, ``weights``) to `GaussianMixturePrior.from_mapping`. Where that
file is absent, `fit_pose_gmm` fits such arrays by EM to training poses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from pose_geometry import check_floating

__all__ = ["GaussianMixturePrior", "fit_pose_gmm"]

_ArrayLike = Tensor | np.ndarray

#: How far the mixture weights may sum from 1 (weights stored in float32 sum to 1 ± 1e-7).
WEIGHT_SUM_TOLERANCE = 1e-4


def _as_tensor(name: str, value: object) -> Tensor:
    if isinstance(value, Tensor):
        out = value.detach()
    elif isinstance(value, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise TypeError(
            f"`{name}` must be a numpy array or a torch.Tensor, got {type(value).__name__}"
        )
    if not (torch.is_floating_point(out) or out.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"`{name}` must hold real numbers, got dtype {out.dtype}")
    return out.to(torch.float64)


class GaussianMixturePrior(nn.Module):
    """Negative log-likelihood of a Gaussian mixture over pose vectors.

    Buffers (float64 unless converted with ``.to(dtype)``): ``means`` (K, D), ``precisions``
    (K, D, D) = Σ_k⁻¹, ``component_costs`` (K,) = ``-log w_k + ½ log det(2π Σ_k)``.

    Args:
        means: (K, D) component means (SMPLify: (8, 69), axis-angle radians).
        covariances: (K, D, D) symmetric positive-definite covariances.
        weights: (K,) positive mixture weights summing to 1 (within `WEIGHT_SUM_TOLERANCE`,
            for weights stored in float32; SMPLify's do). They are used as given.
        mixture: ``"max"`` (the best component, SMPLify's approximation; default) or
            ``"exact"`` (``-logsumexp`` over components).

    Raises:
        TypeError: if an array is not numeric.
        ValueError: for inconsistent shapes, non-finite values, a covariance that is not
            symmetric positive definite, a non-positive weight, weights that do not sum to 1
            or an unknown `mixture`.
    """

    means: Tensor
    precisions: Tensor
    component_costs: Tensor

    def __init__(
        self,
        *,
        means: _ArrayLike,
        covariances: _ArrayLike,
        weights: _ArrayLike,
        mixture: Literal["max", "exact"] = "max",
    ) -> None:
        super().__init__()
        if mixture not in ("max", "exact"):
            raise ValueError(f"unknown mixture {mixture!r}; expected 'max' or 'exact'")
        mu = _as_tensor("means", means)
        cov = _as_tensor("covariances", covariances)
        w = _as_tensor("weights", weights)
        if mu.ndim != 2:
            raise ValueError(f"`means` must have shape (K, D), got {tuple(mu.shape)}")
        K, D = mu.shape
        if tuple(cov.shape) != (K, D, D):
            raise ValueError(
                f"`covariances` must have shape (K, D, D) = ({K}, {D}, {D}) to match `means`, "
                f"got {tuple(cov.shape)}"
            )
        if tuple(w.shape) != (K,):
            raise ValueError(
                f"`weights` must have shape (K,) = ({K},) to match `means`, got {tuple(w.shape)}"
            )
        for name, value in (("means", mu), ("covariances", cov), ("weights", w)):
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"`{name}` contains NaN or inf")
        if not bool((w > 0).all()):
            raise ValueError(f"`weights` must all be positive, got {w.tolist()}")
        total = float(w.sum())
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            raise ValueError(
                f"`weights` must sum to 1 (a mixture), got sum {total:.6g} ({w.tolist()}); "
                f"normalise them (weights / weights.sum()) if they are relative"
            )
        asym = (cov - cov.transpose(-1, -2)).abs().amax()
        if float(asym) > 1e-8 * max(1.0, float(cov.abs().amax())):
            raise ValueError(f"`covariances` must be symmetric (max asymmetry {float(asym):.3g})")
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            bad = torch.nonzero(info).flatten().tolist()
            smallest = torch.linalg.eigvalsh(cov[bad]).amin(dim=-1).tolist()
            shown = ", ".join(f"{v:.3g}" for v in smallest)
            raise ValueError(
                f"`covariances` must be positive definite; components {bad} are not "
                f"(smallest eigenvalues {shown})"
            )
        eye = torch.eye(D, dtype=cov.dtype).expand(K, D, D)
        precisions = torch.cholesky_solve(eye, chol)
        precisions = 0.5 * (precisions + precisions.transpose(-1, -2))
        half_logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        costs = -torch.log(w) + half_logdet + 0.5 * D * math.log(2 * math.pi)
        self.mixture = mixture
        self.register_buffer("means", mu)
        self.register_buffer("precisions", precisions)
        self.register_buffer("component_costs", costs)

    @classmethod
    def from_arrays(
        cls,
        means: _ArrayLike,
        covariances: _ArrayLike,
        weights: _ArrayLike,
        *,
        mixture: Literal["max", "exact"] = "max",
    ) -> GaussianMixturePrior:
        """Build the prior from arrays (numpy or torch); see the class for shapes."""
        return cls(means=means, covariances=covariances, weights=weights, mixture=mixture)

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, object], *, mixture: Literal["max", "exact"] = "max"
    ) -> GaussianMixturePrior:
        """Build the prior from a ``gmm_08.pkl``-style mapping.

        Keys: ``means`` (K, D), ``covars`` or ``covariances`` (K, D, D), ``weights`` (K,);
        other keys are ignored.

        Raises:
            ValueError: if a key is missing (the message lists the keys found).
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"`mapping` must be a mapping, got {type(mapping).__name__}")
        keys = sorted(map(str, mapping.keys()))
        cov_key = "covars" if "covars" in mapping else "covariances"
        for key in ("means", cov_key, "weights"):
            if key not in mapping:
                wanted = "'covars' or 'covariances'" if key == cov_key else repr(key)
                raise ValueError(f"`mapping` must have the key {wanted}; found keys {keys}")
        return cls(
            means=mapping["means"],  # type: ignore[arg-type]
            covariances=mapping[cov_key],  # type: ignore[arg-type]
            weights=mapping["weights"],  # type: ignore[arg-type]
            mixture=mixture,
        )

    @property
    def num_components(self) -> int:
        """K, the number of mixture components."""
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        """D, the dimension of the pose vectors."""
        return int(self.means.shape[1])

    def component_energies(self, pose: Tensor) -> Tensor:
        """Per-component costs ``½ (θ - μ_k)ᵀ Σ_k⁻¹ (θ - μ_k) - log w_k + ½ log det(2π Σ_k)``.

        Args:
            pose: (..., D) pose vectors (the buffers' dtype decides the precision; the result
                has the dtype of `pose`).

        Returns:
            (..., K) costs.

        Raises:
            TypeError: if `pose` is not floating point.
            ValueError: if `pose` is not (..., D) or is on another device than the buffers.
        """
        check_floating("pose", pose)
        if pose.shape[-1:] != (self.dim,):
            raise ValueError(f"`pose` must have shape (..., {self.dim}), got {tuple(pose.shape)}")
        if pose.device != self.means.device:
            raise ValueError(
                f"`pose` must be on the device of the prior's buffers ({self.means.device}), "
                f"got {pose.device}; move the prior with .to(device)"
            )
        means = self.means.to(pose.dtype)
        diff = pose.unsqueeze(-2) - means  # (..., K, D)
        mahalanobis = torch.einsum(
            "...ki,kij,...kj->...k", diff, self.precisions.to(pose.dtype), diff
        )
        return 0.5 * mahalanobis + self.component_costs.to(pose.dtype)

    def forward(self, pose: Tensor) -> Tensor:
        """Negative log-likelihood of `pose`.

        Args:
            pose: (..., D) pose vectors, e.g. (B, 69) SMPL body-pose axis-angle (radians); a
                (..., 23, 3) body pose can be passed as ``pose.flatten(-2)``.

        Returns:
            (...) ``min_k`` of `component_energies` (``mixture="max"``) or
            ``-logsumexp_k(-energies)`` (``mixture="exact"``).
        """
        energies = self.component_energies(pose)
        if self.mixture == "max":
            return energies.amin(dim=-1)
        return -torch.logsumexp(-energies, dim=-1)


def fit_pose_gmm(
    poses: np.ndarray,
    *,
    num_components: int = 8,
    iterations: int = 100,
    regularization: float = 1e-3,
    seed: int = 0,
    tolerance: float = 1e-6,
) -> dict[str, np.ndarray]:
    """Fit a full-covariance Gaussian mixture to poses by EM (a stand-in for ``gmm_08.pkl``).

    k-means++ seeding, then EM; ``regularization`` (rad²) is added to every covariance's
    diagonal so components stay positive definite with few samples.

    Args:
        poses: (P, D) pose vectors (SMPLify: (P, 69) axis-angle body poses).
        num_components: K (SMPLify: 8).
        iterations: maximum EM iterations.
        regularization: diagonal added to each covariance.
        seed: seed of the k-means++ draw.
        tolerance: stop when the mean log-likelihood improves by less than this.

    Returns:
        ``{"means": (K, D), "covars": (K, D, D), "weights": (K,)}`` float64, the layout of
        ``gmm_08.pkl`` (`GaussianMixturePrior.from_mapping` reads it).
    """
    x = np.asarray(poses, dtype=np.float64)
    if x.ndim != 2 or len(x) < num_components:
        raise ValueError(
            f"`poses` must be (P, D) with P >= num_components ({num_components}), got {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("`poses` contains NaN or inf")
    rng = np.random.default_rng(seed)
    P, D = x.shape
    # k-means++ seeding
    centres = [x[rng.integers(P)]]
    for _ in range(1, num_components):
        d2 = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        total = d2.sum()
        probabilities = d2 / total if total > 0 else np.full(P, 1.0 / P)
        centres.append(x[rng.choice(P, p=probabilities)])
    means = np.stack(centres)
    labels = np.argmin(((x[:, None] - means[None]) ** 2).sum(-1), axis=1)
    eye = np.eye(D)
    covars = np.empty((num_components, D, D))
    weights = np.empty(num_components)
    for k in range(num_components):
        members = x[labels == k]
        if len(members) < 2:
            members = x
        covars[k] = np.cov(members, rowvar=False) + regularization * eye
        weights[k] = max(len(x[labels == k]), 1) / P
    weights /= weights.sum()
    previous = -np.inf
    for _ in range(iterations):
        # E step: log N(x; mu_k, S_k) + log w_k through Cholesky factors
        log_resp = np.empty((P, num_components))
        for k in range(num_components):
            chol = np.linalg.cholesky(covars[k])
            diff = np.linalg.solve(chol, (x - means[k]).T)
            log_det = 2.0 * np.log(np.diag(chol)).sum()
            log_resp[:, k] = (
                -0.5 * (diff**2).sum(0) - 0.5 * log_det - 0.5 * D * np.log(2 * np.pi)
            ) + np.log(weights[k])
        top = log_resp.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_resp - top).sum(axis=1))
        resp = np.exp(log_resp - log_norm[:, None])
        mean_ll = float(log_norm.mean())
        # M step
        counts = resp.sum(axis=0) + 1e-10
        weights = counts / P
        means = (resp.T @ x) / counts[:, None]
        for k in range(num_components):
            diff = x - means[k]
            covars[k] = (resp[:, k, None] * diff).T @ diff / counts[k] + regularization * eye
            covars[k] = 0.5 * (covars[k] + covars[k].T)
        if mean_ll - previous < tolerance:
            break
        previous = mean_ll
    return {"means": means, "covars": covars, "weights": weights / weights.sum()}
