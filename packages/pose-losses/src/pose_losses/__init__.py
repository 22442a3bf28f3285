"""ProHMR's training losses as pure functions and small modules.

Keypoint 2D/3D losses (confidence-weighted L1, pelvis-aligned in 3D), the SMPL parameter loss
with annotation masks, the flow's negative log-likelihood, the 6D orthonormality penalty, the
mode (sample 0) / expectation (samples 1..N-1) split, the HMR-style discriminator with LSGAN
losses, and the published loss weights with a function that forms the weighted total.

Term functions return one value per batch element and sample, (..., N); `split_mode_expectation`
reduces them with the original's reductions. Units: 2D keypoints in normalised crop units, 3D
keypoints in metres, rotations as matrices acting on column vectors, 6D in ProHMR's column layout.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_losses.adversarial import (
    PoseDiscriminator,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from pose_losses.keypoints import keypoint_2d_loss, keypoint_3d_loss
from pose_losses.nll import add_target_noise, negative_log_likelihood
from pose_losses.orthonormal import rot6d_orthonormality_loss
from pose_losses.reduction import ModeExpectation, split_mode_expectation
from pose_losses.smpl_params import smpl_parameter_loss
from pose_losses.weights import CombinedLoss, LossWeights, combine_losses

try:
    __version__ = version("pose-losses")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "CombinedLoss",
    "LossWeights",
    "ModeExpectation",
    "PoseDiscriminator",
    "__version__",
    "add_target_noise",
    "combine_losses",
    "keypoint_2d_loss",
    "keypoint_3d_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "negative_log_likelihood",
    "rot6d_orthonormality_loss",
    "smpl_parameter_loss",
    "split_mode_expectation",
]
