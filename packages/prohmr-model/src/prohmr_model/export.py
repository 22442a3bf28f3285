"""Bodies as files other tools open: SMPL parameters as npz and JSON, meshes as OBJ.

Everything is in the camera frame of the full image (x right, y down, z forward, metres; the
computer-vision camera of ``Prediction``): a mesh written here sits where the person is seen,
seen by a pinhole camera at the origin with ``focal_length`` pixels and the principal point at
the image centre. SMPL parameters use the names of the smplx package: ``global_orient`` (3,)
and ``body_pose`` (69,) axis-angle vectors in radians, ``betas`` (10,) and ``transl`` (3,)
metres, so that ``smplx.SMPL(...)(**params)`` gives the body in the body frame and ``+ transl``
puts it in the camera frame. (SMPL's own translation is applied after its root joint; this
``transl`` is the camera translation of ``Prediction.camera_translation``, which this project's
body model applies to the posed vertices as they are.)

A record holds one body (the mode) or, with ``samples=True``, the N hypotheses with a leading
N axis (sample 0 = the mode).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import pose_geometry as pg
from pose_body import write_obj
from pose_data.io import atomic_write, atomic_write_npz

from .predictor import Prediction

__all__ = ["body_record", "prediction_record", "save_meshes", "save_params"]


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)


def body_record(
    *,
    global_orient: Tensor,
    body_pose: Tensor,
    betas: Tensor,
    transl: Tensor,
    focal_length: Any,
    image_size: Any,
    keypoints_3d: Tensor | None = None,
    keypoints_2d: Tensor | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """One body's (or N hypotheses') SMPL parameters and camera as float64 NumPy arrays.

    Args:
        global_orient: (..., 3, 3) root rotation matrix, camera axes.
        body_pose: (..., 23, 3, 3) parent-relative rotation matrices.
        betas: (..., 10) shape coefficients.
        transl: (..., 3) metres: body frame + transl = camera frame of the full image.
        focal_length: the full image's focal length in pixels (a number or 0-d tensor).
        image_size: (width, height) of the full image in pixels.
        keypoints_3d: (..., K, 3) keypoints in the body frame; stored moved into the camera
            frame (``+ transl``).
        keypoints_2d: (..., K, 2) image pixels.
        extra: more arrays to store as they are (e.g. ``log_prob``, ``box_center``).

    Returns:
        ``global_orient`` (..., 3), ``body_pose`` (..., 69), ``betas``, ``transl``,
        ``focal_length`` (), ``image_size`` (2,), and the optional keys given.

    Raises:
        ValueError: naming the argument when a shape does not match the others.
    """
    lead = tuple(betas.shape[:-1])
    expected = {
        "global_orient": (global_orient, (*lead, 3, 3)),
        "body_pose": (body_pose, (*lead, 23, 3, 3)),
        "transl": (transl, (*lead, 3)),
    }
    for name, (value, shape) in expected.items():
        if tuple(value.shape) != shape:
            raise ValueError(
                f"`{name}` must have shape {shape} to match `betas` {tuple(betas.shape)}, "
                f"got {tuple(value.shape)}"
            )
    record = {
        "global_orient": _numpy(pg.rotmat_to_axis_angle(global_orient.double())),
        "body_pose": _numpy(pg.rotmat_to_axis_angle(body_pose.double())).reshape(*lead, 69),
        "betas": _numpy(betas),
        "transl": _numpy(transl),
        "focal_length": _numpy(focal_length).reshape(()),
        "image_size": _numpy(image_size).reshape(2),
    }
    if keypoints_3d is not None:
        record["keypoints_3d"] = _numpy(keypoints_3d) + record["transl"][..., None, :]
    if keypoints_2d is not None:
        record["keypoints_2d"] = _numpy(keypoints_2d)
    for key, value in (extra or {}).items():
        if key in record:
            raise ValueError(f"`extra` key '{key}' would overwrite a parameter of the record")
        record[key] = _numpy(value)
    return record


def prediction_record(prediction: Prediction, *, samples: bool = False) -> dict[str, np.ndarray]:
    """The record of one image's ``Prediction`` (or ``FitResult``): the mode, or all samples.

    Besides ``body_record``'s keys it stores ``log_prob``, ``box_center`` and ``box_size``.

    Raises:
        TypeError: for a batched prediction (export ``prediction[i]`` per image).
    """
    if prediction.batched:
        raise TypeError("export one image's prediction at a time: `prediction[i]`")
    pick = slice(None) if samples else 0
    return body_record(
        global_orient=prediction.global_orient[pick],
        body_pose=prediction.body_pose[pick],
        betas=prediction.betas[pick],
        transl=prediction.camera_translation[pick],
        focal_length=prediction.focal_length,
        image_size=prediction.image_size,
        keypoints_3d=prediction.keypoints_3d[pick],
        keypoints_2d=prediction.keypoints_2d[pick],
        extra={
            "log_prob": prediction.log_prob[pick],
            "box_center": prediction.box_center,
            "box_size": prediction.box_size,
        },
    )


def save_params(path: str | os.PathLike[str], record: dict[str, np.ndarray]) -> tuple[Path, Path]:
    """Write a record as ``<path>.npz`` and ``<path>.json`` (same keys; JSON nested lists).

    Args:
        path: the file path without extension (an extension given is replaced).
        record: from ``body_record`` / ``prediction_record``.

    Returns:
        The npz and JSON paths, each written atomically.
    """
    stem = Path(path)
    arrays = {key: np.asarray(value) for key, value in record.items()}
    npz = atomic_write_npz(stem.with_suffix(".npz"), arrays)
    text = json.dumps({key: value.tolist() for key, value in arrays.items()}, indent=1)
    data = (text + "\n").encode("utf-8")
    json_path = atomic_write(stem.with_suffix(".json"), lambda file: file.write(data))
    return npz, json_path


def save_meshes(
    path: str | os.PathLike[str],
    vertices: Tensor,
    transl: Tensor,
    faces: Tensor,
) -> list[Path]:
    """Write meshes as OBJ files in the full image's camera frame (``vertices + transl``).

    Args:
        path: the file path without extension: one mesh is written to ``<path>.obj``; N > 1
            meshes to ``<path>.obj`` (sample 0, the mode) and ``<path>_sample001.obj``...
        vertices: (V, 3) or (N, V, 3) metres, body frame.
        transl: (3,) or (N, 3) camera translations.
        faces: (F, 3) triangles (``Predictor.faces``, ``BodyModel.faces``).

    Returns:
        The written paths, mode first.
    """
    verts = vertices if vertices.ndim == 3 else vertices[None]
    shifts = transl if transl.ndim == 2 else transl[None]
    if shifts.shape != (verts.shape[0], 3):
        raise ValueError(
            f"`transl` must have shape ({verts.shape[0]}, 3) for {verts.shape[0]} meshes, "
            f"got {tuple(transl.shape)}"
        )
    stem = Path(path).with_suffix("")
    written = []
    for index, (mesh, shift) in enumerate(zip(verts, shifts, strict=True)):
        name = stem.with_suffix(".obj") if index == 0 else Path(f"{stem}_sample{index:03d}.obj")
        comment = "camera frame of the full image: x right, y down, z forward; metres"
        written.append(write_obj(name, _numpy(mesh) + _numpy(shift), faces, comment=comment))
    return written
