"""SMPL pose head and skeleton head: outputs, mode placement, the original's two training-mode
flow calls, fp32 under autocast, FC head initialisation and mean parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_flows import (
    FlowConfig,
    PoseHeadOutput,
    SkeletonFlowHead,
    SMPLFlowHead,
    load_original_state_dict,
)
from pose_flows.testing import (
    original_flow_state_dict_shapes,
    perturb_parameters,
    with_dummy_buffers,
)
from pose_geometry import rot6d_to_rotmat
from pose_geometry.testing import assert_close

C, H = 12, 8


def smpl_config(**options):
    return FlowConfig(features=144, context_features=C, hidden_features=H, **options)


def smpl_head(seed=0, **options):
    head = SMPLFlowHead(
        smpl_config(**options),
        fc_hidden_features=H,
        mean_betas=np.arange(10) / 10,
        mean_camera=(0.9, 0.0, 0.0),
    )
    perturb_parameters(head, generator=torch.Generator().manual_seed(seed))
    return head


def running_stats(module):
    return {
        k: v.clone() for k, v in module.state_dict().items() if "running" in k or "tracked" in k
    }


def test_state_dict_keys_are_the_originals_flow_keys():
    head = SMPLFlowHead(smpl_config(), fc_hidden_features=H)
    expected = {
        "flow." + k: s
        for k, s in original_flow_state_dict_shapes(
            features=144, context_features=C, hidden_features=H
        ).items()
    }
    expected.update(
        {
            "fc_head.layers.0.weight": (H, C),
            "fc_head.layers.0.bias": (H,),
            "fc_head.layers.2.weight": (13, H),
            "fc_head.layers.2.bias": (13,),
            "fc_head.init_cam": (1, 1, 3),
            "fc_head.init_betas": (1, 1, 10),
        }
    )
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == expected
    original = with_dummy_buffers(smpl_head(1).state_dict(), prefix="flow.")
    report = load_original_state_dict(head, original)
    assert len(report.dropped_keys) == 13


def test_forward_shapes_dtypes_and_rotations():
    head = smpl_head().eval()
    features = torch.randn(3, C)
    out = head(features, 5)
    assert isinstance(out, PoseHeadOutput)
    shapes = {
        "global_orient": (3, 5, 1, 3, 3),
        "body_pose": (3, 5, 23, 3, 3),
        "pose_6d": (3, 5, 144),
        "betas": (3, 5, 10),
        "camera": (3, 5, 3),
        "log_prob": (3, 5),
        "z": (3, 5, 144),
    }
    for name, shape in shapes.items():
        value = getattr(out, name)
        assert tuple(value.shape) == shape, name
        assert value.dtype == torch.float32, name
    rotmat = torch.cat((out.global_orient, out.body_pose), dim=2)
    assert_close(rotmat, rot6d_to_rotmat(out.pose_6d.view(3, 5, 24, 6)))
    assert_close(
        rotmat @ rotmat.transpose(-1, -2), torch.eye(3).expand_as(rotmat), atol=1e-5, rtol=0
    )
    assert_close(torch.linalg.det(rotmat), torch.ones(3, 5, 24))
    # pose_6d is the raw flow output, not orthonormalised
    assert not torch.allclose(
        out.pose_6d.view(3, 5, 24, 6)[..., :3].norm(dim=-1), torch.ones(3, 5, 24)
    )


def test_sample_zero_is_the_mode_and_the_rest_are_seeded_draws():
    head = smpl_head().eval()
    features = torch.randn(2, C)
    g = torch.Generator().manual_seed(4)
    out = head(features, 4, generator=g)
    mode = head.flow.sample(features, z=torch.zeros(2, 1, 144))
    assert_close(out.pose_6d[:, :1], mode.x)
    assert_close(out.log_prob[:, :1], mode.log_prob)
    assert torch.equal(out.z[:, 0], torch.zeros(2, 144))
    assert torch.equal(
        out.z[:, 1:], torch.randn(2, 3, 144, generator=torch.Generator().manual_seed(4))
    )
    again = head(features, 4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(again.pose_6d, out.pose_6d)
    only_random = head(features, 4, include_mode=False, generator=torch.Generator().manual_seed(4))
    assert (only_random.z[:, 0] != 0).all()
    assert_close(head.log_prob(out.pose_6d, features).log_prob, out.log_prob)
    assert_close(head.log_prob(out.pose_6d, features).z, out.z, atol=1e-4, rtol=1e-4)


def test_given_latents_are_decoded_as_given():
    head = smpl_head().eval()
    features = torch.randn(2, C)
    z = torch.randn(2, 3, 144)
    out = head(features, z=z)
    assert out.z is z
    assert_close(out.pose_6d, head.flow.sample(features, z=z).x)
    assert head(features, 3, z=z).pose_6d.shape == (2, 3, 144)
    with pytest.raises(
        ValueError, match=r"`num_samples` \(5\) disagrees with `z` of shape \(2, 3, 144\)"
    ):
        head(features, 5, z=z)


def test_betas_and_camera_come_from_the_fc_head_and_are_shared_by_samples():
    head = smpl_head().eval()
    features = torch.randn(2, C)
    out = head(features, 3)
    offset = head.fc_head.layers(features)
    assert_close(out.betas, (offset[:, None, :10] + torch.arange(10) / 10).expand(2, 3, 10))
    assert_close(out.camera, (offset[:, None, 10:] + torch.tensor([0.9, 0.0, 0.0])).expand(2, 3, 3))


def test_fc_head_initialisation():
    head = SMPLFlowHead(smpl_config(), fc_hidden_features=64)
    bound = 0.02 * (6 / (64 + 13)) ** 0.5  # Xavier-uniform, gain 0.02
    last = head.fc_head.layers[2].weight
    assert last.abs().max() <= bound and last.abs().max() > bound / 2
    assert torch.equal(head.fc_head.init_cam, torch.zeros(1, 1, 3))
    with pytest.raises(ValueError, match=r"`mean_betas` must have 10 values, got shape \(9,\)"):
        SMPLFlowHead(smpl_config(), mean_betas=np.zeros(9))
    with pytest.raises(ValueError, match=r"`flow.features` must be 144"):
        SMPLFlowHead(FlowConfig(features=48, context_features=C))
    with pytest.raises(TypeError, match="`flow` must be a FlowConfig, got int"):
        SMPLFlowHead(C)


def test_training_mode_makes_the_originals_two_flow_calls():
    """Random samples first, then the mode, each with its own batch-norm statistics."""
    head = smpl_head().train()
    state = {k: v.clone() for k, v in head.state_dict().items()}
    features = torch.randn(4, C)
    with torch.random.fork_rng():
        torch.manual_seed(9)
        out = head(features, 3, generator=torch.Generator().manual_seed(2))
    stats = running_stats(head)

    head.load_state_dict(state)
    with torch.random.fork_rng():
        torch.manual_seed(9)
        z_random = torch.randn(4, 2, 144, generator=torch.Generator().manual_seed(2))
        random = head.flow.sample(features, z=z_random)
        mode = head.flow.sample(features, z=torch.zeros(4, 1, 144))
    assert_close(out.pose_6d, torch.cat((mode.x, random.x), dim=1))
    assert_close(out.log_prob, torch.cat((mode.log_prob, random.log_prob), dim=1))
    for k, v in running_stats(head).items():
        assert_close(stats[k], v)
    tracked = [k for k in stats if k.endswith("num_batches_tracked")]
    assert all(int(stats[k]) == int(state[k]) + 2 for k in tracked)

    head.load_state_dict(state)
    head(features, 1)  # the mode alone: one call
    assert all(int(head.state_dict()[k]) == int(state[k]) + 1 for k in tracked)


def test_eval_mode_single_call_equals_two_calls():
    head = smpl_head().eval()
    features = torch.randn(3, C)
    out = head(features, 4, generator=torch.Generator().manual_seed(0))
    random = head.flow.sample(features, z=out.z[:, 1:])
    mode = head.flow.sample(features, z=out.z[:, :1])
    # Float32 only (the head casts to float32), and the flow's matrix products see 12 rows in
    # one call and 3 + 9 in two, which other CPUs may round differently: measured up to 0.4 of
    # the float32 default (atol 1e-5) here, so atol 1e-4; a sample decoded out of order or
    # with another item's context would be off by O(0.1).
    assert_close(out.pose_6d, torch.cat((mode.x, random.x), dim=1), atol=1e-4)


def test_runs_in_float32_under_autocast_and_casts_features():
    head = smpl_head().eval()
    features = torch.randn(2, C)
    expected = head(features, 3, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(features.bfloat16(), 3, generator=torch.Generator().manual_seed(0))
        log_prob = head.log_prob(expected.pose_6d, features.bfloat16()).log_prob
    assert out.pose_6d.dtype == torch.float32 and out.log_prob.dtype == torch.float32
    assert_close(
        out.pose_6d,
        head(features.bfloat16().float(), 3, generator=torch.Generator().manual_seed(0)).pose_6d,
    )
    assert log_prob.dtype == torch.float32
    assert_close(log_prob, expected.log_prob)
    assert head(features.double(), 2).pose_6d.dtype == torch.float32


def test_rejects_bad_features():
    head = smpl_head()
    with pytest.raises(ValueError, match=r"`features` must have shape \(B, 12\), got \(2, 5\)"):
        head(torch.randn(2, 5), 2)
    with pytest.raises(TypeError, match=r"`pose_6d` must be a torch\.Tensor, got list"):
        head.log_prob([0.0], torch.randn(2, C))
    with pytest.raises(ValueError, match="`num_samples` must be a positive int, got 0"):
        head(torch.randn(2, C), 0)


# --- skeleton head -------------------------------------------------------------------------


def skeleton_head(seed=0):
    head = SkeletonFlowHead(FlowConfig(features=48, context_features=C, hidden_features=H))
    perturb_parameters(head, generator=torch.Generator().manual_seed(seed))
    return head


def test_skeleton_head_layout_and_outputs():
    head = skeleton_head().eval()
    expected = {
        "flow." + k: s
        for k, s in original_flow_state_dict_shapes(
            features=48, context_features=C, hidden_features=H
        ).items()
    }
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == expected
    features = torch.randn(3, C)
    out = head(features, 4)
    assert out.keypoints_3d.shape == (3, 4, 16, 3)
    assert out.log_prob.shape == (3, 4) and out.z.shape == (3, 4, 48)
    mode = head.flow.sample(features, z=torch.zeros(3, 1, 48))
    assert_close(out.keypoints_3d[:, 0].reshape(3, 48), mode.x[:, 0])
    by_joint = head.log_prob(out.keypoints_3d, features)
    flat = head.log_prob(out.keypoints_3d.flatten(2), features)
    assert_close(by_joint.log_prob, out.log_prob, atol=1e-4, rtol=1e-5)
    assert torch.equal(by_joint.log_prob, flat.log_prob)
    with pytest.raises(
        ValueError,
        match=r"`keypoints_3d` must have shape \(B, N, 16, 3\) or \(B, N, 48\), got \(3, 4, 17, 3\)",
    ):
        head.log_prob(torch.randn(3, 4, 17, 3), features)


def test_skeleton_head_training_mode_two_calls():
    head = skeleton_head().train()
    state = {k: v.clone() for k, v in head.state_dict().items()}
    head(torch.randn(4, C), 2)
    tracked = [k for k in state if k.endswith("num_batches_tracked")]
    assert all(int(head.state_dict()[k]) == int(state[k]) + 2 for k in tracked)
