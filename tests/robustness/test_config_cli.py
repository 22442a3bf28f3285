"""Bad configs and command lines end in a clear error when they are read, never in a wrong run.

Each case asserts the exception type (or the argparse usage error, exit status 2) and that the
message names the key / flag / file, the rule and the value given.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pipeline.cli import check_output_dir
from pipeline.config import (
    ConfigError,
    ConfigValueError,
    LiftingConfig,
    ModelConfig,
    ProHMRConfig,
    apply_overrides,
    config_to_dict,
    load_config,
)
from pipeline.data import load_registry
from pipeline.runtime import DistributedContext, pick_device, save_checkpoint
from pipeline.session import (
    ProHMRSession,
    check_config_datasets,
    config_registry,
    load_prohmr_checkpoint,
)
from pipeline.testing import load_tool

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
REGISTRY = TOOLS / "configs" / "datasets.yaml"
SYNTHETIC_CPU = TOOLS / "configs" / "synthetic_cpu.yaml"


def nested_yaml(key: str, text: str) -> str:
    """``a.b`` and ``0`` -> 'a:\\n  b: 0\\n'."""
    parts = key.split(".")
    lines = [f"{'  ' * i}{part}:" for i, part in enumerate(parts[:-1])]
    lines.append(f"{'  ' * (len(parts) - 1)}{parts[-1]}: {text}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Ranges, checked when the config is read: (config class, dotted key, value text, rule, value)
# --------------------------------------------------------------------------------------------

RANGE_CASES = [
    (ProHMRConfig, "train.batch_size", "0", ">= 1", "0"),
    (ProHMRConfig, "train.checkpoint_steps", "0", ">= 1", "0"),
    (ProHMRConfig, "train.log_steps", "0", ">= 1", "0"),
    (ProHMRConfig, "train.val_steps", "-1", ">= 1", "-1"),
    (ProHMRConfig, "train.image_log_steps", "0", ">= 1", "0"),
    (ProHMRConfig, "train.lr", "0", "> 0 and finite", "0.0"),
    (ProHMRConfig, "train.lr", "-1e-4", "> 0 and finite", "-0.0001"),
    (ProHMRConfig, "train.lr", ".inf", "> 0 and finite", "inf"),
    (ProHMRConfig, "train.weight_decay", "-0.1", ">= 0", "-0.1"),
    (ProHMRConfig, "train.total_steps", "-1", ">= 0", "-1"),
    (ProHMRConfig, "train.num_train_samples", "0", ">= 1", "0"),
    (ProHMRConfig, "train.num_val_samples", "0", ">= 1", "0"),
    (ProHMRConfig, "train.mocap_batch_multiplier", "0", ">= 1", "0"),
    (ProHMRConfig, "train.seed", "-3", ">= 0", "-3"),
    (ProHMRConfig, "train.smpl_param_noise", "-0.01", ">= 0", "-0.01"),
    (ProHMRConfig, "train.loss_weights", "{nl: 0.1}", "a mapping from loss terms", "{'nl': 0.1}"),
    (ProHMRConfig, "train.loss_weights", "{nll: -1}", "a mapping from loss terms", "{'nll': -1.0}"),
    (ProHMRConfig, "data.num_workers", "-1", ">= 0", "-1"),
    (ProHMRConfig, "data.image_size", "0", ">= 1", "0"),
    (ProHMRConfig, "data.train", "{}", "a non-empty mapping", "{}"),
    (
        ProHMRConfig,
        "data.train",
        "{SYNTH-TRAIN: -1}",
        "a non-empty mapping .* weights >= 0",
        "{'SYNTH-TRAIN': -1.0}",
    ),
    (
        ProHMRConfig,
        "data.val",
        "{SYNTH-VAL: 0}",
        "a non-empty mapping .* a positive sum",
        "{'SYNTH-VAL': 0.0}",
    ),
    (ProHMRConfig, "model.flow_hidden_features", "0", ">= 1", "0"),
    (ProHMRConfig, "model.flow_num_layers", "0", ">= 1", "0"),
    (ProHMRConfig, "model.flow_num_blocks", "-1", ">= 0", "-1"),
    (ProHMRConfig, "model.fc_hidden_features", "0", ">= 1", "0"),
    (ProHMRConfig, "model.flow_dropout", "1.0", r"in \[0, 1\)", "1.0"),
    (ProHMRConfig, "model.flow_dropout", "-0.1", r"in \[0, 1\)", "-0.1"),
    (ProHMRConfig, "model.focal_length", "0", "> 0 and finite", "0.0"),
    (ProHMRConfig, "model.focal_length", "-5", "> 0 and finite", "-5.0"),
    (ProHMRConfig, "model.focal_length", ".nan", "> 0 and finite", "nan"),
    (ProHMRConfig, "model.backbone_depth", "19", "one of 18, 34, 50, 101, 152", "19"),
    (ProHMRConfig, "model.flow_coupling", "affin", "one of 'additive', 'affine'", "'affin'"),
    (ProHMRConfig, "synthetic.num_train", "0", ">= 1", "0"),
    (ProHMRConfig, "synthetic.image_size", "0", ">= 1", "0"),
    (ProHMRConfig, "output_dir", '""', "a non-empty string", "''"),
    (LiftingConfig, "batch_size", "0", ">= 1", "0"),
    (LiftingConfig, "lr", "0", "> 0 and finite", "0.0"),
    (LiftingConfig, "model.flow_dropout", "1", r"in \[0, 1\)", "1.0"),
    (LiftingConfig, "model.hidden_features", "0", ">= 1", "0"),
    (LiftingConfig, "model.num_res_blocks", "-1", ">= 0", "-1"),
    (LiftingConfig, "total_steps", "-1", ">= 0", "-1"),
    (LiftingConfig, "checkpoint_steps", "0", ">= 1", "0"),
]
RANGE_IDS = [f"{cls.__name__}:{key}={text}" for cls, key, text, _, _ in RANGE_CASES]


@pytest.mark.parametrize(("cls", "key", "text", "rule", "got"), RANGE_CASES, ids=RANGE_IDS)
def test_range_in_file_names_file_key_rule_and_value(tmp_path, cls, key, text, rule, got):
    path = tmp_path / "bad.yaml"
    path.write_text(nested_yaml(key, text))
    pattern = rf"bad\.yaml: `{re.escape(key)}` must be {rule}.*, got {re.escape(got)}$"
    with pytest.raises(ConfigValueError, match=pattern):
        load_config(cls, path)


@pytest.mark.parametrize(("cls", "key", "text", "rule", "got"), RANGE_CASES, ids=RANGE_IDS)
def test_range_in_override_names_key_rule_and_value(cls, key, text, rule, got):
    pattern = rf"^overrides: `{re.escape(key)}` must be {rule}.*, got {re.escape(got)}$"
    with pytest.raises(ConfigValueError, match=pattern):
        apply_overrides(cls(), [f"{key}={text}"])


def _sections(cls: type) -> dict[str, type]:
    """{field name: config dataclass} for the section fields of ``cls`` (``X | None`` too)."""
    sections = {}
    for name, tp in typing.get_type_hints(cls).items():
        for candidate in (tp, *typing.get_args(tp)):
            if dataclasses.is_dataclass(candidate):
                sections[name] = candidate
    return sections


CONFIG_CLASSES = [
    ProHMRConfig,
    *_sections(ProHMRConfig).values(),
    LiftingConfig,
    *_sections(LiftingConfig).values(),
]


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_field_has_a_rule_next_to_it(cls):
    values = {f.name for f in dataclasses.fields(cls)} - set(_sections(cls))
    assert values == set(cls.RULES), f"{cls.__name__}: fields and rules differ"


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigValueError, match=r"^`batch_size` must be >= 1, got 0$"):
        dataclasses.replace(ProHMRConfig().train, batch_size=0)


# --------------------------------------------------------------------------------------------
# Values read as what they are: YAML 1.2 numbers, integral floats, bools, nested overrides
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("train.lr=1e-4", "train.lr", 1e-4),
        ("train.lr=3E-5", "train.lr", 3e-5),
        ("train.weight_decay=1.0e-2", "train.weight_decay", 1e-2),
        ("train.total_steps=5e5", "train.total_steps", 500_000),
        ("train.batch_size=32.0", "train.batch_size", 32),
        ("data.augment=false", "data.augment", False),
        ("train.loss_weights.nll=1e-2", "train.loss_weights", {"nll": 0.01}),
        ("data.train={SYNTH-TRAIN: 1.0}", "data.train", {"SYNTH-TRAIN": 1.0}),
        (
            "data.val.SYNTH-VAL=2",
            "data.val",
            {"H36M-VAL-P2": 0.5, "COCO-VAL": 0.5, "SYNTH-VAL": 2.0},
        ),
        ("output_dir=runs/a #1", "output_dir", "runs/a #1"),
        ("output_dir=1e5", "output_dir", "1e5"),
        ("body.h36m_regressor_path='a b.npy'", "body.h36m_regressor_path", "a b.npy"),
    ],
)
def test_override_values_are_read_as_the_field_type(override, key, expected):
    config = apply_overrides(ProHMRConfig(), [override])
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    assert value == expected
    assert type(value) is type(expected)


def test_yaml_file_reads_exponent_numbers_as_numbers(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-4\n  total_steps: 5e5\n  weight_decay: 2E-3\n")
    config = load_config(ProHMRConfig, path)
    assert config.train.lr == 1e-4
    assert config.train.total_steps == 500_000
    assert isinstance(config.train.total_steps, int)
    assert config.train.weight_decay == 2e-3


def test_section_mapping_override_changes_only_the_keys_it_names():
    config = apply_overrides(ProHMRConfig(), ["model={backbone_depth: 18, flow_num_layers: 2}"])
    assert config.model.backbone_depth == 18
    assert config.model.flow_num_layers == 2
    assert config.model.flow_hidden_features == ModelConfig().flow_hidden_features


@pytest.mark.parametrize(
    ("override", "error", "pattern"),
    [
        (
            "train.batch_size=32.5",
            ConfigError,
            r"`train\.batch_size` must be an integer, got 32\.5",
        ),
        ("train.batch_size=true", ConfigError, r"`train\.batch_size` must be an integer, got True"),
        ("train.lr=yes", ConfigError, r"`train\.lr` must be a number, got True"),
        ("train.lr='1e-4'", ConfigError, r"`train\.lr` must be a number, got '1e-4'"),
        ("data.augment=2", ConfigError, r"`data\.augment` must be true or false, got 2"),
        ("train.nope=1", ConfigError, r"unknown key `train\.nope`; expected one of .*batch_size"),
        ("trian.lr=1", ConfigError, r"unknown key `trian\.lr`; expected one of .*train"),
        ("train.lr.x=1", ConfigError, r"`train\.lr` is a float, not a section"),
        ("data.train.SYNTH.x=1", ConfigError, r"`data\.train\.SYNTH` is a float, not a section"),
        ("train..lr=1", ConfigError, r"`train\.\.lr` has an empty part"),
        ("train.batch_size", ConfigError, r"must look like key\.sub=value"),
        ("train.lr=[1", ConfigError, r"override 'train\.lr=\[1': not a valid config YAML"),
        ("data.train={A: 1, A: 2}", ConfigError, r"found the key 'A' twice"),
    ],
)
def test_bad_override_is_refused(override, error, pattern):
    with pytest.raises(error, match=pattern):
        apply_overrides(ProHMRConfig(), [override])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "train:\n  lr: 1\n  lr: 2\n",
            r"(?s)bad\.yaml: not a valid config YAML.*found the key 'lr' twice",
        ),
        ("train: [1, 2\n", r"bad\.yaml: not a valid config YAML"),
        ("- 1\n- 2\n", r"bad\.yaml: expected a mapping at the top level, got list"),
        ("train: 3\n", r"bad\.yaml: `train` must be a mapping, got 3"),
        ("train:\n  batch_sise: 3\n", r"bad\.yaml: unknown key\(s\) train\.batch_sise"),
    ],
)
def test_malformed_config_file_names_the_file(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_config(ProHMRConfig, path)


# --------------------------------------------------------------------------------------------
# Paths with '#', spaces and quotes survive a saved config
# --------------------------------------------------------------------------------------------

ODD_PATHS = [
    "runs/exp #3",
    "runs/with space/and  two",
    "runs/it's",
    'runs/"quoted"',
    "runs/a: b",
    "runs/- dash",
    "runs/{braces}",
    "#start",
]


@pytest.mark.parametrize("odd", ODD_PATHS)
def test_odd_path_survives_override_save_and_reread(tmp_path, odd):
    config = apply_overrides(ProHMRConfig(), [f"output_dir={odd}", f"body.model_path={odd}.pkl"])
    assert config.output_dir == odd
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    assert load_config(ProHMRConfig, saved) == config


# --------------------------------------------------------------------------------------------
# The dataset registry and dataset names
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "program"),
    [
        ("H36M-TRAIN", "tools/preprocess_h36m.py --split train"),
        ("H36M-VAL-MULTIVIEW", "tools/preprocess_h36m.py --split multiview"),
        ("3DPW-TEST", "tools/preprocess_3dpw.py"),
        ("MPI-INF-TEST", "tools/preprocess_mpi_inf_3dhp.py --split test"),
        ("MANNEQUIN", "tools/preprocess_mannequin.py"),
        ("SYNTH-TRAIN", "tools/make_synthetic.py"),
        ("CMU-LIFT-TRAIN", "tools/make_lifting_dataset.py cmu"),
    ],
)
def test_missing_dataset_file_names_the_program_that_makes_it(tmp_path, name, program):
    registry = load_registry(REGISTRY, data_root=tmp_path, synthetic_dir=str(tmp_path / "w"))
    entry = registry[name]
    pattern = rf"dataset '{name}': file {re.escape(str(entry.file))} not found; make it with {re.escape(program)}"
    with pytest.raises(FileNotFoundError, match=pattern):
        entry.require_file()


def test_every_registry_entry_names_its_program(tmp_path):
    registry = load_registry(REGISTRY, data_root=tmp_path)
    assert all(entry.made_by for entry in registry.values())


def test_preprocess_h36m_writes_the_file_the_registry_reads(tmp_path):
    registry = load_registry(REGISTRY, data_root=tmp_path)
    source = (TOOLS / "preprocess_h36m.py").read_text()
    for name in ("H36M-TRAIN", "H36M-VAL", "H36M-VAL-P2", "H36M-VAL-MULTIVIEW"):
        assert f'"{registry[name].file.name}"' in source, name


@pytest.mark.parametrize(
    ("text", "error", "pattern"),
    [
        (None, FileNotFoundError, r"dataset registry not found: .*reg\.yaml"),
        ("A: {file: [1\n", ValueError, r"reg\.yaml: the dataset registry is not valid YAML"),
        ("- A\n- B\n", ValueError, r"reg\.yaml: .*must be a non-empty mapping.*got list"),
        ("", ValueError, r"reg\.yaml: .*must be a non-empty mapping.*got NoneType"),
        ("A: a.npz\n", ValueError, r"reg\.yaml: entry 'A' must be a mapping"),
        ("A: {type: image}\n", ValueError, r"reg\.yaml: entry 'A' lacks 'file'"),
        ("A: {file: 3}\n", ValueError, r"reg\.yaml: entry 'A' file must be text, got 3"),
        (
            "A: {file: a.npz, use_hips: 1}\n",
            ValueError,
            r"entry 'A' use_hips must be true or false, got 1",
        ),
        ("A: {file: a.npz, type: img}\n", ValueError, r"entry 'A' has type 'img'; expected"),
        (
            "A: {file: '{root}/a.npz'}\n",
            ValueError,
            r"entry 'A' file '\{root\}/a\.npz' uses an unknown placeholder",
        ),
        (
            "A: {file: a.npz, kind: image}\n",
            ValueError,
            r"entry 'A' has unknown key\(s\) \['kind'\]",
        ),
    ],
)
def test_bad_registry_is_a_clear_error_naming_the_file(tmp_path, text, error, pattern):
    path = tmp_path / "reg.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=pattern):
        load_registry(path, data_root=tmp_path)


def _synthetic_config(*overrides: str) -> ProHMRConfig:
    return load_config(ProHMRConfig, SYNTHETIC_CPU, [f"data.registry={REGISTRY}", *overrides])


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (
            "data.train={SYNTH-TRAN: 1.0}",
            r"data\.train: dataset 'SYNTH-TRAN' is not in the registry .*datasets\.yaml; expected one of .*SYNTH-TRAIN",
        ),
        (
            "data.val.SYNTH-VALL=1",
            r"data\.val: dataset 'SYNTH-VALL' is not in the registry .*expected one of .*SYNTH-VAL",
        ),
        (
            "data.mocap=SYNTH-MOKAP",
            r"data\.mocap: dataset 'SYNTH-MOKAP' is not in the registry .*expected one of CMU-MOCAP, SYNTH-MOCAP$",
        ),
        (
            "data.train={SYNTH-MOCAP: 1.0}",
            r"data\.train: dataset 'SYNTH-MOCAP' has type 'mocap' .*expected type 'image'",
        ),
        (
            "data.mocap=SYNTH-TRAIN",
            r"data\.mocap: dataset 'SYNTH-TRAIN' has type 'image' .*expected type 'mocap'",
        ),
    ],
)
def test_config_dataset_names_are_checked_against_the_registry(override, pattern):
    config = _synthetic_config(override)
    with pytest.raises(ValueError, match=pattern):
        check_config_datasets(config, config_registry(config))


def test_session_refuses_a_misspelled_name_before_making_the_world(tmp_path):
    world = tmp_path / "world"
    config = _synthetic_config("data.train={SYNTH-TRAN: 1.0}", f"synthetic.output_dir={world}")
    ctx = DistributedContext(0, 1, 0, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"data\.train: dataset 'SYNTH-TRAN'.*SYNTH-TRAIN"):
        ProHMRSession(config, ctx=ctx)
    assert not world.exists()


def test_missing_registry_file_is_named(tmp_path):
    config = _synthetic_config(f"data.registry={tmp_path / 'none.yaml'}")
    with pytest.raises(FileNotFoundError, match=r"dataset registry not found: .*none\.yaml"):
        config_registry(config)


# --------------------------------------------------------------------------------------------
# model.backbone_weights is loaded into the model built for training
# --------------------------------------------------------------------------------------------


def _build(model_config: ModelConfig, **kwargs):
    from pose_body import BodyModel
    from prohmr_model.model import build_prohmr

    return build_prohmr(
        model_config,
        body_model=BodyModel.procedural(),
        mean_betas=np.zeros(10, dtype=np.float32),
        mean_camera=np.array([0.9, 0.0, 0.0], dtype=np.float32),
        **kwargs,
    )


SMALL = {
    "backbone_depth": 18,
    "flow_hidden_features": 8,
    "fc_hidden_features": 8,
    "flow_num_layers": 1,
}


def _resnet18_file(path: Path, *, prefix: str = "") -> dict[str, torch.Tensor]:
    from hmr_backbone import ResNet

    torch.manual_seed(7)
    state = ResNet(depth=18).state_dict()
    state = {k: v + 0.25 if v.is_floating_point() else v for k, v in state.items()}
    torch.save({prefix + k: v for k, v in state.items()}, path)
    return state


@pytest.mark.parametrize("prefix", ["", "backbone."])
def test_backbone_weights_are_in_the_model_after_build(tmp_path, monkeypatch, prefix):
    state = _resnet18_file(tmp_path / "weights file #1.pt", prefix=prefix)
    monkeypatch.chdir(tmp_path)  # a relative path resolves from the working folder
    config = ModelConfig(
        **SMALL, backbone_weights="weights file #1.pt", backbone_weights_prefix=prefix
    )
    model = _build(config)
    for key, value in state.items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value, rtol=0, atol=0)
    untouched = _build(config, load_weights=False)
    first = "conv1.weight"
    assert not torch.equal(untouched.backbone.state_dict()[first], state[first])


def test_backbone_weights_missing_file_is_named(tmp_path):
    config = ModelConfig(**SMALL, backbone_weights=str(tmp_path / "absent.pt"))
    with pytest.raises(FileNotFoundError, match=r"backbone weights file not found: .*absent\.pt"):
        _build(config)


def test_backbone_weights_of_another_depth_are_refused(tmp_path):
    from hmr_backbone import ResNet, WeightsMismatchError

    torch.save(ResNet(depth=34).state_dict(), tmp_path / "r34.pt")
    config = ModelConfig(**SMALL, backbone_weights=str(tmp_path / "r34.pt"))
    with pytest.raises(
        WeightsMismatchError, match=r"cannot load weights from .*r34\.pt into ResNet"
    ):
        _build(config)


# --------------------------------------------------------------------------------------------
# The programs: a checkpoint whose run folder has odd characters, dataset names, --set keys
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny untrained-but-initialised ProHMR checkpoint (no synthetic world, procedural body)."""
    root = tmp_path_factory.mktemp("run") / "odd #1 'dir'"
    root.mkdir()
    mean = root / "mean params.npz"
    np.savez(mean, pose=np.zeros(144), shape=np.zeros(10), cam=np.array([0.9, 0.0, 0.0]))
    out = root / "out #2"
    config = apply_overrides(
        ProHMRConfig(),
        [
            f"output_dir={out}",
            "body.model_path=procedural",
            f"body.mean_params_path={mean}",
            f"data.registry={REGISTRY}",
            "data.train={SYNTH-TRAIN: 1.0}",
            "data.val={SYNTH-VAL: 1.0}",
            "data.mocap=SYNTH-MOCAP",
            "data.image_size=32",
            *[f"model.{k}={v}" for k, v in SMALL.items()],
        ],
    )
    model = _build(config.model)
    model.initialized.fill_(True)
    path = out / "checkpoints" / "last.pt"
    path.parent.mkdir(parents=True)
    save_checkpoint(path, {"model": model.state_dict(), "config": config_to_dict(config)})
    return path


