"""The toy models that stand in for SMPL and the flow."""

import numpy as np
import torch

from pose_fitting.testing import (
    LinearPoseDecoder,
    ToyKinematicBody,
    synthetic_gaussian_mixture,
    toy_keypoint_problem,
)
from pose_geometry import SMPL_PARENTS, axis_angle_to_rotmat

F64 = torch.float64


def identity_pose(batch):
    eye = torch.eye(3, dtype=F64)
    return eye.expand(batch, 1, 3, 3), eye.expand(batch, 23, 3, 3)


def test_rest_pose_bones_and_betas_change_bone_lengths_linearly():
    body = ToyKinematicBody()
    go, bp = identity_pose(3)
    betas = torch.zeros(3, 10, dtype=F64)
    betas[1, 0] = 1.0
    betas[2, 0] = 2.0
    joints = body(go, bp, betas)[:, :24]
    assert joints.shape == (3, 24, 3)
    assert torch.equal(joints[:, 0], torch.zeros(3, 3, dtype=F64))  # root at the origin
    parents = torch.tensor([max(p, 0) for p in SMPL_PARENTS[1:]])
    lengths = (joints[:, 1:] - joints[:, parents]).norm(dim=-1)  # (3, 23)
    assert (lengths[0] > 0.02).all()
    torch.testing.assert_close(lengths[2] - lengths[0], 2 * (lengths[1] - lengths[0]))
    assert not torch.allclose(lengths[1], lengths[0])


def test_rotations_move_children_and_markers_make_every_joint_visible():
    body = ToyKinematicBody()
    go, bp = identity_pose(1)
    betas = torch.zeros(1, 10, dtype=F64)
    rest = body(go, bp, betas)
    for joint in (10, 15, 22, 23):  # leaves: feet, head, hands
        bent = bp.clone()
        bent[0, joint - 1] = axis_angle_to_rotmat(torch.tensor([0.0, 0.5, 0.0], dtype=F64))
        moved = (body(go, bent, betas) - rest).norm(dim=-1)[0]
        assert moved[:24].max() == 0  # a leaf's rotation moves no joint...
        assert moved[24:].max() > 1e-3  # ...but moves its marker


def test_models_are_batch_invariant_bitwise():
    p = toy_keypoint_problem(batch_size=4, generator=torch.Generator().manual_seed(0))
    go, bp = p.decoder(p.z)
    joints = p.body_model(go, bp, p.betas)
    for b in range(4):
        go1, bp1 = p.decoder(p.z[b : b + 1])
        assert torch.equal(p.body_model(go1, bp1, p.betas[b : b + 1])[0], joints[b])


def test_decoder_mode_is_the_base_pose():
    dec = LinearPoseDecoder(latent_dim=5, generator=torch.Generator().manual_seed(0))
    go, bp = dec(torch.zeros(2, 5, dtype=F64))
    torch.testing.assert_close(go[0, 0], torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=F64)))
    torch.testing.assert_close(bp, torch.eye(3, dtype=F64).expand(2, 23, 3, 3))
    go32, _ = dec(torch.zeros(1, 5))
    assert go32.dtype == torch.float32


def test_problem_keypoints_are_exact_projections_with_full_confidence():
    p = toy_keypoint_problem(batch_size=2, generator=torch.Generator().manual_seed(0))
    assert p.keypoints_2d.shape == (2, 44, 3)
    assert torch.equal(p.keypoints_2d[..., 2], torch.ones(2, 44, dtype=F64))
    # The body (about 1.7 m at ~50 m with f = 5000 px) spans a sensible part of the image.
    extent = p.keypoints_2d[..., 1].amax(-1) - p.keypoints_2d[..., 1].amin(-1)
    assert ((extent > 80) & (extent < 400)).all()


def test_synthetic_mixture_has_the_gmm_08_layout():
    arrays = synthetic_gaussian_mixture(generator=torch.Generator().manual_seed(0))
    assert set(arrays) == {"means", "covars", "weights"}
    assert arrays["means"].shape == (8, 69) and arrays["covars"].shape == (8, 69, 69)
    assert abs(arrays["weights"].sum() - 1) < 1e-12
    assert (np.linalg.eigvalsh(arrays["covars"]) > 0).all()
