"""Temporal keypoint fitting on the toy body model and the toy linear decoder."""

import pytest
import torch

from pose_fitting import (
    KeypointFittingOptions,
    LBFGSOptions,
    SequenceFittingOptions,
    StoppingRules,
    acceleration_term,
    fit_keypoints,
    fit_keypoints_sequence,
)
from pose_fitting.testing import toy_keypoint_problem

F64 = torch.float64
G, T = 2, 4
OFFSET = torch.tensor([0.05, -0.05, 2.0], dtype=F64)
FAST = KeypointFittingOptions(
    stopping=StoppingRules(max_iterations=6), lbfgs=LBFGSOptions(max_inner_iterations=10)
)


def problem(seed=3):
    return toy_keypoint_problem(batch_size=G * T, generator=torch.Generator().manual_seed(seed))


def sequence_inputs(p, keypoints_2d=None):
    D = p.z.shape[1]
    kp = p.keypoints_2d if keypoints_2d is None else keypoints_2d
    return {
        "decoder": p.decoder,
        "body_model": p.body_model,
        "keypoints_2d": kp.reshape(G, T, 44, 3),
        "init_z": torch.zeros(G, T, D, dtype=F64),
        "init_betas": torch.zeros(G, T, 10, dtype=F64),
        "init_camera_translation": (p.camera_translation + OFFSET).reshape(G, T, 3),
        "focal_px": p.focal_px,
        "image_size_px": p.image_size_px.reshape(G, T, 2),
    }


def noisy(p, sigma_px=20.0, seed=0):
    kp = p.keypoints_2d.clone()
    noise = torch.randn((*kp.shape[:-1], 2), generator=torch.Generator().manual_seed(seed))
    kp[..., :2] += sigma_px * noise.to(F64)
    return kp


def test_acceleration_term_is_zero_for_constant_velocity_and_known_otherwise():
    t = torch.arange(5, dtype=F64)[:, None, None]
    moving = t * torch.tensor([0.1, 0.2, -0.3], dtype=F64).expand(1, 2, 3)
    assert float(acceleration_term(moving)) < 1e-28
    accelerating = moving.clone()
    accelerating[..., 0, 0] += 0.5 * t[:, 0, 0] ** 2  # second difference 1 at 3 inner frames
    assert float(acceleration_term(accelerating)) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="T >= 3"):
        acceleration_term(torch.zeros(2, 4, 3))


def test_without_smoothness_and_shared_betas_it_equals_per_frame_fitting():
    # The toy problem is not convex: both fits start near the truth, so that they find the same
    # local minimum by their different paths (one L-BFGS per sequence vs one per frame).
    p = problem()
    tight = KeypointFittingOptions(
        stopping=StoppingRules(max_iterations=60, relative_tolerance=1e-13, gradient_tolerance=1e-7)
    )
    options = SequenceFittingOptions(smoothness_weight=0.0, share_betas=False, frame=tight)
    kp = noisy(p, sigma_px=3.0)
    inputs = sequence_inputs(p, kp)
    inputs["init_z"] = p.z.reshape(G, T, -1) + 0.1
    inputs["init_betas"] = p.betas.reshape(G, T, -1) + 0.1
    inputs["init_camera_translation"] = (p.camera_translation + 0.2 * OFFSET).reshape(G, T, 3)
    sequence = fit_keypoints_sequence(**inputs, options=options)
    per_frame = fit_keypoints(
        decoder=p.decoder,
        body_model=p.body_model,
        keypoints_2d=kp,
        init_z=inputs["init_z"].reshape(G * T, -1),
        init_betas=inputs["init_betas"].reshape(G * T, -1),
        init_camera_translation=inputs["init_camera_translation"].reshape(G * T, 3),
        focal_px=p.focal_px,
        image_size_px=p.image_size_px,
        options=tight,
    )
    # the same kernels: the sequence's initial loss is the sum of the frames' initial losses
    torch.testing.assert_close(
        sequence.report.initial_loss,
        per_frame.report.initial_loss.reshape(G, T).sum(dim=1),
        rtol=1e-12,
        atol=0,
    )
    # ... and the same minimum (both converged, float64)
    assert sequence.report.converged.all() and per_frame.report.converged.all()
    torch.testing.assert_close(
        sequence.loss, per_frame.loss.reshape(G, T).sum(dim=1), rtol=1e-9, atol=0
    )
    torch.testing.assert_close(
        sequence.keypoints_3d, per_frame.keypoints_3d.reshape(G, T, 44, 3), atol=2e-5, rtol=0
    )
    torch.testing.assert_close(sequence.z, per_frame.z.reshape(G, T, -1), atol=1e-4, rtol=0)
    torch.testing.assert_close(sequence.betas, per_frame.betas.reshape(G, T, -1), atol=1e-4, rtol=0)
    assert float(sequence.terms["smoothness"].abs().max()) == 0.0


