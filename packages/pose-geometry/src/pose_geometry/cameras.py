"""Pinhole projection and ProHMR's weak-perspective crop camera.

ProHMR regresses a weak-perspective camera ``(s, tx, ty)`` per crop. It is turned into a camera
translation ``t = (tx, ty, 2·f / (crop_size·s + 1e-9))`` for a pinhole camera with focal length
``f`` (5000 px for a 224 px crop). Projecting with focal ``f / crop_size`` and principal point 0
then gives keypoints directly in normalised crop coordinates ``u_px / crop_size - 0.5``, which is
the same as projecting into the crop in pixels (focal ``f``, principal point at the crop centre)
and normalising.

For fitting in the original image, the crop camera is re-expressed as a translation for a camera
with focal ``f`` pixels and principal point at the image centre ("full frame").

Conventions: camera axes x right, y down, z forward (computer vision); lengths in metres, image
coordinates in pixels unless a name says "normalized". Batch dimensions ``...`` come from the main
argument (``camera``, ``translation``, ``points``); every other tensor argument must broadcast to
them. Scalar options (focal lengths, sizes) may be Python numbers or tensors broadcastable to the
batch. Tensor options are cast to the dtype of the main argument; results have that dtype and its
device. No epsilon other than ProHMR's 1e-9 in the depth denominator is added, and nothing is
clamped. Where ProHMR would silently give a negative or huge depth (a weak-perspective scale
``s <= 0``, a depth ``t_z <= 0``) or a meaningless camera (a focal length or size <= 0), the
conversions raise ValueError naming the argument (one check per call: a device sync on GPU).
`project_points` checks shapes only (it runs inside fitting loops).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_geometry.checks import (
    check_floating,
    check_positive,
    check_same_device,
    check_tensor,
    check_trailing_shape,
)

__all__ = [
    "crop_camera_to_full_frame_translation",
    "crop_normalized_to_image_pixels",
    "crop_normalized_to_pixels",
    "crop_pixels_to_normalized",
    "full_frame_translation_to_crop_camera",
    "image_pixels_to_crop_normalized",
    "project_points",
    "translation_to_weak_perspective",
    "weak_perspective_to_translation",
]

DEPTH_EPSILON = 1e-9
"""ProHMR's epsilon in every depth denominator: depth = 2·f / (size·s + 1e-9)."""

_Scalar = float | Tensor

_SCALE_NAME = "camera[..., 0] (scale s)"
_DEPTH_NAME = "translation[..., 2] (depth t_z)"


# --------------------------------------------------------------------------------------------
# Private argument helpers
# --------------------------------------------------------------------------------------------


def _shape_text(trailing: tuple[str, ...]) -> str:
    return "(" + ", ".join(["...", *trailing]) + ")"


def _check_broadcasts_to(
    name: str,
    x: Tensor,
    num_trailing: int,
    batch: tuple[int, ...],
    main_name: str,
    trailing_text: tuple[str, ...],
) -> None:
    """Raise ValueError unless the leading dims of `x` broadcast to `batch` (the main batch)."""
    lead = tuple(x.shape[: x.ndim - num_trailing])
    try:
        ok = torch.broadcast_shapes(lead, batch) == torch.Size(batch)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"`{name}` must have shape {_shape_text(trailing_text)} with batch dimensions "
            f"broadcastable to {batch} (the batch of `{main_name}`), got {tuple(x.shape)}"
        )


def _scalar_option(
    name: str, value: object, like: Tensor, batch: tuple[int, ...], main_name: str
) -> float | Tensor:
    """Validate a per-batch scalar: a Python number, or a tensor of shape broadcastable to `batch`.

    Tensors come back cast to `like.dtype`, with the shape they arrived in (caller adds trailing
    singleton dimensions).
    """
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a float or a torch.Tensor, got bool")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a float or a torch.Tensor, got {type(value).__name__}")
    check_floating(name, value)
    check_same_device(main_name, like, name, value)
    _check_broadcasts_to(name, value, 0, batch, main_name, ())
    return value.to(dtype=like.dtype)


