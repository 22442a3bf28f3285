"""Bad numeric inputs to pose-geometry: each ends in an error naming the argument, what was
expected and what arrived (never a silent 1e13 depth or a wrapped index)."""

from __future__ import annotations

import pytest
import torch

import pose_geometry as pg

F64 = torch.float64


def _camera(s: float) -> torch.Tensor:
    return torch.tensor([[0.9, 0.0, 0.0], [s, 0.1, 0.2]], dtype=F64)


# --- weak-perspective scale and camera options ------------------------------------------------


@pytest.mark.parametrize("s", [0.0, -0.5, float("nan"), float("inf")])
def test_weak_perspective_scale_must_be_positive(s: float) -> None:
    with pytest.raises(
        ValueError,
        match=r"`camera\[\.\.\., 0\] \(scale s\)` must be finite and > 0, got .* at index \(1,\)",
    ):
        pg.weak_perspective_to_translation(_camera(s))


@pytest.mark.parametrize("s", [0.0, -2.0])
def test_full_frame_translation_scale_must_be_positive(s: float) -> None:
    with pytest.raises(
        ValueError, match=r"`camera\[\.\.\., 0\] \(scale s\)` must be finite and > 0, got"
    ):
        pg.crop_camera_to_full_frame_translation(
            _camera(s),
            box_center_px=torch.tensor([100.0, 80.0], dtype=F64),
            box_size_px=200.0,
            image_size_px=torch.tensor([640.0, 480.0], dtype=F64),
        )


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("focal_length_px", 0.0, "0.0"),
        ("focal_length_px", -5000.0, "-5000.0"),
        ("focal_length_px", float("inf"), "inf"),
        ("crop_size_px", 0.0, "0.0"),
        ("crop_size_px", torch.tensor([224.0, -1.0], dtype=F64), "-1 at index \\(1,\\)"),
    ],
)
def test_weak_perspective_options_must_be_positive(option: str, value: object, shown: str) -> None:
    with pytest.raises(ValueError, match=rf"`{option}` must be finite and > 0, got {shown}"):
        pg.weak_perspective_to_translation(_camera(0.8), **{option: value})


@pytest.mark.parametrize("depth", [0.0, -3.0])
def test_translation_depth_must_be_positive(depth: float) -> None:
    translation = torch.tensor([[0.0, 0.0, 50.0], [0.1, 0.2, depth]], dtype=F64)
    with pytest.raises(
        ValueError, match=r"`translation\[\.\.\., 2\] \(depth t_z\)` must be finite and > 0, got"
    ):
        pg.translation_to_weak_perspective(translation)
    with pytest.raises(ValueError, match=r"depth t_z\)` must be finite and > 0"):
        pg.full_frame_translation_to_crop_camera(
            translation,
            box_center_px=torch.tensor([100.0, 80.0], dtype=F64),
            box_size_px=200.0,
            image_size_px=torch.tensor([640.0, 480.0], dtype=F64),
        )


@pytest.mark.parametrize("size", [[0.0, 480.0], [640.0, -480.0]])
def test_image_size_must_be_positive(size: list[float]) -> None:
    with pytest.raises(ValueError, match=r"`image_size_px` must be finite and > 0, got"):
        pg.crop_camera_to_full_frame_translation(
            _camera(0.8),
            box_center_px=torch.tensor([100.0, 80.0], dtype=F64),
            box_size_px=200.0,
            image_size_px=torch.tensor(size, dtype=F64),
        )


def test_camera_option_on_another_device_names_both_devices() -> None:
    with pytest.raises(
        ValueError, match=r"`box_center_px` must be on the device of `camera` \(cpu\), got meta"
    ):
        pg.crop_camera_to_full_frame_translation(
            _camera(0.8),
            box_center_px=torch.zeros(2, dtype=F64, device="meta"),
            box_size_px=200.0,
            image_size_px=torch.tensor([640.0, 480.0], dtype=F64),
        )


# --- joint indices of the layout helpers -----------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ([(-1, 0)], r"source index -1, expected 0\.\.2"),
        ([(3, 0)], r"source index 3, expected 0\.\.2"),
        ([-2, 0, 1], r"target index -2, expected -1 \(dropped\) or 0\.\.43"),
        ([0, 44, 1], r"target index 44, expected -1 \(dropped\) or 0\.\.43"),
    ],
)
def test_remap_keypoints_refuses_negative_and_out_of_range_indices(mapping, message) -> None:
    with pytest.raises(ValueError, match=rf"`mapping` entry \d+ has {message}"):
        pg.remap_keypoints(torch.zeros(2, 3, 3), mapping)


@pytest.mark.parametrize("permutation", [[-1, 1, 0], [0, 1, 3]])
def test_flip_keypoints_refuses_negative_and_out_of_range_indices(permutation) -> None:
    with pytest.raises(ValueError, match=r"`permutation` must be a permutation of 0\.\.2, got \["):
        pg.flip_keypoints(torch.zeros(2, 3, 3), permutation=permutation)


# --- the shared checks ------------------------------------------------------------------------


def test_check_same_device_names_both_arguments_and_devices() -> None:
    with pytest.raises(
        ValueError, match=r"`target` must be on the device of `prediction` \(cpu\), got meta"
    ):
        pg.check_same_device("prediction", torch.zeros(1), "target", torch.zeros(1, device="meta"))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_check_same_dtype_names_both_dtypes(dtype: torch.dtype) -> None:
    with pytest.raises(
        TypeError, match=rf"`b` must have the dtype of `a` \(torch.float32\), got {dtype}"
    ):
        pg.check_same_dtype("a", torch.zeros(1), "b", torch.zeros(1, dtype=dtype))


def test_check_module_input_names_dtype_and_device() -> None:
    module = torch.nn.Linear(2, 2)
    with pytest.raises(
        TypeError,
        match=r"`x` must have the dtype of the module's parameters \(torch.float32\), got torch.float64",
    ):
        pg.check_module_input("x", torch.zeros(1, 2, dtype=F64), module)
    with pytest.raises(
        ValueError, match=r"`x` must be on the device of the module's parameters \(cpu\), got meta"
    ):
        pg.check_module_input("x", torch.zeros(1, 2, device="meta"), module)


@pytest.mark.parametrize("s", [0.0, -0.5])
def test_weak_perspective_without_the_scale_check_keeps_the_original_depth(s: float) -> None:
    """The documented recovery for a network's own cameras inside training: ProHMR's formula,
    unchanged (negative or huge depth), no error and no device sync."""
    camera = torch.tensor([[s, 0.1, -0.2]], dtype=torch.float64)
    translation = pg.weak_perspective_to_translation(
        camera, focal_length_px=5000.0, crop_size_px=224.0, check_scale=False
    )
    expected_depth = 2 * 5000.0 / (224.0 * s + 1e-9)
    assert translation[0, 2].item() == pytest.approx(expected_depth, rel=1e-12)
    assert translation[0, :2].tolist() == [0.1, -0.2]


@pytest.mark.parametrize("value", [-0.2, float("nan"), float("inf")])
def test_check_non_negative_names_the_value_and_its_index(value: float) -> None:
    weights = torch.ones(2, 4)
    weights[1, 3] = value
    with pytest.raises(
        ValueError, match=r"`weights` must be finite and >= 0, got .* at index \(1, 3\)"
    ):
        pg.check_non_negative("weights", weights)
    pg.check_non_negative("weights", torch.zeros(2, 4))  # zero is allowed
    pg.check_non_negative("weights", torch.zeros(2, 4, dtype=torch.bool))
