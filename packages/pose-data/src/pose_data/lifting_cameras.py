"""Shared pieces of the converters: pinhole cameras and boxes.

A :class:`PinholeCamera` maps world points to camera axes with ``X_cam = R X_world + t``
(x right, y down, z forward, metres) and to pixels with focal lengths ``(fx, fy)``, principal
point ``(cx, cy)`` and, optionally, Human3.6M's lens distortion (radial ``k1..k3``,
tangential ``p1, p2``, the model of the dataset's calibration, applied to the normalised
coordinates ``x = X/Z, y = Y/Z``)::

    r² = x² + y²;   d = 1 + k1 r² + k2 r⁴ + k3 r⁶ + p1 y + p2 x
    x' = x d + p2 r²;   y' = y d + p1 r²;   u = fx x' + cx;   v = fy y' + cy

(checked on the real Human3.6M samples: the shipped 2D joints are reproduced to 3e-5 px).
The perspective division uses ``pose_geometry.project_points``.

Shapes: ``...`` any batch dimensions, N points. Arrays are numpy float64 unless stated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from pose_geometry import project_points

__all__ = [
    "PinholeCamera",
    "look_at_camera",
    "sample_look_at_cameras",
    "square_boxes_from_keypoints",
]


def _vector(name: str, value: object, size: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.shape != (size,):
        raise ValueError(f"`{name}` must have {size} values, got shape {np.shape(value)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must be finite, got {array.tolist()}")
    return array


@dataclass(frozen=True, eq=False)
class PinholeCamera:
    """A calibrated camera.

    Attributes:
        rotation: (3, 3) world-to-camera rotation R (``X_cam = R X_world + t``).
        translation: (3,) world-to-camera translation t in metres.
        focal_px: (2,) focal lengths (fx, fy) in pixels.
        center_px: (2,) principal point (cx, cy) in pixels.
        width, height: image size in pixels (0 if unknown).
        radial: (3,) radial distortion k1, k2, k3 (zeros: none).
        tangential: (2,) tangential distortion p1, p2 (zeros: none).
        name: free-form identifier (e.g. the Human3.6M camera id).
    """

    rotation: np.ndarray
    translation: np.ndarray
    focal_px: np.ndarray
    center_px: np.ndarray
    width: int = 0
    height: int = 0
    radial: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tangential: np.ndarray = field(default_factory=lambda: np.zeros(2))
    name: str = ""

    def __post_init__(self) -> None:
        rotation = np.asarray(self.rotation, dtype=np.float64)
        if rotation.shape != (3, 3):
            raise ValueError(f"`rotation` must have shape (3, 3), got {rotation.shape}")
        if (
            not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4)
            or np.linalg.det(rotation) < 0
        ):
            raise ValueError(f"`rotation` must be a rotation matrix, got {rotation.tolist()}")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", _vector("translation", self.translation, 3))
        object.__setattr__(self, "focal_px", _vector("focal_px", self.focal_px, 2))
        object.__setattr__(self, "center_px", _vector("center_px", self.center_px, 2))
        object.__setattr__(self, "radial", _vector("radial", self.radial, 3))
        object.__setattr__(self, "tangential", _vector("tangential", self.tangential, 2))
        if np.any(self.focal_px <= 0):
            raise ValueError(f"`focal_px` must be positive, got {self.focal_px.tolist()}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres (``-Rᵀ t``)."""
        return -self.rotation.T @ self.translation

    @property
    def has_distortion(self) -> bool:
        """True if any distortion coefficient is non-zero."""
        return bool(np.any(self.radial != 0) or np.any(self.tangential != 0))

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., N, 3) world points (metres) -> (..., N, 3) camera-axis points (metres)."""
        points = _points("points", points)
        return points @ self.rotation.T + self.translation

    def project_camera_points(self, points: np.ndarray, *, distort: bool = True) -> np.ndarray:
        """Project camera-axis points to pixels.

        Args:
            points: (..., N, 3) points in camera axes, metres (z > 0 in front of the camera).
            distort: apply the lens distortion (if any).

        Returns:
            (..., N, 2) pixel coordinates (u, v).
        """
        points = _points("points", points)
        normalized = project_points(torch.from_numpy(points), focal_px=1.0).numpy()
        if distort and self.has_distortion:
            normalized = _distort(normalized, self.radial, self.tangential)
        return normalized * self.focal_px + self.center_px

    def project(self, points: np.ndarray, *, distort: bool = True) -> np.ndarray:
        """(..., N, 3) world points (metres) -> (..., N, 2) pixels (see `project_camera_points`)."""
        return self.project_camera_points(self.world_to_camera(points), distort=distort)


def _points(name: str, points: object) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim < 2 or array.shape[-1] != 3:
        raise ValueError(f"`{name}` must have shape (..., N, 3), got {array.shape}")
    return array


def _distort(xy: np.ndarray, radial: np.ndarray, tangential: np.ndarray) -> np.ndarray:
    """Human3.6M distortion of normalised coordinates (..., N, 2) (see the module docstring)."""
    k1, k2, k3 = radial
    p1, p2 = tangential
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    d = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3 + p1 * y + p2 * x
    return np.stack([x * d + p2 * r2, y * d + p1 * r2], axis=-1)


def look_at_camera(
    position: Sequence[float] | np.ndarray,
    target: Sequence[float] | np.ndarray,
    *,
    up: Sequence[float] | np.ndarray,
    focal_px: float | Sequence[float],
    width: int,
    height: int,
    center_px: Sequence[float] | None = None,
    name: str = "",
) -> PinholeCamera:
    """A camera at `position` looking at `target`, with the image's "up" along `up`.

    Camera axes: z = unit(target - position), x = unit(z × up), y = z × x (image y points
    down the world's `up`).

    Args:
        position, target: (3,) world points, metres.
        up: (3,) world up direction (e.g. (0, 1, 0) for CMU mocap, (0, 0, 1) for Human3.6M).
        focal_px: focal length in pixels, one value or (fx, fy).
        width, height: image size in pixels; the principal point defaults to the centre.
        center_px: (2,) principal point, default (width / 2, height / 2).

    Raises:
        ValueError: if the viewing direction is zero or parallel to `up`.
    """
    position = _vector("position", position, 3)
    target = _vector("target", target, 3)
    up = _vector("up", up, 3)
    forward = target - position
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError("`position` and `target` must differ")
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"viewing direction {forward.tolist()} is parallel to `up`")
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    focal = np.broadcast_to(np.asarray(focal_px, dtype=np.float64), (2,))
    center = (width / 2.0, height / 2.0) if center_px is None else center_px
    return PinholeCamera(
        rotation=rotation,
        translation=-rotation @ position,
        focal_px=focal,
        center_px=center,
        width=width,
        height=height,
        name=name,
    )


def _uniform(low_high: tuple[float, float], name: str, generator: torch.Generator | None) -> float:
    low, high = (float(v) for v in low_high)
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        raise ValueError(f"`{name}` must be a finite (low, high) range, got {low_high}")
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def sample_look_at_cameras(
    num_cameras: int,
    *,
    target: Sequence[float] | np.ndarray,
    up: Sequence[float] | np.ndarray,
    distance_m: tuple[float, float] = (4.0, 6.0),
    elevation_deg: tuple[float, float] = (-5.0, 25.0),
    focal_px: tuple[float, float] = (1100.0, 1200.0),
    width: int = 1000,
    height: int = 1000,
    generator: torch.Generator | None = None,
) -> list[PinholeCamera]:
    """Random virtual cameras around `target`, Human3.6M-like by default.

    Azimuths are evenly spread with a random common offset (so the views differ), distance,
    elevation above the horizontal plane and focal length are uniform in their ranges.

    Args:
        num_cameras: number of cameras (>= 1).
        target: (3,) world point every camera looks at (e.g. the subject's mean pelvis), metres.
        up: (3,) world up direction.
        distance_m: (low, high) camera distance to `target`, metres.
        elevation_deg: (low, high) elevation of the camera above `target`, degrees.
        focal_px: (low, high) focal length, pixels (fx = fy).
        width, height: image size, pixels; principal point at the centre.
        generator: torch random generator (the only source of randomness).

    Returns:
        `num_cameras` cameras named "virtual0", "virtual1", ...
    """
    if isinstance(num_cameras, bool) or not isinstance(num_cameras, int) or num_cameras < 1:
        raise ValueError(f"`num_cameras` must be a positive int, got {num_cameras!r}")
    target = _vector("target", target, 3)
    up = _vector("up", up, 3)
    up = up / np.linalg.norm(up)
    # An orthonormal basis (a, b) of the horizontal plane.
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(up, helper)
    a /= np.linalg.norm(a)
    b = np.cross(up, a)
    offset = _uniform((0.0, 2 * math.pi), "azimuth", generator)
    cameras = []
    for index in range(num_cameras):
        azimuth = offset + 2 * math.pi * index / num_cameras
        elevation = math.radians(_uniform(elevation_deg, "elevation_deg", generator))
        distance = _uniform(distance_m, "distance_m", generator)
        focal = _uniform(focal_px, "focal_px", generator)
        direction = math.cos(elevation) * (math.cos(azimuth) * a + math.sin(azimuth) * b)
        position = target + distance * (direction + math.sin(elevation) * up)
        cameras.append(
            look_at_camera(
                position,
                target,
                up=up,
                focal_px=focal,
                width=width,
                height=height,
                name=f"virtual{index}",
            )
        )
    return cameras


def square_boxes_from_keypoints(
    keypoints_2d: np.ndarray, *, rescale: float = 1.2
) -> tuple[np.ndarray, np.ndarray]:
    """Square boxes around the visible keypoints (ProHMR's 3DPW / MPI-INF-3DHP rule).

    Args:
        keypoints_2d: (n, K, 3) pixels (x, y, confidence); rows use the keypoints with
            confidence > 0, or (n, K, 2) where every keypoint counts.
        rescale: box side = rescale x max(width, height) of the keypoints' bounding box.

    Returns:
        center (n, 2) box centres in pixels and scale (n,) box sides in pixels.

    Raises:
        ValueError: if the shape is wrong or a row has no visible keypoint.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"`keypoints_2d` must have shape (n, K, 2 or 3), got {kp.shape}")
    visible = kp[..., 2] > 0 if kp.shape[-1] == 3 else np.ones(kp.shape[:2], dtype=bool)
    empty = np.flatnonzero(~visible.any(axis=1))
    if empty.size:
        raise ValueError(
            f"`keypoints_2d` rows {empty[:10].tolist()} have no keypoint with confidence > 0"
        )
    xy = kp[..., :2]
    low = np.where(visible[..., None], xy, np.inf).min(axis=1)
    high = np.where(visible[..., None], xy, -np.inf).max(axis=1)
    center = (low + high) / 2
    scale = rescale * (high - low).max(axis=1)
    return center, scale
