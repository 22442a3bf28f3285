import math

import numpy as np
import pytest
import torch

from pose_metrics import auc, pck, pck_curve


def test_pck_counts_joints_strictly_below_the_threshold():
    errors = torch.tensor([[10.0, 100.0, 149.9, 150.0, 200.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(pck(errors), torch.tensor([60.0, 100.0]))
    torch.testing.assert_close(pck(errors, threshold_mm=100.0), torch.tensor([20.0, 100.0]))


def test_auc_on_constant_errors_is_the_fraction_of_thresholds_above():
    # Every joint 72.5 mm off: correct for thresholds 75, 80, ..., 150 (16 of the 31).
    errors = torch.full((3, 17), 72.5)
    torch.testing.assert_close(auc(errors), torch.full((3,), 100.0 * 16 / 31))
    # Perfect joints are correct at every threshold except 0 (strict inequality).
    torch.testing.assert_close(auc(torch.zeros(2, 17)), torch.full((2,), 100.0 * 30 / 31))
    torch.testing.assert_close(auc(torch.full((1, 5), 500.0)), torch.zeros(1))


def test_curve_and_auc_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 40.0, size=(20, 17))
    thresholds = np.linspace(0, 150, 31)
    ref_curve = 100 * (errors[..., None] < thresholds).mean(-2)
    got = pck_curve(torch.from_numpy(errors), torch.from_numpy(thresholds))
    np.testing.assert_allclose(got.numpy(), ref_curve, rtol=0, atol=1e-9)
    np.testing.assert_allclose(auc(torch.from_numpy(errors)).numpy(), ref_curve.mean(-1), atol=1e-9)
    np.testing.assert_allclose(
        pck(torch.from_numpy(errors)).numpy(), 100 * (errors < 150).mean(-1), atol=1e-9
    )


def test_mask_and_nonfinite_errors():
    errors = torch.tensor([[10.0, 500.0, float("nan")], [10.0, 20.0, float("nan")]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    result = pck(errors, mask=mask)
    assert result[0].item() == pytest.approx(50.0)
    assert math.isnan(result[1].item())  # a NaN joint is never counted as a miss
    assert math.isnan(auc(errors[1:]).item())


def test_rejects_bad_inputs():
    with pytest.raises(
        ValueError, match=r"`joint_errors_mm` must have shape \(\.\.\., J\), got \(\)"
    ):
        pck(torch.tensor(3.0))
    with pytest.raises(TypeError, match="`joint_errors_mm` must be a floating-point tensor"):
        pck(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"`thresholds_mm` must have shape \(T,\)"):
        pck_curve(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="`num_thresholds` must be at least 2"):
        auc(torch.zeros(2, 3), num_thresholds=1)
    with pytest.raises(ValueError, match=r"`mask` must have shape \(\.\.\., J\) with J = 3"):
        pck(torch.zeros(2, 3), mask=torch.ones(2, 4))