def test_checkpoint_config_with_odd_paths_reads_back(checkpoint):
    _, config = load_prohmr_checkpoint(checkpoint, device=torch.device("cpu"))
    assert config.output_dir == str(checkpoint.parent.parent)
    assert "'dir'" in config.body.mean_params_path


def test_checkpoint_override_out_of_range_is_refused(checkpoint):
    with pytest.raises(ConfigValueError, match=r"^overrides: `model\.focal_length` must be > 0"):
        load_prohmr_checkpoint(
            checkpoint, device=torch.device("cpu"), overrides=["model.focal_length=-1"]
        )


@pytest.mark.parametrize(
    ("tool", "args", "pattern"),
    [
        (
            "eval_regression",
            ["--dataset", "FOO"],
            r"--dataset: dataset 'FOO' is not in the registry .*expected one of .*SYNTH-VAL",
        ),
        (
            "eval_fitting",
            ["--dataset", "FOO"],
            r"--dataset: dataset 'FOO' is not in the registry .*expected one of .*SYNTH-VAL",
        ),
        (
            "eval_multiview",
            ["--dataset", "FOO"],
            r"--dataset: dataset 'FOO' .*expected one of .*SYNTH-VAL-MULTIVIEW",
        ),
        (
            "eval_multiview",
            ["--dataset", "SYNTH-VAL"],
            r"dataset 'SYNTH-VAL' has type 'image' .*expected type 'multiview'",
        ),
        (
            "visualize_latent",
            ["--dataset", "FOO"],
            r"--dataset: dataset 'FOO' is not in the registry .*expected one of .*SYNTH-VAL",
        ),
    ],
)
def test_tool_lists_valid_dataset_names(checkpoint, tmp_path, tool, args, pattern):
    argv = ["--checkpoint", str(checkpoint), "--device", "cpu", "--out", str(tmp_path / "o"), *args]
    with pytest.raises(SystemExit, match=pattern):
        load_tool(tool).main(argv)


