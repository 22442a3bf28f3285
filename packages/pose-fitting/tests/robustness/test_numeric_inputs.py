"""Bad numeric inputs to the fittings: a clear error naming the argument, what was expected and
what arrived, or the documented recovery (keypoints with confidence 0 and NaN coordinates)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pose_fitting import (
    GaussianMixturePrior,
    KeypointFittingOptions,
    MultiviewOptions,
    SMPLifyOptions,
    StoppingRules,
    fit_keypoints,
    fit_smplify,
    minimize,
    refine_multiview,
)
from pose_fitting._checks import check_fit_dtype
from pose_fitting.testing import synthetic_gaussian_mixture, toy_keypoint_problem

F64 = torch.float64
FEW = StoppingRules(max_iterations=2)


@pytest.fixture(scope="module")
def problem():
    return toy_keypoint_problem(batch_size=2, generator=torch.Generator().manual_seed(0))


def _keypoint_args(p, **changes):
    args = {
        "decoder": p.decoder,
        "body_model": p.body_model,
        "keypoints_2d": p.keypoints_2d,
        "init_z": torch.zeros_like(p.z),
        "init_betas": torch.zeros_like(p.betas),
        "init_camera_translation": p.camera_translation,
        "focal_px": p.focal_px,
        "image_size_px": p.image_size_px,
        "options": KeypointFittingOptions(stopping=FEW),
    }
    return {**args, **changes}


def _smplify_args(p, **changes):
    prior = GaussianMixturePrior.from_mapping(
        synthetic_gaussian_mixture(generator=torch.Generator().manual_seed(1))
    )
    global_orient, body_pose = p.decoder(p.z)
    args = {
        "body_model": p.body_model,
        "pose_prior": prior,
        "keypoints_2d": p.keypoints_2d,
        "init_global_orient": global_orient,
        "init_body_pose": body_pose,
        "init_betas": torch.zeros_like(p.betas),
        "init_camera_translation": p.camera_translation,
        "focal_px": p.focal_px,
        "image_size_px": p.image_size_px,
        "options": SMPLifyOptions(stopping=FEW, camera_stage=False),
    }
    return {**args, **changes}


def _multiview_args(p, **changes):
    args = {
        "decoder": p.decoder,
        "body_model": p.body_model,
        "init_z": torch.zeros_like(p.z),
        "init_betas": torch.zeros_like(p.betas),
        "keypoints_2d": p.keypoints_2d,
        "init_camera_translation": p.camera_translation,
        "focal_px": p.focal_px,
        "image_size_px": p.image_size_px,
        "options": MultiviewOptions(use_reprojection=True, stopping=FEW),
    }
    return {**args, **changes}


FITS = {
    "fit_keypoints": (fit_keypoints, _keypoint_args),
    "fit_smplify": (fit_smplify, _smplify_args),
    "refine_multiview": (refine_multiview, _multiview_args),
}


# --- focal length -----------------------------------------------------------------------------


@pytest.mark.parametrize("fit", sorted(FITS))
@pytest.mark.parametrize(
    ("focal", "shown"),
    [
        (0.0, "0.0"),
        (-5000.0, "-5000.0"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (torch.tensor([5000.0, -1.0], dtype=F64), r"-1 at index \(1, 0\)"),
    ],
)
def test_focal_length_must_be_finite_and_positive(problem, fit: str, focal, shown: str) -> None:
    function, make = FITS[fit]
    with pytest.raises(ValueError, match=rf"`focal_px` must be finite and > 0, got {shown}"):
        function(**make(problem, focal_px=focal))


@pytest.mark.parametrize("fit", ["fit_keypoints", "fit_smplify"])
def test_image_size_must_be_positive(problem, fit: str) -> None:
    function, make = FITS[fit]
    size = problem.image_size_px.clone()
    size[1, 0] = 0.0
    with pytest.raises(
        ValueError, match=r"`image_size_px` must be finite and > 0, got 0 at index \(1, 0\)"
    ):
        function(**make(problem, image_size_px=size))


# --- empty batches ----------------------------------------------------------------------------


def test_fit_keypoints_refuses_an_empty_batch(problem) -> None:
    p = problem
    with pytest.raises(
        ValueError, match=r"`init_z` must hold at least one item \(B >= 1\), got shape \(0, 8\)"
    ):
        fit_keypoints(
            **_keypoint_args(
                p,
                keypoints_2d=p.keypoints_2d[:0],
                init_z=p.z[:0],
                init_betas=p.betas[:0],
                init_camera_translation=p.camera_translation[:0],
                image_size_px=p.image_size_px[:0],
            )
        )


def test_fit_smplify_refuses_an_empty_batch(problem) -> None:
    args = _smplify_args(problem)
    empty = {k: v[:0] if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    with pytest.raises(
        ValueError,
        match=r"`init_global_orient` must hold at least one item \(B >= 1\), got shape \(0, 1, 3, 3\)",
    ):
        fit_smplify(**empty)


def test_refine_multiview_refuses_zero_views(problem) -> None:
    with pytest.raises(
        ValueError, match=r"`init_z` must hold at least one view \(and group\), got shape \(0, 8\)"
    ):
        refine_multiview(
            decoder=problem.decoder,
            body_model=problem.body_model,
            init_z=problem.z[:0],
            init_betas=problem.betas[:0],
        )


def test_minimize_refuses_an_empty_batch() -> None:
    with pytest.raises(
        ValueError,
        match=r"`initial\['x'\]` must hold at least one item \(B >= 1\), got shape \(0, 3\)",
    ):
        minimize(lambda p: (p["x"] ** 2).sum(-1), {"x": torch.zeros(0, 3, dtype=F64)})


# --- NaN keypoints: the documented recovery at confidence 0, an error elsewhere ---------------


@pytest.mark.parametrize("fit", sorted(FITS))
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_keypoints_at_confidence_zero_contribute_nothing(problem, fit, bad) -> None:
    function, make = FITS[fit]
    finite = problem.keypoints_2d.clone()
    finite[0, 3, 2] = 0.0
    finite[1, 10, 2] = 0.0
    corrupted = finite.clone()
    corrupted[0, 3, :2] = bad
    corrupted[1, 10, 0] = bad
    reference = function(**make(problem, keypoints_2d=finite))
    result = function(**make(problem, keypoints_2d=corrupted))
    assert torch.isfinite(result.loss).all()
    torch.testing.assert_close(result.loss, reference.loss, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("fit", sorted(FITS))
def test_nan_keypoints_at_positive_confidence_are_an_error(problem, fit) -> None:
    function, make = FITS[fit]
    kp = problem.keypoints_2d.clone()
    kp[1, 5, 1] = math.nan
    with pytest.raises(
        ValueError,
        match=r"`keypoints_2d` must have finite coordinates where the confidence is > 0, got \[.*nan\] at item 1, keypoint 5",
    ):
        function(**make(problem, keypoints_2d=kp))


@pytest.mark.parametrize(("value", "shown"), [(-0.5, "-0.5"), (math.nan, "nan")])
def test_confidence_must_be_finite_and_non_negative(problem, value, shown) -> None:
    kp = problem.keypoints_2d.clone()
    kp[0, 2, 2] = value
    with pytest.raises(
        ValueError,
        match=rf"`keypoints_2d\[\.\.\., 2\]` \(confidence\) must be finite and >= 0, got {shown} at item 0, keypoint 2",
    ):
        fit_keypoints(**_keypoint_args(problem, keypoints_2d=kp))


# --- dtypes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_fits_are_refused(problem, dtype) -> None:
    with pytest.raises(
        TypeError,
        match=rf"`init_z` must be float32 or float64 \(the fit runs in its dtype\), got {dtype}",
    ):
        fit_keypoints(**_keypoint_args(problem, init_z=torch.zeros_like(problem.z, dtype=dtype)))
    with pytest.raises(
        TypeError, match=rf"`initial\['x'\]` must be float32 or float64 .*got {dtype}"
    ):
        minimize(lambda p: (p["x"].float() ** 2).sum(-1), {"x": torch.ones(2, 3, dtype=dtype)})


def test_half_precision_smplify_is_refused(problem) -> None:
    args = _smplify_args(problem)
    args["init_global_orient"] = args["init_global_orient"].half()
    with pytest.raises(
        TypeError, match=r"`init_global_orient` must be float32 or float64 .*got torch.float16"
    ):
        fit_smplify(**args)


def test_mixed_float32_keypoints_are_cast_to_the_fit_dtype(problem) -> None:
    """Documented: the fit runs in `init_z`'s dtype; float32 keypoints are cast to it."""
    kp32 = problem.keypoints_2d.float()
    mixed = fit_keypoints(**_keypoint_args(problem, keypoints_2d=kp32))
    reference = fit_keypoints(**_keypoint_args(problem, keypoints_2d=kp32.double()))
    assert mixed.loss.dtype == F64
    torch.testing.assert_close(mixed.loss, reference.loss, rtol=0, atol=0)


