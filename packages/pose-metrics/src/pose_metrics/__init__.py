"""Metrics for (probabilistic) 3D human pose: MPJPE, PA-MPJPE, best-of-n, k-means, PCK/AUC,
the uncertainty of samples (diversity, calibration, spread-error rank correlation) and the
acceleration error of sequences.

Conventions: poses are (..., J, 3) joint positions in metres unless `mm_per_unit` says
otherwise; errors are in millimetres; MPJPE is measured after subtracting a root joint
(`root_idx`: 39 = pelvis of the 44-keypoint layout, 0 for the lifting model); PA-MPJPE after a
similarity Procrustes alignment (pose_geometry.procrustes_align). N samples per image come as
(B, N, J, 3) with sample 0 = the mode. Every function follows its inputs' device.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_metrics.accumulator import GroupSummary, MetricAccumulator, MetricSummary
from pose_metrics.baselines import gaussian_baseline_samples, training_set_baseline_samples
from pose_metrics.clustering import KMeansBestOfKResult, KMeansResult, kmeans, kmeans_best_of_k
from pose_metrics.errors import (
    joint_position_errors,
    mpjpe,
    pa_joint_position_errors,
    pa_mpjpe,
    root_align,
)
from pose_metrics.hypotheses import BestOfNResult, SampleErrors, best_of_n
from pose_metrics.pck_auc import auc, pck, pck_curve
from pose_metrics.temporal import acceleration_error, acceleration_errors, joint_accelerations
from pose_metrics.uncertainty import (
    DEFAULT_LEVELS,
    UncertaintyAccumulator,
    UncertaintySummary,
    average_ranks,
    central_region_coverage,
    sample_diversity,
    spearman,
)

try:
    __version__ = version("pose-metrics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_LEVELS",
    "BestOfNResult",
    "GroupSummary",
    "KMeansBestOfKResult",
    "KMeansResult",
    "MetricAccumulator",
    "MetricSummary",
    "SampleErrors",
    "UncertaintyAccumulator",
    "UncertaintySummary",
    "__version__",
    "acceleration_error",
    "acceleration_errors",
    "auc",
    "average_ranks",
    "best_of_n",
    "central_region_coverage",
    "gaussian_baseline_samples",
    "joint_accelerations",
    "joint_position_errors",
    "kmeans",
    "kmeans_best_of_k",
    "mpjpe",
    "pa_joint_position_errors",
    "pa_mpjpe",
    "pck",
    "pck_curve",
    "root_align",
    "sample_diversity",
    "spearman",
    "training_set_baseline_samples",
]
