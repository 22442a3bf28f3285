import math

import pytest
import roma
import torch

from pose_geometry import (
    axis_angle_to_quat_wxyz,
    axis_angle_to_rotmat,
    quat_wxyz_to_axis_angle,
    quat_wxyz_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat_wxyz,
    rotmat_to_rot6d,
)
from pose_geometry.testing import assert_close, random_rotmat, tolerance


def _random_axis_angle(*shape, dtype=torch.float64, max_angle=math.pi - 1e-3):
    axis = torch.nn.functional.normalize(torch.randn(*shape, 3, dtype=dtype), dim=-1)
    angle = torch.rand(*shape, 1, dtype=dtype) * max_angle
    return axis * angle


def _assert_rotation(R: torch.Tensor) -> None:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    assert_close(R @ R.transpose(-1, -2), eye)
    assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype))


def test_axis_angle_to_rotmat_matches_roma():
    aa = _random_axis_angle(500)
    assert_close(axis_angle_to_rotmat(aa), roma.rotvec_to_rotmat(aa))


def test_rotmat_to_axis_angle_matches_roma():
    R = random_rotmat(500, dtype=torch.float64)
    assert_close(rotmat_to_axis_angle(R), roma.rotmat_to_rotvec(R))


def test_quaternion_conversions_match_roma_up_to_sign():
    R = random_rotmat(500, dtype=torch.float64)
    q_ours = rotmat_to_quat_wxyz(R)
    q_roma = roma.rotmat_to_unitquat(R)[..., [3, 0, 1, 2]]  # roma is (x, y, z, w)
    q_roma = torch.where(q_roma[..., :1] < 0, -q_roma, q_roma)
    assert_close(q_ours, q_roma)
    assert_close(quat_wxyz_to_rotmat(q_ours), R)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_axis_angle_round_trip(dtype):
    aa = _random_axis_angle(1000, dtype=dtype)
    assert_close(rotmat_to_axis_angle(axis_angle_to_rotmat(aa)), aa)
    assert_close(quat_wxyz_to_axis_angle(axis_angle_to_quat_wxyz(aa)), aa)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotmat_round_trip_through_axis_angle_and_quaternion(dtype):
    R = random_rotmat(1000, dtype=dtype)
    assert_close(axis_angle_to_rotmat(rotmat_to_axis_angle(R)), R)
    assert_close(quat_wxyz_to_rotmat(rotmat_to_quat_wxyz(R)), R)


def test_produced_matrices_are_rotations():
    _assert_rotation(axis_angle_to_rotmat(_random_axis_angle(200) * 3))  # angles beyond pi too
    _assert_rotation(quat_wxyz_to_rotmat(torch.randn(200, 4, dtype=torch.float64)))
    _assert_rotation(rot6d_to_rotmat(torch.randn(200, 6, dtype=torch.float64)))


def test_rot6d_layout_is_first_two_columns():
    R = random_rotmat(10, dtype=torch.float64)
    six = rotmat_to_rot6d(R)
    expected = torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)  # (R00, R10, R20, R01, R11, R21)
    assert torch.equal(six, expected)
    assert_close(rot6d_to_rotmat(six), R)


def test_rot6d_gram_schmidt_by_hand():
    # a1 = 2·e_x, a2 = e_x + 3·e_y  ->  b1 = e_x, b2 = e_y, b3 = e_z: the identity.
    six = torch.tensor([2.0, 0.0, 0.0, 1.0, 3.0, 0.0], dtype=torch.float64)
    assert_close(rot6d_to_rotmat(six), torch.eye(3, dtype=torch.float64))
    # a1 = e_y, a2 = e_x  ->  columns (e_y, e_x, e_y × e_x = -e_z).
    six = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    expected = torch.tensor(
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64
    )
    assert_close(rot6d_to_rotmat(six), expected)


def test_rot6d_differs_from_the_row_convention():
    # The pytorch3d layout (rows) decodes to the transpose: guard against mixing them up.
    R = random_rotmat(1, dtype=torch.float64)[0]
    rows = torch.cat([R[0], R[1]])
    assert not torch.allclose(rot6d_to_rotmat(rows), R)
    assert_close(rot6d_to_rotmat(rows), R.T)


def test_known_rotation_about_z():
    aa = torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64)
    expected = torch.tensor(
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    R = axis_angle_to_rotmat(aa)
    assert_close(R, expected)
    assert_close(
        R @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
        torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
    )  # column-vector convention
    assert_close(
        axis_angle_to_quat_wxyz(aa),
        torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], dtype=torch.float64),
    )


@pytest.mark.parametrize("shape", [(), (5,), (2, 5)])
def test_batch_shapes_give_the_same_values(shape):
    aa = _random_axis_angle(10)
    flat = axis_angle_to_rotmat(aa)
    n = math.prod(shape)
    batched = axis_angle_to_rotmat(aa[:n].reshape(*shape, 3))
    assert batched.shape == (*shape, 3, 3)
    assert_close(batched.reshape(-1, 3, 3), flat[:n])
    assert rotmat_to_axis_angle(batched).shape == (*shape, 3)
    assert rotmat_to_quat_wxyz(batched).shape == (*shape, 4)
    assert rotmat_to_rot6d(batched).shape == (*shape, 6)
    assert rot6d_to_rotmat(rotmat_to_rot6d(batched)).shape == (*shape, 3, 3)


