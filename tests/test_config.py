"""The experiment config: defaults, YAML files, dotted overrides and clear errors."""

from pathlib import Path

import pytest
from pipeline.config import (
    ConfigError,
    ConfigValueError,
    ProHMRConfig,
    apply_overrides,
    load_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "tools" / "configs"


def test_defaults_are_the_published_hyperparameters():
    config = ProHMRConfig()
    assert config.train.batch_size == 64
    assert config.train.total_steps == 500_000
    assert config.train.lr == 1e-4
    assert config.train.weight_decay == 1e-4
    assert config.model.backbone_depth == 50
    assert config.model.flow_hidden_features == 1024
    assert config.data.train == {
        "H36M-TRAIN": 0.3,
        "MPII-TRAIN": 0.1,
        "COCO-TRAIN-2014": 0.4,
        "MPI-INF-TRAIN": 0.2,
    }


def test_published_yaml_equals_the_defaults():
    config = load_config(ProHMRConfig, CONFIGS / "prohmr.yaml")
    assert config == ProHMRConfig()


def test_synthetic_yaml_loads():
    config = load_config(ProHMRConfig, CONFIGS / "synthetic_cpu.yaml")
    assert config.synthetic is not None
    assert config.body.model_path == "procedural"
    assert config.data.train == {"SYNTH-TRAIN": 1.0}


def test_overrides_change_nested_values():
    config = apply_overrides(ProHMRConfig(), ["train.batch_size=32", "model.flow_dropout=0"])
    assert config.train.batch_size == 32
    assert config.model.flow_dropout == 0.0
    assert isinstance(config.model.flow_dropout, float)


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  batch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*train\.batch_sise"):
        load_config(ProHMRConfig, path)


def test_wrong_type_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  batch_size: many\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size.*integer"):
        load_config(ProHMRConfig, path)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match=r"unknown key `train\.nope`"):
        apply_overrides(ProHMRConfig(), ["train.nope=1"])
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        apply_overrides(ProHMRConfig(), ["train.batch_size"])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(ProHMRConfig, "does/not/exist.yaml")


def test_precision_is_checked():
    with pytest.raises(ConfigValueError, match=r"train.precision` must be one of 'fp32'"):
        apply_overrides(ProHMRConfig(), ["train.precision=fp8"])
    assert apply_overrides(ProHMRConfig(), ["train.precision=bf16"]).train.precision == "bf16"


def test_the_old_amp_key_reads_as_fp32_with_a_warning(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  amp: true\n")
    with pytest.warns(UserWarning, match="train.amp` is replaced by `train.precision"):
        config = load_config(ProHMRConfig, path)
    assert config.train.precision == "fp32"
    path.write_text("train:\n  amp: true\n  precision: bf16\n")
    with pytest.raises(ConfigError, match=r"amp` and `train\.precision` given together"):
        load_config(ProHMRConfig, path)
