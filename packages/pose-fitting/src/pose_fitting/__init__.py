"""Batched keypoint fitting with priors passed in as callables.

Optimisation-based fitting that takes a decoder (parameters -> body model inputs), a body model and
priors as callables: ProHMR keypoint fitting (L-BFGS on z, betas and camera with Geman-McClure
reprojection), an SMPLify-style baseline with a GMM pose prior, and multiview refinement.

Status: this package is a placeholder in the monorepo; its API lands with a later change. It already
builds, installs and imports so that the workspace, the isolated environments and the wheels can be
checked end to end.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pose-fitting")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