@pytest.mark.parametrize("tool", ["eval_regression", "eval_fitting", "visualize_latent"])
def test_tool_names_the_program_for_a_missing_dataset_file(checkpoint, tmp_path, tool):
    argv = ["--checkpoint", str(checkpoint), "--device", "cpu", "--out", str(tmp_path / "o")]
    with pytest.raises(
        FileNotFoundError,
        match=r"dataset 'SYNTH-VAL': file .* not found; make it with tools/make_synthetic\.py",
    ):
        load_tool(tool).main([*argv, "--dataset", "SYNTH-VAL"])


def test_tool_refuses_unknown_set_key(checkpoint, tmp_path):
    argv = ["--checkpoint", str(checkpoint), "--device", "cpu", "--out", str(tmp_path / "o")]
    with pytest.raises(ConfigError, match=r"unknown key `model\.nope`"):
        load_tool("eval_regression").main([*argv, "--set", "model.nope=1"])


# --------------------------------------------------------------------------------------------
# Command-line values out of range: a usage error (exit status 2) naming flag, rule and value
# --------------------------------------------------------------------------------------------

CK = ["--checkpoint", "never-read.pt"]
CLI_CASES = [
    ("eval_regression", [*CK, "--num-samples", "0"], r"--num-samples: must be >= 1, got 0"),
    ("eval_regression", [*CK, "--ns", "0"], r"--ns: must be >= 1, got 0"),
    ("eval_regression", [*CK, "--kmeans", "-2"], r"--kmeans: must be >= 1, got -2"),
    ("eval_regression", [*CK, "--batch-size", "0"], r"--batch-size: must be >= 1, got 0"),
    ("eval_regression", [*CK, "--limit", "0"], r"--limit: must be >= 1, got 0"),
    ("eval_regression", [*CK, "--seed", "-1"], r"--seed: must be >= 0, got -1"),
    (
        "eval_regression",
        [*CK, "--num-samples", "16", "--ns", "4", "64"],
        r"--ns / --kmeans values must be <= --num-samples 16, got \[64\]",
    ),
    (
        "eval_regression",
        [*CK, "--num-samples", "many"],
        r"--num-samples: must be an integer >= 1, got 'many'",
    ),
    ("eval_lifting", [*CK, "--ns", "0"], r"--ns: must be >= 1, got 0"),
    ("eval_lifting", [*CK, "--batch-size", "-4"], r"--batch-size: must be >= 1, got -4"),
    (
        "eval_lifting",
        [*CK, "--ns", "10", "--kmeans", "20"],
        r"--kmeans values must be <= the largest --ns 10, got \[20\]",
    ),
    ("eval_fitting", [*CK, "--max-iters", "0"], r"--max-iters: must be >= 1, got 0"),
    ("eval_fitting", [*CK, "--focal-px", "-5"], r"--focal-px: must be a finite number > 0, got -5"),
    (
        "eval_fitting",
        [*CK, "--focal-px", "datset"],
        r"--focal-px: must be a number > 0, got 'datset'",
    ),
    ("eval_fitting", [*CK, "--threads", "0"], r"--threads: must be >= 1, got 0"),
    ("eval_fitting", [*CK, "--smplify-iters", "0"], r"--smplify-iters: must be >= 1, got 0"),
    (
        "eval_multiview",
        [*CK, "--frames-per-batch", "0"],
        r"--frames-per-batch: must be >= 1, got 0",
    ),
    (
        "eval_multiview",
        [*CK, "--focal-px", "nan"],
        r"--focal-px: must be a finite number > 0, got nan",
    ),
    (
        "demo",
        [*CK, "--image", "a.jpg", "--box", "0", "0", "9", "9", "--num-samples", "0"],
        r"--num-samples: must be >= 1, got 0",
    ),
    (
        "demo",
        [*CK, "--image", "a.jpg", "--box", "0", "0", "9", "9", "--rescale", "0"],
        r"--rescale: must be a finite number > 0, got 0",
    ),
    (
        "demo",
        [*CK, "--image", "a.jpg", "--box", "0", "0", "-9", "9"],
        r"--box X Y W H must be finite with W, H > 0, got \[0\.0, 0\.0, -9\.0, 9\.0\]",
    ),
    ("visualize_latent", [*CK, "--grid", "1"], r"--grid: must be >= 2, got 1"),
    ("visualize_latent", [*CK, "--index", "-1"], r"--index: must be >= 0, got -1"),
    ("visualize_latent", [*CK, "--radius", "0"], r"--radius: must be a finite number > 0, got 0"),
    ("make_synthetic", ["--num-train", "0"], r"--num-train: must be >= 1, got 0"),
    ("make_synthetic", ["--image-size", "-3"], r"--image-size: must be >= 1, got -3"),
    (
        "make_lifting_dataset",
        ["cmu", "--cmu-dir", "x", "--out-dir", "y", "--step", "0"],
        r"--step: must be >= 1, got 0",
    ),
    (
        "make_lifting_dataset",
        ["cmu", "--cmu-dir", "x", "--out-dir", "y", "--test-fraction", "1.5"],
        r"--test-fraction: must be in \(0, 1\), got 1\.5",
    ),
    (
        "preprocess_h36m",
        ["--root", "r", "--out-dir", "o", "--split", "train", "--step", "0"],
        r"--step: must be >= 1, got 0",
    ),
    (
        "preprocess_mpi_inf_3dhp",
        ["--root", "r", "--split", "train", "--annot3", "annot3", "--out", "o.npz", "--step", "0"],
        r"--step: must be >= 1, got 0",
    ),
    (
        "preprocess_mannequin",
        ["--annotations", "a", "--out", "o.pkl", "--min-views", "3", "--max-views", "2"],
        r"--max-views must be >= --min-views 3, got 2",
    ),
    ("train_prohmr", ["--stop-after", "0"], r"--stop-after: must be >= 1, got 0"),
    (
        "train_lifting",
        ["--train", "t.npz"],
        r"--train, --val and --stats go together; got only --train",
    ),
]


