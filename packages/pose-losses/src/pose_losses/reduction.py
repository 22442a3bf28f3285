"""The mode / expectation split of per-sample losses (ProHMR's training objective).

Every forward pass of ProHMR draws N samples per image with the mode (z = 0) first: sample 0 is
the mode, samples 1..N-1 are random. A loss term computed per sample, (..., N), is reduced to
two scalars:

    mode        = Σ_b value[b, 0] / B
    expectation = Σ_b Σ_{n≥1} value[b, n] / (B·(N-1))        (0 when N = 1)

where b runs over all batch positions "..." (B of them). With per-sample values that are sums
over keypoints and coordinates this is exactly the original's "sum divided by B" reduction; with
per-sample means (the 6D orthonormality term) it is the original's mean over all entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from pose_geometry import check_floating

__all__ = ["ModeExpectation", "split_mode_expectation"]


@dataclass(frozen=True)
class ModeExpectation:
    """A loss term split into its mode (sample 0) and expectation (samples 1..N-1) parts.

    Attributes:
        mode: () scalar, mean over the batch of the sample-0 values.
        expectation: () scalar, mean over the batch and samples 1..N-1; exactly 0 (still part of
            the autograd graph) when N = 1.
    """

    mode: Tensor
    expectation: Tensor


def split_mode_expectation(per_sample: Tensor) -> ModeExpectation:
    """Reduce per-sample loss values to the mode and expectation terms.

    Where the original returns NaN for the expectation of the 6D orthonormality term when N = 1
    (a mean over nothing), this returns 0 for every term, which is what the other terms do.

    Args:
        per_sample: (..., N) loss values per batch element and sample, sample 0 = the mode,
            N >= 1.

    Returns:
        `ModeExpectation(mode, expectation)`, two scalars.

    Raises:
        ValueError: if `per_sample` has no sample axis or N = 0.
        TypeError: if it is not a floating-point tensor.
    """
    check_floating("per_sample", per_sample)
    if per_sample.ndim < 1 or per_sample.shape[-1] < 1:
        raise ValueError(
            f"`per_sample` must have shape (..., N) with N >= 1 samples, got "
            f"{tuple(per_sample.shape)}"
        )
    mode = per_sample[..., 0].mean()
    rest = per_sample[..., 1:]
    # An empty sum is an exact 0 that keeps the graph and device; the mean would be NaN.
    expectation = rest.mean() if rest.numel() > 0 else rest.sum()
    return ModeExpectation(mode=mode, expectation=expectation)