def test_minimize_refuses_mixed_dtypes() -> None:
    with pytest.raises(
        ValueError,
        match=r"same dtype and device; `initial\['x'\]` is torch.float32 on cpu, `initial\['y'\]` is torch.float64 on cpu",
    ):
        minimize(
            lambda p: (p["x"] ** 2).sum(-1) + (p["y"] ** 2).sum(-1),
            {"x": torch.ones(2, 3), "y": torch.ones(2, 3, dtype=F64)},
        )


def test_check_fit_dtype_accepts_float32_and_float64() -> None:
    check_fit_dtype("x", torch.zeros(1))
    check_fit_dtype("x", torch.zeros(1, dtype=F64))


# --- devices ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argument",
    ["keypoints_2d", "init_betas", "init_camera_translation", "image_size_px", "focal_px"],
)
def test_keypoint_fitting_input_on_another_device_names_both(problem, argument) -> None:
    value = problem.focal_px if argument == "focal_px" else _keypoint_args(problem)[argument]
    moved = torch.as_tensor(value, dtype=F64).to("meta")
    with pytest.raises(
        ValueError, match=rf"`{argument}` must be on the device of `init_z` \(cpu\), got meta"
    ):
        fit_keypoints(**_keypoint_args(problem, **{argument: moved}))


