"""ProHMR keypoint fitting on the toy body model and the toy linear decoder."""

import math

import numpy as np
import pytest
import torch

from pose_fitting import (
    HIP_KEYPOINT_IDX_44,
    TOO_FEW_KEYPOINTS,
    FittingCamera,
    KeypointFittingOptions,
    LBFGSOptions,
    StoppingRules,
    fit_keypoints,
)
from pose_fitting.testing import cxx_compiler, toy_keypoint_problem
from pose_geometry import (
    crop_camera_to_full_frame_translation,
    crop_normalized_to_pixels,
    project_points,
    weak_perspective_to_translation,
)

F64 = torch.float64
FAST = KeypointFittingOptions(
    stopping=StoppingRules(max_iterations=6), lbfgs=LBFGSOptions(max_inner_iterations=10)
)


def problem(batch_size=2, seed=1, dtype=F64):
    return toy_keypoint_problem(
        batch_size=batch_size, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


def fit(p, *, keypoints_2d=None, options=FAST, init_z=None, init_betas=None, init_t=None):
    B, D = p.z.shape
    offset = torch.tensor([0.05, -0.05, 2.0], dtype=p.z.dtype)
    return fit_keypoints(
        decoder=p.decoder,
        body_model=p.body_model,
        keypoints_2d=p.keypoints_2d if keypoints_2d is None else keypoints_2d,
        init_z=torch.zeros(B, D, dtype=p.z.dtype) if init_z is None else init_z,
        init_betas=torch.zeros(B, 10, dtype=p.z.dtype) if init_betas is None else init_betas,
        init_camera_translation=p.camera_translation + offset if init_t is None else init_t,
        focal_px=p.focal_px,
        image_size_px=p.image_size_px,
        options=options,
    )


def mean_pixel_error(projected, keypoints_2d):
    return (projected - keypoints_2d[..., :2]).norm(dim=-1).mean(dim=-1)


def test_recovers_a_known_pose_and_reduces_the_reprojection_error():
    p = problem(batch_size=3)
    result = fit(p, options=KeypointFittingOptions())
    before = project_points(
        p.body_model(*p.decoder(torch.zeros_like(p.z)), torch.zeros_like(p.betas)),
        focal_px=p.focal_px,
        center_px=p.image_size_px / 2,
        translation=p.camera_translation + torch.tensor([0.05, -0.05, 2.0], dtype=F64),
    )
    assert (mean_pixel_error(before, p.keypoints_2d) > 5).all()
    assert (mean_pixel_error(result.projected_keypoints_2d, p.keypoints_2d) < 0.5).all()
    # The priors pull a little, so the recovery is close but not exact.
    assert ((result.keypoints_3d - p.keypoints_3d).norm(dim=-1).mean(dim=-1) < 5e-3).all()
    torch.testing.assert_close(result.z, p.z, atol=0.03, rtol=0)
    assert result.report.converged.all()
    assert (result.loss < 1e-2 * result.report.initial_loss).all()
    go, bp = p.decoder(result.z)
    torch.testing.assert_close(result.global_orient, go)
    torch.testing.assert_close(result.body_pose, bp)


def test_fitting_two_images_together_equals_fitting_each_alone():
    p = problem(batch_size=2)
    together = fit(p)
    for b in range(2):
        alone = fit_keypoints(
            decoder=p.decoder,
            body_model=p.body_model,
            keypoints_2d=p.keypoints_2d[b : b + 1],
            init_z=torch.zeros(1, p.z.shape[1], dtype=F64),
            init_betas=torch.zeros(1, 10, dtype=F64),
            init_camera_translation=p.camera_translation[b : b + 1]
            + torch.tensor([0.05, -0.05, 2.0], dtype=F64),
            focal_px=p.focal_px,
            image_size_px=p.image_size_px[b : b + 1],
            options=FAST,
        )
        # Exact: the toy models are batch-invariant and the core keeps per-item state.
        for name in ("z", "betas", "camera_translation", "loss", "keypoints_3d"):
            assert torch.equal(getattr(alone, name)[0], getattr(together, name)[b]), name
        assert alone.report.reasons[0] == together.report.reasons[b]
        assert alone.report.function_evaluations[0] == together.report.function_evaluations[b]


def test_objective_terms_by_hand():
    p = problem(batch_size=2)
    g = torch.Generator().manual_seed(5)
    z0 = 0.2 * torch.randn(2, p.z.shape[1], dtype=F64, generator=g)
    betas0 = 0.3 * torch.randn(2, 10, dtype=F64, generator=g)
    t0 = p.camera_translation + torch.tensor([0.02, 0.01, 1.0], dtype=F64)
    kp = p.keypoints_2d.clone()
    kp[..., 2] = torch.rand(2, 44, dtype=F64, generator=g)
    options = KeypointFittingOptions(stopping=StoppingRules(max_iterations=0), use_hips=True)
    result = fit(p, keypoints_2d=kp, options=options, init_z=z0, init_betas=betas0, init_t=t0)

    joints = p.body_model(*p.decoder(z0), betas0).numpy()
    tt, kpn = t0.numpy(), kp.numpy()
    W, H = 640.0, 480.0
    for b in range(2):
        data = 0.0
        for k in range(44):
            X = joints[b, k] + tt[b]
            u = 5000.0 * X[0] / X[2] + W / 2
            v = 5000.0 * X[1] / X[2] + H / 2
            for r in (u - kpn[b, k, 0], v - kpn[b, k, 1]):
                data += kpn[b, k, 2] ** 2 * 100.0**2 * r**2 / (100.0**2 + r**2)
        data *= (1000.0 / max(W, H)) ** 2
        pose = 16.0 * float((z0[b] ** 2).sum())
        shape = 36.0 * float((betas0[b] ** 2).sum())
        assert float(result.terms["reprojection"][b]) == pytest.approx(data, rel=1e-10)
        assert float(result.terms["pose_prior"][b]) == pytest.approx(pose, rel=1e-12)
        assert float(result.terms["shape_prior"][b]) == pytest.approx(shape, rel=1e-12)
        assert float(result.loss[b]) == pytest.approx(data + pose + shape, rel=1e-12)
    assert torch.equal(result.z, z0)


def test_hips_are_ignored_unless_use_hips():
    p = problem(batch_size=1)
    corrupted = p.keypoints_2d.clone()
    corrupted[:, list(HIP_KEYPOINT_IDX_44), :2] += 300.0
    clean = fit(p)
    ignored = fit(p, keypoints_2d=corrupted)
    assert torch.equal(clean.z, ignored.z)
    used = fit(p, keypoints_2d=corrupted, options=KeypointFittingOptions(use_hips=True))
    assert not torch.allclose(used.z, clean.z, atol=1e-3)
    with pytest.raises(ValueError, match=r"use_hips=False .* needs 44 keypoints"):
        fit_keypoints(
            decoder=p.decoder,
            body_model=lambda go, bp, b: p.body_model(go, bp, b)[:, :17],
            keypoints_2d=p.keypoints_2d[:, :17],
            init_z=torch.zeros(1, 8, dtype=F64),
            init_betas=torch.zeros(1, 10, dtype=F64),
            init_camera_translation=p.camera_translation,
            focal_px=5000.0,
            image_size_px=p.image_size_px,
        )


def test_too_few_confident_keypoints_returns_the_regression_with_a_reason():
    p = problem(batch_size=2)
    kp = p.keypoints_2d.clone()
    kp[1, :, 2] = 0.0
    kp[1, [0, 1, 2], 2] = 1.0  # three confident keypoints
    kp[1, [3, 4, 5, 6], 2] = 0.05  # below the 0.1 threshold: not counted
    init_z = 0.1 * torch.ones(2, 8, dtype=F64)
    init_betas = 0.2 * torch.ones(2, 10, dtype=F64)
    init_t = p.camera_translation + 1.0
    result = fit(p, keypoints_2d=kp, init_z=init_z, init_betas=init_betas, init_t=init_t)
    assert result.report.optimized.tolist() == [True, False]
    reason = result.report.reasons[1]
    assert reason.startswith(TOO_FEW_KEYPOINTS)
    assert "3 with confidence > 0.1, need 6" in reason
    assert not bool(result.report.converged[1])
    assert torch.equal(result.z[1], init_z[1])
    assert torch.equal(result.betas[1], init_betas[1])
    assert torch.equal(result.camera_translation[1], init_t[1])
    assert torch.equal(result.body_pose[1], p.decoder(init_z[1:])[1][0])
    # The other item is fitted as usual.
    assert result.loss[0] < result.report.initial_loss[0]
    # With the rule off, the item is fitted against whatever it has.
    off = KeypointFittingOptions(
        min_confident_keypoints=0, stopping=StoppingRules(max_iterations=2)
    )
    fitted = fit(
        p, keypoints_2d=kp, init_z=init_z, init_betas=init_betas, init_t=init_t, options=off
    )
    assert fitted.report.optimized.all()


def test_rejects_nan_keypoints_naming_the_argument():
    p = problem(batch_size=2)
    kp = p.keypoints_2d.clone()
    kp[1, 7, 0] = math.nan
    with pytest.raises(
        ValueError, match=r"`keypoints_2d` must have finite coordinates .*\(batch items \[1\]\)"
    ):
        fit(p, keypoints_2d=kp)
    kp = p.keypoints_2d.clone()
    kp[0, 3, 2] = math.nan  # a NaN confidence is rejected too
    with pytest.raises(
        ValueError, match=r"`keypoints_2d\[\.\.\., 2\]` \(confidence\) .* got nan at item 0"
    ):
        fit(p, keypoints_2d=kp)
    with pytest.raises(ValueError, match=r"`init_z` contains NaN"):
        fit(p, init_z=torch.full((2, 8), math.nan, dtype=F64))
    with pytest.raises(ValueError, match=r"`init_camera_translation` contains inf"):
        fit(p, init_t=torch.full((2, 3), math.inf, dtype=F64))


def test_rejects_bad_shapes_and_bad_callables():
    p = problem(batch_size=2)
    with pytest.raises(
        ValueError, match=r"`keypoints_2d` must have shape \(2, N, 3\), got \(2, 44, 2\)"
    ):
        fit(p, keypoints_2d=p.keypoints_2d[..., :2])
    with pytest.raises(ValueError, match=r"`init_betas` must have shape \(2, N\)"):
        fit(p, init_betas=torch.zeros(3, 10, dtype=F64))
    with pytest.raises(TypeError, match="`decoder` must be callable"):
        fit_keypoints(
            decoder=None,
            body_model=p.body_model,
            keypoints_2d=p.keypoints_2d,
            init_z=p.z,
            init_betas=p.betas,
            init_camera_translation=p.camera_translation,
            focal_px=5000.0,
            image_size_px=p.image_size_px,
        )
    common = {
        "keypoints_2d": p.keypoints_2d,
        "init_z": p.z,
        "init_betas": p.betas,
        "init_camera_translation": p.camera_translation,
        "focal_px": 5000.0,
        "image_size_px": p.image_size_px,
    }
    with pytest.raises(TypeError, match="`decoder` must return a pair"):
        fit_keypoints(decoder=lambda z: z, body_model=p.body_model, **common)
    with pytest.raises(ValueError, match=r"`body_model\(\.\.\.\)` must have shape \(2, 44, 3\)"):
        fit_keypoints(
            decoder=p.decoder,
            body_model=lambda go, bp, b: p.body_model(go, bp, b)[:, :40],
            **common,
        )
    with pytest.raises(ValueError, match="`focal_px` must be a float or have shape"):
        fit_keypoints(
            decoder=p.decoder, body_model=p.body_model, **{**common, "focal_px": torch.ones(3)}
        )


def test_fitting_camera_uses_pose_geometry_conversions():
    camera = torch.tensor([[0.9, 0.05, -0.1], [1.2, 0.0, 0.2]], dtype=F64)
    crop = FittingCamera.crop(camera)
    torch.testing.assert_close(crop.translation, weak_perspective_to_translation(camera))
    torch.testing.assert_close(crop.center_px, torch.full((2, 2), 112.0, dtype=F64))
    torch.testing.assert_close(crop.image_size_px, torch.full((2, 2), 224.0, dtype=F64))
    torch.testing.assert_close(crop.focal_px, torch.full((2, 2), 5000.0, dtype=F64))
    center = torch.tensor([[300.0, 200.0], [50.0, 400.0]], dtype=F64)
    box = torch.tensor([180.0, 250.0], dtype=F64)
    size = torch.tensor([[640.0, 480.0], [500.0, 800.0]], dtype=F64)
    full = FittingCamera.full_frame(
        camera, box_center_px=center, box_size_px=box, image_size_px=size
    )
    expected = crop_camera_to_full_frame_translation(
        camera, box_center_px=center, box_size_px=box, image_size_px=size
    )
    torch.testing.assert_close(full.translation, expected)
    torch.testing.assert_close(full.center_px, size / 2)
    focal = torch.tensor([1000.0, 3000.0], dtype=F64)  # one focal length per image
    per_image = FittingCamera.full_frame(
        camera, box_center_px=center, box_size_px=box, image_size_px=size, focal_length_px=focal
    )
    expected = crop_camera_to_full_frame_translation(
        camera, box_center_px=center, box_size_px=box, image_size_px=size, focal_length_px=focal
    )
    torch.testing.assert_close(per_image.translation, expected)
    torch.testing.assert_close(per_image.focal_px, focal[:, None].expand(2, 2))


def test_crop_mode_fit_from_normalized_keypoints():
    # A body seen in a 224-px crop; its keypoints given in ProHMR's normalised crop units.
    p = toy_keypoint_problem(
        batch_size=2, image_size_px=(224.0, 224.0), generator=torch.Generator().manual_seed(2)
    )
    normalized = p.keypoints_2d.clone()
    normalized[..., :2] = p.keypoints_2d[..., :2] / 224.0 - 0.5
    pixels = crop_normalized_to_pixels(normalized, crop_size_px=224.0)
    camera = FittingCamera.crop(torch.tensor([[0.9, 0.1, 0.2], [0.85, 0.1, 0.2]], dtype=F64))
    result = fit_keypoints(
        decoder=p.decoder,
        body_model=p.body_model,
        keypoints_2d=pixels,
        init_z=torch.zeros(2, 8, dtype=F64),
        init_betas=torch.zeros(2, 10, dtype=F64),
        init_camera_translation=camera.translation,
        focal_px=camera.focal_px,
        image_size_px=camera.image_size_px,
        center_px=camera.center_px,
    )
    assert (mean_pixel_error(result.projected_keypoints_2d, p.keypoints_2d) < 0.5).all()
    assert torch.equal(normalized[..., :2], p.keypoints_2d[..., :2] / 224.0 - 0.5)  # not in place


def test_float32_and_adam():
    p = problem(batch_size=2, dtype=torch.float32)
    result = fit(p, options=KeypointFittingOptions(stopping=StoppingRules(max_iterations=10)))
    assert result.z.dtype == torch.float32 and result.keypoints_3d.dtype == torch.float32
    assert (mean_pixel_error(result.projected_keypoints_2d, p.keypoints_2d) < 1.0).all()
    adam = KeypointFittingOptions(
        optimizer="adam",
        stopping=StoppingRules(max_iterations=30, stop_on_increase=False),
    )
    result = fit(problem(batch_size=2), options=adam)
    assert (result.loss < 0.5 * result.report.initial_loss).all()


def test_options_validate_their_values():
    with pytest.raises(ValueError, match="`sigma_px` must be > 0"):
        KeypointFittingOptions(sigma_px=0.0)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        KeypointFittingOptions(optimizer="sgd")
    defaults = KeypointFittingOptions()
    assert (defaults.pose_prior_weight, defaults.shape_prior_weight, defaults.sigma_px) == (
        4.0,
        6.0,
        100.0,
    )
    assert defaults.stopping.max_iterations == 30
    assert (defaults.stopping.relative_tolerance, defaults.stopping.gradient_tolerance) == (
        1e-9,
        1e-9,
    )
    assert (defaults.lbfgs.learning_rate, defaults.lbfgs.max_inner_iterations) == (1.0, 20)
    assert defaults.lbfgs.history_size == 100


@pytest.mark.gpu
def test_fits_on_the_gpu_like_on_the_cpu(device):
    p = problem(batch_size=2)
    cpu = fit(p)
    on = {
        "keypoints_2d": p.keypoints_2d.to(device),
        "init_z": torch.zeros(2, 8, dtype=F64, device=device),
        "init_betas": torch.zeros(2, 10, dtype=F64, device=device),
        "init_camera_translation": (
            p.camera_translation + torch.tensor([0.05, -0.05, 2.0], dtype=F64)
        ).to(device),
        "image_size_px": p.image_size_px.to(device),
    }
    gpu = fit_keypoints(
        decoder=p.decoder, body_model=p.body_model, focal_px=p.focal_px, options=FAST, **on
    )
    assert gpu.z.device.type == device.type and gpu.report.converged.device.type == device.type
    np.testing.assert_allclose(gpu.keypoints_3d.cpu().numpy(), cpu.keypoints_3d.numpy(), atol=1e-6)


@pytest.mark.skipif(
    cxx_compiler() is None,
    reason="torch.compile on CPU needs a C++ compiler (none found: install g++ or set CXX)",
)
def test_a_compiled_fit_fits_like_the_eager_one():
    p = problem(batch_size=3)
    eager = fit(p, options=KeypointFittingOptions())
    compiled = fit(p, options=KeypointFittingOptions(compile=True))
    for name in ("z", "betas", "camera_translation", "keypoints_3d"):
        torch.testing.assert_close(
            getattr(compiled, name), getattr(eager, name), atol=1e-6, rtol=0, msg=name
        )
    for name, value in eager.terms.items():
        torch.testing.assert_close(compiled.terms[name], value, atol=1e-8, rtol=1e-6, msg=name)
    assert compiled.report.converged.all()
