"""Best-of-n evaluation of a probabilistic model's samples.

For every image the model gives N samples (B, N, J, 3); sample 0 is the mode (ProHMR: z = 0).
Reported per image, as the original evaluator does: the mode's error and the minimum over all N
samples, each metric minimised separately (min MPJPE and min PA-MPJPE may come from different
samples). The per-sample errors are kept, so the error of the sample that minimises another
metric, of a sample picked by another rule, or the minimum over the first n samples (error
versus n curves) come from the same result.

PA-MPJPE of all B·N samples is one batched Procrustes (pose_geometry.procrustes_align) over the
root-aligned selected joints, cut into chunks along N only to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pose_geometry import check_same_leading_shape
from pose_metrics._inputs import (
    MIN_PA_JOINTS,
    JointIndex,
    check_mask,
    check_mm_per_unit,
    check_poses,
    check_same_joints,
    mean_over_joints,
    pa_joint_errors,
    prepare_pair,
)

__all__ = ["BestOfNResult", "SampleErrors", "best_of_n"]

# Point sets aligned at once when `chunk_size` is None: enough for one batched SVD to be
# efficient, small enough (a few tens of MB for 14 joints) not to thrash the caches.
_SETS_PER_CHUNK = 16384


@dataclass(frozen=True)
class SampleErrors:
    """MPJPE and PA-MPJPE of one chosen sample per image.

    Attributes:
        mpjpe: (...) MPJPE in millimetres.
        pa_mpjpe: (...) PA-MPJPE in millimetres.
    """

    mpjpe: Tensor
    pa_mpjpe: Tensor


@dataclass(frozen=True)
class BestOfNResult:
    """Errors of N samples per image against the ground truth (`best_of_n`).

    Leading dimensions `...` are those of the input images (B for a batch). NaN propagates: an
    image with a non-finite sample has NaN minima, counted later by the accumulator.

    Attributes:
        sample_mpjpe: (..., N) MPJPE of every sample, millimetres; sample 0 is the mode.
        sample_pa_mpjpe: (..., N) PA-MPJPE of every sample, millimetres.
        min_mpjpe: (...) minimum MPJPE over the N samples.
        min_pa_mpjpe: (...) minimum PA-MPJPE over the N samples (possibly another sample).
        argmin_mpjpe: (...) int64 index of the sample with the minimum MPJPE.
        argmin_pa_mpjpe: (...) int64 index of the sample with the minimum PA-MPJPE.
        num_nonfinite_samples: (...) int64 number of samples with a NaN or inf error.
    """

    sample_mpjpe: Tensor
    sample_pa_mpjpe: Tensor
    min_mpjpe: Tensor
    min_pa_mpjpe: Tensor
    argmin_mpjpe: Tensor
    argmin_pa_mpjpe: Tensor
    num_nonfinite_samples: Tensor

    @property
    def num_samples(self) -> int:
        """N, the number of samples per image."""
        return self.sample_mpjpe.shape[-1]

    @property
    def mode_mpjpe(self) -> Tensor:
        """(...) MPJPE of sample 0, the mode, in millimetres."""
        return self.sample_mpjpe[..., 0]

    @property
    def mode_pa_mpjpe(self) -> Tensor:
        """(...) PA-MPJPE of sample 0, the mode, in millimetres."""
        return self.sample_pa_mpjpe[..., 0]

    @property
    def pa_mpjpe_at_min_mpjpe(self) -> Tensor:
        """(...) PA-MPJPE of the sample that minimises MPJPE."""
        return self.sample_pa_mpjpe.gather(-1, self.argmin_mpjpe[..., None])[..., 0]

    @property
    def mpjpe_at_min_pa_mpjpe(self) -> Tensor:
        """(...) MPJPE of the sample that minimises PA-MPJPE."""
        return self.sample_mpjpe.gather(-1, self.argmin_pa_mpjpe[..., None])[..., 0]

    def at(self, sample_idx: Tensor) -> SampleErrors:
        """Errors of one sample per image chosen by another rule (e.g. the best 2D fit).

        Args:
            sample_idx: (...) integer index in [0, N) of the chosen sample of each image.

        Returns:
            SampleErrors with (...) MPJPE and PA-MPJPE of the chosen samples.

        Raises:
            ValueError: if `sample_idx` does not have the images' shape or leaves [0, N).
        """
        leading = tuple(self.sample_mpjpe.shape[:-1])
        if not isinstance(sample_idx, Tensor) or tuple(sample_idx.shape) != leading:
            shape = tuple(sample_idx.shape) if isinstance(sample_idx, Tensor) else sample_idx
            raise ValueError(f"`sample_idx` must be a tensor of shape {leading}, got {shape}")
        if sample_idx.dtype.is_floating_point or sample_idx.dtype == torch.bool:
            raise ValueError(f"`sample_idx` must hold integers, got dtype {sample_idx.dtype}")
        index = sample_idx.to(device=self.sample_mpjpe.device, dtype=torch.long)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.num_samples):
            raise ValueError(
                f"`sample_idx` must lie in [0, {self.num_samples}), got values in "
                f"[{int(index.min())}, {int(index.max())}]"
            )
        return SampleErrors(
            mpjpe=self.sample_mpjpe.gather(-1, index[..., None])[..., 0],
            pa_mpjpe=self.sample_pa_mpjpe.gather(-1, index[..., None])[..., 0],
        )

    def best_of_first(self, num_samples: int) -> SampleErrors:
        """Minimum of each metric over samples 0..num_samples-1 (for error-versus-n curves).

        Raises:
            ValueError: unless 1 <= num_samples <= N.
        """
        if not 1 <= num_samples <= self.num_samples:
            raise ValueError(
                f"`num_samples` must lie in [1, {self.num_samples}], got {num_samples}"
            )
        return SampleErrors(
            mpjpe=self.sample_mpjpe[..., :num_samples].amin(-1),
            pa_mpjpe=self.sample_pa_mpjpe[..., :num_samples].amin(-1),
        )

    def metrics(self, *, prefix: str = "") -> dict[str, Tensor]:
        """The four per-image values the original evaluator reports, by name.

        Returns:
            {prefix + "mode_mpjpe", "min_mpjpe", "mode_pa_mpjpe", "min_pa_mpjpe"}: each (...)
            millimetres, ready for `MetricAccumulator.add`.
        """
        return {
            f"{prefix}mode_mpjpe": self.mode_mpjpe,
            f"{prefix}min_mpjpe": self.min_mpjpe,
            f"{prefix}mode_pa_mpjpe": self.mode_pa_mpjpe,
            f"{prefix}min_pa_mpjpe": self.min_pa_mpjpe,
        }


def best_of_n(
    predictions: Tensor,
    target: Tensor,
    *,
    root_idx: int | None,
    joint_idx: JointIndex = None,
    mask: Tensor | None = None,
    mm_per_unit: float = 1000.0,
    chunk_size: int | None = None,
) -> BestOfNResult:
    """Score N samples per image with MPJPE and PA-MPJPE; mode (sample 0) and minima.

    Args:
        predictions: (..., N, J, 3) N samples per image, sample 0 = the mode; input units
            (metres by default). Typically (B, N, 44, 3).
        target: (..., J, 3) ground-truth joints, same `...` and J.
        root_idx: root joint subtracted from samples and target before MPJPE (39 for the
            44-keypoint layout, 0 for the lifting model); None = no root alignment. PA-MPJPE
            does not depend on it.
        joint_idx: the J' joints evaluated (e.g. `pose_geometry.LSP14_IDX_44`); None = all.
        mask: optional (..., J) non-negative per-image joint confidences (weights of the means
            and of the Procrustes fit; 0 leaves a joint out).
        mm_per_unit: millimetres per input unit (1000 for metres).
        chunk_size: samples per image aligned at once; None picks one so that about 16k point
            sets go into each batched Procrustes. Only memory and speed depend on it.

    Returns:
        BestOfNResult with per-sample errors (..., N), minima and their indices (...).

    Raises:
        ValueError: for shapes other than documented, J = 0, different J, batch dimensions
            that differ, N = 0, an index outside [0, J) (negative included), fewer than 3
            selected joints (PA), a negative or non-finite mask weight, tensors on different
            devices or a chunk size below 1.
        TypeError: for non-tensor or non-floating-point inputs.
    """
    scale = check_mm_per_unit(mm_per_unit)
    predictions = check_poses("predictions", predictions, layout="(..., N, J, 3)")
    target = check_poses("target", target)
    check_same_joints("predictions", predictions, "target", target)
    check_same_leading_shape("predictions", predictions, 3, "target", target, 2)
    num_samples = predictions.shape[-3]
    if num_samples < 1:
        raise ValueError(
            f"`predictions` must hold at least one sample in (..., N, J, 3), "
            f"got {tuple(predictions.shape)}"
        )
    if chunk_size is not None and int(chunk_size) < 1:
        raise ValueError(f"`chunk_size` must be at least 1, got {chunk_size}")
    if mask is not None:
        mask = check_mask(mask, target.shape[-2], tuple(target.shape[:-2]), ("target", target))
        mask = mask[..., None, :]
    p, t, w = prepare_pair(
        predictions,
        target[..., None, :, :],
        root_idx=root_idx,
        joint_idx=joint_idx,
        mask=mask,
        prediction_name="predictions",
        min_joints=MIN_PA_JOINTS,
    )
    # p: (..., N, J', 3); t: (..., 1, J', 3); w: (..., 1, J') or None.
    sample_mpjpe = mean_over_joints(torch.linalg.vector_norm(p - t, dim=-1), w) * scale

    num_images = max(1, p[..., 0, 0, 0].numel())
    chunk = max(1, _SETS_PER_CHUNK // num_images) if chunk_size is None else int(chunk_size)
    pieces = [
        mean_over_joints(pa_joint_errors(p[..., start : start + chunk, :, :], t, w), w)
        for start in range(0, num_samples, chunk)
    ]
    sample_pa_mpjpe = (pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)) * scale

    min_mpjpe, argmin_mpjpe = sample_mpjpe.min(dim=-1)
    min_pa_mpjpe, argmin_pa_mpjpe = sample_pa_mpjpe.min(dim=-1)
    nonfinite = ~(torch.isfinite(sample_mpjpe) & torch.isfinite(sample_pa_mpjpe))
    return BestOfNResult(
        sample_mpjpe=sample_mpjpe,
        sample_pa_mpjpe=sample_pa_mpjpe,
        min_mpjpe=min_mpjpe,
        min_pa_mpjpe=min_pa_mpjpe,
        argmin_mpjpe=argmin_mpjpe,
        argmin_pa_mpjpe=argmin_pa_mpjpe,
        num_nonfinite_samples=nonfinite.sum(-1),
    )
