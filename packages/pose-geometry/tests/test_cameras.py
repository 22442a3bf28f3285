"""Tests for pose_geometry.cameras: ProHMR's crop camera, full-frame conversion and projection."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from pose_geometry import (
    crop_camera_to_full_frame_translation,
    crop_normalized_to_image_pixels,
    crop_normalized_to_pixels,
    crop_pixels_to_normalized,
    full_frame_translation_to_crop_camera,
    image_pixels_to_crop_normalized,
    project_points,
    translation_to_weak_perspective,
    weak_perspective_to_translation,
)
from pose_geometry.testing import random_rotmat, tolerance

FOCAL = 5000.0
CROP = 224.0
F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cameras(*batch: int, dtype: torch.dtype = F64, seed: int = 0) -> torch.Tensor:
    """(..., 3) plausible ProHMR crop cameras: s in [0.6, 1.2], tx, ty in [-0.3, 0.3] m."""
    g = _gen(seed)
    s = 0.6 + 0.6 * torch.rand(*batch, 1, generator=g, dtype=F64)
    txy = 0.6 * torch.rand(*batch, 2, generator=g, dtype=F64) - 0.3
    return torch.cat([s, txy], dim=-1).to(dtype)


def _body_points(
    *batch: int, num: int = 44, dtype: torch.dtype = F64, seed: int = 1
) -> torch.Tensor:
    """(..., N, 3) body-sized points around the origin: x, y in [-0.9, 0.9] m, z in [-0.3, 0.3]."""
    g = _gen(seed)
    pts = torch.rand(*batch, num, 3, generator=g, dtype=F64) * 2.0 - 1.0
    return (pts * torch.tensor([0.9, 0.9, 0.3], dtype=F64)).to(dtype)


def _boxes(
    *batch: int, dtype: torch.dtype = F64, seed: int = 2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Box centres (..., 2), box sizes (...) and image sizes (..., 2) = (W, H) in pixels."""
    g = _gen(seed)
    image_size = torch.tensor([1920.0, 1080.0], dtype=F64).expand(*batch, 2).clone()
    center = torch.rand(*batch, 2, generator=g, dtype=F64) * image_size
    size = 150.0 + 500.0 * torch.rand(*batch, generator=g, dtype=F64)
    return center.to(dtype), size.to(dtype), image_size.to(dtype)


def _numpy_project(points, focal, center, translation, rotation):
    """Reference pinhole projection in float64 NumPy for (B, N, 3) points."""
    points = np.asarray(points, dtype=np.float64)
    out = np.empty((*points.shape[:-1], 2))
    for b in range(points.shape[0]):
        for n in range(points.shape[1]):
            x = rotation[b] @ points[b, n] + translation[b]
            out[b, n, 0] = focal[b, 0] * x[0] / x[2] + center[b, 0]
            out[b, n, 1] = focal[b, 1] * x[1] / x[2] + center[b, 1]
    return out


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, *, scale: float = 1.0) -> None:
    """Compare at the dtype's tolerance; `scale` multiplies atol for values computed from
    intermediates of that size (e.g. pixels of a 224-px crop: a pixel near 0 still carries
    the rounding of ~100-px terms, one float32 ulp of which is 0.8e-5..1.5e-5)."""
    assert actual.dtype == expected.dtype
    tol = tolerance(actual.dtype)
    torch.testing.assert_close(actual, expected, atol=tol["atol"] * scale, rtol=tol["rtol"])


# ------------------------------------------------------------------------------------------------
# Weak-perspective camera <-> translation
# ------------------------------------------------------------------------------------------------


def test_weak_perspective_to_translation_matches_prohmr_formula() -> None:
    camera = torch.tensor([[1.0, 0.1, -0.2], [0.5, 0.0, 0.3]], dtype=F64)
    t = weak_perspective_to_translation(camera)
    expected = torch.tensor(
        [[0.1, -0.2, 2 * 5000.0 / (224.0 + 1e-9)], [0.0, 0.3, 2 * 5000.0 / (112.0 + 1e-9)]],
        dtype=F64,
    )
    torch.testing.assert_close(t, expected, atol=0.0, rtol=0.0)


