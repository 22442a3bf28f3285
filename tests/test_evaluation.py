"""Evaluation pipelines on tiny fixtures with known answers, and the lifting model training."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pipeline.config import LiftingConfig, apply_overrides
from pipeline.lifting_training import train_lifting
from pipeline.runtime import DistributedContext
from torch import nn

import pose_geometry as pg
from prohmr_model.evaluation import (
    error_vs_n_plot,
    evaluate_lifting,
    evaluate_regression,
    score_hypotheses,
)
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


def regression_items(targets: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    items = []
    for row, target in enumerate(targets):
        image = torch.zeros(3, 4, 4)
        image[0, 0, 0] = row
        keypoints = torch.cat([target, torch.ones(44, 1)], 1)
        items.append({"img": image, "keypoints_3d": keypoints, "idx": row})
    return items


def test_score_hypotheses_baselines_pck_and_mask() -> None:
    generator = torch.Generator().manual_seed(0)
    target = 0.3 * torch.randn(2, 17, 3, generator=generator)
    predictions = target[:, None].repeat(1, 8, 1, 1)
    predictions[:, 0, 1:] += torch.tensor([0.2, 0.0, 0.0])  # the mode: 200 mm off on 16 joints
    predictions[:, 1:] += 0.01 * torch.randn(2, 7, 17, 3, generator=generator)
    mask = torch.ones(2, 17)
    mask[:, 5] = 0
    values = score_hypotheses(
        predictions,
        target,
        root_idx=0,
        mask=mask,
        best_of=(1, 8),
        gaussian_sigmas_m=(0.0,),
        training_poses=target[:1],
        pck_auc=True,
        generator=generator,
    )
    assert list(values) == [
        "mode_mpjpe", "mode_pa_mpjpe", "best1_mpjpe", "best1_pa_mpjpe", "best8_mpjpe",
        "best8_pa_mpjpe", "gauss0cm_best1_mpjpe", "gauss0cm_best1_pa_mpjpe",
        "gauss0cm_best8_mpjpe", "gauss0cm_best8_pa_mpjpe", "trainset_best1_mpjpe",
        "trainset_best1_pa_mpjpe", "trainset_best8_mpjpe", "trainset_best8_pa_mpjpe",
        "mode_pck150", "mode_auc",
    ]  # fmt: skip
    # 15 of the 16 used joints are 200 mm off (joint 5 is masked out, the root is exact)
    assert torch.allclose(values["mode_mpjpe"], torch.full((2,), 200.0 * 15 / 16), rtol=1e-5)
    assert torch.equal(values["best1_mpjpe"], values["mode_mpjpe"])
    assert bool((values["best8_mpjpe"] < 50.0).all())
    # σ = 0: every Gaussian sample is the mode
    assert torch.equal(values["gauss0cm_best8_mpjpe"], values["mode_mpjpe"])
    # the one training pose is image 0's ground truth
    assert float(values["trainset_best1_mpjpe"][0]) == pytest.approx(0.0, abs=1e-3)
    # no used joint is within 150 mm; the AUC counts the root's 0 mm error at every threshold
    # above 0 (30 of 31), so 1 of 16 used joints
    assert torch.equal(values["mode_pck150"], torch.full((2,), 100.0 / 16))
    assert torch.allclose(values["mode_auc"], torch.full((2,), 100.0 / 16 * 30 / 31))
    with pytest.raises(ValueError, match=r"`best_of` values must lie in \[1, 8\].*got \[9\]"):
        score_hypotheses(predictions, target, root_idx=0, best_of=(9,))


def test_regression_breakdown_by_dataset_row_labels() -> None:
    targets = 0.3 * torch.randn(4, 44, 3)
    model = FixedRegressor(targets, torch.zeros(44, 3))
    result = evaluate_regression(
        model,
        regression_items(targets),
        keypoint_list=None,
        num_samples=4,
        best_of=(4,),
        batch_size=3,
        generator=torch.Generator().manual_seed(0),
        group_labels={"action": ["walk", "sit", "walk", "sit"]},
    )
    *groups, overall = result.accumulator.summarize(group_by="action")
    assert [(g.labels["action"], g.num_images) for g in groups] == [("sit", 2), ("walk", 2)]
    assert overall.num_images == 4
    with pytest.raises(ValueError, match=r"`num_samples` \(4\) must be >= .*\(5\)"):
        evaluate_regression(
            model, regression_items(targets), keypoint_list=None, num_samples=4,
            kmeans_clusters=(5,),
        )  # fmt: skip


def test_error_vs_n_plot(tmp_path, monkeypatch) -> None:
    summary = {
        "mode_mpjpe": 90.0, "mode_pa_mpjpe": 60.0, "best1_mpjpe": 90.0, "best1_pa_mpjpe": 60.0,
        "best4_mpjpe": 80.0, "best4_pa_mpjpe": 55.0, "kmeans4_mpjpe": 78.0,
        "kmeans4_pa_mpjpe": 54.0, "gauss10cm_best4_mpjpe": 85.0,
        "gauss10cm_best4_pa_mpjpe": 58.0, "mean_pose_mpjpe": 150.0, "mean_pose_pa_mpjpe": 99.0,
    }  # fmt: skip
    path = error_vs_n_plot(summary, (1, 4), tmp_path / "plot.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ModuleNotFoundError, match=r"prohmr-model\[plots\]"):
        error_vs_n_plot(summary, (1, 4), tmp_path / "again.png", title="test")


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
            "lr_schedule=cosine",  # the rate follows the step, across the resume too
            "warmup_steps=2",
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
