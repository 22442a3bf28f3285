import math

import numpy as np
import pytest
import torch

from pose_geometry import LSP14_IDX_44, PELVIS_IDX_44, apply_similarity
from pose_geometry.testing import random_rotmat
from pose_metrics import (
    joint_position_errors,
    mpjpe,
    pa_joint_position_errors,
    pa_mpjpe,
    root_align,
)


def numpy_pa_errors(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Float64 per-joint errors after similarity Procrustes of one (J, 3) pair (points as rows)."""
    mu_p, mu_t = prediction.mean(0), target.mean(0)
    X, Y = prediction - mu_p, target - mu_t
    U, S, Vt = np.linalg.svd(X.T @ Y)
    d = np.sign(np.linalg.det(Vt.T @ U.T))
    D = np.diag([1.0, 1.0, d])
    R = Vt.T @ D @ U.T
    scale = np.trace(D @ np.diag(S)) / (X**2).sum()
    aligned = scale * X @ R.T + mu_t
    return np.linalg.norm(aligned - target, axis=-1)


def random_pair(generator, *batch, num_joints=44, noise=0.05):
    target = torch.randn(*batch, num_joints, 3, dtype=torch.float64, generator=generator) * 0.3
    noisy = torch.randn(*batch, num_joints, 3, dtype=torch.float64, generator=generator)
    return target + noise * noisy, target


def test_rotated_scaled_copy_has_zero_pa_mpjpe_and_hand_computed_mpjpe():
    # Root at the origin, one joint on x, one on z (metres). Rotating by 90° about z, scaling by
    # 2 and translating maps (1,0,0) -> (0,2,0) and (0,0,1) -> (0,0,2) relative to the root.
    target = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    Rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    prediction = apply_similarity(
        target, Rz, torch.tensor(2.0, dtype=torch.float64), torch.tensor([0.3, -0.2, 5.0])
    )
    expected_mm = (0.0 + math.sqrt(5.0) + 1.0) / 3 * 1000
    assert mpjpe(prediction, target, root_idx=0).item() == pytest.approx(expected_mm, abs=1e-9)
    assert pa_mpjpe(prediction, target).item() == pytest.approx(0.0, abs=1e-9)
    per_joint = joint_position_errors(prediction, target, root_idx=0)
    torch.testing.assert_close(
        per_joint, torch.tensor([0.0, math.sqrt(5.0) * 1000, 1000.0], dtype=torch.float64)
    )


def test_random_similar_copies_have_zero_pa_mpjpe():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(16, 44, 3, dtype=torch.float64, generator=g)
    R = random_rotmat(16, dtype=torch.float64, generator=g)
    scale = torch.rand(16, dtype=torch.float64, generator=g) + 0.5
    shift = torch.randn(16, 3, dtype=torch.float64, generator=g)
    prediction = apply_similarity(target, R, scale, shift)
    errors = pa_mpjpe(prediction, target, joint_idx=LSP14_IDX_44)
    torch.testing.assert_close(errors, torch.zeros(16, dtype=torch.float64), atol=1e-8, rtol=0)
    assert (mpjpe(prediction, target, root_idx=PELVIS_IDX_44) > 1.0).all()


def test_matches_float64_numpy_reference_to_a_micrometre():
    g = torch.Generator().manual_seed(1)
    prediction, target = random_pair(g, 32)
    p, t = prediction.numpy(), target.numpy()
    idx = list(LSP14_IDX_44)
    p_rel = p - p[:, PELVIS_IDX_44 : PELVIS_IDX_44 + 1]
    t_rel = t - t[:, PELVIS_IDX_44 : PELVIS_IDX_44 + 1]
    ref_joint = np.linalg.norm(p_rel[:, idx] - t_rel[:, idx], axis=-1) * 1000
    ref_pa_joint = (
        np.stack([numpy_pa_errors(a[idx], b[idx]) for a, b in zip(p, t, strict=True)]) * 1000
    )

    got_joint = joint_position_errors(
        prediction, target, root_idx=PELVIS_IDX_44, joint_idx=LSP14_IDX_44
    )
    got_pa_joint = pa_joint_position_errors(prediction, target, joint_idx=LSP14_IDX_44)
    np.testing.assert_allclose(got_joint.numpy(), ref_joint, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_pa_joint.numpy(), ref_pa_joint, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        mpjpe(prediction, target, root_idx=PELVIS_IDX_44, joint_idx=LSP14_IDX_44).numpy(),
        ref_joint.mean(-1),
        rtol=0,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        pa_mpjpe(prediction, target, joint_idx=LSP14_IDX_44).numpy(),
        ref_pa_joint.mean(-1),
        rtol=0,
        atol=1e-6,
    )


def test_float32_agrees_with_float64_within_float32_precision():
    g = torch.Generator().manual_seed(2)
    prediction, target = random_pair(g, 64)
    for fn in (pa_mpjpe, lambda p, t: mpjpe(p, t, root_idx=PELVIS_IDX_44)):
        torch.testing.assert_close(
            fn(prediction.float(), target.float()),
            fn(prediction, target).float(),
            atol=1e-3,
            rtol=1e-5,
        )


@pytest.mark.parametrize("batch", [(), (5,), (2, 5)])
def test_same_results_for_any_batch_shape(batch):
    g = torch.Generator().manual_seed(3)
    prediction, target = random_pair(g, 10, num_joints=17)
    flat_mpjpe = mpjpe(prediction, target, root_idx=0)
    flat_pa = pa_mpjpe(prediction, target)
    count = math.prod(batch)
    shape = (*batch, 17, 3)
    got_mpjpe = mpjpe(prediction[:count].reshape(shape), target[:count].reshape(shape), root_idx=0)
    got_pa = pa_mpjpe(prediction[:count].reshape(shape), target[:count].reshape(shape))
    assert got_mpjpe.shape == batch and got_pa.shape == batch
    torch.testing.assert_close(got_mpjpe.reshape(-1), flat_mpjpe[:count])
    torch.testing.assert_close(got_pa.reshape(-1), flat_pa[:count])


def test_target_broadcasts_against_samples():
    g = torch.Generator().manual_seed(4)
    target = torch.randn(3, 14, 3, dtype=torch.float64, generator=g)
    samples = target[:, None] + 0.1 * torch.randn(3, 6, 14, 3, dtype=torch.float64, generator=g)
    expanded = target[:, None].expand(3, 6, 14, 3)
    torch.testing.assert_close(
        pa_mpjpe(samples, target[:, None]), pa_mpjpe(samples, expanded.contiguous())
    )
    torch.testing.assert_close(
        mpjpe(samples, target[:, None], root_idx=0), mpjpe(samples, expanded, root_idx=0)
    )


def test_per_joint_errors_average_to_the_metrics():
    g = torch.Generator().manual_seed(5)
    prediction, target = random_pair(g, 8)
    torch.testing.assert_close(
        joint_position_errors(prediction, target, root_idx=39, joint_idx=LSP14_IDX_44).mean(-1),
        mpjpe(prediction, target, root_idx=39, joint_idx=LSP14_IDX_44),
    )
    torch.testing.assert_close(
        pa_joint_position_errors(prediction, target, joint_idx=LSP14_IDX_44).mean(-1),
        pa_mpjpe(prediction, target, joint_idx=LSP14_IDX_44),
    )


def test_root_need_not_be_among_the_selected_joints():
    g = torch.Generator().manual_seed(6)
    prediction, target = random_pair(g, 4)
    shift = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    # Moving the whole prediction does not matter once the pelvis (not in LSP-14) is subtracted.
    torch.testing.assert_close(
        mpjpe(prediction + shift, target, root_idx=39, joint_idx=LSP14_IDX_44),
        mpjpe(prediction, target, root_idx=39, joint_idx=LSP14_IDX_44),
    )
    assert (mpjpe(prediction + shift, target, root_idx=None, joint_idx=LSP14_IDX_44) > 1000).all()


def test_mask_leaves_joints_out_of_the_mean_and_the_alignment():
    g = torch.Generator().manual_seed(7)
    prediction, target = random_pair(g, 6, num_joints=10)
    corrupted = prediction.clone()
    corrupted[:, 3] = float("nan")
    corrupted[:, 7] += 10.0
    mask = torch.ones(6, 10, dtype=torch.bool)
    mask[:, [3, 7]] = False
    kept = [0, 1, 2, 4, 5, 6, 8, 9]
    torch.testing.assert_close(
        mpjpe(corrupted, target, root_idx=0, mask=mask),
        mpjpe(prediction, target, root_idx=0, joint_idx=kept),
    )
    torch.testing.assert_close(
        pa_mpjpe(corrupted, target, mask=mask), pa_mpjpe(prediction, target, joint_idx=kept)
    )
    # Fractional confidences weight the mean.
    weights = torch.rand(6, 10, dtype=torch.float64, generator=g)
    per_joint = joint_position_errors(prediction, target, root_idx=0)
    torch.testing.assert_close(
        mpjpe(prediction, target, root_idx=0, mask=weights),
        (weights * per_joint).sum(-1) / weights.sum(-1),
    )


def test_fully_masked_pose_gives_nan():
    prediction = torch.zeros(2, 5, 3)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    result = mpjpe(prediction, prediction, root_idx=0, mask=mask)
    assert result[0].item() == 0.0 and math.isnan(result[1].item())


def test_nonfinite_prediction_gives_nan_for_that_pose_only():
    g = torch.Generator().manual_seed(8)
    prediction, target = random_pair(g, 4, num_joints=14)
    prediction[2, 5, 1] = float("nan")
    prediction[3, 0, 0] = float("inf")
    pa = pa_mpjpe(prediction, target)
    assert torch.isfinite(pa[:2]).all() and torch.isnan(pa[2:]).all()
    torch.testing.assert_close(pa[:2], pa_mpjpe(prediction[:2], target[:2]))
    assert torch.isnan(pa_joint_position_errors(prediction, target)[2]).all()
    plain = mpjpe(prediction, target, root_idx=None)
    assert torch.isfinite(plain[:2]).all() and not torch.isfinite(plain[2:]).any()


def test_millimetre_inputs_with_unit_factor_one():
    g = torch.Generator().manual_seed(9)
    prediction, target = random_pair(g, 5)
    torch.testing.assert_close(
        pa_mpjpe(prediction * 1000, target * 1000, mm_per_unit=1.0), pa_mpjpe(prediction, target)
    )
    torch.testing.assert_close(
        mpjpe(prediction * 1000, target * 1000, root_idx=39, mm_per_unit=1.0),
        mpjpe(prediction, target, root_idx=39),
    )


def test_root_align_puts_the_root_at_the_origin():
    points = torch.randn(3, 44, 3, generator=torch.Generator().manual_seed(10))
    aligned = root_align(points, root_idx=PELVIS_IDX_44)
    assert (aligned[:, PELVIS_IDX_44] == 0).all()
    torch.testing.assert_close(aligned[:, 0] - aligned[:, 1], points[:, 0] - points[:, 1])


def test_mpjpe_is_differentiable():
    g = torch.Generator().manual_seed(11)
    prediction, target = random_pair(g, 2, num_joints=6)
    prediction.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: mpjpe(p, target, root_idx=0), (prediction,), eps=1e-6, atol=1e-4
    )


def test_rejects_bad_shape():
    with pytest.raises(
        ValueError, match=r"`prediction` must have shape \(\.\.\., J, 3\), got \(8, 2\)"
    ):
        mpjpe(torch.zeros(8, 2), torch.zeros(8, 2), root_idx=0)
    with pytest.raises(
        ValueError, match=r"`target` must have shape \(\.\.\., J, 3\), got \(14, 4\)"
    ):
        pa_mpjpe(torch.zeros(14, 3), torch.zeros(14, 4))


def test_rejects_mismatched_joint_counts():
    with pytest.raises(
        ValueError,
        match=r"`prediction` and `target` must have the same number of joints J .* got 17 and 14",
    ):
        pa_mpjpe(torch.zeros(2, 17, 3), torch.zeros(2, 14, 3))
    with pytest.raises(ValueError, match=r"same number of joints J .* got 44 and 17"):
        mpjpe(torch.zeros(44, 3), torch.zeros(17, 3), root_idx=0)


def test_rejects_batches_that_do_not_broadcast():
    with pytest.raises(
        ValueError, match=r"batch dimensions of `prediction` \(4, 14, 3\) .* do not broadcast"
    ):
        mpjpe(torch.zeros(4, 14, 3), torch.zeros(3, 14, 3), root_idx=0)


def test_rejects_indices_outside_the_joints():
    poses = torch.zeros(2, 14, 3)
    with pytest.raises(
        ValueError, match=r"`root_idx` must lie in \[0, 14\) for J = 14 joints, got 39"
    ):
        mpjpe(poses, poses, root_idx=PELVIS_IDX_44)
    with pytest.raises(ValueError, match=r"`joint_idx` must lie in \[0, 14\) .* got 25"):
        pa_mpjpe(poses, poses, joint_idx=LSP14_IDX_44)
    with pytest.raises(ValueError, match="at least one joint"):
        pa_mpjpe(poses, poses, joint_idx=[])
    with pytest.raises(TypeError, match="`joint_idx` must be a sequence of ints"):
        pa_mpjpe(poses, poses, joint_idx=3)


def test_rejects_wrong_types_and_masks():
    with pytest.raises(TypeError, match=r"`prediction` must be a floating-point tensor"):
        mpjpe(torch.zeros(2, 14, 3, dtype=torch.long), torch.zeros(2, 14, 3), root_idx=0)
    with pytest.raises(TypeError, match=r"`target` must be a torch\.Tensor, got ndarray"):
        pa_mpjpe(torch.zeros(14, 3), np.zeros((14, 3)))
    with pytest.raises(
        ValueError, match=r"`mask` must have shape \(\.\.\., J\) with J = 14 .* got \(2, 13\)"
    ):
        pa_mpjpe(torch.zeros(2, 14, 3), torch.zeros(2, 14, 3), mask=torch.ones(2, 13))
    with pytest.raises(ValueError, match=r"batch dimensions of `mask` \(3, 14\)"):
        mpjpe(torch.zeros(2, 14, 3), torch.zeros(2, 14, 3), root_idx=0, mask=torch.ones(3, 14))
    with pytest.raises(ValueError, match="`mm_per_unit` must be a positive finite number"):
        mpjpe(torch.zeros(14, 3), torch.zeros(14, 3), root_idx=0, mm_per_unit=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(12)
    prediction, target = random_pair(g, 32)
    for fn in (
        lambda p, t: pa_mpjpe(p, t, joint_idx=LSP14_IDX_44),
        lambda p, t: mpjpe(p, t, root_idx=39, joint_idx=LSP14_IDX_44),
    ):
        result = fn(prediction.cuda(), target.cuda())
        assert result.device.type == "cuda"
        torch.testing.assert_close(result.cpu(), fn(prediction, target))