@pytest.mark.parametrize(
    ("tool", "argv", "pattern"), CLI_CASES, ids=[f"{t}:{' '.join(a[-2:])}" for t, a, _ in CLI_CASES]
)
def test_command_line_value_out_of_range_is_a_usage_error(capsys, tool, argv, pattern):
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).main(argv)
    assert exit_info.value.code == 2
    assert re.search(pattern, capsys.readouterr().err), capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("foo", r"`--device foo` is not a device here; expected auto, cpu, cuda or cuda:N"),
        ("cpu:x", r"`--device cpu:x` is not a device here"),
        ("mps", r"`--device mps` is not a device here"),
        (
            "cuda:99",
            r"`--device cuda:99` (asked for CUDA, but CUDA is not available|asks for GPU 99; expected cuda:0)",
        ),
    ],
)
def test_unknown_device_is_refused(name, pattern):
    with pytest.raises(ValueError, match=pattern):
        pick_device(name)


def test_tool_refuses_unknown_device_before_reading_anything():
    with pytest.raises(ValueError, match=r"`--device gpu0` is not a device here"):
        load_tool("eval_lifting").main([*CK, "--device", "gpu0"])


# --------------------------------------------------------------------------------------------
# Output locations that are files: refused before any work
# --------------------------------------------------------------------------------------------

