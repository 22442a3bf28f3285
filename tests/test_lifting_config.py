"""The lifting run's config files (tools/configs/lifting*.yaml) and its learning-rate schedule."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
from pipeline.config import ConfigValueError, LiftingConfig, apply_overrides, load_config
from pipeline.lifting_training import learning_rate

CONFIGS = Path(__file__).resolve().parents[1] / "tools" / "configs"

# what the CPU-sized default changes from the published setting (each commented in the file)
CPU_CHANGES = {
    "output_dir",
    "model.hidden_features",
    "model.flow_hidden_features",
    "total_steps",
    "lr",
    "lr_schedule",
    "warmup_steps",
    "checkpoint_steps",
}


def _flat(config: object, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            out |= _flat(value, f"{prefix}{field.name}.")
        else:
            out[f"{prefix}{field.name}"] = value
    return out


def test_the_published_lifting_yaml_equals_the_defaults():
    config = load_config(LiftingConfig, CONFIGS / "lifting.yaml")
    assert dataclasses.replace(config, output_dir=LiftingConfig().output_dir) == LiftingConfig()


def test_the_cpu_lifting_yaml_changes_only_the_listed_keys():
    cpu = _flat(load_config(LiftingConfig, CONFIGS / "lifting_cpu.yaml"))
    published = _flat(load_config(LiftingConfig, CONFIGS / "lifting.yaml"))
    assert {key for key in cpu if cpu[key] != published[key]} == CPU_CHANGES


def test_train_lifting_reads_the_cpu_yaml_by_default_and_published_as_shorthand():
    import train_lifting

    assert train_lifting.DEFAULT_CONFIG == CONFIGS / "lifting_cpu.yaml"
    assert train_lifting.PUBLISHED_CONFIG == CONFIGS / "lifting.yaml"
    with pytest.raises(SystemExit):  # --config and --published together: a usage error
        train_lifting.main(["--published", "--config", str(CONFIGS / "lifting.yaml")])


def test_lifting_learning_rate_schedules():
    constant = LiftingConfig()
    assert [learning_rate(constant, s) for s in (0, 10, 299_999)] == [1e-4] * 3
    cosine = apply_overrides(
        constant, ["lr=1e-3", "lr_schedule=cosine", "warmup_steps=10", "total_steps=110"]
    )
    assert learning_rate(cosine, 0) == pytest.approx(1e-4)  # warm-up from lr / warmup_steps
    assert learning_rate(cosine, 9) == pytest.approx(1e-3)
    assert learning_rate(cosine, 10) == pytest.approx(1e-3)  # the cosine starts at lr
    assert learning_rate(cosine, 60) == pytest.approx(5e-4)  # half-way
    assert learning_rate(cosine, 109) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.99)))
    rates = [learning_rate(cosine, s) for s in range(10, 110)]
    assert all(a >= b for a, b in itertools.pairwise(rates))
    no_warmup = apply_overrides(cosine, ["warmup_steps=0"])
    assert learning_rate(no_warmup, 0) == pytest.approx(1e-3)


def test_an_unknown_lifting_schedule_names_the_key_and_the_choices():
    with pytest.raises(ConfigValueError, match=r"lr_schedule.*'constant', 'cosine'.*'linear'"):
        apply_overrides(LiftingConfig(), ["lr_schedule=linear"])


def test_the_default_lifting_run_is_evaluated_with_its_claims(tmp_path):
    """train_lifting's default data (the CMU set, held-out clips) for a few steps, then
    eval_lifting: best-of-n also at the k-means n, and the claims with computed verdicts."""
    import json

    from pipeline.testing import load_tool

    out = tmp_path / "run"
    overrides = [
        f"output_dir={out}", "model.hidden_features=32", "model.flow_hidden_features=16",
        "model.flow_num_layers=2", "batch_size=8", "total_steps=4", "checkpoint_steps=4",
        "warmup_steps=1",
    ]  # fmt: skip
    assert load_tool("train_lifting").main(["--no-progress", "--set", *overrides]) == 0
    argv = ["--checkpoint", str(out / "checkpoints" / "last.pt"), "--device", "cpu"]
    argv += ["--ns", "1", "4", "--kmeans", "2", "--limit", "16", "--out", str(tmp_path / "eval")]
    assert load_tool("eval_lifting").main(argv) == 0
    report = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert {"best2_mpjpe", "kmeans2_pa_mpjpe", "trainset_best4_mpjpe"} <= set(report["summary"])
    claims = report["claims"]
    assert [claim["number"] for claim in claims] == [1, 2, 3, 4] * 2
    assert {claim["verdict"] for claim in claims} <= {"holds", "fails"}
    assert "## The seed's claims" in (tmp_path / "eval" / "summary.md").read_text()
