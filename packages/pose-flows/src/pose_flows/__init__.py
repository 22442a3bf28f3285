"""Conditional Glow flows and the ProHMR heads.

`ConditionalGlow` is built from a `FlowConfig` and nflows parts (ActNorm, LU linear, additive or
affine coupling with the authors' residual conditioner: context at the input layer only), with
`log_prob(x, context) -> (log_prob, z)` and `sample(context, num_samples or z) -> (x, log_prob, z)`
(the mode at z = 0). `SMPLFlowHead` is ProHMR's pose head (flow over 24 joints × 6D plus the FC
head for betas and camera); `SkeletonFlowHead` is the lifting model's head over 16 × 3 joints.
Parameter names follow the original checkpoints (minus the fork's `dummy_buffer`s);
`load_original_state_dict` loads such state dicts strictly. Both heads take one `FlowConfig`.
Shapes: B batch, N samples per context, D flow features, C context features.
"""

from importlib.metadata import PackageNotFoundError, version

from pose_flows.glow import ConditionalGlow, FlowConfig, FlowLogProb, FlowSample
from pose_flows.heads import (
    FCHead,
    PoseHeadOutput,
    SkeletonFlowHead,
    SkeletonHeadOutput,
    SMPLFlowHead,
    sample_with_mode,
)
from pose_flows.layers import ActNorm, LULinear, ResidualBlock, ResidualConditioner, SharedContext
from pose_flows.state_dict import (
    DUMMY_BUFFER_NAME,
    LoadedStateDict,
    load_original_state_dict,
    strip_dummy_buffers,
)

try:
    __version__ = version("pose-flows")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "DUMMY_BUFFER_NAME",
    "ActNorm",
    "ConditionalGlow",
    "FCHead",
    "FlowConfig",
    "FlowLogProb",
    "FlowSample",
    "LULinear",
    "LoadedStateDict",
    "PoseHeadOutput",
    "ResidualBlock",
    "ResidualConditioner",
    "SMPLFlowHead",
    "SharedContext",
    "SkeletonFlowHead",
    "SkeletonHeadOutput",
    "__version__",
    "load_original_state_dict",
    "sample_with_mode",
    "strip_dummy_buffers",
]
