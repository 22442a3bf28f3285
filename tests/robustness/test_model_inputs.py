"""The assembled ProHMR model on inputs the library checks would refuse or that training meets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pipeline.config import ModelConfig


def _small_model():
    from pose_body import BodyModel
    from prohmr_model.model import build_prohmr

    config = ModelConfig(
        backbone_depth=18, flow_hidden_features=8, fc_hidden_features=8, flow_num_layers=1
    )
    return build_prohmr(
        config,
        body_model=BodyModel.procedural(),
        mean_betas=np.zeros(10, dtype=np.float32),
        mean_camera=np.array([0.9, 0.0, 0.0], dtype=np.float32),
    )


@pytest.mark.parametrize("num_valid", [0, 1])
def test_first_batch_without_two_smpl_poses_starts_from_identity_actnorm(num_valid) -> None:
    """The documented recovery: a warning, ActNorm kept at identity and marked initialised, so
    that training samples from the flow instead of failing on its first step."""
    torch.manual_seed(0)
    model = _small_model().train()
    features = torch.randn(4, 512)
    pose_6d = torch.randn(4, 144)
    valid = torch.arange(4) < num_valid
    with pytest.warns(UserWarning, match=rf"has {num_valid} ground-truth SMPL pose\(s\)"):
        model.initialize_flow(features, pose_6d, valid)
    assert bool(model.initialized) and model.flow.flow.initialized
    for actnorm in model.flow.flow.actnorms:
        torch.testing.assert_close(actnorm.log_scale, torch.zeros_like(actnorm.log_scale))
    output = model.decode(features, num_samples=2)
    assert output.pose_6d.shape == (4, 2, 144)


def test_network_cameras_with_a_nonpositive_scale_do_not_stop_decoding() -> None:
    """Inside training the network's own camera may have s <= 0; like the original, decoding
    goes on (the keypoint losses push s back) instead of raising."""
    torch.manual_seed(0)
    model = _small_model().train()
    features = torch.randn(2, 512)
    model.initialize_flow(features, torch.randn(2, 144), torch.ones(2, dtype=torch.bool))
    with torch.no_grad():
        head = model.flow.fc_head
        head.init_cam.copy_(torch.tensor([-1.0, 0.0, 0.0]).reshape(head.init_cam.shape))
        for parameter in head.parameters():
            parameter.zero_()
    output = model.decode(features, num_samples=1)
    assert (output.camera[..., 0] < 0).all()
    assert output.keypoints_2d.shape[:2] == (2, 1)