def test_dtype_and_device_follow_input():
    for dtype in (torch.float32, torch.float64):
        aa = _random_axis_angle(3, dtype=dtype)
        assert axis_angle_to_rotmat(aa).dtype == dtype
        assert rotmat_to_axis_angle(axis_angle_to_rotmat(aa)).dtype == dtype
        assert rot6d_to_rotmat(torch.randn(3, 6, dtype=dtype)).dtype == dtype


def test_zero_rotation_is_exact_and_has_finite_gradients():
    aa = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    R = axis_angle_to_rotmat(aa)
    assert torch.equal(R.detach(), torch.eye(3, dtype=torch.float64))
    (R * torch.randn(3, 3, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # dR/dθ at 0 is the skew generator: d(R·x)/dθ = -[x]_× at the identity.
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda v: axis_angle_to_rotmat(v) @ x, torch.zeros(3, dtype=torch.float64)
    )
    expected = -torch.tensor(
        [[0.0, -3.0, 2.0], [3.0, 0.0, -1.0], [-2.0, 1.0, 0.0]], dtype=torch.float64
    )
    assert_close(jac, expected)

    R0 = torch.eye(3, dtype=torch.float64, requires_grad=True)
    back = rotmat_to_axis_angle(R0)
    assert torch.equal(back.detach(), torch.zeros(3, dtype=torch.float64))
    back.sum().backward()
    assert torch.isfinite(R0.grad).all()

    q0 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    quat_wxyz_to_axis_angle(q0).sum().backward()
    assert torch.isfinite(q0.grad).all()


@pytest.mark.parametrize(
    "axis", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [-0.3, 0.2, 0.9]]
)
def test_rotation_by_pi_round_trips_with_finite_gradients(axis):
    axis_t = torch.nn.functional.normalize(torch.tensor(axis, dtype=torch.float64), dim=0)
    R = axis_angle_to_rotmat(axis_t * math.pi).requires_grad_(True)
    aa = rotmat_to_axis_angle(R)
    assert_close(aa.detach().norm(), torch.tensor(math.pi, dtype=torch.float64))
    # Either sign of the axis is a correct answer at exactly pi.
    assert_close(axis_angle_to_rotmat(aa.detach()), R.detach())
    aa.sum().backward()
    assert torch.isfinite(R.grad).all()


def test_near_pi_is_accurate():
    axis = torch.nn.functional.normalize(torch.randn(100, 3, dtype=torch.float64), dim=-1)
    aa = axis * (math.pi - 1e-7)
    assert_close(rotmat_to_axis_angle(axis_angle_to_rotmat(aa)), aa, atol=1e-6, rtol=0)


def test_small_angles_are_accurate_in_float32():
    aa64 = _random_axis_angle(100) * 1e-4
    R32 = axis_angle_to_rotmat(aa64.float())
    assert_close(R32.double(), axis_angle_to_rotmat(aa64), atol=1e-7, rtol=0)
    assert_close(rotmat_to_axis_angle(axis_angle_to_rotmat(aa64)), aa64)


def test_gradcheck():
    torch.manual_seed(0)
    aa = _random_axis_angle(4).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_rotmat, (aa,))
    assert torch.autograd.gradcheck(axis_angle_to_quat_wxyz, (aa,))
    small = (_random_axis_angle(4) * 1e-4).requires_grad_(True)
    assert torch.autograd.gradcheck(axis_angle_to_rotmat, (small,))
    R = random_rotmat(4, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(rotmat_to_axis_angle, (R,))
    assert torch.autograd.gradcheck(rotmat_to_quat_wxyz, (R,))
    assert torch.autograd.gradcheck(rotmat_to_rot6d, (R,))
    q = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(quat_wxyz_to_rotmat, (q,))
    assert torch.autograd.gradcheck(quat_wxyz_to_axis_angle, (q,))
    six = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_to_rotmat, (six,))


@pytest.mark.parametrize(
    ("fn", "name", "bad", "expected"),
    [
        (
            axis_angle_to_rotmat,
            "axis_angle",
            torch.zeros(4, 2),
            r"`axis_angle` must have shape \(\.\.\., 3\), got \(4, 2\)",
        ),
        (
            rotmat_to_axis_angle,
            "rotmat",
            torch.zeros(8, 3),
            r"`rotmat` must have shape \(\.\.\., 3, 3\), got \(8, 3\)",
        ),
        (
            rot6d_to_rotmat,
            "rot6d",
            torch.zeros(24, 9),
            r"`rot6d` must have shape \(\.\.\., 6\), got \(24, 9\)",
        ),
        (
            rotmat_to_rot6d,
            "rotmat",
            torch.zeros(3, 3, 2),
            r"`rotmat` must have shape \(\.\.\., 3, 3\)",
        ),
        (
            quat_wxyz_to_rotmat,
            "quat_wxyz",
            torch.zeros(3),
            r"`quat_wxyz` must have shape \(\.\.\., 4\), got \(3,\)",
        ),
    ],
)
def test_rejects_bad_shape(fn, name, bad, expected):
    with pytest.raises(ValueError, match=expected):
        fn(bad)


def test_rejects_integer_and_non_tensor_input():
    with pytest.raises(
        TypeError, match=r"`axis_angle` must be a floating-point tensor, got dtype torch.int64"
    ):
        axis_angle_to_rotmat(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"`rotmat` must be a torch.Tensor, got list"):
        rotmat_to_axis_angle([[1.0, 0.0, 0.0]] * 3)


def test_tolerance_table_depends_on_dtype():
    assert tolerance(torch.float32)["atol"] > tolerance(torch.float64)["atol"]