def _vector_option(
    name: str, value: object, size: int, like: Tensor, batch: tuple[int, ...], main_name: str
) -> Tensor:
    """Validate a (..., size) tensor whose batch dims broadcast to `batch`; cast to `like.dtype`."""
    value = check_tensor(name, value)
    check_trailing_shape(name, value, size)
    check_floating(name, value)
    check_same_device(main_name, like, name, value)
    _check_broadcasts_to(name, value, 1, batch, main_name, (str(size),))
    return value.to(dtype=like.dtype)


def _unsqueeze_scalar(value: float | Tensor, num: int) -> float | Tensor:
    """Append `num` singleton dims to a tensor scalar (floats pass through)."""
    if isinstance(value, Tensor):
        return value.reshape(*value.shape, *([1] * num))
    return value


def _check_points(name: str, points: Tensor, min_channels: int) -> None:
    """Raise unless `points` is a floating (..., N, C) tensor with C >= `min_channels`."""
    check_tensor(name, points)
    if points.ndim < 2 or points.shape[-1] < min_channels:
        raise ValueError(
            f"`{name}` must have shape (..., N, C) with C >= {min_channels}, "
            f"got {tuple(points.shape)}"
        )
    check_floating(name, points)


def _map_first_two(points: Tensor, scale: float | Tensor, offset: float | Tensor) -> Tensor:
    """Return `points` with channels 0-1 replaced by `uv * scale + offset`; others unchanged."""
    uv = points[..., :2] * scale + offset
    if points.shape[-1] == 2:
        return uv
    return torch.cat([uv, points[..., 2:]], dim=-1)


# --------------------------------------------------------------------------------------------
# Weak-perspective crop camera <-> translation
# --------------------------------------------------------------------------------------------


def weak_perspective_to_translation(
    camera: Tensor,
    *,
    focal_length_px: _Scalar = 5000.0,
    crop_size_px: _Scalar = 224.0,
    check_scale: bool = True,
) -> Tensor:
    """Convert ProHMR's weak-perspective crop camera to a perspective camera translation.

    ``t = (tx, ty, 2·f / (crop_size·s + 1e-9))`` exactly as ProHMR (``pred_cam_t``). ProHMR
    turns ``s <= 0`` into a negative or huge (1e13) depth without a word; here it is an error
    unless `check_scale` is False.

    Args:
        camera: (..., 3) weak-perspective camera ``(s, tx, ty)``: scale ``s`` in half-crop
            widths per metre (a point X lands near ``s·(X_xy + t_xy)`` in [-1, 1] crop units)
            and translation ``(tx, ty)`` in metres.
        focal_length_px: focal length ``f`` in pixels of the crop; float or tensor broadcastable
            to ``(...)``. ProHMR: 5000.
        crop_size_px: side of the square crop in pixels; float or tensor broadcastable to
            ``(...)``. ProHMR: 224.
        check_scale: refuse a scale ``s`` that is not finite and > 0 (reads `camera` once: one
            device sync). False keeps ProHMR's behaviour for a network's own predictions inside
            training, where an ``s <= 0`` is a transient that the keypoint losses push back;
            the depth is then negative or huge, as in the original.

    Returns:
        (..., 3) camera translation ``(tx, ty, depth)`` in metres, dtype of `camera`.

    Raises:
        TypeError: if `camera` is not a floating-point tensor, or an option has a wrong type.
        ValueError: if `camera` does not end in 3, an option does not broadcast to ``(...)`` or
            is on another device, a scale ``s`` is not finite and > 0 with `check_scale`
            ("`camera[..., 0] (scale s)` must be finite and > 0, got 0 at index (3,)"), or
            `focal_length_px` or
            `crop_size_px` is not finite and > 0.
    """
    check_trailing_shape("camera", camera, 3)
    check_floating("camera", camera)
    batch = tuple(camera.shape[:-1])
    f = _scalar_option("focal_length_px", focal_length_px, camera, batch, "camera")
    size = _scalar_option("crop_size_px", crop_size_px, camera, batch, "camera")
    check_positive("focal_length_px", f)
    check_positive("crop_size_px", size)
    s = camera[..., 0]
    if check_scale:
        check_positive(_SCALE_NAME, s)
    depth = 2.0 * f / (size * s + DEPTH_EPSILON)
    return torch.stack([camera[..., 1], camera[..., 2], depth], dim=-1)


