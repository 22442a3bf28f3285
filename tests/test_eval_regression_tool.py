"""tools/eval_regression.py scores a checkpoint with the training run's report protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline.testing import load_tool, run_train_prohmr, tiny_prohmr_overrides


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run trained 2 steps, with its final report (best-of-n up to 16, no fitting)."""
    world = tmp_path_factory.mktemp("world")
    out = tmp_path_factory.mktemp("run")
    overrides = tiny_prohmr_overrides(world, out, steps=2, hidden=16, num_train=16)
    result = run_train_prohmr(["--set", *overrides])
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_the_tool_gives_the_reports_figures(run: Path, tmp_path: Path) -> None:
    report = json.loads((run / "report.json").read_text())
    out = tmp_path / "eval"
    argv = ["--checkpoint", str(run / "checkpoints" / "last.pt"), "--device", "cpu"]
    # the report's protocol: its sample count (its largest n), seed and batch size (the
    # defaults), k-means up to that count and the baselines (their own generator)
    argv += ["--ns", "1", "4", "16", "--kmeans", "5", "10", "--baselines", "--out", str(out)]
    assert load_tool("eval_regression").main(argv) == 0
    tool = json.loads((out / "summary.json").read_text())["datasets"]
    assert set(tool) == set(report["results"]) == {"SYNTH-VAL"}
    ours, theirs = tool["SYNTH-VAL"]["summary"], report["results"]["SYNTH-VAL"]
    assert {"best16_mpjpe", "kmeans10_pa_mpjpe", "gauss20cm_best16_mpjpe"} <= set(theirs)
    assert {"trainset_best4_pa_mpjpe", "mean_pose_mpjpe"} <= set(theirs)
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(value, rel=1e-6), name
    assert (out / "SYNTH-VAL_error_vs_n.png").stat().st_size > 0
    assert (run / "SYNTH-VAL_error_vs_n.png").stat().st_size > 0
    # the same claims, with verdicts computed from the same numbers
    assert tool["SYNTH-VAL"]["claims"] == report["claims"][:8]
    assert {claim["verdict"] for claim in report["claims"][:8]} <= {"holds", "fails"}
    assert [claim["verdict"] for claim in report["claims"][8:]] == ["not measured"] * 4
    markdown = (run / "report.md").read_text()
    assert "## The seed's claims" in markdown and "SYNTH-VAL_error_vs_n.png" in markdown
    assert "## The seed's claims" in (out / "summary.md").read_text()
    # the uncertainty metrics: the same 15 random samples of the same draw in both
    ours, theirs = tool["SYNTH-VAL"]["uncertainty"], report["uncertainty"]["SYNTH-VAL"]
    assert ours["num_samples"] == theirs["num_samples"] == 15
    assert ours.pop("plot").endswith("SYNTH-VAL_calibration.png")
    assert set(ours) == set(theirs)
    for key in ("diversity_mm", "log_likelihood"):
        first, second = ours[key], theirs[key]
        assert {k: first[k] for k in first if not isinstance(first[k], float)} == {
            k: second[k] for k in second if not isinstance(second[k], float)
        }
    assert ours["diversity_mm"]["all"] == pytest.approx(theirs["diversity_mm"]["all"], rel=1e-5)
    assert ours["calibration"]["ece"] == pytest.approx(theirs["calibration"]["ece"], abs=1e-3)
    likelihood = theirs["log_likelihood"]
    assert ours["log_likelihood"]["mean_nats"] == pytest.approx(likelihood["mean_nats"], rel=1e-5)
    assert likelihood["num_images"] == ours["num_images"] > 0
    assert (out / "SYNTH-VAL_calibration.png").stat().st_size > 0
    assert "### Uncertainty on SYNTH-VAL" in markdown and "SYNTH-VAL_calibration.png" in markdown
    assert "| uncertainty metric | value |" in (out / "summary.md").read_text()


def test_the_precision_report_compares_fp32_with_bf16(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "precision"
    argv = ["--checkpoint", str(run / "checkpoints" / "last.pt"), "--device", "cpu"]
    argv += ["--limit", "4", "--num-samples", "4", "--train-steps", "2", "--batch-size", "2"]
    assert load_tool("precision_report").main([*argv, "--out", str(out)]) == 0
    report = json.loads((out / "precision_report.json").read_text())
    summary = report["SYNTH-VAL"]["summary"]
    assert set(summary) == {"fp32", "bf16"} and set(summary["fp32"]) == set(summary["bf16"])
    assert {"mode_pa_mpjpe", "best4_pa_mpjpe"} <= set(summary["fp32"])
    # bf16 keeps 8 significant bits: close to fp32, but not the same computation
    for key, value in summary["fp32"].items():
        assert summary["bf16"][key] == pytest.approx(value, rel=0.2, abs=5.0), key
    assert report["SYNTH-VAL"]["log_prob_max_abs_difference"] is not None
    assert [len(report["training"][p]) for p in ("fp32", "bf16")] == [2, 2]
    assert (out / "precision_report.md").read_text().startswith("# fp32 against bf16")
