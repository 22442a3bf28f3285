"""Bad numeric inputs to the metrics: a clear error naming the argument, the expectation and
what arrived, or the documented outcome (NaN per pose, dtype promotion, empty batch)."""

from __future__ import annotations

import pytest
import torch

import pose_metrics as pm

F64 = torch.float64


def _poses(batch: int = 4, joints: int = 14, dtype: torch.dtype = F64) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    target = torch.randn(batch, joints, 3, generator=g, dtype=F64)
    prediction = target + 0.05 * torch.randn(batch, joints, 3, generator=g, dtype=F64)
    return prediction.to(dtype), target.to(dtype)


def _pa(prediction, target, **kw):
    return pm.pa_mpjpe(prediction, target, **kw)


def _pa_joints(prediction, target, **kw):
    return pm.pa_joint_position_errors(prediction, target, **kw)


def _best(prediction, target, **kw):
    return pm.best_of_n(prediction[:, None], target, root_idx=None, **kw).min_pa_mpjpe


PA_FUNCTIONS = [_pa, _pa_joints, _best]


# --- PA on fewer than 3 joints ----------------------------------------------------------------


@pytest.mark.parametrize("function", PA_FUNCTIONS)
@pytest.mark.parametrize("joints", [1, 2])
def test_pa_refuses_fewer_than_three_joints(function, joints: int) -> None:
    prediction, target = _poses(joints=joints)
    with pytest.raises(
        ValueError, match=rf"has J = {joints} joints.*needs at least 3 joints.*got {joints}"
    ):
        function(prediction, target)


@pytest.mark.parametrize("function", PA_FUNCTIONS)
def test_pa_refuses_a_joint_subset_of_two(function) -> None:
    prediction, target = _poses()
    with pytest.raises(
        ValueError,
        match=r"`joint_idx` selects 2 joints \(\[0, 5\]\).*at least 3 joints to fix a rotation, got 2",
    ):
        function(prediction, target, joint_idx=[0, 5])


def test_pa_mask_leaving_two_joints_gives_nan_for_that_pose_only() -> None:
    prediction, target = _poses()
    mask = torch.ones(4, 14, dtype=F64)
    mask[1, 2:] = 0.0
    result = pm.pa_mpjpe(prediction, target, mask=mask)
    assert torch.isnan(result[1])
    assert torch.isfinite(result[[0, 2, 3]]).all()
    torch.testing.assert_close(result[[0, 2, 3]], pm.pa_mpjpe(prediction, target)[[0, 2, 3]])


# --- joint indices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name", "value"),
    [
        ({"root_idx": 0, "joint_idx": [14]}, "joint_idx", 14),
        ({"root_idx": 0, "joint_idx": [0, -1]}, "joint_idx", -1),
        ({"root_idx": -1}, "root_idx", -1),
        ({"root_idx": 14}, "root_idx", 14),
        ({"root_idx": 0, "joint_idx": torch.tensor([3, -14])}, "joint_idx", -14),
    ],
)
def test_mpjpe_refuses_negative_and_out_of_range_indices(kwargs, name: str, value: int) -> None:
    prediction, target = _poses()
    with pytest.raises(ValueError, match=rf"`{name}` must lie in \[0, 14\) .*got {value}"):
        pm.mpjpe(prediction, target, **kwargs)


@pytest.mark.parametrize("function", PA_FUNCTIONS)
def test_pa_refuses_negative_joint_index(function) -> None:
    prediction, target = _poses()
    with pytest.raises(ValueError, match=r"`joint_idx` must lie in \[0, 14\) .*got -2"):
        function(prediction, target, joint_idx=[0, 1, 2, -2])


def test_empty_joint_subset_is_refused() -> None:
    prediction, target = _poses()
    with pytest.raises(ValueError, match=r"`joint_idx` must select at least one joint, got an"):
        pm.mpjpe(prediction, target, root_idx=0, joint_idx=[])


@pytest.mark.parametrize("function", [pm.mpjpe, pm.joint_position_errors])
def test_zero_joints_are_refused(function) -> None:
    prediction, target = _poses(joints=0)
    with pytest.raises(
        ValueError, match=r"`prediction` must have at least one joint J .*got \(4, 0, 3\)"
    ):
        function(prediction, target, root_idx=None)


