"""Evaluation pipelines on tiny fixtures with known answers, and the lifting model training."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pipeline.config import LiftingConfig, apply_overrides
from pipeline.lifting_training import train_lifting
from pipeline.runtime import DistributedContext
from torch import nn

import pose_geometry as pg
from prohmr_model.evaluation import evaluate_lifting, evaluate_regression
from prohmr_model.lifting import build_lifting_model, prepend_zero_pelvis


class FixedLifter(nn.Module):
    """Returns prediction = ground truth + offset (sample 0) for the items it is given."""

    def __init__(self, targets: torch.Tensor, offset: torch.Tensor, noise: float) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.targets = targets
        self.offset = offset
        self.noise = noise

    def forward(self, keypoints_2d, *, num_samples, generator=None, **_):
        index = keypoints_2d[:, 0, 0].long()  # the fixture stores the row index here
        gt = self.targets[index]
        samples = gt[:, None].repeat(1, num_samples, 1, 1)
        samples[:, 0] += self.offset
        samples[:, 1:] += self.noise * torch.randn(samples[:, 1:].shape, generator=generator)
        return SimpleNamespace(keypoints_3d=samples)


def lifting_items(targets: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    items = []
    for row, target in enumerate(targets):
        keypoints_2d = torch.zeros(17, 3)
        keypoints_2d[0, 0] = row
        items.append(
            {
                "keypoints_2d": keypoints_2d,
                "keypoints_3d": torch.cat([target, torch.ones(16, 1)], 1),
            }
        )
    return items


def test_prepend_zero_pelvis() -> None:
    points = torch.randn(2, 5, 16, 3)
    out = prepend_zero_pelvis(points)
    assert out.shape == (2, 5, 17, 3)
    assert torch.equal(out[..., 0, :], torch.zeros(2, 5, 3))
    assert torch.equal(out[..., 1:, :], points)


def test_lifting_mode_error_uses_17_joints_with_the_zero_pelvis() -> None:
    targets = 0.3 * torch.randn(4, 16, 3)
    offset = torch.tensor([0.0, 0.0, 0.1])  # 10 cm along z on every one of the 16 joints
    model = FixedLifter(targets, offset, noise=0.05)
    result = evaluate_lifting(
        model, lifting_items(targets), ns=(1, 8), gaussian_sigmas_m=(), batch_size=2
    )
    summary = result["summary"]
    # root_idx 0 is the exact zero pelvis, so every other joint is off by exactly 100 mm:
    # the mean over 17 joints is 100 * 16 / 17 mm (docs/evaluation.md#lifting-evaluation).
    assert summary["mode_mpjpe"] == pytest.approx(100.0 * 16 / 17, rel=1e-5)
    assert summary["best1_mpjpe"] == pytest.approx(summary["mode_mpjpe"], rel=1e-6)
    assert summary["best8_mpjpe"] <= summary["best1_mpjpe"] + 1e-6


def test_kmeans_with_one_cluster_per_sample_equals_best_of_n() -> None:
    targets = 0.3 * torch.randn(3, 16, 3)
    model = FixedLifter(targets, torch.tensor([0.02, 0.0, 0.0]), noise=0.1)
    num = 64
    result = evaluate_lifting(
        model,
        lifting_items(targets),
        ns=(num,),
        kmeans_ns=(num,),
        gaussian_sigmas_m=(),
        batch_size=3,
    )
    summary = result["summary"]
    assert summary[f"kmeans{num}_mpjpe"] == pytest.approx(summary[f"best{num}_mpjpe"], rel=1e-5)
    assert summary[f"kmeans{num}_pa_mpjpe"] == pytest.approx(
        summary[f"best{num}_pa_mpjpe"], rel=1e-5
    )


def test_gaussian_and_training_set_baselines_are_reported() -> None:
    targets = 0.3 * torch.randn(2, 16, 3)
    model = FixedLifter(targets, torch.zeros(3), noise=0.0)
    result = evaluate_lifting(
        model,
        lifting_items(targets),
        ns=(1, 16),
        gaussian_sigmas_m=(0.01, 0.2),
        training_poses=0.3 * torch.randn(50, 16, 3),
        batch_size=2,
    )
    summary = result["summary"]
    assert summary["mode_mpjpe"] == pytest.approx(0.0, abs=1e-4)
    # σ = 1 cm samples around an exact mode: best-of-16 still has sample 0 = the mode
    assert summary["gauss1cm_best16_mpjpe"] == pytest.approx(0.0, abs=1e-4)
    assert summary["trainset_best16_mpjpe"] > 10.0


class FixedRegressor(nn.Module):
    """ProHMR-like stub: decode() returns target keypoints + offset for sample 0."""

    def __init__(self, targets: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.targets = targets
        self.offset = offset

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, 0, 0, :1]

    def decode(self, features, *, num_samples, generator=None, include_mode=True, z=None):
        gt = self.targets[features[:, 0].long()]
        samples = gt[:, None].repeat(1, num_samples, 1, 1)
        samples[:, 0] += self.offset
        samples[:, 1:] += 0.05 * torch.randn(samples[:, 1:].shape, generator=generator)
        return SimpleNamespace(keypoints_3d=samples)


def test_regression_mode_error_on_lsp14_is_the_known_offset() -> None:
    targets = 0.3 * torch.randn(3, 44, 3)
    offset = torch.zeros(44, 3)
    offset[list(pg.LSP14_IDX_44), 0] = 0.05  # 5 cm on the 14 evaluated joints only
    items = []
    for row, target in enumerate(targets):
        image = torch.zeros(3, 4, 4)
        image[0, 0, 0] = row
        items.append({"img": image, "keypoints_3d": torch.cat([target, torch.ones(44, 1)], 1)})
    model = FixedRegressor(targets, offset)
    result = evaluate_regression(
        model,
        items,
        keypoint_list=pg.LSP14_IDX_44,
        num_samples=8,
        best_of=(8,),
        kmeans_clusters=(8,),
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
    )
    # the pelvis (39) is not moved and not evaluated: every LSP joint is off by 50 mm
    assert result.summary["mode_mpjpe"] == pytest.approx(50.0, rel=1e-5)
    assert result.summary["kmeans8_mpjpe"] == pytest.approx(result.summary["best8_mpjpe"], rel=1e-5)
    assert result.accumulator.num_images == 3


def test_lifting_model_trains_and_resumes(tmp_path) -> None:
    from pose_data.lifting import LiftingDataset, write_lifting_npz, write_lifting_stats

    rng = np.random.default_rng(0)
    rows = 40
    path = tmp_path / "train.npz"
    write_lifting_npz(
        path,
        keypoints_2d=rng.uniform(0, 500, (rows, 17, 2)),
        keypoints_3d=0.3 * rng.normal(size=(rows, 17, 3)),
        imgname=[f"row{i}" for i in range(rows)],
    )
    stats = tmp_path / "stats.npz"
    write_lifting_stats(stats, mean=np.full((17, 2), 250.0), std=np.full((17, 2), 150.0))
    dataset = LiftingDataset(path, stats_path=stats)
    config = apply_overrides(
        LiftingConfig(),
        [
            f"output_dir={tmp_path / 'out'}",
            "model.hidden_features=32",
            "model.flow_hidden_features=16",
            "model.flow_num_layers=2",
            "batch_size=8",
            "total_steps=6",
            "checkpoint_steps=3",
        ],
    )
    ctx = DistributedContext(0, 1, 0, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_lifting_model(config.model)
    full = train_lifting(
        config, model=model, train_data=dataset, ctx=ctx, resume=False, progress=False
    )
    assert full.end_step == 6
    assert all(np.isfinite(r["loss"]) for r in full.losses)
    assert (tmp_path / "out" / "checkpoints" / "last.pt").is_file()
    # a second run from the step-3 checkpoint reproduces steps 4..6
    torch.manual_seed(0)
    partial_config = apply_overrides(config, [f"output_dir={tmp_path / 'out2'}"])
    first = build_lifting_model(partial_config.model)
    train_lifting(
        partial_config, model=first, train_data=dataset, ctx=ctx, resume=False, progress=False,
        stop_after_step=3,
    )  # fmt: skip
    resumed_model = build_lifting_model(partial_config.model)
    resumed = train_lifting(
        partial_config,
        model=resumed_model,
        train_data=dataset,
        ctx=ctx,
        resume=True,
        progress=False,
    )
    assert resumed.start_step == 3
    for mine, reference in zip(resumed.losses, full.losses[3:], strict=True):
        assert mine["loss"] == pytest.approx(reference["loss"], rel=1e-5)
