"""Batched optimisation-based fitting of body models to 2D keypoints, with priors as callables.

A generic core (`minimize`: per-item L-BFGS with strong-Wolfe line search, or Adam, with
ProHMR's stopping rules and a per-item report) and three fittings built on it: ProHMR's keypoint
fitting over the latent z of a decoder (`fit_keypoints`; of whole sequences with shared betas
and a smoothness term: `fit_keypoints_sequence`), an SMPLify-style baseline with a
Gaussian-mixture pose prior (`fit_smplify`, `GaussianMixturePrior`), and ProHMR's multiview
refinement (`refine_multiview`). The decoder, the body model and the pose prior are passed in as
callables; this package depends on torch, numpy and pose-geometry only.

Conventions: items of a batch are fitted independently (fitting a batch equals fitting each item
alone); rotation matrices act on column vectors; lengths in metres, image coordinates in pixels;
weights are stored un-squared and enter the objectives squared, as in the originals.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_fitting._common import HIP_KEYPOINT_IDX_44, TOO_FEW_KEYPOINTS
from pose_fitting.core import (
    CONVERGED_REASONS,
    AdamOptions,
    FitReport,
    LBFGSOptions,
    MinimizeResult,
    StoppingRules,
    minimize,
    relative_change,
)
from pose_fitting.gmm import GaussianMixturePrior, fit_pose_gmm
from pose_fitting.keypoint_fitting import (
    FittingCamera,
    KeypointFittingOptions,
    KeypointFittingResult,
    fit_keypoints,
)
from pose_fitting.multiview import MultiviewOptions, MultiviewResult, refine_multiview
from pose_fitting.sequence import (
    SequenceFittingOptions,
    SequenceFittingResult,
    fit_keypoints_sequence,
)
from pose_fitting.smplify import (
    TORSO_KEYPOINT_IDX_44,
    SMPLifyOptions,
    SMPLifyResult,
    fit_smplify,
)
from pose_fitting.terms import (
    ANGLE_PRIOR_AXES,
    ANGLE_PRIOR_BODY_JOINT_IDX,
    ANGLE_PRIOR_SIGNS,
    ANGLE_PRIOR_SMPL_JOINTS,
    acceleration_term,
    angle_prior,
    depth_deviation,
    geman_mcclure,
    image_size_weight,
    reprojection_term,
    rotation_consistency,
    squared_norm,
)

try:
    __version__ = version("pose-fitting")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "ANGLE_PRIOR_AXES",
    "ANGLE_PRIOR_BODY_JOINT_IDX",
    "ANGLE_PRIOR_SIGNS",
    "ANGLE_PRIOR_SMPL_JOINTS",
    "CONVERGED_REASONS",
    "HIP_KEYPOINT_IDX_44",
    "TOO_FEW_KEYPOINTS",
    "TORSO_KEYPOINT_IDX_44",
    "AdamOptions",
    "FitReport",
    "FittingCamera",
    "GaussianMixturePrior",
    "KeypointFittingOptions",
    "KeypointFittingResult",
    "LBFGSOptions",
    "MinimizeResult",
    "MultiviewOptions",
    "MultiviewResult",
    "SMPLifyOptions",
    "SMPLifyResult",
    "SequenceFittingOptions",
    "SequenceFittingResult",
    "StoppingRules",
    "__version__",
    "acceleration_term",
    "angle_prior",
    "depth_deviation",
    "fit_keypoints",
    "fit_keypoints_sequence",
    "fit_pose_gmm",
    "fit_smplify",
    "geman_mcclure",
    "image_size_weight",
    "minimize",
    "refine_multiview",
    "relative_change",
    "reprojection_term",
    "rotation_consistency",
    "squared_norm",
]