def translation_to_weak_perspective(
    translation: Tensor,
    *,
    focal_length_px: _Scalar = 5000.0,
    crop_size_px: _Scalar = 224.0,
) -> Tensor:
    """Inverse of `weak_perspective_to_translation`.

    ``s = (2·f / t_z - 1e-9) / crop_size`` and ``(tx, ty) = (t_x, t_y)``.

    Args:
        translation: (..., 3) camera translation ``(t_x, t_y, t_z)`` in metres, ``t_z != 0``.
        focal_length_px: focal length ``f`` in pixels of the crop; float or tensor broadcastable
            to ``(...)``.
        crop_size_px: side of the square crop in pixels; float or tensor broadcastable to
            ``(...)``.

    Returns:
        (..., 3) weak-perspective camera ``(s, tx, ty)``, dtype of `translation`.

    Raises:
        TypeError: if `translation` is not a floating-point tensor, or an option has a wrong type.
        ValueError: if `translation` does not end in 3, an option does not broadcast, a depth
            ``t_z`` or an option is not finite and > 0.
    """
    check_trailing_shape("translation", translation, 3)
    check_floating("translation", translation)
    batch = tuple(translation.shape[:-1])
    f = _scalar_option("focal_length_px", focal_length_px, translation, batch, "translation")
    size = _scalar_option("crop_size_px", crop_size_px, translation, batch, "translation")
    check_positive("focal_length_px", f)
    check_positive("crop_size_px", size)
    check_positive(_DEPTH_NAME, translation[..., 2])
    s = (2.0 * f / translation[..., 2] - DEPTH_EPSILON) / size
    return torch.stack([s, translation[..., 0], translation[..., 1]], dim=-1)


# --------------------------------------------------------------------------------------------
# Crop camera <-> full-frame translation
# --------------------------------------------------------------------------------------------


def crop_camera_to_full_frame_translation(
    camera: Tensor,
    *,
    box_center_px: Tensor,
    box_size_px: _Scalar,
    image_size_px: Tensor,
    focal_length_px: _Scalar = 5000.0,
) -> Tensor:
    """Express a crop's weak-perspective camera as a translation for the full image.

    As ProHMR's keypoint fitting: ``depth = 2·f / (box_size·s + 1e-9)``,
    ``t_xy = (tx, ty) + (box_center - image_center)·depth / f``, ``t_z = depth``, with
    ``image_center = image_size / 2``. The result is meant for `project_points` with focal ``f``
    and principal point ``image_size / 2``; it places the body origin (the point the crop camera
    translates) exactly where the crop camera puts it in the image. Crop rotation is ignored.

    Args:
        camera: (..., 3) weak-perspective crop camera ``(s, tx, ty)``.
        box_center_px: (..., 2) centre of the square crop box in image pixels ``(x, y)``.
        box_size_px: side of the square crop box in image pixels; float or tensor broadcastable
            to ``(...)``.
        image_size_px: (..., 2) image size ``(width, height)`` in pixels.
        focal_length_px: focal length ``f`` of the full image in pixels; float or tensor
            broadcastable to ``(...)``. ProHMR: 5000.

    Returns:
        (..., 3) camera translation in metres for the full image, dtype of `camera`.

    Raises:
        TypeError: if a tensor is not floating point, or an option has a wrong type.
        ValueError: if a trailing dimension differs from the one documented, batch
            dimensions do not broadcast to those of `camera`, a tensor is on another device
            than `camera`, or a scale ``s``, `box_size_px`, `image_size_px` or
            `focal_length_px` is not finite and > 0.
    """
    check_trailing_shape("camera", camera, 3)
    check_floating("camera", camera)
    batch = tuple(camera.shape[:-1])
    center = _vector_option("box_center_px", box_center_px, 2, camera, batch, "camera")
    size = _scalar_option("box_size_px", box_size_px, camera, batch, "camera")
    image_size = _vector_option("image_size_px", image_size_px, 2, camera, batch, "camera")
    f = _scalar_option("focal_length_px", focal_length_px, camera, batch, "camera")
    check_positive("box_size_px", size)
    check_positive("image_size_px", image_size)
    check_positive("focal_length_px", f)
    check_positive(_SCALE_NAME, camera[..., 0])
    depth = 2.0 * f / (size * camera[..., 0] + DEPTH_EPSILON)
    offset = (center - 0.5 * image_size) * _unsqueeze_scalar(depth / f, 1)
    t_xy = camera[..., 1:3] + offset
    return torch.cat([t_xy, depth.unsqueeze(-1)], dim=-1)


