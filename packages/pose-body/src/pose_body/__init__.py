"""SMPL body model with the 44-keypoint layout.

The SMPL body model (through smplx) with ProHMR's 44-keypoint layout, chumpy-free and pickle-safe
loading of official model files, a joints-only fast path, a procedural SMPL-format body model for
tests and the synthetic world, and a headless mesh renderer.

Status: this package is a placeholder in the monorepo; its API lands with a later change. It already
builds, installs and imports so that the workspace, the isolated environments and the wheels can be
checked end to end.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pose-body")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