def test_empty_batch_gives_an_empty_result() -> None:
    prediction, target = _poses(batch=0)
    assert pm.mpjpe(prediction, target, root_idx=0).shape == (0,)
    assert pm.pa_mpjpe(prediction, target).shape == (0,)


# --- dtypes and devices -------------------------------------------------------------------------


@pytest.mark.parametrize("function", [pm.mpjpe, pm.pa_mpjpe])
@pytest.mark.parametrize(("dtype_a", "dtype_b"), [(torch.float32, F64), (F64, torch.float32)])
def test_mixed_float32_float64_is_computed_in_float64(function, dtype_a, dtype_b) -> None:
    prediction, target = _poses()
    kw = {"root_idx": 0} if function is pm.mpjpe else {}
    mixed = function(prediction.to(dtype_a), target.to(dtype_b), **kw)
    assert mixed.dtype == F64
    reference = function(prediction.to(dtype_a).double(), target.to(dtype_b).double(), **kw)
    torch.testing.assert_close(mixed, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("function", [pm.mpjpe, pm.pa_mpjpe])
def test_float16_poses_are_evaluated_in_float32(function) -> None:
    prediction, target = _poses(dtype=torch.float16)
    kw = {"root_idx": 0} if function is pm.mpjpe else {}
    result = function(prediction, target, **kw)
    assert result.dtype == torch.float32
    torch.testing.assert_close(result, function(prediction.float(), target.float(), **kw))


@pytest.mark.parametrize("function", [pm.mpjpe, pm.pa_mpjpe, pm.pa_joint_position_errors])
def test_target_on_another_device_names_both_devices(function) -> None:
    prediction, target = _poses()
    kw = {"root_idx": 0} if function is pm.mpjpe else {}
    with pytest.raises(
        ValueError, match=r"`target` must be on the device of `prediction` \(cpu\), got meta"
    ):
        function(prediction, target.to("meta"), **kw)


def test_mask_on_another_device_names_both_devices() -> None:
    prediction, target = _poses()
    with pytest.raises(
        ValueError, match=r"`mask` must be on the device of `prediction` \(cpu\), got meta"
    ):
        pm.mpjpe(prediction, target, root_idx=0, mask=torch.ones(14, device="meta"))


# --- NaN and bad weights ------------------------------------------------------------------------


@pytest.mark.parametrize("function", [pm.mpjpe, pm.pa_mpjpe])
def test_nan_propagates_to_its_pose_only(function) -> None:
    prediction, target = _poses()
    prediction[2, 4, 1] = float("nan")
    kw = {"root_idx": 0} if function is pm.mpjpe else {}
    result = function(prediction, target, **kw)
    assert torch.isnan(result[2])
    assert torch.isfinite(result[[0, 1, 3]]).all()


@pytest.mark.parametrize("function", [pm.mpjpe, pm.pa_mpjpe])
def test_nan_at_a_masked_joint_is_ignored(function) -> None:
    prediction, target = _poses()
    target[2, 4] = float("nan")
    mask = torch.ones(4, 14, dtype=F64)
    mask[:, 4] = 0.0
    kw = {"root_idx": 0} if function is pm.mpjpe else {}
    result = function(prediction, target, mask=mask, **kw)
    keep = [i for i in range(14) if i != 4]
    reference = function(prediction[:, keep], target[:, keep], **kw)
    torch.testing.assert_close(result, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("value", "shown"), [(-1.0, "-1"), (float("nan"), "nan"), (float("inf"), "inf")]
)
def test_mask_weights_must_be_finite_and_non_negative(value: float, shown: str) -> None:
    prediction, target = _poses()
    mask = torch.ones(4, 14, dtype=F64)
    mask[3, 7] = value
    with pytest.raises(
        ValueError, match=rf"`mask` must hold finite weights >= 0, got {shown} at index \(3, 7\)"
    ):
        pm.mpjpe(prediction, target, root_idx=0, mask=mask)