def full_frame_translation_to_crop_camera(
    translation: Tensor,
    *,
    box_center_px: Tensor,
    box_size_px: _Scalar,
    image_size_px: Tensor,
    focal_length_px: _Scalar = 5000.0,
) -> Tensor:
    """Inverse of `crop_camera_to_full_frame_translation`.

    ``s = (2·f / t_z - 1e-9) / box_size`` and
    ``(tx, ty) = t_xy - (box_center - image_center)·t_z / f``. Crop rotation is ignored.

    Args:
        translation: (..., 3) full-image camera translation in metres, ``t_z != 0``.
        box_center_px: (..., 2) centre of the square crop box in image pixels ``(x, y)``.
        box_size_px: side of the square crop box in image pixels; float or tensor broadcastable
            to ``(...)``.
        image_size_px: (..., 2) image size ``(width, height)`` in pixels.
        focal_length_px: focal length ``f`` of the full image in pixels; float or tensor
            broadcastable to ``(...)``.

    Returns:
        (..., 3) weak-perspective crop camera ``(s, tx, ty)``, dtype of `translation`.

    Raises:
        TypeError: if a tensor is not floating point, or an option has a wrong type.
        ValueError: if a trailing dimension differs from the one documented, batch
            dimensions do not broadcast to those of `translation`, a tensor is on another
            device, or a depth ``t_z``, `box_size_px`, `image_size_px` or `focal_length_px` is
            not finite and > 0.
    """
    check_trailing_shape("translation", translation, 3)
    check_floating("translation", translation)
    batch = tuple(translation.shape[:-1])
    main = "translation"
    center = _vector_option("box_center_px", box_center_px, 2, translation, batch, main)
    size = _scalar_option("box_size_px", box_size_px, translation, batch, main)
    image_size = _vector_option("image_size_px", image_size_px, 2, translation, batch, main)
    f = _scalar_option("focal_length_px", focal_length_px, translation, batch, main)
    check_positive("box_size_px", size)
    check_positive("image_size_px", image_size)
    check_positive("focal_length_px", f)
    depth = translation[..., 2]
    check_positive(_DEPTH_NAME, depth)
    s = (2.0 * f / depth - DEPTH_EPSILON) / size
    offset = (center - 0.5 * image_size) * _unsqueeze_scalar(depth / f, 1)
    t_xy = translation[..., 0:2] - offset
    return torch.cat([s.unsqueeze(-1), t_xy], dim=-1)


# --------------------------------------------------------------------------------------------
# Perspective projection
# --------------------------------------------------------------------------------------------


def _focal_xy(focal_px: object, points: Tensor, batch: tuple[int, ...]) -> float | Tensor:
    """Return the focal as a float or a tensor broadcastable to (..., N, 2) or (..., N, 1)."""
    if isinstance(focal_px, Tensor) and focal_px.ndim == len(batch) + 1:
        if focal_px.shape[-1] != 2:
            raise ValueError(
                f"`focal_px` must have shape (..., 2) (fx, fy) or (...) (fx = fy) with batch "
                f"dimensions broadcastable to {batch} (the batch of `points`), "
                f"got {tuple(focal_px.shape)}"
            )
        fxy = _vector_option("focal_px", focal_px, 2, points, batch, "points")
        return fxy.unsqueeze(-2)
    if isinstance(focal_px, Tensor) and focal_px.ndim > len(batch):
        raise ValueError(
            f"`focal_px` must have shape (..., 2) (fx, fy) or (...) (fx = fy) with batch "
            f"dimensions broadcastable to {batch} (the batch of `points`), "
            f"got {tuple(focal_px.shape)}"
        )
    f = _scalar_option("focal_px", focal_px, points, batch, "points")
    return _unsqueeze_scalar(f, 2)