def test_smplify_input_on_another_device_names_both(problem) -> None:
    args = _smplify_args(problem)
    args["init_body_pose"] = args["init_body_pose"].to("meta")
    with pytest.raises(
        ValueError,
        match=r"`init_body_pose` must be on the device of `init_global_orient` \(cpu\), got meta",
    ):
        fit_smplify(**args)


def test_multiview_keypoints_on_another_device_names_both(problem) -> None:
    with pytest.raises(
        ValueError, match=r"`keypoints_2d` must be on the device of `init_z` \(cpu\), got meta"
    ):
        refine_multiview(**_multiview_args(problem, keypoints_2d=problem.keypoints_2d.to("meta")))


def test_minimize_refuses_mixed_devices() -> None:
    with pytest.raises(
        ValueError,
        match=r"`initial\['x'\]` is torch.float32 on cpu, `initial\['y'\]` is torch.float32 on meta",
    ):
        minimize(
            lambda p: (p["x"] ** 2).sum(-1),
            {"x": torch.ones(2, 3), "y": torch.ones(2, 3, device="meta")},
        )


# --- Gaussian-mixture prior -------------------------------------------------------------------


def _gmm(**changes):
    arrays = synthetic_gaussian_mixture(
        num_components=3, dim=4, generator=torch.Generator().manual_seed(2)
    )
    return {**arrays, **changes}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.array([0.5, 0.5, 0.5]), r"`weights` must sum to 1 \(a mixture\), got sum 1\.5"),
        (np.array([0.2, 0.2, 0.2]), r"`weights` must sum to 1 \(a mixture\), got sum 0\.6"),
        (np.array([1.2, 0.2, -0.4]), r"`weights` must all be positive, got \[1\.2, 0\.2, -0\.4"),
        (np.array([1.0, 0.0, 0.0]), r"`weights` must all be positive, got \[1\.0, 0\.0, 0\.0\]"),
        (np.array([0.5, 0.5, math.nan]), r"`weights` contains NaN or inf"),
    ],
)
def test_gmm_weights_must_form_a_mixture(weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        GaussianMixturePrior.from_mapping(_gmm(weights=weights))


def test_gmm_float32_weights_summing_to_one_within_rounding_are_accepted() -> None:
    arrays = _gmm()
    weights = arrays["weights"].astype(np.float32)
    prior = GaussianMixturePrior.from_mapping({**arrays, "weights": weights})
    assert prior.num_components == 3


@pytest.mark.parametrize("eigenvalue", [0.0, -0.5])
def test_gmm_covariance_must_be_positive_definite(eigenvalue: float) -> None:
    arrays = _gmm()
    covars = arrays["covars"].copy()
    covars[1] = np.diag([1.0, 1.0, 1.0, eigenvalue])
    with pytest.raises(
        ValueError,
        match=r"`covariances` must be positive definite; components \[1\] are not \(smallest eigenvalues",
    ):
        GaussianMixturePrior.from_mapping({**arrays, "covars": covars})


def test_gmm_pose_on_another_device_names_both() -> None:
    prior = GaussianMixturePrior.from_mapping(_gmm())
    with pytest.raises(
        ValueError, match=r"`pose` must be on the device of the prior's buffers \(cpu\), got meta"
    ):
        prior(torch.zeros(2, 4, device="meta"))
