"""Datasets in the ProHMR npz format.

Readers for the ProHMR/SPIN npz format and the original datasets (Human3.6M, MPI-INF-3DHP, 3DPW,
MPII, COCO, OpenPose JSON, CMU mocap), converters to the npz format, crop and augmentation with
OpenCV, and weighted mixing of datasets.

Status: this package is a placeholder in the monorepo; its API lands with a later change. It already
builds, installs and imports so that the workspace, the isolated environments and the wheels can be
checked end to end.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pose-data")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
