"""Every objective term against hand-computed values."""

import math

import pytest
import torch

from pose_fitting import (
    ANGLE_PRIOR_AXES,
    ANGLE_PRIOR_BODY_JOINT_IDX,
    ANGLE_PRIOR_SIGNS,
    ANGLE_PRIOR_SMPL_JOINTS,
    angle_prior,
    depth_deviation,
    geman_mcclure,
    image_size_weight,
    reprojection_term,
    rotation_consistency,
    squared_norm,
)
from pose_geometry import axis_angle_to_rotmat

F64 = torch.float64


def test_geman_mcclure_by_hand():
    x = torch.tensor([0.0, 1.0, -3.0, 100.0, 1e6], dtype=F64)
    # sigma = 2: 4 x^2 / (4 + x^2)
    expected = torch.tensor([0.0, 4 / 5, 36 / 13, 40000 / 10004, 4 * 1e12 / (4 + 1e12)], dtype=F64)
    torch.testing.assert_close(geman_mcclure(x, sigma=2.0), expected)
    # ~ x^2 for small x, saturates at sigma^2.
    assert abs(float(geman_mcclure(torch.tensor(0.01, dtype=F64), sigma=100.0)) - 1e-4) < 1e-12
    assert float(geman_mcclure(torch.tensor(1e9, dtype=F64), sigma=100.0)) == pytest.approx(1e4)
    with pytest.raises(ValueError, match="`sigma` must be positive"):
        geman_mcclure(x, sigma=0.0)


def test_reprojection_term_by_hand():
    projected = torch.tensor([[[10.0, 20.0], [0.0, 0.0]], [[1.0, 1.0], [2.0, 2.0]]], dtype=F64)
    target = torch.tensor(
        [[[13.0, 16.0, 0.5], [100.0, 0.0, 1.0]], [[1.0, 1.0, 1.0], [2.0, 5.0, 0.0]]], dtype=F64
    )
    sigma = 10.0

    def rho(r):
        return sigma**2 * r**2 / (sigma**2 + r**2)

    item0 = 0.5**2 * (rho(-3.0) + rho(4.0)) + 1.0**2 * (rho(-100.0) + rho(0.0))
    item1 = 0.0 + 0.0  # perfect fit, and a zero-confidence keypoint
    weight = torch.tensor([2.0, 3.0], dtype=F64)
    out = reprojection_term(projected, target, sigma_px=sigma, weight=weight)
    torch.testing.assert_close(out, torch.tensor([2.0 * item0, 3.0 * item1], dtype=F64))
    with pytest.raises(ValueError, match="must agree"):
        reprojection_term(projected[:, :1], target, sigma_px=sigma)


def test_image_size_weight_is_prohmr_scale():
    sizes = torch.tensor([[1000.0, 500.0], [224.0, 224.0], [480.0, 640.0]], dtype=F64)
    expected = torch.tensor([1.0, (1000 / 224) ** 2, (1000 / 640) ** 2], dtype=F64)
    torch.testing.assert_close(image_size_weight(sizes, reference_px=1000.0), expected)


def test_squared_norm_by_hand():
    x = torch.tensor([[1.0, 2.0, 2.0], [0.0, -3.0, 4.0]], dtype=F64)
    torch.testing.assert_close(squared_norm(x), torch.tensor([9.0, 25.0], dtype=F64))
    y = torch.ones(2, 3, 4, dtype=F64)
    torch.testing.assert_close(
        squared_norm(y, num_batch_dims=2), torch.full((2, 3), 4.0, dtype=F64)
    )


def test_rotation_consistency_by_hand():
    # Two views, one joint: identity and a rotation by a about z.
    a = 0.7
    R = axis_angle_to_rotmat(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, a]], dtype=F64))
    rotmats = R.reshape(2, 1, 3, 3)
    # Each view differs from the mean by (R1 - R0) / 2 in norm: ||R1 - R0||_F^2 / 4,
    # with ||R1 - R0||_F^2 = 2 * ((cos a - 1)^2 + sin^2 a) = 4 (1 - cos a).
    each = 4 * (1 - math.cos(a)) / 4
    torch.testing.assert_close(rotation_consistency(rotmats), torch.tensor([each, each], dtype=F64))
    # Identical views: zero; batch dimensions pass through.
    same = R[:1].expand(3, 2, 3, 3).reshape(1, 3, 2, 3, 3)
    torch.testing.assert_close(rotation_consistency(same), torch.zeros(1, 3, dtype=F64))


def test_angle_prior_indices_and_values_by_hand():
    assert ANGLE_PRIOR_SMPL_JOINTS == (18, 19, 4, 5)  # left/right elbow, left/right knee
    assert ANGLE_PRIOR_BODY_JOINT_IDX == tuple(j - 1 for j in ANGLE_PRIOR_SMPL_JOINTS)
    # In SMPLify's 72-vector (root first): entries 55, 58, 12, 15.
    pairs = zip(ANGLE_PRIOR_SMPL_JOINTS, ANGLE_PRIOR_AXES, strict=True)
    assert [3 * j + a for j, a in pairs] == [55, 58, 12, 15]
    assert ANGLE_PRIOR_SIGNS == (1.0, -1.0, -1.0, -1.0)
    pose = torch.zeros(2, 23, 3, dtype=F64)
    torch.testing.assert_close(angle_prior(pose), torch.full((2,), 4.0, dtype=F64))
    pose[1, 17, 1] = 0.5  # left elbow y
    pose[1, 18, 1] = 0.5  # right elbow y
    pose[1, 3, 0] = -0.2  # left knee x (hyper-extension)
    pose[1, 4, 0] = 1.0  # right knee x (natural bend)
    pose[1, 4, 1] = 9.0  # an unused component
    expected = math.exp(0.5) ** 2 + math.exp(-0.5) ** 2 + math.exp(0.2) ** 2 + math.exp(-1.0) ** 2
    torch.testing.assert_close(angle_prior(pose)[1], torch.tensor(expected, dtype=F64))


def test_depth_deviation_by_hand():
    t = torch.tensor([[0.1, 0.2, 50.0], [0.0, 0.0, 10.0]], dtype=F64)
    ref = torch.tensor([[9.0, 9.0, 48.0], [0.0, 0.0, 10.5]], dtype=F64)
    torch.testing.assert_close(depth_deviation(t, ref), torch.tensor([4.0, 0.25], dtype=F64))
