"""The evaluation protocols report the uncertainty metrics (tiny models, a few items)."""

from __future__ import annotations

import math

import pytest
import torch

import pose_geometry as pg
from prohmr_model.config import LiftingModelConfig
from prohmr_model.evaluation import (
    calibration_plot,
    evaluate_lifting,
    evaluate_regression,
    visible_keypoints,
)
from prohmr_model.lifting import build_lifting_model
from prohmr_model.losses import nll_targets
from prohmr_model.testing import tiny_model


def regression_items(count: int = 4) -> list[dict]:
    generator = torch.Generator().manual_seed(3)
    items = []
    for row in range(count):
        keypoints_2d = torch.rand(44, 3, generator=generator) - 0.5
        keypoints_2d[:, 2] = 1.0
        keypoints_3d = torch.cat(
            [0.3 * torch.randn(44, 3, generator=generator), torch.ones(44, 1)], 1
        )
        items.append(
            {
                "img": torch.randn(3, 64, 64, generator=generator),
                "keypoints_2d": keypoints_2d,
                "keypoints_3d": keypoints_3d,
                "smpl_params": {
                    "global_orient": 0.1 * torch.randn(3, generator=generator),
                    "body_pose": 0.1 * torch.randn(69, generator=generator),
                    "betas": torch.zeros(10),
                },
                "has_smpl_params": {
                    "global_orient": torch.tensor(1.0),
                    "body_pose": torch.tensor(float(row != 1)),  # image 1 has no pose
                    "betas": torch.tensor(1.0),
                },
                "idx": row,
            }
        )
    items[0]["keypoints_2d"][pg.LSP14_IDX_44[0], 0] = 0.7  # outside the crop: truncated
    items[2]["keypoints_2d"][pg.LSP14_IDX_44[1], 2] = 0.0  # not seen by the annotation
    return items


def test_visible_keypoints_needs_confidence_and_the_crop():
    keypoints = torch.tensor([[[0.1, -0.5, 1.0], [0.6, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    assert visible_keypoints(keypoints).tolist() == [[True, False, False]]


def test_regression_reports_uncertainty_and_the_nll_log_likelihood(tmp_path):
    model = tiny_model()
    items = regression_items()
    options = {
        "keypoint_list": pg.LSP14_IDX_44,
        "num_samples": 9,
        "best_of": (1, 9),
        "batch_size": 2,
    }
    result = evaluate_regression(
        model, items, generator=torch.Generator().manual_seed(0), **options
    )
    alone = evaluate_regression(
        model,
        items,
        generator=torch.Generator().manual_seed(0),
        uncertainty_samples=0,
        **options,
    )
    assert alone.uncertainty is None
    assert result.summary == alone.summary  # the uncertainty metrics draw nothing
    summary = result.uncertainty
    assert summary is not None
    assert (summary.num_images, summary.num_samples) == (4, 8)  # samples 1..8, not the mode
    assert summary.num_pairs == 4 * 14
    assert (summary.num_visible, summary.num_occluded) == (4 * 14 - 2, 2)
    assert summary.joints[0] == pg.KEYPOINT_NAMES_44[pg.LSP14_IDX_44[0]]
    assert summary.diversity_mm > 0 and 0.0 <= summary.ece <= 1.0
    # the log-likelihood is the training NLL's log-density (forward's target_pose_6d)
    batch = {
        key: torch.stack([item[key] for item in items])
        for key in ("img", "keypoints_2d", "keypoints_3d")
    }
    for key in ("smpl_params", "has_smpl_params"):
        batch[key] = {k: torch.stack([item[key][k] for item in items]) for k in items[0][key]}
    with torch.no_grad():
        output = model(batch["img"], num_samples=1, target_pose_6d=nll_targets(batch, noise_std=0))
    assert (summary.num_log_likelihood, summary.num_without_log_likelihood) == (3, 1)
    expected = float(output.target_log_prob.mean())
    assert summary.log_likelihood == pytest.approx(expected, rel=1e-4, abs=1e-3)
    assert "not over SO(3)^24" in summary.density
    text = summary.to_markdown()
    assert "| diversity, occluded/truncated joints (mm) |" in text and "R^144" in text
    path = calibration_plot(summary, tmp_path / "calibration.png", title="tiny")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lifting_reports_uncertainty_and_the_flow_log_likelihood():
    config = LiftingModelConfig(
        hidden_features=16, flow_hidden_features=16, flow_num_layers=2, flow_num_blocks=1
    )
    generator = torch.Generator().manual_seed(4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_lifting_model(config)
    keypoints_2d = torch.randn(6, 17, 3, generator=generator)
    keypoints_2d[:, :, 2] = 1.0
    keypoints_2d[0, 0, 2] = 0.0  # 2D input 0 (LIFTING_2D_IDX_44[0]) not seen
    target = 0.2 * torch.randn(6, 16, 3, generator=generator)
    model.train()
    model.initialize_flow(keypoints_2d, target)
    model.eval()
    items = [
        {"keypoints_2d": k, "keypoints_3d": torch.cat([t, torch.ones(16, 1)], 1)}
        for k, t in zip(keypoints_2d, target, strict=True)
    ]
    result = evaluate_lifting(model, items, ns=(1, 20), gaussian_sigmas_m=(), batch_size=4)
    summary = result["uncertainty"]
    assert (summary.num_images, summary.num_samples, summary.num_pairs) == (6, 19, 6 * 16)
    assert len(summary.joints) == 16 and (summary.num_occluded, summary.num_visible) == (1, 95)
    with torch.no_grad():
        log_prob = model(keypoints_2d, num_samples=1, target=target).target_log_prob
    assert summary.log_likelihood == pytest.approx(float(log_prob.mean()), rel=1e-4, abs=1e-3)
    assert summary.num_without_log_likelihood == 0
    assert math.isfinite(summary.spearman)
