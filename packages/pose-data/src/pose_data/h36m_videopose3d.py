"""Human3.6M in VideoPose3D's npz files (the usual input of 2D-to-3D lifting work).

- ``data_3d_h36m.npz``: ``positions_3d`` = {subject: {action: (T, 32, 3)}}, the 32 mocap
  joints in WORLD axes (z up), metres.
- ``data_2d_h36m_<source>.npz`` (``gt``, ``cpn_ft_h36m_dbb``, ``detectron_ft_h36m``, ...):
  ``positions_2d`` = {subject: {action: [4 arrays (T, 17, 2)]}} in pixels, one array per
  camera in the order of ``H36M_CAMERA_IDS``, joints in H36M-17 order; and ``metadata``
  (``layout_name``, ``num_joints``, ``keypoints_symmetry``).

Both hold pickled Python objects inside the npz; they are read with
:func:`~pose_data.io.restricted_pickle_load` (numpy arrays, dicts and lists only),
never with ``np.load(allow_pickle=True)``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pose_data.h36m_layout import H36M_CAMERA_IDS
from pose_data.io import restricted_pickle_load

__all__ = ["read_npz_object", "read_videopose3d_2d", "read_videopose3d_3d"]


def read_npz_object(path: str | os.PathLike[str], key: str) -> Any:
    """The Python object stored as the 0-d object array `key` of an npz, loaded safely.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: naming the file and key if the key is missing or not a pickled object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"npz file not found: {path}")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not an npz (zip) file") from None
    with archive:
        member = f"{key}.npy"
        if member not in archive.namelist():
            keys = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            raise ValueError(f"{path}: field '{key}' is missing; fields: {keys}")
        with archive.open(member) as file:
            version = np.lib.format.read_magic(file)
            header = (
                np.lib.format.read_array_header_1_0(file)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(file)
            )
            _, _, dtype = header
            if dtype != np.dtype(object):
                array = np.lib.format.read_array(archive.open(member), allow_pickle=False)
                return array
            value = restricted_pickle_load(
                file.read(), encoding="latin1", name=f"{path} field '{key}'"
            )
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        return value.item()
    return value


def _check_subjects(path: Path, field: str, value: Any) -> Mapping[str, Mapping[str, Any]]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{path}: field '{field}' must be a dict {{subject: {{action: ...}}}}, got "
            f"{type(value).__name__}"
        )
    for subject, actions in value.items():
        if not isinstance(actions, Mapping):
            raise ValueError(
                f"{path}: field '{field}'[{subject!r}] must be a dict of actions, got "
                f"{type(actions).__name__}"
            )
    return value


def read_videopose3d_3d(path: str | os.PathLike[str]) -> dict[str, dict[str, np.ndarray]]:
    """Read ``data_3d_h36m.npz``.

    Returns:
        {subject: {action: (T, 32, 3) world joints in metres, float64}}.

    Raises:
        FileNotFoundError, ValueError: naming the file, field, subject and action.
    """
    path = Path(path)
    data = _check_subjects(path, "positions_3d", read_npz_object(path, "positions_3d"))
    result: dict[str, dict[str, np.ndarray]] = {}
    for subject, actions in data.items():
        result[str(subject)] = {}
        for action, positions in actions.items():
            array = np.asarray(positions, dtype=np.float64)
            if array.ndim != 3 or array.shape[1:] != (32, 3):
                raise ValueError(
                    f"{path}: field 'positions_3d'[{subject!r}][{action!r}] must have shape "
                    f"(T, 32, 3), got {array.shape}"
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(
                    f"{path}: field 'positions_3d'[{subject!r}][{action!r}] has NaN or inf"
                )
            result[str(subject)][str(action)] = array
    return result


def read_videopose3d_2d(
    path: str | os.PathLike[str],
) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict[str, Any]]:
    """Read a ``data_2d_h36m_<source>.npz`` file.

    Returns:
        ({subject: {action: [4 arrays (T, 17, C)]}}, metadata): pixels, C = 2 (or 3 with a
        confidence), cameras in the order of ``H36M_CAMERA_IDS``.

    Raises:
        FileNotFoundError, ValueError: naming the file, field, subject, action and camera.
    """
    path = Path(path)
    data = _check_subjects(path, "positions_2d", read_npz_object(path, "positions_2d"))
    try:
        metadata = read_npz_object(path, "metadata")
    except ValueError:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise ValueError(f"{path}: field 'metadata' must be a dict, got {type(metadata).__name__}")
    num_joints = int(metadata.get("num_joints", 17))
    if num_joints != 17:
        raise ValueError(f"{path}: field 'metadata' says {num_joints} joints; expected 17")
    result: dict[str, dict[str, list[np.ndarray]]] = {}
    for subject, actions in data.items():
        result[str(subject)] = {}
        for action, per_camera in actions.items():
            if len(per_camera) != len(H36M_CAMERA_IDS):
                raise ValueError(
                    f"{path}: field 'positions_2d'[{subject!r}][{action!r}] must list "
                    f"{len(H36M_CAMERA_IDS)} cameras, got {len(per_camera)}"
                )
            arrays = []
            for camera, positions in zip(H36M_CAMERA_IDS, per_camera, strict=True):
                array = np.asarray(positions, dtype=np.float64)
                if array.ndim != 3 or array.shape[1] != 17 or array.shape[2] not in (2, 3):
                    raise ValueError(
                        f"{path}: field 'positions_2d'[{subject!r}][{action!r}] camera "
                        f"{camera} must have shape (T, 17, 2 or 3), got {array.shape}"
                    )
                arrays.append(array)
            result[str(subject)][str(action)] = arrays
    return result, dict(metadata)
