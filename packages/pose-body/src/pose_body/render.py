"""A headless software mesh renderer (NumPy + OpenCV; no OpenGL, no EGL).

Camera convention: the computer-vision pinhole camera of `pose_geometry.project_points`:
camera-frame points in metres with x right, y down, z forward (away from the camera);
``u = fx·x/z + cx``, ``v = fy·y/z + cy``. Integer pixel coordinates are pixel centres (OpenCV's
convention): pixel (row r, column c) is the square of centre (u, v) = (c, r), so a point
projecting to (u, v) lands in column ``round(u)`` and row ``round(v)``. ProHMR's crops use
fx = fy = 5000 and the principal point at the crop centre (docs/conventions.md#cameras); a body
model posed with ``transl`` from `pose_geometry.weak_perspective_to_translation` is already in
this camera frame.

Rasterisation is vectorised: every triangle is expanded to the pixel centres of its bounding
box, barycentric coordinates decide coverage, depth is interpolated perspective-correctly and a
z-buffer keeps the nearest triangle per pixel. Shading is Lambertian (smooth: normals
interpolated from the vertices; or flat: one normal per triangle) under a light at the camera,
slightly above and to the left, plus ambient light. Meshes are rendered separately and
composited per pixel from far to near with their alpha, over a background image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pose_geometry import KEYPOINT_NAMES_44

__all__ = [
    "SKELETON_EDGES_44",
    "Mesh",
    "draw_keypoints",
    "render_meshes",
    "rotate_about_vertical",
    "side_view",
]

_MAX_PAIRS = 4_000_000  # triangle-pixel candidates per chunk (bounds memory to ~200 MB)


def _edges(pairs: Sequence[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    index = {name: i for i, name in enumerate(KEYPOINT_NAMES_44)}
    return tuple((index[a], index[b]) for a, b in pairs)


#: Skeleton of the 44-keypoint layout for `draw_keypoints`: the OpenPose BODY_25 limbs (face,
#: arms, legs, feet) as index pairs into `pose_geometry.KEYPOINT_NAMES_44`.
SKELETON_EDGES_44: tuple[tuple[int, int], ...] = _edges(
    [
        ("OP Nose", "OP Neck"),
        ("OP Neck", "OP RShoulder"),
        ("OP RShoulder", "OP RElbow"),
        ("OP RElbow", "OP RWrist"),
        ("OP Neck", "OP LShoulder"),
        ("OP LShoulder", "OP LElbow"),
        ("OP LElbow", "OP LWrist"),
        ("OP Neck", "OP MidHip"),
        ("OP MidHip", "OP RHip"),
        ("OP RHip", "OP RKnee"),
        ("OP RKnee", "OP RAnkle"),
        ("OP MidHip", "OP LHip"),
        ("OP LHip", "OP LKnee"),
        ("OP LKnee", "OP LAnkle"),
        ("OP Nose", "OP REye"),
        ("OP REye", "OP REar"),
        ("OP Nose", "OP LEye"),
        ("OP LEye", "OP LEar"),
        ("OP LAnkle", "OP LBigToe"),
        ("OP LBigToe", "OP LSmallToe"),
        ("OP LAnkle", "OP LHeel"),
        ("OP RAnkle", "OP RBigToe"),
        ("OP RBigToe", "OP RSmallToe"),
        ("OP RAnkle", "OP RHeel"),
    ]
)


def _as_numpy(name: str, value: Any, dtype: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`{name}` must be array-like, got {type(value).__name__}") from error


@dataclass(frozen=True, eq=False)
class Mesh:
    """A triangle mesh to render.

    Attributes:
        vertices: (V, 3) camera-frame vertices in metres (x right, y down, z forward); numpy
            array or tensor (converted to float64 numpy).
        faces: (F, 3) vertex indices (converted to int64 numpy).
        color: (r, g, b) base colour in 0..1.
        alpha: opacity in 0..1 (1 = opaque).

    Raises:
        ValueError: on a wrong shape, an index out of range, or a colour/alpha outside 0..1.
    """

    vertices: np.ndarray
    faces: np.ndarray
    color: tuple[float, float, float] = (0.65, 0.74, 0.86)
    alpha: float = 1.0

    def __post_init__(self) -> None:
        vertices = _as_numpy("vertices", self.vertices, np.float64)
        faces = _as_numpy("faces", self.faces, np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"`vertices` must have shape (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"`faces` must have shape (F, 3), got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(
                f"`faces` must index 0..{len(vertices) - 1}, got {faces.min()}..{faces.max()}"
            )
        color = tuple(float(c) for c in self.color)
        if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
            raise ValueError(f"`color` must be (r, g, b) in 0..1, got {self.color}")
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"`alpha` must be in 0..1, got {self.alpha}")
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)
        object.__setattr__(self, "color", color)
        object.__setattr__(self, "alpha", float(self.alpha))


def _pair(name: str, value: Any) -> tuple[float, float]:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size == 1:
        return float(array[0]), float(array[0])
    if array.size != 2:
        raise ValueError(f"`{name}` must be a number or a pair (x, y), got {value!r}")
    return float(array[0]), float(array[1])


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (zero for unused vertices)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(vertices)
    for i in range(3):
        np.add.at(normals, faces[:, i], face_normals)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-20)


def _rasterize(
    mesh: Mesh,
    *,
    height: int,
    width: int,
    focal: tuple[float, float],
    center: tuple[float, float],
    light: np.ndarray,
    ambient: float,
    smooth: bool,
    near: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one mesh: (H, W, 3) float colour in 0..1 and (H, W) depth (inf = empty)."""
    depth_buffer = np.full(height * width, np.inf)
    colour = np.zeros((height * width, 3))
    vertices, faces = mesh.vertices, mesh.faces
    if len(faces) == 0:
        return colour.reshape(height, width, 3), depth_buffer.reshape(height, width)
    z = vertices[:, 2]
    safe_z = np.where(z > near, z, 1.0)
    u = focal[0] * vertices[:, 0] / safe_z + center[0]
    v = focal[1] * vertices[:, 1] / safe_z + center[1]
    keep = (z[faces] > near).all(axis=1)
    fu, fv = u[faces], v[faces]  # (F, 3)
    x0 = np.ceil(fu.min(1) - 0.5).astype(np.int64)
    x1 = np.floor(fu.max(1) + 0.5).astype(np.int64)
    y0 = np.ceil(fv.min(1) - 0.5).astype(np.int64)
    y1 = np.floor(fv.max(1) + 0.5).astype(np.int64)
    x0, y0 = np.maximum(x0, 0), np.maximum(y0, 0)
    x1, y1 = np.minimum(x1, width - 1), np.minimum(y1, height - 1)
    area = (fu[:, 1] - fu[:, 0]) * (fv[:, 2] - fv[:, 0]) - (fu[:, 2] - fu[:, 0]) * (
        fv[:, 1] - fv[:, 0]
    )
    keep &= (x1 >= x0) & (y1 >= y0) & (np.abs(area) > 1e-12)
    face_ids = np.flatnonzero(keep)
    if face_ids.size == 0:
        return colour.reshape(height, width, 3), depth_buffer.reshape(height, width)

    normals = _vertex_normals(vertices, faces) if smooth else None
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    face_normals /= np.maximum(np.linalg.norm(face_normals, axis=1, keepdims=True), 1e-20)

    box_w = x1 - x0 + 1
    counts = box_w * (y1 - y0 + 1)
    best_face = np.full(height * width, -1, dtype=np.int64)
    best_weights = np.zeros((height * width, 3))
    # Process the faces in chunks that bound the number of (face, pixel) candidates.
    cumulative = np.cumsum(counts[face_ids])
    start = 0
    while start < face_ids.size:
        base = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, base + _MAX_PAIRS, side="right"))
        stop = max(stop, start + 1)
        chunk = face_ids[start:stop]
        start = stop
        n = counts[chunk]
        pair_face = np.repeat(chunk, n)
        first = np.cumsum(n) - n
        local = np.arange(int(n.sum())) - np.repeat(first, n)
        px = x0[pair_face] + local % box_w[pair_face]
        py = y0[pair_face] + local // box_w[pair_face]
        qu, qv = fu[pair_face], fv[pair_face]
        # Barycentric coordinates of the pixel centre (px, py) in screen space.
        denom = area[pair_face]
        w0 = ((qu[:, 1] - px) * (qv[:, 2] - py) - (qu[:, 2] - px) * (qv[:, 1] - py)) / denom
        w1 = ((qu[:, 2] - px) * (qv[:, 0] - py) - (qu[:, 0] - px) * (qv[:, 2] - py)) / denom
        w2 = 1.0 - w0 - w1
        eps = -1e-9
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        if not inside.any():
            continue
        pair_face, px, py = pair_face[inside], px[inside], py[inside]
        w = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
        inv_z = (w / z[faces[pair_face]]).sum(1)  # perspective-correct: 1/z is affine on screen
        depth = 1.0 / inv_z
        pixel = py * width + px
        order = np.lexsort((depth, pixel))
        pixel_sorted = pixel[order]
        winner = order[np.r_[True, pixel_sorted[1:] != pixel_sorted[:-1]]]
        pix, dep = pixel[winner], depth[winner]
        closer = dep < depth_buffer[pix]
        pix, win = pix[closer], winner[closer]
        depth_buffer[pix] = dep[closer]
        best_face[pix] = pair_face[win]
        # Perspective-correct attribute weights: w_i / z_i normalised.
        attr = w[win] / z[faces[pair_face[win]]]
        best_weights[pix] = attr / attr.sum(1, keepdims=True)

    covered = np.flatnonzero(best_face >= 0)
    face = best_face[covered]
    if normals is not None:
        normal = np.einsum("pk,pkc->pc", best_weights[covered], normals[faces[face]])
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    else:
        normal = face_normals[face]
    # Two-sided lighting: use the side of the surface that faces the camera.
    view = np.stack(
        [
            (covered % width - center[0]) / focal[0],
            (covered // width - center[1]) / focal[1],
            np.ones(covered.size),
        ],
        axis=1,
    )
    facing = np.sign((face_normals[face] * view).sum(1))
    normal = normal * np.where(facing > 0, -1.0, 1.0)[:, None]
    diffuse = np.clip(normal @ light, 0.0, 1.0)
    intensity = ambient + (1.0 - ambient) * diffuse
    colour[covered] = intensity[:, None] * np.asarray(mesh.color)[None, :]
    return colour.reshape(height, width, 3), depth_buffer.reshape(height, width)


def render_meshes(
    meshes: Sequence[Mesh],
    *,
    image_size: tuple[int, int],
    focal_px: float | Sequence[float],
    center_px: Sequence[float] | None = None,
    background: np.ndarray | None = None,
    background_color: tuple[float, float, float] = (1.0, 1.0, 1.0),
    shading: str = "smooth",
    ambient: float = 0.35,
    light_direction: Sequence[float] = (-0.3, -0.45, -1.0),
    supersample: int = 1,
    near: float = 1e-3,
) -> np.ndarray:
    """Render meshes with a pinhole camera into an RGB image (z-buffer, Lambert shading).

    Args:
        meshes: the meshes, camera frame (see the module docstring); each has its own colour
            and alpha. Within a mesh only the nearest surface shows; several meshes are
            composited per pixel from far to near with their alphas.
        image_size: (H, W) in pixels.
        focal_px: focal length in pixels, f or (fx, fy).
        center_px: principal point (cx, cy) in pixels; default the image centre
            ((W - 1) / 2, (H - 1) / 2).
        background: (H, W, 3) uint8 RGB image to draw over (e.g. the input crop), or None for
            a plain `background_color`.
        background_color: (r, g, b) in 0..1 used when `background` is None.
        shading: "smooth" (vertex normals interpolated per pixel) or "flat" (one per triangle).
        ambient: ambient light fraction in 0..1.
        light_direction: direction from the surface towards the light, camera frame (default:
            from the camera, a little above and to the left).
        supersample: render at this integer factor and average down (anti-aliasing).
        near: triangles with a vertex nearer than this depth (metres) are skipped.

    Returns:
        (H, W, 3) uint8 RGB image.

    Raises:
        TypeError: if an item of `meshes` is not a Mesh.
        ValueError: on a wrong image size, background shape, shading name or option value.
    """
    height, width = (int(s) for s in image_size)
    if height < 1 or width < 1:
        raise ValueError(f"`image_size` must be (H, W) with positive sizes, got {image_size}")
    if shading not in ("smooth", "flat"):
        raise ValueError(f"unknown shading {shading!r}; expected 'smooth' or 'flat'")
    if isinstance(supersample, bool) or not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"`supersample` must be a positive int, got {supersample!r}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"`ambient` must be in 0..1, got {ambient}")
    for i, mesh in enumerate(meshes):
        if not isinstance(mesh, Mesh):
            raise TypeError(f"`meshes[{i}]` must be a Mesh, got {type(mesh).__name__}")
    fx, fy = _pair("focal_px", focal_px)
    cx, cy = (
        ((width - 1) / 2.0, (height - 1) / 2.0)
        if center_px is None
        else _pair("center_px", center_px)
    )
    if background is None:
        base = np.empty((height, width, 3))
        base[:] = np.asarray(background_color, dtype=np.float64)
    else:
        image = np.asarray(background)
        if image.shape != (height, width, 3):
            raise ValueError(
                f"`background` must have shape ({height}, {width}, 3), got {image.shape}"
            )
        base = image.astype(np.float64) / 255.0
    light = np.asarray(light_direction, dtype=np.float64)
    light = light / np.linalg.norm(light)

    s = supersample
    big_h, big_w = height * s, width * s
    # Pixel centres map as c_big = (c + 0.5)·s - 0.5.
    options = dict(
        height=big_h,
        width=big_w,
        focal=(fx * s, fy * s),
        center=((cx + 0.5) * s - 0.5, (cy + 0.5) * s - 0.5),
        light=light,
        ambient=ambient,
        smooth=shading == "smooth",
        near=near,
    )
    layers = [_rasterize(mesh, **options) for mesh in meshes]  # type: ignore[arg-type]
    if s > 1:
        base_big = cv2.resize(base, (big_w, big_h), interpolation=cv2.INTER_NEAREST)
    else:
        base_big = base
    out = base_big.copy()
    if layers:
        depths = np.stack([d for _, d in layers])  # (M, H, W)
        colours = np.stack([c for c, _ in layers])  # (M, H, W, 3)
        alphas = np.array([m.alpha for m in meshes])
        order = np.argsort(-depths, axis=0, kind="stable")  # far to near
        for rank in range(len(meshes)):
            index = order[rank]  # (H, W) mesh index at this depth rank
            depth = np.take_along_axis(depths, index[None], 0)[0]
            colour = np.take_along_axis(colours, index[None, :, :, None], 0)[0]
            alpha = np.where(np.isfinite(depth), alphas[index], 0.0)[..., None]
            out = alpha * colour + (1.0 - alpha) * out
    if s > 1:
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def rotate_about_vertical(
    vertices: Any, *, angle_deg: float, center: Sequence[float] | None = None
) -> np.ndarray:
    """Rotate camera-frame points about the vertical (camera y) axis through `center`.

    Args:
        vertices: (..., V, 3) points (numpy or tensor).
        angle_deg: rotation angle in degrees; positive turns +z (forward) towards +x (right),
            i.e. R = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]].
        center: (3,) point on the axis; default the centre of the bounding box of all points.

    Returns:
        (..., V, 3) float64 rotated points.
    """
    points = _as_numpy("vertices", vertices, np.float64)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise ValueError(f"`vertices` must have shape (..., V, 3), got {points.shape}")
    flat = points.reshape(-1, 3)
    if center is None:
        pivot = (flat.min(0) + flat.max(0)) / 2.0
    else:
        pivot = np.asarray(center, dtype=np.float64).reshape(3)
    t = np.deg2rad(angle_deg)
    rotation = np.array(
        [[np.cos(t), 0.0, np.sin(t)], [0.0, 1.0, 0.0], [-np.sin(t), 0.0, np.cos(t)]]
    )
    return (points - pivot) @ rotation.T + pivot


def side_view(
    meshes: Sequence[Mesh], *, angle_deg: float = 90.0, center: Sequence[float] | None = None
) -> list[Mesh]:
    """The same meshes seen from the side: all rotated about one vertical axis.

    The axis passes through `center`, by default the centre of the bounding box of all the
    meshes' vertices (so the mode and samples of one image turn together).

    Returns:
        New meshes (colours and alphas unchanged) for `render_meshes`.
    """
    if not meshes:
        return []
    if center is None:
        stacked = np.concatenate([m.vertices for m in meshes])
        center = (stacked.min(0) + stacked.max(0)) / 2.0
    return [
        Mesh(
            vertices=rotate_about_vertical(m.vertices, angle_deg=angle_deg, center=center),
            faces=m.faces,
            color=m.color,
            alpha=m.alpha,
        )
        for m in meshes
    ]


def draw_keypoints(
    image: np.ndarray,
    keypoints_2d: Any,
    *,
    edges: Sequence[tuple[int, int]] | None = SKELETON_EDGES_44,
    color: tuple[float, float, float] = (1.0, 0.2, 0.2),
    radius: int = 2,
    thickness: int = 1,
    min_confidence: float = 0.0,
) -> np.ndarray:
    """Draw 2D keypoints and the skeleton edges between them on a copy of `image`.

    Args:
        image: (H, W, 3) uint8 RGB image.
        keypoints_2d: (K, 2) pixel coordinates (pixel-centre convention), or (K, 3) with a
            confidence; keypoints with confidence <= `min_confidence` are skipped, as are edges
            touching them. Numpy array or tensor.
        edges: index pairs to connect (default: the 44-layout skeleton, which needs K = 44), or
            None for points only.
        color: (r, g, b) in 0..1.
        radius: circle radius in pixels (0 = no circles).
        thickness: line thickness in pixels.
        min_confidence: confidence threshold (only used with a third column).

    Returns:
        (H, W, 3) uint8 image with the skeleton drawn (anti-aliased, sub-pixel positions).

    Raises:
        ValueError: if shapes are wrong or an edge indexes outside 0..K-1.
    """
    canvas = np.asarray(image)
    if canvas.ndim != 3 or canvas.shape[2] != 3 or canvas.dtype != np.uint8:
        raise ValueError(
            f"`image` must be an (H, W, 3) uint8 array, got {canvas.shape} {canvas.dtype}"
        )
    points = _as_numpy("keypoints_2d", keypoints_2d, np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise ValueError(f"`keypoints_2d` must have shape (K, 2) or (K, 3), got {points.shape}")
    valid = np.isfinite(points[:, :2]).all(1)
    if points.shape[1] == 3:
        valid &= points[:, 2] > min_confidence
    out = np.ascontiguousarray(canvas.copy())
    rgb = tuple(round(255 * c) for c in color)
    shift = 4
    scale = 1 << shift
    fixed = np.rint(np.nan_to_num(points[:, :2]) * scale).astype(np.int64)
    for i, j in edges or ():
        if not (0 <= i < len(points) and 0 <= j < len(points)):
            raise ValueError(f"edge ({i}, {j}) indexes outside 0..{len(points) - 1}")
        if valid[i] and valid[j]:
            cv2.line(
                out, tuple(map(int, fixed[i])), tuple(map(int, fixed[j])), rgb, thickness,
                cv2.LINE_AA, shift,
            )  # fmt: skip
    if radius > 0:
        for k in np.flatnonzero(valid):
            cv2.circle(out, tuple(map(int, fixed[k])), radius * scale, rgb, -1, cv2.LINE_AA, shift)
    return out
