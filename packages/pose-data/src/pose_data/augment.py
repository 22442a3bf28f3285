"""Crop and augmentation of one example, as ProHMR's ``get_example``.

See docs/training.md#augmentation.

Every step is a pure NumPy/OpenCV function; :func:`crop_and_augment` chains them in the original
order. Randomness is confined to :func:`sample_augmentation`, which draws every parameter of one
example from a ``numpy.random.Generator`` (always the same count of numbers, so the stream never
depends on an outcome).

Geometry (pixels, x right, y down; 3D camera frame x right, y down, z forward):

- The crop is the square of side ``box_size * scale`` centred on the (translated) box centre,
  rotated by ``rotation_deg`` in the image plane, resampled to ``output_size`` pixels. A crop
  pixel u relates to an image pixel x by ``u = A·F·(x - c) + S/2`` with
  ``A = (S / side)·[[cos r, sin r], [-sin r, cos r]]`` and F = diag(-1, 1) when flipped, else I.
  This is exactly the three-point map of the original (centre, half-axes rotated by +r with
  ``(x cos r - y sin r, x sin r + y cos r)``); mirroring the image and its centre
  (``c_x <- W - c_x - 1``) is the same as mirroring about the box centre, so the flip is folded
  into the matrix and the image is never copied.
- 3D keypoints and the global orientation are rotated by ``R_z(-r)``, the rotation about the
  camera axis that matches the crop, so the projection of the augmented 3D keypoints (principal
  point at the box centre) lands on the augmented 2D keypoints.
- Crop-normalised 2D coordinates are ``u / S - 0.5`` in [-0.5, 0.5].
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pose_geometry import (
    FLIP_PERMUTATION_44,
    SMPL_FLIP_PERMUTATION,
    axis_angle_to_rotmat,
    rotmat_to_axis_angle,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SMPL_BODY_POSE_FLIP_INDEX_69",
    "AugmentationConfig",
    "AugmentationParams",
    "CroppedExample",
    "box_from_keypoints",
    "check_image_complete",
    "crop_affine_matrix",
    "crop_and_augment",
    "crop_box",
    "crop_image",
    "decode_reduction",
    "extreme_crop_box",
    "flip_keypoints_2d_pixels",
    "flip_keypoints_3d",
    "flip_smpl_pose",
    "image_size_from_header",
    "in_plane_rotation_matrix",
    "normalize_image",
    "read_image",
    "rotate_global_orient",
    "rotate_keypoints_3d",
    "sample_augmentation",
    "transform_points_2d",
]

#: ImageNet RGB mean on the [0, 1] scale; images are normalised as
#: (x - 255·mean) / (255·std) on 0..255 values.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: ImageNet RGB standard deviation on the [0, 1] scale (docs/conventions.md#image-normalisation).
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Index list into the 69-number SMPL body pose (23 joints x 3, joint 1 first): the flipped pose
#: takes ``body_pose[SMPL_BODY_POSE_FLIP_INDEX_69]`` (left/right joints swapped;
#: docs/conventions.md#flips), derived from ``pose_geometry.SMPL_FLIP_PERMUTATION``.
SMPL_BODY_POSE_FLIP_INDEX_69: tuple[int, ...] = tuple(
    3 * (source - 1) + k for source in SMPL_FLIP_PERMUTATION[1:] for k in range(3)
)


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class AugmentationConfig:
    """Ranges and probabilities of the training augmentation (defaults: ProHMR's).

    See docs/training.md#augmentation.

    Attributes:
        scale_factor: crop side multiplied by ``1 + clip(N(0,1), -1, 1) * scale_factor``.
        rotation_factor_deg: rotation ``clip(N(0,1), -2, 2) * rotation_factor_deg`` degrees ...
        rotation_probability: ... applied with this probability (else 0).
        translation_factor: box centre moved by ``clip(N(0,1), -1, 1) * translation_factor``
            times the box side, in x and in y independently (always applied).
        flip_probability: horizontal flip probability (ProHMR: DO_FLIP and FLIP_AUG_RATE).
        extreme_crop_probability: probability of the EFT-style extreme crop
            (docs/training.md#extreme-cropping).
        color_scale: each RGB channel multiplied by a factor uniform in
            ``[1 - color_scale, 1 + color_scale]``.
    """

    scale_factor: float = 0.3
    rotation_factor_deg: float = 30.0
    rotation_probability: float = 0.6
    translation_factor: float = 0.02
    flip_probability: float = 0.5
    extreme_crop_probability: float = 0.10
    color_scale: float = 0.2

    def __post_init__(self) -> None:
        for name in ("scale_factor", "rotation_factor_deg", "translation_factor", "color_scale"):
            value = getattr(self, name)
            if not (_is_real(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
        for name in ("rotation_probability", "flip_probability", "extreme_crop_probability"):
            value = getattr(self, name)
            if not (_is_real(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {value!r}")
        if self.scale_factor >= 1.0:
            raise ValueError(
                f"`scale_factor` must be < 1 (the crop side must stay positive), "
                f"got {self.scale_factor}"
            )
        if self.color_scale >= 1.0:
            raise ValueError(f"`color_scale` must be < 1, got {self.color_scale}")

    @classmethod
    def none(cls) -> AugmentationConfig:
        """A configuration that changes nothing (evaluation)."""
        return cls(
            scale_factor=0.0,
            rotation_factor_deg=0.0,
            rotation_probability=0.0,
            translation_factor=0.0,
            flip_probability=0.0,
            extreme_crop_probability=0.0,
            color_scale=0.0,
        )

    @property
    def is_identity(self) -> bool:
        """True if every example is left unchanged."""
        return self == AugmentationConfig.none()


@dataclass(frozen=True)
class AugmentationParams:
    """The augmentation drawn for one example (identity by default).

    Attributes:
        scale: crop side multiplier.
        rotation_deg: in-plane rotation in degrees (the crop content turns by -rotation_deg
            on screen, the 3D keypoints by R_z(-rotation_deg)).
        flip: mirror horizontally.
        extreme_crop: apply the extreme crop.
        extreme_crop_draw: uniform [0, 1) draw choosing the extreme-crop type.
        translation: (tx, ty) box-centre shift in units of the box side.
        color: per-channel (R, G, B) factors.
    """

    scale: float = 1.0
    rotation_deg: float = 0.0
    flip: bool = False
    extreme_crop: bool = False
    extreme_crop_draw: float = 0.0
    translation: tuple[float, float] = (0.0, 0.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)


#: Count of numbers :func:`sample_augmentation` draws per example.
_NUM_DRAWS = 11


def sample_augmentation(config: AugmentationConfig, rng: np.random.Generator) -> AugmentationParams:
    """Draw the augmentation of one example (docs/training.md#augmentation).

    Always draws the same 11 numbers from ``rng`` in a fixed order (tx, ty, scale, rotation gate,
    rotation, flip, extreme-crop gate, extreme-crop type, three colour factors), whatever the
    outcome, so the generator's later use does not depend on it. Probabilities compare a uniform
    [0, 1) draw with ``< rate`` (the original's ``<=`` differs only on a draw of exactly the rate).

    Args:
        config: ranges and probabilities.
        rng: the example's generator, e.g. ``numpy.random.default_rng([seed, epoch, index])``.

    Returns:
        The parameters; ``AugmentationConfig.none()`` gives the identity.
    """
    if not isinstance(config, AugmentationConfig):
        raise TypeError(f"`config` must be an AugmentationConfig, got {type(config).__name__}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"`rng` must be a numpy.random.Generator, got {type(rng).__name__}")
    normal = rng.standard_normal(4)
    uniform = rng.random(4)
    color_draw = rng.random(3)
    tx = float(np.clip(normal[0], -1.0, 1.0)) * config.translation_factor
    ty = float(np.clip(normal[1], -1.0, 1.0)) * config.translation_factor
    scale = 1.0 + float(np.clip(normal[2], -1.0, 1.0)) * config.scale_factor
    rotate = uniform[0] < config.rotation_probability
    rotation = float(np.clip(normal[3], -2.0, 2.0)) * config.rotation_factor_deg if rotate else 0.0
    extreme = bool(uniform[2] < config.extreme_crop_probability)
    low, high = 1.0 - config.color_scale, 1.0 + config.color_scale
    color = low + (high - low) * color_draw
    return AugmentationParams(
        scale=scale,
        rotation_deg=rotation,
        flip=bool(uniform[1] < config.flip_probability),
        extreme_crop=extreme,
        extreme_crop_draw=float(uniform[3]) if extreme else 0.0,
        translation=(tx, ty),
        color=(float(color[0]), float(color[1]), float(color[2])),
    )


# ---------------------------------------------------------------------------------------------
# Keypoints and SMPL parameters
# ---------------------------------------------------------------------------------------------


def _as_keypoints(name: str, keypoints: object, min_channels: int) -> np.ndarray:
    array = np.asarray(keypoints)
    if array.ndim < 2 or array.shape[-1] < min_channels:
        raise ValueError(
            f"`{name}` must have shape (..., K, C) with C >= {min_channels}, got {array.shape}"
        )
    if array.dtype.kind not in "fiu":
        raise TypeError(f"`{name}` must hold real numbers, got dtype {array.dtype}")
    return array


def _check_permutation(permutation: Sequence[int], num_keypoints: int) -> np.ndarray:
    index = np.asarray(permutation, dtype=np.int64)
    if index.shape != (num_keypoints,) or not np.array_equal(
        np.sort(index), np.arange(num_keypoints)
    ):
        raise ValueError(
            f"`permutation` must be a permutation of 0..{num_keypoints - 1} "
            f"(one entry per keypoint), got {len(index)} entries"
        )
    return index


def flip_keypoints_2d_pixels(
    keypoints: np.ndarray,
    *,
    image_width: float,
    permutation: Sequence[int] = FLIP_PERMUTATION_44,
) -> np.ndarray:
    """Mirror pixel keypoints in an image of width W: x -> W - x - 1, then swap left and right.

    Args:
        keypoints: (..., K, C) with C >= 2: (x_px, y_px, ...); other channels are copied.
        image_width: W in pixels.
        permutation: K indices, output keypoint i takes input ``permutation[i]``.

    Returns:
        (..., K, C) new array (same dtype for floats, float64 otherwise).
    """
    array = _as_keypoints("keypoints", keypoints, 2)
    index = _check_permutation(permutation, array.shape[-2])
    out = array[..., index, :].astype(np.result_type(array.dtype, np.float32), copy=True)
    out[..., 0] = image_width - out[..., 0] - 1
    return out


def flip_keypoints_3d(
    keypoints: np.ndarray, *, permutation: Sequence[int] = FLIP_PERMUTATION_44
) -> np.ndarray:
    """Mirror 3D keypoints (x -> -x, camera frame) and swap left and right.

    The NumPy counterpart of ``pose_geometry.flip_keypoints`` for the data pipeline.

    Args:
        keypoints: (..., K, C) with C >= 2; channel 0 is x, the others are copied.
        permutation: K indices, output keypoint i takes input ``permutation[i]``.

    Returns:
        (..., K, C) new array; flipping twice returns the input.
    """
    array = _as_keypoints("keypoints", keypoints, 2)
    index = _check_permutation(permutation, array.shape[-2])
    out = array[..., index, :].astype(np.result_type(array.dtype, np.float32), copy=True)
    out[..., 0] = -out[..., 0]
    return out


def flip_smpl_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror an SMPL axis-angle pose (docs/conventions.md#flips).

    The 23 body joints take the rotation of their mirror joint (left/right swapped, spine,
    neck and head kept), then the y and z components of every joint, the global orientation
    included, are negated.

    Args:
        pose: (..., 72) axis-angle: [0:3] global orientation, [3:72] the 23 body joints.

    Returns:
        (..., 72) mirrored pose (new array); flipping twice returns the input.
    """
    array = np.asarray(pose)
    if array.shape[-1:] != (72,):
        raise ValueError(f"`pose` must have shape (..., 72), got {array.shape}")
    array = array.astype(np.result_type(array.dtype, np.float32))
    body = array[..., 3:][..., list(SMPL_BODY_POSE_FLIP_INDEX_69)]
    out = np.concatenate([array[..., :3], body], axis=-1)
    out = out.reshape(*out.shape[:-1], 24, 3)
    out[..., 1:] = -out[..., 1:]
    return out.reshape(*array.shape)


def in_plane_rotation_matrix(rotation_deg: float) -> np.ndarray:
    """R_z(-rotation_deg): the 3D rotation about the camera axis matching a crop rotation.

    ``R_z(a) = [[cos a, -sin a, 0], [sin a, cos a, 0], [0, 0, 1]]``, so the returned matrix is
    ``[[cos r, sin r, 0], [-sin r, cos r, 0], [0, 0, 1]]`` for r = rotation_deg in radians.

    Returns:
        (3, 3) float64 rotation matrix (acts on column vectors).
    """
    r = math.radians(float(rotation_deg))
    c, s = math.cos(r), math.sin(r)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def rotate_keypoints_3d(keypoints: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Rotate 3D keypoints about the camera axis by R_z(-rotation_deg) (augmentation step 4).

    Args:
        keypoints: (..., K, C) with C >= 3: (x, y, z, ...) metres; further channels (confidence)
            are copied.
        rotation_deg: crop rotation in degrees.

    Returns:
        (..., K, C) new array.
    """
    array = _as_keypoints("keypoints", keypoints, 3)
    out = array.astype(np.result_type(array.dtype, np.float32), copy=True)
    R = in_plane_rotation_matrix(rotation_deg)
    out[..., :3] = array[..., :3] @ R.T
    return out


def rotate_global_orient(global_orient: np.ndarray, rotation_deg: float) -> np.ndarray:
    """Rotate an SMPL global orientation about the camera axis: R <- R_z(-rotation_deg)·R.

    Args:
        global_orient: (..., 3) axis-angle (radians), camera frame.
        rotation_deg: crop rotation in degrees.

    Returns:
        (..., 3) axis-angle of the rotated orientation (angle in [0, π]), same float dtype.
    """
    array = np.asarray(global_orient)
    if array.shape[-1:] != (3,):
        raise ValueError(f"`global_orient` must have shape (..., 3), got {array.shape}")
    dtype = np.result_type(array.dtype, np.float32)
    if rotation_deg == 0:
        return array.astype(dtype, copy=True)
    rotmat = axis_angle_to_rotmat(torch.from_numpy(array.astype(np.float64)))
    rotation = torch.from_numpy(in_plane_rotation_matrix(rotation_deg))
    return rotmat_to_axis_angle(rotation @ rotmat).numpy().astype(dtype)


# ---------------------------------------------------------------------------------------------
# Boxes and extreme cropping (docs/training.md#extreme-cropping)
# ---------------------------------------------------------------------------------------------


def box_from_keypoints(
    keypoints: np.ndarray, *, rescale: float = 1.2, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Box around the valid keypoints: centre of their min/max box, size ``rescale`` x extent.

    Args:
        keypoints: (K, C) with C >= 3: (x_px, y_px, ..., confidence).
        rescale: factor on the extent (1.2 in the original).
        valid: (K,) bool mask; default ``confidence > 0``.

    Returns:
        centre (2,) and size (2,) = (width, height), float64.

    Raises:
        ValueError: if no keypoint is valid.
    """
    array = _as_keypoints("keypoints", keypoints, 3)
    mask = array[..., -1] > 0 if valid is None else np.asarray(valid, dtype=bool)
    if not mask.any():
        raise ValueError("`keypoints` has no valid keypoint to build a box from")
    points = array[mask, :2].astype(np.float64)
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2.0, rescale * (high - low)


_OP, _EXTRA = 0, 25
_FULL_BODY_PAIRS = (
    (2, 8),
    (3, 7),
    (4, 6),
    (5, 9),
    (6, 10),
    (7, 11),
    (10, 1),
    (11, 0),
    (13, 4),
    (14, 5),
)
_LOWER_LEGS = (*(_OP + i for i in (10, 11, 13, 14)), *(_EXTRA + i for i in (0, 1, 4, 5)))
_UPPER_BODY_VISIBLE = (
    *(_OP + i for i in (0, 1, 15, 16, 17, 18)),
    *(_EXTRA + i for i in (8, 9, 12, 13, 17, 18)),
)
_FEET = tuple(range(19, 25))
_HIPS_ZERO = (*(_OP + i for i in (10, 11, 13, 14)), *_FEET, *(_EXTRA + i for i in (0, 1, 4, 5)))
_ARMS_LEGS_OP = (3, 4, *range(6, 15), *_FEET)
_SHOULDERS_ZERO = (*_ARMS_LEGS_OP, *(_EXTRA + i for i in (*range(8), 10, 11, 14, 15, 16)))
_HEAD_ZERO = (*_ARMS_LEGS_OP, *(_EXTRA + i for i in (*range(12), 14, 15, 16)))


def _recrop(
    center: np.ndarray,
    size: np.ndarray,
    keypoints: np.ndarray,
    zeroed: Sequence[int],
    factor: float,
) -> tuple[np.ndarray, np.ndarray]:
    remaining = keypoints.copy()
    remaining[list(zeroed), -1] = 0.0
    if remaining[:, -1].sum() > 1:
        new_center, new_size = box_from_keypoints(remaining, rescale=1.2)
        return new_center, factor * new_size
    return center, size


def extreme_crop_box(
    center: np.ndarray,
    box_size: float,
    keypoints_2d: np.ndarray,
    *,
    draw: float,
) -> tuple[np.ndarray, float]:
    """EFT-style extreme crop of a box from its 44 pixel keypoints.

    If the full body is visible: ``draw`` < 0.7 crops to the hips (zeroes the lower legs and
    feet, factor 1.1), < 0.9 to the shoulders (factor 1.2), else to the head (factor 1.3). If
    only the upper body is visible: < 0.9 shoulders, else head. Otherwise the box is unchanged.
    A crop that leaves a total confidence <= 1 also leaves the box unchanged. The returned
    keypoints are not modified (the original zeroes a copy).

    Args:
        center: (2,) box centre (x_px, y_px).
        box_size: box side in pixels.
        keypoints_2d: (44, 3) original-image keypoints (x_px, y_px, confidence).
        draw: uniform [0, 1) number choosing the crop type.

    Returns:
        (centre (2,), side) of the new square box (side = max of width and height).
    """
    keypoints = _as_keypoints("keypoints_2d", keypoints_2d, 3).astype(np.float64)
    if keypoints.shape != (44, 3):
        raise ValueError(f"`keypoints_2d` must have shape (44, 3), got {keypoints.shape}")
    visible = keypoints[:, 2] > 0
    new_center = np.asarray(center, dtype=np.float64).copy()
    size = np.array([box_size, box_size], dtype=np.float64)
    full_body = all(visible[_OP + a] or visible[_EXTRA + b] for a, b in _FULL_BODY_PAIRS)
    upper_body = not visible[list(_LOWER_LEGS)].any() and (
        visible[list(_UPPER_BODY_VISIBLE)].sum() >= 2
    )
    if full_body:
        if draw < 0.7:
            new_center, size = _recrop(new_center, size, keypoints, _HIPS_ZERO, 1.1)
        elif draw < 0.9:
            new_center, size = _recrop(new_center, size, keypoints, _SHOULDERS_ZERO, 1.2)
        else:
            new_center, size = _recrop(new_center, size, keypoints, _HEAD_ZERO, 1.3)
    elif upper_body:
        if draw < 0.9:
            new_center, size = _recrop(new_center, size, keypoints, _SHOULDERS_ZERO, 1.2)
        else:
            new_center, size = _recrop(new_center, size, keypoints, _HEAD_ZERO, 1.3)
    return new_center, float(size.max())


# ---------------------------------------------------------------------------------------------
# Image crop
# ---------------------------------------------------------------------------------------------


def crop_affine_matrix(
    center: Sequence[float] | np.ndarray,
    side: float,
    *,
    output_size: int,
    rotation_deg: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """The 2x3 affine map from original-image pixels to crop pixels.

    ``u = A·F·(x - c) + S/2`` with ``A = (S / side)·[[cos r, sin r], [-sin r, cos r]]``,
    F = diag(-1, 1) if ``flip`` else I (mirror about the box centre, the same as mirroring the
    image and its centre), S = ``output_size``. The box centre goes to (S/2, S/2).

    Args:
        center: (2,) box centre (x_px, y_px) in the original image (before any flip).
        side: side of the source square in pixels (box size x augmentation scale), > 0.
        output_size: S, the crop side in pixels.
        rotation_deg: in-plane rotation r in degrees.
        flip: mirror horizontally.

    Returns:
        (2, 3) float64 matrix for ``cv2.warpAffine`` and :func:`transform_points_2d`.
    """
    c = np.asarray(center, dtype=np.float64)
    if c.shape != (2,) or not np.all(np.isfinite(c)):
        raise ValueError(f"`center` must be 2 finite numbers, got {np.asarray(center)!r}")
    if not (math.isfinite(side) and side > 0):
        raise ValueError(f"`side` must be a positive finite number of pixels, got {side!r}")
    if int(output_size) != output_size or output_size < 1:
        raise ValueError(f"`output_size` must be a positive integer, got {output_size!r}")
    r = math.radians(float(rotation_deg))
    k = output_size / side
    A = k * np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
    if flip:
        A = A @ np.diag([-1.0, 1.0])
    offset = output_size / 2.0 - A @ c
    return np.concatenate([A, offset[:, None]], axis=1)


def transform_points_2d(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points (or the first two channels of (..., C)).

    Returns:
        New array, same shape; channels after the first two are copied.
    """
    array = np.asarray(points)
    if array.ndim < 1 or array.shape[-1] < 2:
        raise ValueError(f"`points` must have shape (..., C) with C >= 2, got {array.shape}")
    M = np.asarray(matrix, dtype=np.float64)
    if M.shape != (2, 3):
        raise ValueError(f"`matrix` must have shape (2, 3), got {M.shape}")
    out = array.astype(np.result_type(array.dtype, np.float32), copy=True)
    out[..., :2] = array[..., :2] @ M[:, :2].T + M[:, 2]
    return out


def crop_image(image: np.ndarray, matrix: np.ndarray, *, output_size: int) -> np.ndarray:
    """Warp ``image`` with ``matrix`` into an (S, S) crop: bilinear, constant black border.

    Args:
        image: (H, W, C) or (H, W) image (any dtype OpenCV supports).
        matrix: (2, 3) map from image pixels to crop pixels (:func:`crop_affine_matrix`).
        output_size: S.

    Returns:
        (S, S, C) or (S, S) crop, same dtype.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"`image` must have shape (H, W) or (H, W, C), got {array.shape}")
    return cv2.warpAffine(
        array,
        np.asarray(matrix, dtype=np.float64),
        (int(output_size), int(output_size)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def normalize_image(
    image_rgb: np.ndarray,
    *,
    color: Sequence[float] = (1.0, 1.0, 1.0),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Colour-scale, clip and normalise an RGB image; HWC -> CHW (augmentation step 7).

    Per channel c: ``(clip(x * color[c], 0, 255) - 255·mean[c]) / (255·std[c])``.

    Args:
        image_rgb: (H, W, 3) RGB values on the 0..255 scale (any real dtype).
        color: 3 channel factors. mean, std: 3 values each on the [0, 1] scale.

    Returns:
        (3, H, W) float32 contiguous array.
    """
    array = np.asarray(image_rgb)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"`image_rgb` must have shape (H, W, 3), got {array.shape}")
    factors = np.asarray(color, dtype=np.float32).reshape(3)
    mu = 255.0 * np.asarray(mean, dtype=np.float32).reshape(3)
    sigma = 255.0 * np.asarray(std, dtype=np.float32).reshape(3)
    if np.any(sigma <= 0):
        raise ValueError(f"`std` must be positive, got {tuple(std)}")
    if array.dtype == np.uint8:
        # 256-entry table per channel: the same float32 arithmetic, about 10x faster
        values = np.arange(256, dtype=np.float32)[:, None] * factors
        np.clip(values, 0.0, 255.0, out=values)
        table = np.ascontiguousarray(((values - mu) / sigma).T)
        out = np.empty((3, *array.shape[:2]), dtype=np.float32)
        for c in range(3):
            np.take(table[c], array[:, :, c], out=out[c])
        return out
    work = array.astype(np.float32)
    if not np.all(factors == 1.0):
        work *= factors
        np.clip(work, 0.0, 255.0, out=work)
    work -= mu
    work /= sigma
    return np.ascontiguousarray(work.transpose(2, 0, 1))


#: Bytes an encoder may leave after a JPEG's end-of-image marker (zero or 0xFF padding, line
#: ends); anything else after the image data means the file was cut short or has a foreign tail.
_JPEG_PADDING = b"\x00\xff\r\n \t"
_PNG_END = b"IEND\xaeB`\x82"


def check_image_complete(data: bytes, path: str | os.PathLike[str]) -> None:
    """Raise ValueError naming ``path`` when a JPEG or PNG file is empty or cut short.

    OpenCV decodes a truncated JPEG or PNG partly and fills the rest with grey, without an
    error; the crops made from it would silently be wrong. A JPEG must end with its
    end-of-image marker ``FF D9``, possibly followed only by padding (zero or ``FF`` bytes,
    line ends); a PNG must end with its ``IEND`` chunk. Other formats are left to the decoder.

    Args:
        data: the file's bytes. path: the file, for the message.

    Raises:
        ValueError: if ``data`` is empty, or is a JPEG/PNG without its end marker.
    """
    if not data:
        raise ValueError(f"image file {path} is empty (0 bytes)")
    if data[:2] == b"\xff\xd8":
        if not data.rstrip(_JPEG_PADDING).endswith(b"\xff\xd9"):
            raise ValueError(
                f"image file {path} is a truncated JPEG: it does not end with the end-of-image "
                f"marker FF D9 (last bytes {data[-4:].hex(' ')}; {len(data)} bytes in all)"
            )
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        if not data.endswith(_PNG_END):
            raise ValueError(
                f"image file {path} is a truncated PNG: it does not end with the IEND chunk "
                f"(last bytes {data[-4:].hex(' ')}; {len(data)} bytes in all)"
            )


def read_image(path: str, *, reduction: int = 1) -> np.ndarray:
    """Read an image as (H, W, 3) BGR uint8 with OpenCV, ignoring EXIF orientation.

    The file is checked first (:func:`check_image_complete`): an empty file or a JPEG/PNG cut
    short is an error, never a partly grey image.

    Args:
        path: image file.
        reduction: 1, 2, 4 or 8: decode at 1/reduction of the full size (JPEG decodes this
            directly and much faster); 1 is the original behaviour.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file if it is empty, a truncated JPEG or PNG, or not an image
            OpenCV can decode.
    """
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}
    flags[8] = cv2.IMREAD_REDUCED_COLOR_8
    if reduction not in flags:
        raise ValueError(f"`reduction` must be 1, 2, 4 or 8, got {reduction!r}")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except (FileNotFoundError, IsADirectoryError):
        raise FileNotFoundError(f"image not found: {path}") from None
    check_image_complete(data, path)
    image = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), flags[reduction] | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if image is None:
        raise ValueError(
            f"cannot decode image file {path}: not an image format OpenCV reads "
            f"(first bytes {data[:8].hex(' ')})"
        )
    return image


def crop_box(
    center: Sequence[float] | np.ndarray,
    box_size: float,
    keypoints_2d: np.ndarray,
    params: AugmentationParams,
) -> tuple[np.ndarray, float]:
    """Centre and side of the source square after extreme crop, translation and scale.

    Args:
        center: (2,) box centre in pixels. box_size: box side in pixels.
        keypoints_2d: (44, 3) original-image keypoints (used by the extreme crop only).
        params: the drawn augmentation.

    Returns:
        centre (2,) float64 and side (pixels) of the square that :func:`crop_and_augment` warps.
    """
    c = np.asarray(center, dtype=np.float64).reshape(2)
    size = float(box_size)
    if params.extreme_crop:
        c, size = extreme_crop_box(c, size, keypoints_2d, draw=params.extreme_crop_draw)
    c = c + size * np.asarray(params.translation, dtype=np.float64)
    return c, size * params.scale


def decode_reduction(side: float, output_size: int, *, max_reduction: int) -> int:
    """Largest f in (1, 2, 4, 8), f <= max_reduction, keeping >= 1 source pixel per crop pixel.

    Decoding at 1/f (:func:`read_image`) is then lossless for the crop in the sense that the
    reduced image still has at least ``output_size`` pixels across the source square.
    """
    f = 1
    while f * 2 <= min(max_reduction, 8) and side / (f * 2) >= output_size:
        f *= 2
    return f


def image_size_from_header(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) read from a JPEG or PNG header without decoding; None if unknown.

    The stored size is returned (EXIF orientation is ignored, like :func:`read_image`).
    """
    try:
        with open(path, "rb") as file:
            head = file.read(2)
            if head == b"\x89P":
                rest = file.read(22)
                if rest[:6] == b"NG\r\n\x1a\n" and rest[10:14] == b"IHDR":
                    return int.from_bytes(rest[14:18], "big"), int.from_bytes(rest[18:22], "big")
                return None
            if head != b"\xff\xd8":
                return None
            while True:
                byte = file.read(1)
                while byte == b"\xff":
                    marker = file.read(1)
                    if marker != b"\xff":
                        break
                else:
                    return None
                code = marker[0] if marker else 0
                if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
                    continue
                length = int.from_bytes(file.read(2), "big")
                if length < 2:
                    return None
                if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
                    data = file.read(5)
                    if len(data) < 5:
                        return None
                    return int.from_bytes(data[3:5], "big"), int.from_bytes(data[1:3], "big")
                file.seek(length - 2, os.SEEK_CUR)
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# The whole example
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CroppedExample:
    """One cropped and augmented example.

    Attributes:
        image: (3, S, S) float32 normalised RGB crop.
        keypoints_2d: (K, 3) float32 crop-normalised (x, y) in [-0.5, 0.5] (inside the crop)
            and the untouched confidence.
        keypoints_3d: (K, 4) float32 flipped/rotated 3D keypoints and confidence.
        global_orient: (3,) float32 augmented axis-angle global orientation.
        body_pose: (69,) float32 augmented axis-angle body pose.
        matrix: (2, 3) float64 map from original-image pixels to crop pixels (flip included).
        center: (2,) float64 centre of the source square in the original image (after extreme
            crop and translation, before any flip).
        side: side of the source square in pixels.
    """

    image: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    matrix: np.ndarray
    center: np.ndarray
    side: float


def crop_and_augment(
    image_bgr: np.ndarray,
    *,
    center: Sequence[float] | np.ndarray,
    box_size: float,
    keypoints_2d: np.ndarray,
    keypoints_3d: np.ndarray,
    global_orient: np.ndarray,
    body_pose: np.ndarray,
    params: AugmentationParams | None = None,
    output_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    image_reduction: int = 1,
) -> CroppedExample:
    """Crop and augment one example in the order of ProHMR's ``get_example``.

    1. extreme crop of the box (if drawn), from the original 2D keypoints; 2. centre translated
    by (tx, ty) x box side; 3. 3D keypoints flipped, then rotated by R_z(-rot); 4. image warped
    (flip folded into the affine map); 5. BGR -> RGB; 6. SMPL pose flipped, global orientation
    rotated; 7. colour factors, clip, normalisation; 8. 2D keypoints mapped by the same affine
    map (and permuted if flipped), then ``u / S - 0.5``.

    Args:
        image_bgr: (H, W, 3) uint8 BGR image as read by OpenCV (1/``image_reduction`` of the
            original size if it was decoded reduced).
        center: (2,) box centre in original-image pixels. box_size: box side in pixels.
        keypoints_2d: (44, 3) original-image pixel keypoints (x, y, confidence).
        keypoints_3d: (44, 4) 3D keypoints (x, y, z metres, confidence).
        global_orient: (3,) axis-angle. body_pose: (69,) axis-angle.
        params: the drawn augmentation; None = identity.
        output_size: S. mean, std: normalisation on the [0, 1] scale.
        image_reduction: f when ``image_bgr`` was decoded at 1/f of the original size (see
            :func:`read_image`); the geometry stays in original pixels, pixel centres are
            related by ``x = f·x_reduced + (f - 1) / 2``.

    Returns:
        The :class:`CroppedExample`.
    """
    p = AugmentationParams() if params is None else params
    keypoints_2d = _as_keypoints("keypoints_2d", keypoints_2d, 3)
    keypoints_3d = _as_keypoints("keypoints_3d", keypoints_3d, 4)
    num_keypoints = keypoints_2d.shape[-2]
    c, side = crop_box(center, box_size, keypoints_2d, p)
    matrix = crop_affine_matrix(
        c, side, output_size=output_size, rotation_deg=p.rotation_deg, flip=p.flip
    )

    keypoints_3d_out = keypoints_3d.astype(np.float32)
    if p.flip:
        keypoints_3d_out = flip_keypoints_3d(keypoints_3d_out)
    if p.rotation_deg != 0:
        keypoints_3d_out = rotate_keypoints_3d(keypoints_3d_out, p.rotation_deg)

    image_matrix = matrix
    if image_reduction != 1:
        f = float(image_reduction)
        image_matrix = matrix.copy()
        image_matrix[:, 2] += matrix[:, :2] @ np.full(2, (f - 1.0) / 2.0)
        image_matrix[:, :2] *= f
    crop = crop_image(image_bgr, image_matrix, output_size=output_size)
    crop_rgb = crop[:, :, ::-1]

    pose = np.concatenate(
        [np.asarray(global_orient, np.float32).reshape(3), np.asarray(body_pose, np.float32)]
    )
    if pose.shape != (72,):
        raise ValueError(f"`body_pose` must have shape (69,), got {np.shape(body_pose)}")
    if p.flip:
        pose = flip_smpl_pose(pose)
    orient = rotate_global_orient(pose[:3], p.rotation_deg).astype(np.float32)

    image = normalize_image(crop_rgb, color=p.color, mean=mean, std=std)

    keypoints_2d_out = transform_points_2d(keypoints_2d.astype(np.float32), matrix)
    if p.flip:
        if num_keypoints != len(FLIP_PERMUTATION_44):
            raise ValueError(
                f"flipping needs the 44-keypoint layout, got {num_keypoints} keypoints"
            )
        keypoints_2d_out = keypoints_2d_out[list(FLIP_PERMUTATION_44)]
    keypoints_2d_out[:, :2] = keypoints_2d_out[:, :2] / output_size - 0.5
    return CroppedExample(
        image=image,
        keypoints_2d=keypoints_2d_out.astype(np.float32),
        keypoints_3d=keypoints_3d_out.astype(np.float32),
        global_orient=orient,
        body_pose=pose[3:].astype(np.float32),
        matrix=matrix,
        center=c,
        side=side,
    )