def project_points(
    points: Tensor,
    *,
    focal_px: _Scalar,
    center_px: Tensor | None = None,
    translation: Tensor | None = None,
    rotation: Tensor | None = None,
) -> Tensor:
    """Project 3D points with a pinhole camera (ProHMR's ``perspective_projection``).

    ``X' = R·X + t``; ``p = X' / X'_z``; ``u = fx·p_x + cx``, ``v = fy·p_y + cy``. There is no
    epsilon in the division by depth (as ProHMR): points at ``X'_z = 0`` give inf/NaN.

    With the translation from `weak_perspective_to_translation`, ``focal_px = f / crop_size``
    and ``center_px = None`` the result is in normalised crop coordinates
    (``u_px / crop_size - 0.5``), as in ProHMR's training losses.

    Args:
        points: (..., N, 3) points in metres (body or world axes when `rotation` is given).
        focal_px: focal length in pixels: a float; a tensor of shape (..., 2) holding
            ``(fx, fy)``; or a tensor of shape ``(...)`` (a 0-dim tensor included) meaning
            ``fx = fy``. A tensor with exactly one dimension more than the batch of `points` is
            read as ``(fx, fy)``; to share ``(fx, fy)`` across a batch (B,), pass shape (1, 2).
        center_px: (..., 2) principal point ``(cx, cy)`` in pixels; default 0.
        translation: (..., 3) translation ``t`` in metres added after rotating; default 0.
        rotation: (..., 3, 3) rotation ``R`` applied to the points (column-vector convention);
            default identity.

    Returns:
        (..., N, 2) image coordinates ``(u, v)`` in pixels (or in the units of `focal_px` and
        `center_px`), dtype of `points`.

    Raises:
        TypeError: if a tensor is not floating point, or `focal_px` has a wrong type.
        ValueError: if a trailing dimension differs from the one documented, or batch
            dimensions do not broadcast to those of `points`.
    """
    check_trailing_shape("points", points, None, 3)
    check_floating("points", points)
    batch = tuple(points.shape[:-2])
    X = points
    if rotation is not None:
        check_trailing_shape("rotation", rotation, 3, 3)
        check_floating("rotation", rotation)
        _check_broadcasts_to("rotation", rotation, 2, batch, "points", ("3", "3"))
        R = rotation.to(dtype=points.dtype)
        X = torch.matmul(X, R.transpose(-1, -2))
    if translation is not None:
        t = _vector_option("translation", translation, 3, points, batch, "points")
        X = X + t.unsqueeze(-2)
    p = X[..., :2] / X[..., 2:3]
    uv = p * _focal_xy(focal_px, points, batch)
    if center_px is not None:
        c = _vector_option("center_px", center_px, 2, points, batch, "points")
        uv = uv + c.unsqueeze(-2)
    return uv


# --------------------------------------------------------------------------------------------
# 2D coordinate normalisation
# --------------------------------------------------------------------------------------------


def crop_pixels_to_normalized(points_px: Tensor, *, crop_size_px: _Scalar = 224.0) -> Tensor:
    """Crop pixels to ProHMR's normalised crop coordinates: ``u_norm = u_px / crop_size - 0.5``.

    Applied to the first two channels (x and y alike); further channels (e.g. confidence) pass
    through unchanged. The crop spans ``[-0.5, 0.5]``.

    Args:
        points_px: (..., N, C) points with C >= 2; channels 0-1 are ``(u, v)`` in crop pixels.
        crop_size_px: side of the square crop in pixels; float or tensor broadcastable to
            ``(...)``. ProHMR: 224.

    Returns:
        (..., N, C) points with normalised ``(u, v)``, dtype of `points_px`.

    Raises:
        TypeError: if `points_px` is not floating point, or `crop_size_px` has a wrong type.
        ValueError: if `points_px` is not (..., N, C) with C >= 2, or `crop_size_px` does not
            broadcast to ``(...)``.
    """
    _check_points("points_px", points_px, 2)
    batch = tuple(points_px.shape[:-2])
    size = _scalar_option("crop_size_px", crop_size_px, points_px, batch, "points_px")
    size = _unsqueeze_scalar(size, 2)
    return _map_first_two(points_px, 1.0 / size, -0.5)


