"""Bad numeric inputs to the losses: a clear error naming the argument, the expectation and
what arrived, or the documented recovery (missing keypoints with NaN at confidence 0)."""

from __future__ import annotations

import math

import pytest
import torch

import pose_losses as pl

B, N, K = 2, 3, 44


def _keypoints(channels: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(B, K, channels, generator=g)
    pred = target[:, None] + 0.1 * torch.randn(B, N, K, channels, generator=g)
    confidence = torch.rand(B, K, generator=g) + 0.1
    return pred, target, confidence


LOSSES = {
    "keypoint_2d_loss": (pl.keypoint_2d_loss, 2, "target_keypoints_2d", "pred_keypoints_2d"),
    "keypoint_3d_loss": (pl.keypoint_3d_loss, 3, "target_keypoints_3d", "pred_keypoints_3d"),
}


# --- NaN keypoints: recovery at confidence 0, error elsewhere --------------------------------


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_targets_at_confidence_zero_contribute_nothing(loss: str, bad: float) -> None:
    function, channels, _, _ = LOSSES[loss]
    pred, target, confidence = _keypoints(channels)
    confidence[0, 5] = 0.0
    confidence[1, 20] = 0.0
    reference = function(pred, target, confidence=confidence)
    corrupted = target.clone()
    corrupted[0, 5] = bad
    corrupted[1, 20, 0] = bad
    pred = pred.clone().requires_grad_(True)
    result = function(pred, corrupted, confidence=confidence)
    torch.testing.assert_close(result, reference.detach(), rtol=1e-6, atol=1e-6)
    result.sum().backward()
    assert torch.isfinite(pred.grad).all()


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("with_confidence", [True, False])
def test_nan_targets_at_positive_confidence_are_an_error(loss: str, with_confidence) -> None:
    function, channels, target_name, _ = LOSSES[loss]
    pred, target, confidence = _keypoints(channels)
    target[1, 7, 0] = math.nan
    kw = {"confidence": confidence} if with_confidence else {}
    with pytest.raises(
        ValueError,
        match=rf"`{target_name}` must be finite where the confidence is > 0 .*got \[nan, .*\(index \(1, 7\)\)",
    ):
        function(pred, target, **kw)


def test_nan_pelvis_is_an_error_even_at_confidence_zero() -> None:
    pred, target, confidence = _keypoints(3)
    target[0, 39] = math.nan
    confidence[0, 39] = 0.0
    with pytest.raises(
        ValueError,
        match=r"got \[nan, nan, nan\] at the pelvis used for alignment \(index \(0, 39\)\)",
    ):
        pl.keypoint_3d_loss(pred, target, confidence=confidence)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize(("value", "shown"), [(-0.5, "-0.5"), (math.nan, "nan"), (math.inf, "inf")])
def test_confidence_must_be_finite_and_non_negative(loss: str, value: float, shown: str) -> None:
    function, channels, _, _ = LOSSES[loss]
    pred, target, confidence = _keypoints(channels)
    confidence[1, 3] = value
    with pytest.raises(
        ValueError, match=rf"`confidence` must be finite and >= 0, got {shown} at index \(1, 3\)"
    ):
        function(pred, target, confidence=confidence)


# --- dtypes, devices, shapes ---------------------------------------------------------------


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_prediction_and_target_must_share_a_dtype(loss: str, dtype: torch.dtype) -> None:
    function, channels, target_name, pred_name = LOSSES[loss]
    pred, target, confidence = _keypoints(channels)
    with pytest.raises(
        TypeError,
        match=rf"`{pred_name}` must have the dtype of `{target_name}` \(torch.float32\), got {dtype}",
    ):
        function(pred.to(dtype), target, confidence=confidence)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_prediction_on_another_device_names_both(loss: str) -> None:
    function, channels, target_name, pred_name = LOSSES[loss]
    pred, target, confidence = _keypoints(channels)
    with pytest.raises(
        ValueError,
        match=rf"`{pred_name}` must be on the device of `{target_name}` \(cpu\), got meta",
    ):
        function(pred.to("meta"), target, confidence=confidence)


def test_confidence_on_another_device_names_both() -> None:
    pred, target, confidence = _keypoints(2)
    with pytest.raises(
        ValueError,
        match=r"`confidence` must be on the device of `target_keypoints_2d` \(cpu\), got meta",
    ):
        pl.keypoint_2d_loss(pred, target, confidence=confidence.to("meta"))


@pytest.mark.parametrize(
    ("pred_shape", "shown"),
    [
        ((B, N, K - 1, 2), r"\(2, 3, 43, 2\)"),
        ((B, K, 2), r"\(2, 44, 2\)"),
        ((B + 1, N, K, 2), r"\(3, 3, 44, 2\)"),
    ],
)
def test_prediction_shape_must_match_the_target(pred_shape, shown: str) -> None:
    _, target, confidence = _keypoints(2)
    with pytest.raises(
        ValueError,
        match=rf"`pred_keypoints_2d` must have shape \(2, N, 44, 2\) to match `target_keypoints_2d` \(2, 44, 2\), got {shown}",
    ):
        pl.keypoint_2d_loss(torch.zeros(pred_shape), target, confidence=confidence)


@pytest.mark.parametrize("pelvis_idx", [-1, 44])
def test_pelvis_index_must_lie_in_range(pelvis_idx: int) -> None:
    pred, target, _ = _keypoints(3)
    with pytest.raises(
        ValueError, match=rf"`pelvis_idx` must lie in \[0, 44\) for 44 keypoints, got {pelvis_idx}"
    ):
        pl.keypoint_3d_loss(pred, target, pelvis_idx=pelvis_idx)


def test_smpl_parameter_loss_refuses_mixed_dtypes() -> None:
    with pytest.raises(
        TypeError,
        match=r"`pred` must have the dtype of `target` \(torch.float32\), got torch.float64",
    ):
        pl.smpl_parameter_loss(
            torch.zeros(2, 3, 10, dtype=torch.float64), torch.zeros(2, 10), torch.ones(2)
        )


def test_nll_valid_mask_on_another_device_names_both() -> None:
    with pytest.raises(
        ValueError, match=r"`valid` must be on the device of `log_prob` \(cpu\), got meta"
    ):
        pl.negative_log_likelihood(
            torch.zeros(3, 1), valid=torch.ones(3, dtype=torch.bool, device="meta")
        )


# --- discriminator and adversarial losses on empty batches, dtypes, devices ---------------------


@pytest.fixture(scope="module")
def discriminator() -> pl.PoseDiscriminator:
    torch.manual_seed(0)
    return pl.PoseDiscriminator(hidden_features=16)


@pytest.mark.parametrize("leading", [(0,), (0, 4), (2, 0)])
def test_discriminator_on_an_empty_batch_gives_empty_scores(discriminator, leading) -> None:
    body_pose = torch.eye(3).expand(*leading, 23, 3, 3)
    scores = discriminator(body_pose, torch.zeros(*leading, 10))
    assert scores.shape == (*leading, 25)


@pytest.mark.parametrize(
    ("argument", "dtype"),
    [("body_pose", torch.float64), ("betas", torch.float64), ("body_pose", torch.float16)],
)
def test_discriminator_inputs_must_have_its_dtype(discriminator, argument: str, dtype) -> None:
    inputs = {"body_pose": torch.eye(3).expand(2, 23, 3, 3), "betas": torch.zeros(2, 10)}
    inputs[argument] = inputs[argument].to(dtype)
    with pytest.raises(
        TypeError,
        match=rf"`{argument}` must have the dtype of the module's parameters \(torch.float32\), got {dtype}",
    ):
        discriminator(**inputs)


def test_discriminator_input_on_another_device_names_both(discriminator) -> None:
    with pytest.raises(
        ValueError,
        match=r"`body_pose` must be on the device of the module's parameters \(cpu\), got meta",
    ):
        discriminator(torch.zeros(2, 23, 3, 3, device="meta"), torch.zeros(2, 10, device="meta"))


@pytest.mark.parametrize(
    ("call", "name", "shape"),
    [
        (lambda: pl.lsgan_generator_loss(torch.zeros(0, 2, 25)), "fake_scores", r"\(0, 2, 25\)"),
        (
            lambda: pl.lsgan_discriminator_loss(torch.zeros(0, 25), torch.zeros(4, 25)),
            "real_scores",
            r"\(0, 25\)",
        ),
        (
            lambda: pl.lsgan_discriminator_loss(torch.zeros(4, 25), torch.zeros(0, 3, 25)),
            "fake_scores",
            r"\(0, 3, 25\)",
        ),
    ],
)
def test_adversarial_losses_refuse_empty_batches(call, name: str, shape: str) -> None:
    with pytest.raises(
        ValueError, match=rf"`{name}` must hold at least one set of scores .*got shape {shape}"
    ):
        call()
