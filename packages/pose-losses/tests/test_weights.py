import dataclasses

import pytest
import torch

from pose_losses import CombinedLoss, LossWeights, combine_losses


def test_defaults_are_prohmr_loss_weights():
    weights = LossWeights()
    assert weights == LossWeights.prohmr()
    assert weights.as_dict() == {
        "keypoints_3d_mode": 0.05,
        "keypoints_3d_expectation": 0.0,
        "keypoints_2d_mode": 0.01,
        "keypoints_2d_expectation": 0.001,
        "global_orient_mode": 0.001,
        "global_orient_expectation": 0.0,
        "body_pose_mode": 0.001,
        "body_pose_expectation": 0.0,
        "betas_mode": 0.0005,
        "betas_expectation": 0.0,
        "orthonormal_mode": 0.1,
        "orthonormal_expectation": 0.1,
        "nll": 0.001,
        "adversarial": 0.0005,
    }


def test_lifting_weights_keep_only_the_3d_mode_and_nll_terms():
    weights = LossWeights.lifting().as_dict()
    assert weights.pop("keypoints_3d_mode") == 1.0
    assert weights.pop("nll") == 0.001
    assert set(weights.values()) == {0.0}


def test_total_reproduces_the_prohmr_objective():
    names = LossWeights.term_names()
    terms = {name: torch.rand((), dtype=torch.float64) for name in names}
    t = {name: value.item() for name, value in terms.items()}
    expected = (
        0.0 * t["keypoints_3d_expectation"]
        + 0.001 * t["keypoints_2d_expectation"]
        + 0.001 * t["nll"]
        + 0.1 * (t["orthonormal_expectation"] + t["orthonormal_mode"])
        + 0.0 * t["global_orient_expectation"]
        + 0.0 * t["body_pose_expectation"]
        + 0.0 * t["betas_expectation"]
        + 0.05 * t["keypoints_3d_mode"]
        + 0.01 * t["keypoints_2d_mode"]
        + 0.001 * t["global_orient_mode"]
        + 0.001 * t["body_pose_mode"]
        + 0.0005 * t["betas_mode"]
        + 0.0005 * t["adversarial"]
    )
    combined = combine_losses(terms, LossWeights.prohmr())
    torch.testing.assert_close(combined.total, torch.tensor(expected, dtype=torch.float64))


def test_total_is_differentiable_and_logs_are_detached_unweighted_values():
    kp = torch.tensor(2.0, requires_grad=True)
    nll = torch.tensor(3.0, requires_grad=True)
    combined = combine_losses({"keypoints_2d_mode": kp, "nll": nll}, LossWeights())
    assert isinstance(combined, CombinedLoss)
    torch.testing.assert_close(combined.total, torch.tensor(0.01 * 2.0 + 0.001 * 3.0))
    assert set(combined.logs) == {"loss", "loss_keypoints_2d_mode", "loss_nll"}
    assert combined.logs["loss_keypoints_2d_mode"].item() == 2.0
    assert all(not value.requires_grad for value in combined.logs.values())
    combined.total.backward()
    torch.testing.assert_close(kp.grad, torch.tensor(0.01))
    torch.testing.assert_close(nll.grad, torch.tensor(0.001))


def test_lifting_total_is_mode_plus_weighted_nll():
    terms = {
        "keypoints_3d_mode": torch.tensor(0.2),
        "keypoints_3d_expectation": torch.tensor(0.4),
        "nll": torch.tensor(-50.0),
    }
    combined = combine_losses(terms, LossWeights.lifting())
    torch.testing.assert_close(combined.total, torch.tensor(0.2 - 0.05))


def test_weights_are_frozen_and_replace_changes_one_value():
    weights = LossWeights()
    with pytest.raises(dataclasses.FrozenInstanceError):
        weights.nll = 1.0
    assert dataclasses.replace(weights, nll=0.01).nll == 0.01


def test_rejects_unknown_terms_listing_the_known_names():
    with pytest.raises(
        ValueError,
        match=r"unknown loss term\(s\) 'kp2d'; expected names from "
        r"keypoints_3d_mode, keypoints_3d_expectation",
    ):
        combine_losses({"kp2d": torch.tensor(1.0)}, LossWeights())


def test_rejects_non_scalar_terms_and_empty_input():
    with pytest.raises(
        ValueError, match=r"`terms\['nll'\]` must be a scalar tensor, got shape \(3,\)"
    ):
        combine_losses({"nll": torch.zeros(3)}, LossWeights())
    with pytest.raises(ValueError, match=r"`terms` is empty"):
        combine_losses({}, LossWeights())
    with pytest.raises(TypeError, match=r"`terms\['nll'\]` must be a torch.Tensor, got float"):
        combine_losses({"nll": 1.0}, LossWeights())


def test_rejects_negative_nonfinite_or_non_numeric_weights():
    with pytest.raises(ValueError, match=r"loss weight `nll` must be finite and >= 0, got -1"):
        LossWeights(nll=-1)
    with pytest.raises(ValueError, match=r"loss weight `adversarial` must be finite"):
        LossWeights(adversarial=float("nan"))
    with pytest.raises(TypeError, match=r"loss weight `nll` must be a number, got str"):
        LossWeights(nll="0.001")