OUT_CASES = [
    ("eval_regression", [*CK, "--out", "{file}"], "--out"),
    ("eval_lifting", [*CK, "--out", "{file}"], "--out"),
    ("eval_fitting", [*CK, "--out", "{file}"], "--out"),
    ("eval_multiview", [*CK, "--out", "{file}"], "--out"),
    ("demo", [*CK, "--image", "a.jpg", "--box", "0", "0", "9", "9", "--out", "{file}"], "--out"),
    ("visualize_latent", [*CK, "--out", "{file}/sub"], "--out"),
    ("make_synthetic", ["--out", "{file}"], "--out"),
    ("make_lifting_dataset", ["cmu", "--cmu-dir", "x", "--out-dir", "{file}"], "--out-dir"),
    ("preprocess_h36m", ["--root", "r", "--out-dir", "{file}", "--split", "train"], "--out-dir"),
    ("preprocess_3dpw", ["--root", "r", "--out", "{dir}"], "--out"),
    ("preprocess_mannequin", ["--annotations", "a", "--out", "{dir}"], "--out"),
    (
        "preprocess_mpi_inf_3dhp",
        ["--root", "r", "--split", "test", "--annot3", "annot3", "--out", "{file}/x.npz"],
        "--out",
    ),
    (
        "import_official_checkpoint",
        ["--kind", "prohmr", "--checkpoint", "c.ckpt", "--out", "{dir}"],
        "--out",
    ),
]


