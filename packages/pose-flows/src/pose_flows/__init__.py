"""Conditional Glow flows and the ProHMR heads.

ConditionalGlow built from nflows parts (ActNorm, LU linear, additive or affine coupling with a
residual conditioner), with `log_prob(x, context)` and `sample(context, num_samples or z)` (the
mode at z = 0), plus the SMPL pose head (flow + FC head for betas and camera) and the skeleton head
for lifting.

Status: this package is a placeholder in the monorepo; its API lands with a later change. It already
builds, installs and imports so that the workspace, the isolated environments and the wheels can be
checked end to end.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pose-flows")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
