import json
import math

import numpy as np
import pytest
import torch

from pose_metrics import MetricAccumulator, MetricSummary

NAN = float("nan")


def filled() -> MetricAccumulator:
    acc = MetricAccumulator()
    acc.add(
        {"mpjpe": torch.tensor([10.0, 20.0, 30.0]), "pa_mpjpe": torch.tensor([5.0, NAN, 15.0])},
        groups={"action": ["walk", "sit", "walk"], "dataset": "h36m"},
    )
    acc.add(
        {"pa_mpjpe": [7.0, float("inf")], "mpjpe": np.array([40.0, 50.0])},
        groups={"dataset": ["3dpw", "3dpw"], "action": ["sit", "walk"]},
    )
    return acc


def test_keeps_every_per_image_value_in_order():
    acc = filled()
    assert acc.num_images == 5
    assert acc.metric_names == ("mpjpe", "pa_mpjpe")
    assert acc.values("mpjpe").tolist() == [10.0, 20.0, 30.0, 40.0, 50.0]
    pa = acc.values("pa_mpjpe")
    assert pa.dtype == torch.float64 and math.isnan(pa[1].item()) and math.isinf(pa[4].item())
    assert acc.labels("dataset") == ("h36m", "h36m", "h36m", "3dpw", "3dpw")


def test_groups_and_overall_means_count_nonfinite_values():
    summaries = filled().summarize(group_by="action")
    assert [s.name for s in summaries] == ["sit", "walk", "all"]
    sit, walk, overall = summaries
    assert sit.num_images == 2 and walk.num_images == 3 and overall.num_images == 5
    assert sit.metrics["mpjpe"] == MetricSummary(mean=30.0, num_finite=2, num_nonfinite=0)
    assert sit.metrics["pa_mpjpe"] == MetricSummary(mean=7.0, num_finite=1, num_nonfinite=1)
    assert walk.metrics["pa_mpjpe"] == MetricSummary(mean=10.0, num_finite=2, num_nonfinite=1)
    assert overall.metrics["pa_mpjpe"] == MetricSummary(mean=9.0, num_finite=3, num_nonfinite=2)
    assert overall.metrics["mpjpe"].mean == pytest.approx(30.0)


def test_groups_by_several_keys():
    summaries = filled().summarize(group_by=["dataset", "action"])
    assert [s.name for s in summaries] == [
        "3dpw / sit",
        "3dpw / walk",
        "h36m / sit",
        "h36m / walk",
        "all",
    ]
    assert summaries[3].labels == {"dataset": "h36m", "action": "walk"}
    assert summaries[3].num_images == 2


def test_markdown_table_shows_counts_and_nonfinite_values():
    table = filled().to_markdown(group_by="action", decimals=2)
    lines = table.splitlines()
    assert lines[0] == "| action | images | mpjpe | pa_mpjpe |"
    assert lines[1] == "|---|---:|---:|---:|"
    assert lines[2] == "| sit | 2 | 30.00 | 7.00 (1 non-finite) |"
    assert lines[3] == "| walk | 3 | 30.00 | 10.00 (1 non-finite) |"
    assert lines[4] == "| all | 5 | 30.00 | 9.00 (2 non-finite) |"
    assert "non-finite) counts images whose value is NaN or inf" in table


def test_all_nan_group_reads_nan_in_the_table_and_null_in_json():
    acc = MetricAccumulator()
    acc.add({"pa_mpjpe": torch.tensor([NAN, 4.0])}, groups={"seq": ["a", "b"]})
    assert "| a | 1 | nan (1 non-finite) |" in acc.to_markdown(group_by="seq")
    groups = acc.to_dict(group_by="seq")["groups"]
    assert groups[0]["metrics"]["pa_mpjpe"] == {"mean": None, "num_finite": 0, "num_nonfinite": 1}


def test_json_has_counts_and_is_written_atomically(tmp_path):
    acc = filled()
    path = tmp_path / "results.json"
    path.write_text("old contents")
    acc.write_json(path, group_by="action", include_per_image=True)
    data = json.loads(path.read_text())
    assert data["num_images"] == 5 and data["metrics"] == ["mpjpe", "pa_mpjpe"]
    assert data["group_by"] == ["action"]
    assert data["overall"]["metrics"]["pa_mpjpe"] == {
        "mean": 9.0,
        "num_finite": 3,
        "num_nonfinite": 2,
    }
    assert [g["labels"]["action"] for g in data["groups"]] == ["sit", "walk"]
    assert data["per_image"]["values"]["pa_mpjpe"] == [5.0, None, 15.0, 7.0, None]
    assert data["per_image"]["labels"]["action"] == ["walk", "sit", "walk", "sit", "walk"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary left


def test_an_empty_accumulator_summarises_to_zero_images():
    acc = MetricAccumulator()
    assert acc.summarize()[0].num_images == 0
    assert acc.to_dict()["num_images"] == 0


def test_rejects_inconsistent_batches():
    acc = MetricAccumulator()
    with pytest.raises(ValueError, match="every metric needs the same number of images B"):
        acc.add({"a": torch.zeros(3), "b": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"values\['a'\] must have shape \(B,\)"):
        acc.add({"a": torch.zeros(3, 2)})
    with pytest.raises(
        ValueError, match=r"groups\['seq'\] must hold one label per image \(B = 3\), got 2"
    ):
        acc.add({"a": torch.zeros(3)}, groups={"seq": ["x", "y"]})
    with pytest.raises(TypeError, match=r"values\['a'\] must be a tensor or a sequence of numbers"):
        acc.add({"a": object()})
    acc.add({"a": torch.zeros(3)}, groups={"seq": "x"})
    with pytest.raises(
        ValueError,
        match=r"metric names must be the same in every batch: .* missing \['a'\], unexpected \['b'\]",
    ):
        acc.add({"b": torch.zeros(3)}, groups={"seq": "x"})
    with pytest.raises(
        ValueError, match=r"group keys must be the same in every batch: .* missing \['seq'\]"
    ):
        acc.add({"a": torch.zeros(3)})
    with pytest.raises(ValueError, match=r"unknown group key 'action'; expected one of \['seq'\]"):
        acc.summarize(group_by="action")
    with pytest.raises(KeyError, match="unknown metric 'b'"):
        acc.values("b")
    assert acc.num_images == 3  # the rejected batches left nothing behind