def test_weak_perspective_depth_keeps_epsilon_and_refuses_non_positive_scale() -> None:
    camera = torch.tensor([[1e-9, 0.0, 0.0]], dtype=F64)
    t = weak_perspective_to_translation(camera)
    assert t[0, 2].item() == pytest.approx(2 * 5000.0 / (224.0 * 1e-9 + 1e-9))
    for s in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"camera\[\.\.\., 0\].*> 0, got"):
            weak_perspective_to_translation(torch.tensor([[s, 0.0, 0.0]], dtype=F64))


def test_weak_perspective_translation_round_trip_float64() -> None:
    camera = _cameras(3, 7)
    t = weak_perspective_to_translation(camera)
    torch.testing.assert_close(translation_to_weak_perspective(t), camera, atol=1e-14, rtol=1e-14)
    # and the other way round, with tensor options broadcast over the batch
    focal = torch.linspace(1000.0, 6000.0, 7, dtype=F64)
    size = torch.tensor(256.0, dtype=F64)
    back = weak_perspective_to_translation(
        translation_to_weak_perspective(t, focal_length_px=focal, crop_size_px=size),
        focal_length_px=focal,
        crop_size_px=size,
    )
    torch.testing.assert_close(back, t, atol=1e-12, rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# Projection: ProHMR's training relation
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normalized_focal_projection_equals_normalized_crop_pixels(dtype: torch.dtype) -> None:
    camera = _cameras(4, dtype=dtype)
    points = _body_points(4, dtype=dtype)
    t = weak_perspective_to_translation(camera)
    normalized = project_points(points, focal_px=FOCAL / CROP, translation=t)
    center = torch.tensor([112.0, 112.0], dtype=dtype)
    pixels = project_points(points, focal_px=FOCAL, center_px=center, translation=t)
    _assert_close(normalized, crop_pixels_to_normalized(pixels))
    _assert_close(crop_normalized_to_pixels(normalized), pixels, scale=CROP)


def test_body_origin_projects_to_weak_perspective_position() -> None:
    # The weak-perspective camera maps the body origin to (s·tx/2, s·ty/2)·(crop ± eps) in
    # normalised crop coordinates whatever the focal length.
    camera = _cameras(5)
    origin = torch.zeros(5, 1, 3, dtype=F64)
    for focal in (500.0, 5000.0, 50000.0):
        t = weak_perspective_to_translation(camera, focal_length_px=focal)
        uv = project_points(origin, focal_px=focal / CROP, translation=t)[:, 0]
        s = camera[:, :1]
        expected = camera[:, 1:] * (CROP * s + 1e-9) / (2 * CROP)
        torch.testing.assert_close(uv, expected, atol=1e-14, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Crop camera <-> full-frame translation
# ------------------------------------------------------------------------------------------------


def test_crop_camera_to_full_frame_translation_matches_formula() -> None:
    camera = torch.tensor([0.8, 0.05, -0.1], dtype=F64)
    center = torch.tensor([700.0, 300.0], dtype=F64)
    image_size = torch.tensor([1000.0, 800.0], dtype=F64)
    t = crop_camera_to_full_frame_translation(
        camera, box_center_px=center, box_size_px=250.0, image_size_px=image_size
    )
    depth = 2 * 5000.0 / (250.0 * 0.8 + 1e-9)
    expected = torch.tensor(
        [0.05 + 200.0 * depth / 5000.0, -0.1 - 100.0 * depth / 5000.0, depth], dtype=F64
    )
    torch.testing.assert_close(t, expected, atol=1e-14, rtol=1e-14)


def test_crop_full_frame_round_trip_float64() -> None:
    camera = _cameras(2, 6)
    center, size, image_size = _boxes(2, 6)
    focal = torch.full((6,), 4000.0, dtype=F64)  # broadcast over the leading batch dimension
    kwargs = {
        "box_center_px": center,
        "box_size_px": size,
        "image_size_px": image_size,
        "focal_length_px": focal,
    }
    t = crop_camera_to_full_frame_translation(camera, **kwargs)
    torch.testing.assert_close(
        full_frame_translation_to_crop_camera(t, **kwargs), camera, atol=1e-13, rtol=1e-13
    )
    torch.testing.assert_close(
        crop_camera_to_full_frame_translation(
            full_frame_translation_to_crop_camera(t, **kwargs), **kwargs
        ),
        t,
        atol=1e-12,
        rtol=1e-13,
    )


def _full_frame_and_crop(
    points: torch.Tensor, camera: torch.Tensor, center: torch.Tensor, size: torch.Tensor, image_size
):
    """Return (full-frame projection in crop-normalised units, matching crop-camera projection)."""
    t_full = crop_camera_to_full_frame_translation(
        camera, box_center_px=center, box_size_px=size, image_size_px=image_size
    )
    full_px = project_points(points, focal_px=FOCAL, center_px=image_size / 2, translation=t_full)
    full = image_pixels_to_crop_normalized(full_px, box_center_px=center, box_size_px=size)
    # The crop camera with focal f in image pixels is a crop of side `size`: focal f / size in
    # normalised crop units and depth 2·f / (size·s + 1e-9).
    t_crop = weak_perspective_to_translation(camera, focal_length_px=FOCAL, crop_size_px=size)
    crop = project_points(points, focal_px=FOCAL / size, translation=t_crop)
    return full, crop, t_crop


def test_full_frame_projection_of_body_origin_matches_crop_camera_exactly() -> None:
    camera = _cameras(8)
    center, size, image_size = _boxes(8)
    origin = torch.zeros(8, 1, 3, dtype=F64)
    full, crop, _ = _full_frame_and_crop(origin, camera, center, size, image_size)
    torch.testing.assert_close(full, crop, atol=1e-12, rtol=1e-12)
    # ... and ProHMR's training projection (crop of 224 px) puts the origin at the same place.
    t_train = weak_perspective_to_translation(camera)
    train = project_points(origin, focal_px=FOCAL / CROP, translation=t_train)
    torch.testing.assert_close(full, train, atol=1e-12, rtol=1e-12)


def test_full_frame_projection_matches_crop_camera_on_fronto_parallel_plane() -> None:
    camera = _cameras(8)
    center, size, image_size = _boxes(8)
    points = _body_points(8)
    points[..., 2] = 0.0  # the plane through the body origin, parallel to the image
    full, crop, _ = _full_frame_and_crop(points, camera, center, size, image_size)
    torch.testing.assert_close(full, crop, atol=1e-12, rtol=1e-12)


def test_full_frame_projection_equals_crop_projection_plus_off_axis_term() -> None:
    # Exact identity for any point X (derived from the two formulas): in crop-normalised units,
    # full = crop - (box_center - image_center) / box_size · X_z / (X_z + depth).
    camera = _cameras(2, 4)
    center, size, image_size = _boxes(2, 4)
    points = _body_points(2, 4)
    full, crop, t_crop = _full_frame_and_crop(points, camera, center, size, image_size)
    depth = t_crop[..., 2:3].unsqueeze(-2)
    z = points[..., 2:3]
    off_axis = ((center - image_size / 2) / size.unsqueeze(-1)).unsqueeze(-2)
    torch.testing.assert_close(full, crop - off_axis * z / (z + depth), atol=1e-12, rtol=1e-12)
    # For a body far from the camera the off-axis term is small: the weak-perspective picture.
    bound = off_axis.abs() * z.abs().amax(dim=-2, keepdim=True) / (depth - 0.3)
    assert bool(((full - crop).abs() <= bound + 1e-15).all())
    assert bool((bound < 0.05).all())


def test_full_frame_projection_equals_crop_projection_for_centred_box() -> None:
    camera = _cameras(6)
    _, size, image_size = _boxes(6)
    center = image_size / 2
    points = _body_points(6)
    full, crop, _ = _full_frame_and_crop(points, camera, center, size, image_size)
    torch.testing.assert_close(full, crop, atol=1e-12, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# project_points
# ------------------------------------------------------------------------------------------------


def test_project_points_hand_computed_example() -> None:
    points = torch.tensor([[1.0, 2.0, 10.0], [-1.0, 3.0, 4.0]], dtype=F64)
    focal = torch.tensor([100.0, 200.0], dtype=F64)
    center = torch.tensor([50.0, 60.0], dtype=F64)
    uv = project_points(points, focal_px=focal, center_px=center)
    expected = torch.tensor([[60.0, 100.0], [25.0, 210.0]], dtype=F64)
    torch.testing.assert_close(uv, expected, atol=1e-12, rtol=0.0)
    translation = torch.tensor([1.0, 0.0, -5.0], dtype=F64)  # first point -> (2, 2, 5)
    uv = project_points(points[:1], focal_px=focal, center_px=center, translation=translation)
    torch.testing.assert_close(uv, torch.tensor([[90.0, 140.0]], dtype=F64))


def test_project_points_defaults_to_zero_centre_and_identity() -> None:
    points = torch.tensor([[0.5, -0.25, 2.0]], dtype=F64)
    uv = project_points(points, focal_px=10.0)
    torch.testing.assert_close(uv, torch.tensor([[2.5, -1.25]], dtype=F64))


def test_project_points_matches_numpy_reference_float64() -> None:
    g = _gen(5)
    points = _body_points(3, num=10)
    rotation = random_rotmat(3, dtype=F64, generator=g)
    translation = torch.tensor([[0.1, -0.2, 8.0], [0.0, 0.3, 20.0], [-0.5, 0.1, 3.0]], dtype=F64)
    focal = 1000.0 + 4000.0 * torch.rand(3, 2, generator=g, dtype=F64)
    center = 500.0 * torch.rand(3, 2, generator=g, dtype=F64)
    uv = project_points(
        points, focal_px=focal, center_px=center, translation=translation, rotation=rotation
    )
    expected = _numpy_project(
        points.numpy(), focal.numpy(), center.numpy(), translation.numpy(), rotation.numpy()
    )
    np.testing.assert_allclose(uv.numpy(), expected, rtol=1e-12, atol=1e-9)


def test_project_points_rotation_acts_on_column_vectors() -> None:
    # 90 degrees about z sends x to y: (1, 0, 5) -> (0, 1, 5).
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    points = torch.tensor([[1.0, 0.0, 5.0]], dtype=F64)
    uv = project_points(points, focal_px=10.0, rotation=rotation)
    torch.testing.assert_close(uv, torch.tensor([[0.0, 2.0]], dtype=F64), atol=1e-12, rtol=0.0)


def test_project_points_rotation_equals_prerotated_points() -> None:
    points = _body_points(2, 3)
    rotation = random_rotmat(2, 3, dtype=F64, generator=_gen(7))
    translation = torch.tensor([0.0, 0.0, 10.0], dtype=F64)
    rotated = torch.einsum("...ij,...nj->...ni", rotation, points)
    a = project_points(points, focal_px=FOCAL, translation=translation, rotation=rotation)
    b = project_points(rotated, focal_px=FOCAL, translation=translation)
    torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-12)


def test_project_points_focal_forms_agree() -> None:
    points = _body_points(4) + torch.tensor([0.0, 0.0, 10.0], dtype=F64)
    expected = project_points(points, focal_px=FOCAL)
    forms = [
        torch.tensor(FOCAL, dtype=F64),  # 0-dim
        torch.full((4,), FOCAL, dtype=F64),  # (...), fx = fy
        torch.full((4, 2), FOCAL, dtype=F64),  # (..., 2) = (fx, fy)
        torch.full((1, 2), FOCAL, dtype=F64),  # (fx, fy) shared over the batch
    ]
    for focal in forms:
        torch.testing.assert_close(project_points(points, focal_px=focal), expected)


def test_project_points_uses_fx_and_fy_separately() -> None:
    points = torch.tensor([[[1.0, 1.0, 1.0]]], dtype=F64)
    uv = project_points(points, focal_px=torch.tensor([[3.0, 7.0]], dtype=F64))
    torch.testing.assert_close(uv, torch.tensor([[[3.0, 7.0]]], dtype=F64))


# ------------------------------------------------------------------------------------------------
# 2D normalisation
# ------------------------------------------------------------------------------------------------


def test_crop_pixels_to_normalized_maps_crop_to_unit_square_and_keeps_confidence() -> None:
    points = torch.tensor([[0.0, 224.0, 0.7], [112.0, 56.0, 0.0]], dtype=F64)
    out = crop_pixels_to_normalized(points)
    expected = torch.tensor([[-0.5, 0.5, 0.7], [0.0, -0.25, 0.0]], dtype=F64)
    torch.testing.assert_close(out, expected, atol=0.0, rtol=0.0)
    torch.testing.assert_close(crop_normalized_to_pixels(out), points, atol=0.0, rtol=0.0)


def test_image_pixels_to_crop_normalized_hand_example_and_round_trip() -> None:
    points = torch.tensor([[[400.0, 250.0, 0.9], [500.0, 100.0, 0.1]]], dtype=F64)
    center = torch.tensor([[450.0, 200.0]], dtype=F64)
    size = torch.tensor([200.0], dtype=F64)
    out = image_pixels_to_crop_normalized(points, box_center_px=center, box_size_px=size)
    expected = torch.tensor([[[-0.25, 0.25, 0.9], [0.25, -0.5, 0.1]]], dtype=F64)
    torch.testing.assert_close(out, expected, atol=1e-15, rtol=0.0)
    back = crop_normalized_to_image_pixels(out, box_center_px=center, box_size_px=size)
    torch.testing.assert_close(back, points, atol=1e-12, rtol=0.0)


def test_crop_normalized_to_image_pixels_round_trip_float64() -> None:
    center, size, _ = _boxes(2, 5)
    points = torch.rand(2, 5, 9, 3, generator=_gen(3), dtype=F64) - 0.5
    pixels = crop_normalized_to_image_pixels(points, box_center_px=center, box_size_px=size)
    back = image_pixels_to_crop_normalized(pixels, box_center_px=center, box_size_px=size)
    torch.testing.assert_close(back, points, atol=1e-14, rtol=1e-14)
    assert torch.equal(pixels[..., 2], points[..., 2])


# ------------------------------------------------------------------------------------------------
# Batch shapes, dtypes, gradients
# ------------------------------------------------------------------------------------------------


def _make_inputs(name: str, batch: tuple[int, ...], dtype: torch.dtype):
    """(function, positional tensor, keyword tensors/values) for a batch shape."""
    full = (2, 5)
    camera = _cameras(*full, dtype=dtype)
    center, size, image_size = _boxes(*full, dtype=dtype)
    points = _body_points(*full, num=6, dtype=dtype)
    t = weak_perspective_to_translation(camera)
    rotation = random_rotmat(*full, dtype=F64, generator=_gen(9)).to(dtype)
    focal = torch.full((*full, 2), FOCAL, dtype=dtype) + torch.arange(2, dtype=dtype)
    points_2d = torch.rand(*full, 6, 3, generator=_gen(4), dtype=F64).to(dtype) * 224.0
    box = {"box_center_px": center, "box_size_px": size}
    frame = {**box, "image_size_px": image_size}
    table: dict[str, tuple[Callable[..., torch.Tensor], torch.Tensor, dict]] = {
        "weak_perspective_to_translation": (weak_perspective_to_translation, camera, {}),
        "translation_to_weak_perspective": (translation_to_weak_perspective, t, {}),
        "crop_camera_to_full_frame_translation": (
            crop_camera_to_full_frame_translation,
            camera,
            frame,
        ),
        "full_frame_translation_to_crop_camera": (
            full_frame_translation_to_crop_camera,
            t,
            frame,
        ),
        "project_points": (
            project_points,
            points,
            {"focal_px": focal, "center_px": center, "translation": t, "rotation": rotation},
        ),
        "crop_pixels_to_normalized": (crop_pixels_to_normalized, points_2d, {}),
        "crop_normalized_to_pixels": (crop_normalized_to_pixels, points_2d / 224.0, {}),
        "image_pixels_to_crop_normalized": (image_pixels_to_crop_normalized, points_2d, box),
        "crop_normalized_to_image_pixels": (
            crop_normalized_to_image_pixels,
            points_2d / 224.0,
            box,
        ),
    }
    fn, x, kwargs = table[name]
    # select the requested batch: (2, 5) -> (5,) -> () by indexing the leading dims
    index = (0,) * (2 - len(batch))

    def select(v):
        return v[index] if isinstance(v, torch.Tensor) else v

    return fn, select(x), {k: select(v) for k, v in kwargs.items()}


FUNCTIONS = [
    "weak_perspective_to_translation",
    "translation_to_weak_perspective",
    "crop_camera_to_full_frame_translation",
    "full_frame_translation_to_crop_camera",
    "project_points",
    "crop_pixels_to_normalized",
    "crop_normalized_to_pixels",
    "image_pixels_to_crop_normalized",
    "crop_normalized_to_image_pixels",
]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_batch_shapes_give_consistent_results(name: str) -> None:
    fn, x, kwargs = _make_inputs(name, (2, 5), F64)
    out = fn(x, **kwargs)
    fn, x5, kwargs5 = _make_inputs(name, (5,), F64)
    out5 = fn(x5, **kwargs5)
    fn, x0, kwargs0 = _make_inputs(name, (), F64)
    out0 = fn(x0, **kwargs0)
    assert out.shape[:2] == (2, 5)
    assert out5.shape == out.shape[1:]
    assert out0.shape == out.shape[2:]
    # Float64 to a few hundred ulps, not bit for bit: project_points rotates with a batched
    # matrix product, whose kernel (and so its rounding) may depend on the batch size on other
    # CPUs/BLAS libraries; a broadcasting bug would be off by O(1).
    torch.testing.assert_close(out5, out[0], atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(out0, out[0, 0], atol=1e-12, rtol=1e-12)
    # flattening the batch gives the same numbers as well
    flat_kwargs = {
        k: v.reshape(10, *v.shape[2:]) if isinstance(v, torch.Tensor) else v
        for k, v in kwargs.items()
    }
    out_flat = fn(x.reshape(10, *x.shape[2:]), **flat_kwargs)
    torch.testing.assert_close(out_flat.reshape(out.shape), out, atol=0.0, rtol=1e-15)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved_and_float32_matches_float64(name: str, dtype: torch.dtype) -> None:
    fn, x, kwargs = _make_inputs(name, (2, 5), dtype)
    out = fn(x, **kwargs)
    assert out.dtype == dtype
    assert out.device == x.device
    fn, x64, kwargs64 = _make_inputs(name, (2, 5), F64)
    reference = fn(x64, **kwargs64)
    torch.testing.assert_close(out.to(F64), reference, **tolerance(dtype))


def test_python_float_options_follow_tensor_dtype() -> None:
    camera = _cameras(3, dtype=torch.float32)
    t = weak_perspective_to_translation(camera, focal_length_px=5000.0, crop_size_px=224)
    assert t.dtype == torch.float32
    t = weak_perspective_to_translation(camera, focal_length_px=torch.tensor(5000.0, dtype=F64))
    assert t.dtype == torch.float32


@pytest.mark.parametrize("name", FUNCTIONS)
def test_gradcheck_float64(name: str) -> None:
    fn, x, kwargs = _make_inputs(name, (3,), F64)
    x = x[:2].clone().requires_grad_(True)
    kwargs = {k: v[:2].clone().requires_grad_(True) for k, v in kwargs.items()}
    names = list(kwargs)

    def wrapped(x_: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return fn(x_, **dict(zip(names, values, strict=True)))

    assert torch.autograd.gradcheck(wrapped, (x, *kwargs.values()))


def test_gradcheck_float64_with_scalar_options() -> None:
    camera = _cameras(3).requires_grad_(True)
    focal = torch.tensor(5000.0, dtype=F64, requires_grad=True)
    crop = torch.full((3,), 224.0, dtype=F64, requires_grad=True)

    def round_trip(c: torch.Tensor, f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        t = weak_perspective_to_translation(c, focal_length_px=f, crop_size_px=s)
        points = _body_points(3, num=4) + t.unsqueeze(-2)
        return project_points(points, focal_px=f / s)

    assert torch.autograd.gradcheck(round_trip, (camera, focal, crop))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_results_stay_on_the_input_device() -> None:
    device = torch.device("cuda")
    camera = _cameras(4).to(device)
    center, size, image_size = (v.to(device) for v in _boxes(4))
    t = crop_camera_to_full_frame_translation(
        camera, box_center_px=center, box_size_px=size, image_size_px=image_size
    )
    uv = project_points(
        _body_points(4).to(device), focal_px=FOCAL, center_px=image_size / 2, translation=t
    )
    assert t.device.type == uv.device.type == "cuda"
    expected = project_points(
        _body_points(4),
        focal_px=FOCAL,
        center_px=image_size.cpu() / 2,
        translation=crop_camera_to_full_frame_translation(
            camera.cpu(),
            box_center_px=center.cpu(),
            box_size_px=size.cpu(),
            image_size_px=image_size.cpu(),
        ),
    )
    torch.testing.assert_close(uv.cpu(), expected, atol=1e-9, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


def test_rejects_bad_camera_shape() -> None:
    with pytest.raises(ValueError, match=r"`camera` must have shape \(\.\.\., 3\), got \(4, 2\)"):
        weak_perspective_to_translation(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"`translation` must have shape \(\.\.\., 3\), got \(3,"):
        translation_to_weak_perspective(torch.zeros(3, 4))


def test_rejects_bad_points_shape() -> None:
    with pytest.raises(
        ValueError, match=r"`points` must have shape \(\.\.\., N, 3\), got \(5, 2\)"
    ):
        project_points(torch.zeros(5, 2), focal_px=1.0)
    with pytest.raises(ValueError, match=r"`points` must have shape \(\.\.\., N, 3\), got \(3,\)"):
        project_points(torch.zeros(3), focal_px=1.0)
    with pytest.raises(
        ValueError, match=r"`points_px` must have shape \(\.\.\., N, C\) with C >= 2, got \(4, 1\)"
    ):
        crop_pixels_to_normalized(torch.zeros(4, 1))


def test_rejects_bad_projection_argument_shapes() -> None:
    points = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"`rotation` must have shape \(\.\.\., 3, 3\), got \(2,"):
        project_points(points, focal_px=1.0, rotation=torch.eye(3)[:2].expand(2, 2, 3))
    with pytest.raises(ValueError, match=r"`translation` must have shape \(\.\.\., 3\)"):
        project_points(points, focal_px=1.0, translation=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"`center_px` must have shape \(\.\.\., 2\)"):
        project_points(points, focal_px=1.0, center_px=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"`focal_px` must have shape \(\.\.\., 2\) \(fx, fy\)"):
        project_points(points, focal_px=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"`focal_px` must have shape .* got \(2, 1, 2\)"):
        project_points(points, focal_px=torch.ones(2, 1, 2))


def test_rejects_batch_dimensions_that_do_not_broadcast() -> None:
    camera = torch.ones(4, 3)
    with pytest.raises(
        ValueError,
        match=r"`box_center_px` must have shape \(\.\.\., 2\) with batch dimensions "
        r"broadcastable to \(4,\) \(the batch of `camera`\), got \(3, 2\)",
    ):
        crop_camera_to_full_frame_translation(
            camera,
            box_center_px=torch.zeros(3, 2),
            box_size_px=200.0,
            image_size_px=torch.ones(2),
        )
    with pytest.raises(ValueError, match=r"`box_size_px` must have shape \(\.\.\.\) .* got \(2,\)"):
        crop_camera_to_full_frame_translation(
            camera,
            box_center_px=torch.zeros(4, 2),
            box_size_px=torch.ones(2),
            image_size_px=torch.ones(2),
        )
    # a batch may not be expanded by an option: (1,) points batch with a (4,) translation
    with pytest.raises(ValueError, match=r"`translation` .* broadcastable to \(1,\)"):
        project_points(torch.ones(1, 5, 3), focal_px=1.0, translation=torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"`focal_length_px` .* broadcastable to \(4,\)"):
        weak_perspective_to_translation(camera, focal_length_px=torch.ones(5))


def test_rejects_wrong_types() -> None:
    with pytest.raises(TypeError, match=r"`camera` must be a floating-point tensor"):
        weak_perspective_to_translation(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"`camera` must be a torch.Tensor, got list"):
        weak_perspective_to_translation([1.0, 0.0, 0.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`focal_px` must be a float or a torch.Tensor, got str"):
        project_points(torch.ones(2, 3), focal_px="5000")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`crop_size_px` must be a float or a torch.Tensor"):
        crop_pixels_to_normalized(torch.ones(2, 2), crop_size_px=True)
