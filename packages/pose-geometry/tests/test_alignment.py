import numpy as np
import pytest
import torch

from pose_geometry import apply_similarity, procrustes_align
from pose_geometry.testing import assert_close, random_rotmat


def _numpy_similarity_procrustes(S1: np.ndarray, S2: np.ndarray) -> np.ndarray:
    """Float64 reference for one (N, 3) pair, written from the ProHMR evaluator's formula."""
    X1 = S1.T - S1.T.mean(axis=1, keepdims=True)  # (3, N) points as columns
    X2 = S2.T - S2.T.mean(axis=1, keepdims=True)
    K = X1 @ X2.T
    U, _, Vt = np.linalg.svd(K)
    V = Vt.T
    Z = np.eye(3)
    Z[2, 2] = np.sign(np.linalg.det(U @ V.T))
    R = V @ Z @ U.T
    scale = np.trace(R @ K) / np.sum(X1**2)
    t = S2.T.mean(axis=1, keepdims=True) - scale * R @ S1.T.mean(axis=1, keepdims=True)
    return (scale * R @ S1.T + t).T


def _similar_copy(points: torch.Tensor, generator: torch.Generator):
    batch = points.shape[:-2]
    R = random_rotmat(*batch, dtype=points.dtype, generator=generator)
    s = torch.rand(batch, dtype=points.dtype, generator=generator) * 2 + 0.5
    t = torch.randn(*batch, 3, dtype=points.dtype, generator=generator)
    return apply_similarity(points, R, s, t), R, s, t


def test_recovers_a_known_similarity_exactly():
    g = torch.Generator().manual_seed(0)
    source = torch.randn(6, 14, 3, dtype=torch.float64, generator=g)
    target, R, s, t = _similar_copy(source, g)
    result = procrustes_align(source, target)
    assert_close(result.aligned, target)
    assert_close(result.rotation, R)
    assert_close(result.scale, s)
    assert_close(result.translation, t)


def test_rotation_has_det_plus_one_even_for_a_reflected_target():
    g = torch.Generator().manual_seed(1)
    source = torch.randn(20, 17, 3, dtype=torch.float64, generator=g)
    mirrored = source * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    result = procrustes_align(source, mirrored)
    assert_close(torch.linalg.det(result.rotation), torch.ones(20, dtype=torch.float64))
    # A reflection cannot be reached by a rotation: the residual stays positive.
    assert (result.aligned - mirrored).norm(dim=-1).mean() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_float64_numpy_reference(dtype):
    g = torch.Generator().manual_seed(2)
    source = torch.randn(32, 14, 3, dtype=torch.float64, generator=g)
    target = torch.randn(32, 14, 3, dtype=torch.float64, generator=g) * 0.3 + source
    expected = np.stack(
        [
            _numpy_similarity_procrustes(a, b)
            for a, b in zip(source.numpy(), target.numpy(), strict=True)
        ]
    )
    result = procrustes_align(source.to(dtype), target.to(dtype))
    assert_close(result.aligned, torch.from_numpy(expected).to(dtype))


def test_uniform_weights_equal_no_weights_and_zero_weights_ignore_points():
    g = torch.Generator().manual_seed(3)
    source = torch.randn(4, 10, 3, dtype=torch.float64, generator=g)
    target, R, s, _ = _similar_copy(source, g)
    plain = procrustes_align(source, target)
    uniform = procrustes_align(
        source, target, weights=torch.full((4, 10), 0.7, dtype=torch.float64)
    )
    assert_close(uniform.aligned, plain.aligned)
    # Corrupt three target points and give them weight 0: the transform is still exact.
    corrupted = target.clone()
    corrupted[:, :3] += 5.0
    weights = torch.ones(4, 10, dtype=torch.float64)
    weights[:, :3] = 0
    result = procrustes_align(source, corrupted, weights=weights)
    assert_close(result.rotation, R)
    assert_close(result.scale, s)
    assert_close(result.aligned, target)  # the ignored points are transformed too


def test_weighted_matches_reference_on_the_weighted_subset():
    g = torch.Generator().manual_seed(4)
    source = torch.randn(5, 12, 3, dtype=torch.float64, generator=g)
    target = source + 0.2 * torch.randn(5, 12, 3, dtype=torch.float64, generator=g)
    mask = torch.ones(5, 12, dtype=torch.float64)
    mask[:, 7:] = 0
    result = procrustes_align(source, target, weights=mask)
    expected = torch.from_numpy(
        np.stack(
            [
                _numpy_similarity_procrustes(a[:7], b[:7])
                for a, b in zip(source.numpy(), target.numpy(), strict=True)
            ]
        )
    )
    assert_close(result.aligned[:, :7], expected)


def test_rigid_mode_keeps_scale_one():
    g = torch.Generator().manual_seed(5)
    source = torch.randn(3, 9, 3, dtype=torch.float64, generator=g)
    R = random_rotmat(3, dtype=torch.float64, generator=g)
    target = apply_similarity(
        source,
        R,
        torch.full((3,), 2.0, dtype=torch.float64),
        torch.zeros(3, 3, dtype=torch.float64),
    )
    result = procrustes_align(source, target, with_scale=False)
    assert torch.equal(result.scale, torch.ones(3, dtype=torch.float64))
    assert_close(result.rotation, R)


@pytest.mark.parametrize("shape", [(), (5,), (2, 5)])
def test_batch_shapes_give_the_same_values(shape):
    g = torch.Generator().manual_seed(6)
    source = torch.randn(10, 8, 3, dtype=torch.float64, generator=g)
    target = torch.randn(10, 8, 3, dtype=torch.float64, generator=g)
    flat = procrustes_align(source, target)
    n = int(np.prod(shape))
    result = procrustes_align(source[:n].reshape(*shape, 8, 3), target[:n].reshape(*shape, 8, 3))
    assert result.aligned.shape == (*shape, 8, 3)
    assert result.rotation.shape == (*shape, 3, 3)
    assert result.scale.shape == shape
    assert result.translation.shape == (*shape, 3)
    assert_close(result.aligned.reshape(-1, 8, 3), flat.aligned[:n])


def test_gradcheck():
    g = torch.Generator().manual_seed(7)
    source = torch.randn(2, 6, 3, dtype=torch.float64, generator=g).requires_grad_(True)
    target = torch.randn(2, 6, 3, dtype=torch.float64, generator=g).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: procrustes_align(a, b).aligned, (source, target))


def test_degenerate_input_stays_finite():
    source = torch.zeros(1, 5, 3, dtype=torch.float64)
    target = torch.ones(1, 5, 3, dtype=torch.float64)
    result = procrustes_align(source, target)
    assert torch.isfinite(result.aligned).all()
    assert_close(result.aligned, target)  # the translation alone matches the centroid


def test_rejects_bad_shapes():
    with pytest.raises(
        ValueError, match=r"`source` must have shape \(\.\.\., N, 3\), got \(4, 2\)"
    ):
        procrustes_align(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"`source` and `target` must have the same shape"):
        procrustes_align(torch.zeros(2, 14, 3), torch.zeros(2, 17, 3))
    with pytest.raises(ValueError, match=r"`weights` must have shape \(\.\.\., N\) = \(2, 14\)"):
        procrustes_align(torch.zeros(2, 14, 3), torch.zeros(2, 14, 3), weights=torch.ones(2, 17))
    with pytest.raises(TypeError, match=r"`target` must be a floating-point tensor"):
        procrustes_align(torch.zeros(2, 14, 3), torch.zeros(2, 14, 3, dtype=torch.long))