def crop_normalized_to_pixels(
    points_normalized: Tensor, *, crop_size_px: _Scalar = 224.0
) -> Tensor:
    """Inverse of `crop_pixels_to_normalized`: ``u_px = crop_size·(u_norm + 0.5)``.

    Args:
        points_normalized: (..., N, C) points with C >= 2; channels 0-1 are normalised crop
            coordinates; further channels pass through unchanged.
        crop_size_px: side of the square crop in pixels; float or tensor broadcastable to
            ``(...)``.

    Returns:
        (..., N, C) points with ``(u, v)`` in crop pixels, dtype of `points_normalized`.

    Raises:
        TypeError: if `points_normalized` is not floating point, or `crop_size_px` has a wrong
            type.
        ValueError: if `points_normalized` is not (..., N, C) with C >= 2, or `crop_size_px`
            does not broadcast to ``(...)``.
    """
    name = "points_normalized"
    _check_points(name, points_normalized, 2)
    batch = tuple(points_normalized.shape[:-2])
    size = _scalar_option("crop_size_px", crop_size_px, points_normalized, batch, name)
    size = _unsqueeze_scalar(size, 2)
    return _map_first_two(points_normalized, size, 0.5 * size)


def image_pixels_to_crop_normalized(
    points_px: Tensor, *, box_center_px: Tensor, box_size_px: _Scalar
) -> Tensor:
    """Full-image pixels to normalised coordinates of an axis-aligned square crop box.

    ``u_norm = (u - box_center) / box_size`` on the first two channels; further channels pass
    through unchanged. The box spans ``[-0.5, 0.5]``. Crop rotation (ProHMR's rotation
    augmentation) and flipping are ignored: this is only the crop's translation and scale.

    Args:
        points_px: (..., N, C) points with C >= 2; channels 0-1 are ``(u, v)`` in image pixels.
        box_center_px: (..., 2) centre of the box in image pixels ``(x, y)``.
        box_size_px: side of the box in image pixels; float or tensor broadcastable to ``(...)``.

    Returns:
        (..., N, C) points with ``(u, v)`` in normalised crop coordinates, dtype of `points_px`.

    Raises:
        TypeError: if a tensor is not floating point, or `box_size_px` has a wrong type.
        ValueError: if `points_px` is not (..., N, C) with C >= 2, or `box_center_px` /
            `box_size_px` do not match or broadcast to ``(...)``.
    """
    _check_points("points_px", points_px, 2)
    batch = tuple(points_px.shape[:-2])
    center = _vector_option("box_center_px", box_center_px, 2, points_px, batch, "points_px")
    size = _scalar_option("box_size_px", box_size_px, points_px, batch, "points_px")
    inv = 1.0 / _unsqueeze_scalar(size, 2)
    return _map_first_two(points_px, inv, -center.unsqueeze(-2) * inv)


def crop_normalized_to_image_pixels(
    points_normalized: Tensor, *, box_center_px: Tensor, box_size_px: _Scalar
) -> Tensor:
    """Inverse of `image_pixels_to_crop_normalized`: ``u = box_center + box_size·u_norm``.

    Crop rotation and flipping are ignored (axis-aligned square box only).

    Args:
        points_normalized: (..., N, C) points with C >= 2; channels 0-1 are normalised crop
            coordinates; further channels pass through unchanged.
        box_center_px: (..., 2) centre of the box in image pixels ``(x, y)``.
        box_size_px: side of the box in image pixels; float or tensor broadcastable to ``(...)``.

    Returns:
        (..., N, C) points with ``(u, v)`` in image pixels, dtype of `points_normalized`.

    Raises:
        TypeError: if a tensor is not floating point, or `box_size_px` has a wrong type.
        ValueError: if `points_normalized` is not (..., N, C) with C >= 2, or `box_center_px` /
            `box_size_px` do not match or broadcast to ``(...)``.
    """
    name = "points_normalized"
    _check_points(name, points_normalized, 2)
    batch = tuple(points_normalized.shape[:-2])
    center = _vector_option("box_center_px", box_center_px, 2, points_normalized, batch, name)
    size = _scalar_option("box_size_px", box_size_px, points_normalized, batch, name)
    return _map_first_two(points_normalized, _unsqueeze_scalar(size, 2), center.unsqueeze(-2))
