"""Sample sets that a probabilistic model's samples are compared with.

To show that a model's posterior samples are better than arbitrary diversity, score these with
the same `best_of_n` (or `kmeans_best_of_k`) as the model's N samples:

- Gaussian: N samples from N(θ*, σ²I) around a prediction θ* (joint positions, σ in metres),
  i.e. isotropic noise of standard deviation σ on every coordinate;
- training set: N poses drawn uniformly from a set of training poses, ignoring the image.

Both return (B, N, J, 3) like the model's samples; "posterior vs Gaussian vs training set" is
then three calls of `best_of_n` on three sample tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_metrics._inputs import check_poses

__all__ = ["gaussian_baseline_samples", "training_set_baseline_samples"]


def _check_count(name: str, value: int, minimum: int = 1) -> int:
    count = int(value)
    if count < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}")
    return count


def gaussian_baseline_samples(
    center: Tensor,
    *,
    num_samples: int,
    sigma_m: float,
    generator: torch.Generator | None = None,
    include_center: bool = True,
) -> Tensor:
    """Draw N poses from an isotropic Gaussian around a predicted pose.

    Args:
        center: (..., J, 3) the prediction θ* in metres, e.g. the model's mode (B, J, 3).
        num_samples: N, samples per pose.
        sigma_m: standard deviation σ of every coordinate, in metres (>= 0).
        generator: random source on `center`'s device (None: the global one).
        include_center: make sample 0 the centre itself, as the model's sample 0 is its mode,
            so `best_of_n(...).mode_*` scores θ*; the other N - 1 samples are noisy.

    Returns:
        (..., N, J, 3) samples θ* + σ·ε with ε ~ N(0, I), in `center`'s dtype and device.

    Raises:
        ValueError: for a `center` that is not (..., J, 3), N < 1 or σ < 0.
        TypeError: for a non-tensor or non-floating-point `center`.
    """
    center = check_poses("center", center)
    n = _check_count("num_samples", num_samples)
    sigma = float(sigma_m)
    if not sigma >= 0:
        raise ValueError(f"`sigma_m` must be a non-negative number of metres, got {sigma_m}")
    shape = (*center.shape[:-2], n, *center.shape[-2:])
    noise = torch.randn(shape, generator=generator, dtype=center.dtype, device=center.device)
    if include_center:
        noise[..., 0, :, :] = 0
    return center[..., None, :, :] + sigma * noise


def training_set_baseline_samples(
    training_poses: Tensor,
    *,
    num_images: int,
    num_samples: int,
    generator: torch.Generator | None = None,
    replacement: bool = True,
) -> Tensor:
    """Draw N poses per image uniformly at random from a set of training poses.

    Args:
        training_poses: (M, J, 3) poses (joint positions, metres), e.g. the training set's
            root-aligned 3D joints in the evaluation's layout.
        num_images: B, images to draw for (the batch being evaluated).
        num_samples: N, poses per image.
        generator: random source on `training_poses`' device (None: the global one).
        replacement: draw with replacement (default). Without, each image gets N distinct
            poses (needs N <= M; uses a (B, M) weight matrix).

    Returns:
        (B, N, J, 3) poses, in `training_poses`' dtype and device.

    Raises:
        ValueError: for `training_poses` not (M, J, 3) with M >= 1, B or N < 1, or N > M without
            replacement.
        TypeError: for a non-tensor or non-floating-point `training_poses`.
    """
    training_poses = check_poses("training_poses", training_poses, layout="(M, J, 3)")
    if training_poses.ndim != 3 or training_poses.shape[0] < 1:
        raise ValueError(
            f"`training_poses` must have shape (M, J, 3) with M >= 1, "
            f"got {tuple(training_poses.shape)}"
        )
    b = _check_count("num_images", num_images)
    n = _check_count("num_samples", num_samples)
    m = training_poses.shape[0]
    device = training_poses.device
    if replacement:
        index = torch.randint(m, (b, n), generator=generator, device=device)
    else:
        if n > m:
            raise ValueError(
                f"`num_samples` ({n}) must not exceed the number of training poses ({m}) "
                f"when drawing without replacement"
            )
        weights = torch.ones(b, m, device=device)
        index = torch.multinomial(weights, n, replacement=False, generator=generator)
    return training_poses[index]
