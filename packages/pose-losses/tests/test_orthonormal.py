import pytest
import torch

from pose_geometry import rotmat_to_rot6d
from pose_geometry.testing import random_rotmat
from pose_losses import rot6d_orthonormality_loss, split_mode_expectation


def test_rotations_have_zero_loss():
    rot6d = rotmat_to_rot6d(random_rotmat(2, 3, 24, dtype=torch.float64))
    loss = rot6d_orthonormality_loss(rot6d)
    assert loss.shape == (2, 3)
    torch.testing.assert_close(loss, torch.zeros(2, 3, dtype=torch.float64))


def test_hand_computed_value_is_the_mean_of_the_four_entries_of_e_squared():
    # a1 = (2, 0, 0), a2 = (0, 0, 0): E = [[3, 0], [0, -1]], E² entries 9, 0, 0, 1.
    bad = torch.tensor([2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # a1 = (1, 0, 0), a2 = (1, 1, 0): E = [[0, 1], [1, 1]], E² entries 0, 1, 1, 1.
    skew = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    rot6d = torch.stack([bad, skew])  # (J=2, 6)
    torch.testing.assert_close(rot6d_orthonormality_loss(rot6d), torch.tensor(13.0 / 8.0))
    torch.testing.assert_close(
        rot6d_orthonormality_loss(rot6d, reduction="sum"), torch.tensor(13.0)
    )


def test_split_reproduces_the_original_mean_over_all_entries():
    rot6d = torch.randn(4, 3, 24, 6, dtype=torch.float64)  # (B, N, 24, 6)
    split = split_mode_expectation(rot6d_orthonormality_loss(rot6d))
    a = rot6d.reshape(4, 3, 24, 2, 3).transpose(-1, -2)  # (..., 3, 2) columns a1, a2
    entries = (a.transpose(-1, -2) @ a - torch.eye(2, dtype=torch.float64)) ** 2
    torch.testing.assert_close(split.mode, entries[:, 0].mean())
    torch.testing.assert_close(split.expectation, entries[:, 1:].mean())


def test_gradient_is_finite_and_zero_at_a_rotation():
    rot6d = rotmat_to_rot6d(random_rotmat(5, dtype=torch.float64)).unsqueeze(0)
    rot6d.requires_grad_(True)
    rot6d_orthonormality_loss(rot6d).backward()
    torch.testing.assert_close(rot6d.grad, torch.zeros_like(rot6d))


def test_rejects_flat_144_vectors():
    with pytest.raises(
        ValueError, match=r"`rot6d` must have shape \(\.\.\., N, 6\), got \(2, 144\)"
    ):
        rot6d_orthonormality_loss(torch.randn(2, 144))


def test_rejects_unknown_reduction():
    with pytest.raises(ValueError, match=r"unknown reduction 'max'"):
        rot6d_orthonormality_loss(torch.randn(2, 24, 6), reduction="max")


def test_gradcheck_in_float64():
    rot6d = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot6d_orthonormality_loss, (rot6d,))