@pytest.mark.parametrize(("tool", "argv", "flag"), OUT_CASES, ids=[t for t, _, _ in OUT_CASES])
def test_output_path_that_cannot_be_written_is_a_usage_error(tmp_path, capsys, tool, argv, flag):
    existing_file = tmp_path / "taken.txt"
    existing_file.write_text("x")
    existing_dir = tmp_path / "a folder"
    existing_dir.mkdir()
    argv = [a.format(file=existing_file, dir=existing_dir) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        load_tool(tool).main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(
        rf"{flag} .*(is an existing file; expected a folder|taken\.txt is a file; expected a folder"
        r"|is an existing folder; expected a file path)",
        err,
    ), err


@pytest.mark.parametrize("tool", ["train_prohmr", "train_lifting"])
def test_training_output_dir_that_is_a_file_is_refused(tmp_path, tool):
    taken = tmp_path / "taken"
    taken.write_text("x")
    with pytest.raises(
        NotADirectoryError,
        match=rf"output_dir '{re.escape(str(taken))}' is an existing file; expected a folder",
    ):
        load_tool(tool).main(["--set", f"output_dir={taken}"])


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_output_parent_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(
            PermissionError, match=r"output_dir .* cannot be written: .*locked is read-only"
        ):
            check_output_dir(locked / "run", "output_dir")
    finally:
        locked.chmod(0o700)