def test_shared_betas_are_one_vector_per_sequence():
    p = problem()
    options = SequenceFittingOptions(smoothness_weight=0.0, frame=FAST)
    inputs = sequence_inputs(p)
    inputs["init_betas"] = torch.randn(
        G, T, 10, dtype=F64, generator=torch.Generator().manual_seed(1)
    )
    result = fit_keypoints_sequence(**inputs, options=options)
    assert result.betas.shape == (G, T, 10)
    torch.testing.assert_close(result.betas, result.betas[:, :1].expand(G, T, 10), atol=0, rtol=0)
    assert not torch.equal(result.betas[0, 0], result.betas[1, 0])  # sequences are separate
    assert result.report.optimized.all()
    assert (result.loss < result.report.initial_loss).all()


def test_a_large_smoothness_weight_gives_smaller_accelerations():
    p = problem()
    kp = noisy(p, sigma_px=30.0)
    results = {}
    for weight in (0.0, 300.0):
        options = SequenceFittingOptions(smoothness_weight=weight, frame=FAST)
        results[weight] = fit_keypoints_sequence(**sequence_inputs(p, kp), options=options)
    rough = acceleration_term(results[0.0].keypoints_3d)
    smooth = acceleration_term(results[300.0].keypoints_3d)
    assert (smooth < 0.5 * rough).all(), (smooth, rough)
    # the reported smoothness term is the weighted acceleration term of the result
    torch.testing.assert_close(results[300.0].terms["smoothness"], 300.0**2 * smooth)


def test_sequences_in_a_batch_are_independent_and_unbatched_input_works():
    p = problem()
    inputs = sequence_inputs(p, noisy(p, sigma_px=5.0))
    options = SequenceFittingOptions(smoothness_weight=50.0, frame=FAST)
    both = fit_keypoints_sequence(**inputs, options=options)
    alone = fit_keypoints_sequence(
        **{k: (v[1] if isinstance(v, torch.Tensor) else v) for k, v in inputs.items()},
        options=options,
    )
    assert alone.z.shape == (T, p.z.shape[1]) and alone.loss.shape == ()
    assert alone.report.iterations.shape == (1,)
    torch.testing.assert_close(alone.keypoints_3d, both.keypoints_3d[1], atol=1e-9, rtol=0)
    assert alone.initial_projected_keypoints_2d.shape == (T, 44, 2)


def test_frames_without_keypoints_are_flagged_and_fitted():
    p = problem()
    kp = p.keypoints_2d.clone().reshape(G, T, 44, 3)
    kp[0, 1, :, 2] = 0.0  # frame 1 of sequence 0 lost
    kp[1, :, :, 2] = 0.0  # sequence 1 has nothing
    inputs = sequence_inputs(p)
    inputs["keypoints_2d"] = kp
    result = fit_keypoints_sequence(**inputs, options=SequenceFittingOptions(frame=FAST))
    assert result.weak_frames.tolist() == [[False, True, False, False], [True] * T]
    assert result.report.optimized.tolist() == [True, False]
    assert result.report.reasons[1].startswith("too_few_confident_keypoints")


def test_bad_inputs_give_named_errors():
    p = problem()
    inputs = sequence_inputs(p)
    short = {
        k: (v[:, :2] if isinstance(v, torch.Tensor) and v.ndim >= 3 else v)
        for k, v in inputs.items()
    }
    with pytest.raises(ValueError, match="at least 3 frames"):
        fit_keypoints_sequence(**short)
    with pytest.raises(ValueError, match="`init_betas` must have shape"):
        fit_keypoints_sequence(**{**inputs, "init_betas": torch.zeros(G, T + 1, 10, dtype=F64)})
    with pytest.raises(ValueError, match="`keypoints_2d` must have shape"):
        fit_keypoints_sequence(**{**inputs, "keypoints_2d": inputs["keypoints_2d"][0]})
    with pytest.raises(ValueError, match="`init_camera_translation` must have shape"):
        fit_keypoints_sequence(
            **{**inputs, "init_camera_translation": torch.zeros(G, T, 2, dtype=F64)}
        )
    with pytest.raises(ValueError, match="`focal_px`"):
        fit_keypoints_sequence(**{**inputs, "focal_px": torch.ones(G, T + 1, dtype=F64)})
    with pytest.raises(ValueError, match="init_z"):
        fit_keypoints_sequence(**{**inputs, "init_z": torch.zeros(T, dtype=F64)})
    with pytest.raises(ValueError, match="smoothness_weight"):
        SequenceFittingOptions(smoothness_weight=-1.0)
    with pytest.raises(TypeError, match="frame"):
        SequenceFittingOptions(frame=None)
