"""Bad checkpoint files given to every loader and program: one clear sentence naming the file,
never torch's "PytorchStreamReader failed ..." or a raw KeyError; NaN weights evaluated end in a
non-zero exit naming the checkpoint and the count of non-finite predictions.

One tiny ProHMR checkpoint is trained per module (a few seconds); every bad file is derived from
it (or from a tiny lifting model built in place) in ``tmp_path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pipeline.config import (
    LiftingConfig,
    LiftingModelConfig,
    ProHMRConfig,
    _build,
    config_to_dict,
)
from pipeline.runtime import CheckpointError, DistributedContext, load_checkpoint
from pipeline.session import ProHMRSession, load_prohmr_checkpoint
from pipeline.testing import load_tool, run_train_prohmr, tiny_prohmr_overrides

import pose_data as pdata
from pose_flows.testing import perturb_parameters
from prohmr_model.evaluation import NonFinitePredictionError
from prohmr_model.lifting import build_lifting_model

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ProHMR checkpoint trained for 2 steps on a tiny synthetic world."""
    world = tmp_path_factory.mktemp("world")
    out = tmp_path_factory.mktemp("run")
    overrides = tiny_prohmr_overrides(
        world, out, steps=2, hidden=16, num_train=16, num_val_samples=2
    )
    result = run_train_prohmr(["--no-eval", "--set", *overrides])
    assert result.returncode == 0, result.stderr[-3000:]
    path = out / "checkpoints" / "last.pt"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def state(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lifting_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) lifting checkpoint of a tiny model, with its data files."""
    folder = tmp_path_factory.mktemp("lifting")
    rng = np.random.default_rng(0)
    for name in ("train", "test"):
        pdata.write_lifting_npz(
            folder / f"{name}.npz",
            keypoints_2d=rng.uniform(0, 500, (4, 17, 2)),
            keypoints_3d=0.3 * rng.normal(size=(4, 17, 3)),
            imgname=[f"row{i}" for i in range(4)],
        )
    pdata.write_lifting_stats(
        folder / "stats.npz", mean=np.full((17, 2), 250.0), std=np.full((17, 2), 150.0)
    )
    config = replace(
        LiftingConfig(),
        output_dir=str(folder / "out"),
        train_file=str(folder / "train.npz"),
        val_file=str(folder / "test.npz"),
        stats_file=str(folder / "stats.npz"),
        model=LiftingModelConfig(hidden_features=16, flow_hidden_features=8, flow_num_layers=2),
    )
    torch.manual_seed(0)
    model = build_lifting_model(config.model)
    model.initialized.fill_(True)  # random weights, ActNorm marked initialised (sampling needs it)
    perturb_parameters(model.flow.flow, generator=torch.Generator().manual_seed(0))
    path = folder / "lifting.pt"
    torch.save({"step": 0, "model": model.state_dict(), "config": config_to_dict(config)}, path)
    return path


def _save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


class _Hostile:
    def __reduce__(self):
        return (print, ("executed",))


# ---------------------------------------------------------------------------------------------
# Every ProHMR loader: load_prohmr_checkpoint (eval_*, demo, visualize_latent go through it)
# ---------------------------------------------------------------------------------------------


def _renamed(model_state: dict, old: str, new: str) -> dict:
    return {(new if key == old else key): value for key, value in model_state.items()}


def _prohmr_cases() -> list:
    """(make(tmp_path, checkpoint, state, lifting) -> path, error type, regex after the path)."""

    def raw(data: bytes):
        def make(tmp, ckpt, state, lifting):
            (tmp / "bad.pt").write_bytes(data)
            return tmp / "bad.pt"

        return make

    def truncated(tmp, ckpt, state, lifting):
        data = ckpt.read_bytes()
        (tmp / "bad.pt").write_bytes(data[: len(data) // 2])
        return tmp / "bad.pt"

    def other_zip(tmp, ckpt, state, lifting):
        with zipfile.ZipFile(tmp / "bad.pt", "w") as archive:
            archive.writestr("readme.txt", "hello")
        return tmp / "bad.pt"

    def lifting_given(tmp, ckpt, state, lifting):
        return lifting

    def bare(tmp, ckpt, state, lifting):
        return _save(tmp / "bad.pt", state["model"])

    def a_list(tmp, ckpt, state, lifting):
        return _save(tmp / "bad.pt", [state["model"]])

    def no_config(tmp, ckpt, state, lifting):
        return _save(tmp / "bad.pt", {"model": state["model"], "step": 2})

    def foreign_config(tmp, ckpt, state, lifting):
        return _save(tmp / "bad.pt", {"model": state["model"], "config": {"lr": 1.0}})

    def hostile(tmp, ckpt, state, lifting):
        return _save(tmp / "bad.pt", {"model": state["model"], "config": _Hostile()})

    def change_model(change):
        def make(tmp, ckpt, state, lifting):
            model = dict(state["model"])
            change(model)
            return _save(tmp / "bad.pt", {**state, "model": model})

        return make

    def drop(model):
        del model[next(k for k in model if k.startswith("flow.") and k.endswith(".weight"))]

    def extra(model):
        model["flow.surplus.weight"] = torch.zeros(3)

    def reshape(model):
        model[next(k for k in model if k.startswith("flow.") and model[k].ndim == 2)] = torch.zeros(
            7, 5
        )

    def uninitialised(model):
        model["initialized"] = torch.tensor(False)

    return [
        pytest.param(raw(b""), CheckpointError, r"is empty \(0 bytes\)", id="empty"),
        pytest.param(truncated, CheckpointError, r"is truncated: a zip archive", id="truncated"),
        pytest.param(
            raw(b"model: resnet\n"),
            CheckpointError,
            r"is not a PyTorch checkpoint .*starts with b'mode'",
            id="text",
        ),
        pytest.param(
            other_zip,
            CheckpointError,
            r"is a zip archive but not a PyTorch checkpoint \(no data\.pkl; members: readme\.txt",
            id="other-zip",
        ),
        pytest.param(
            lifting_given,
            CheckpointError,
            r"is a lifting checkpoint, not a prohmr one: use it with tools/eval_lifting\.py",
            id="lifting-checkpoint",
        ),
        pytest.param(
            bare,
            CheckpointError,
            r"is a bare state dict \(\d+ tensors, e\.g\. '[\w.]+'\), not a prohmr checkpoint",
            id="bare-state-dict",
        ),
        pytest.param(
            a_list, CheckpointError, r"holds a list, expected a dict of a run's state", id="list"
        ),
        pytest.param(
            no_config,
            CheckpointError,
            r"lacks \['config'\] \(keys: \['model', 'step'\]\)",
            id="no-config",
        ),
        pytest.param(
            foreign_config,
            CheckpointError,
            r"has a 'config' that is not a prohmr config \(expected keys \['model', 'body'",
            id="foreign-config",
        ),
        pytest.param(
            hostile,
            CheckpointError,
            r"holds the global [\w.]*print, which weights-only loading refuses",
            id="hostile-global",
        ),
        pytest.param(
            change_model(drop),
            CheckpointError,
            r"does not fit the ProHMR model its config describes: 1 missing key\(s\): "
            r"flow\.[\w.]+\.weight$",
            id="missing-key",
        ),
        pytest.param(
            change_model(extra),
            CheckpointError,
            r"does not fit the ProHMR model .*: 1 unexpected key\(s\): flow\.surplus\.weight",
            id="extra-key",
        ),
        pytest.param(
            change_model(reshape),
            CheckpointError,
            r"1 shape mismatch\(es\): flow\.[\w.]+ \(checkpoint \(7, 5\), model \(\d+, \d+\)\)$",
            id="wrong-shape",
        ),
        pytest.param(
            change_model(uninitialised),
            CheckpointError,
            r"the model's `initialized` flag is False",
            id="uninitialised",
        ),
    ]


@pytest.mark.parametrize(("make", "error", "match"), _prohmr_cases())
def test_bad_prohmr_checkpoint_is_one_sentence_naming_the_file(
    tmp_path, capsys, checkpoint, state, lifting_checkpoint, make, error, match
):
    path = make(tmp_path, checkpoint, state, lifting_checkpoint)
    with pytest.raises(error, match=rf"^checkpoint {re.escape(str(path))}:? .*{match}") as info:
        load_prohmr_checkpoint(path, device=torch.device("cpu"))
    message = str(info.value)
    assert "\n" not in message and "PytorchStreamReader" not in message
    assert "executed" not in capsys.readouterr().out


def test_missing_checkpoint_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*nothing\.pt"):
        load_prohmr_checkpoint(tmp_path / "nothing.pt", device=torch.device("cpu"))


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
    assert issubclass(NonFinitePredictionError, ValueError)


# ---------------------------------------------------------------------------------------------
# The lifting loaders (eval_lifting; the lifting resume uses the same calls)
# ---------------------------------------------------------------------------------------------


def _lifting_cases() -> list:
    def truncated(tmp, lifting, prohmr):
        data = lifting.read_bytes()
        (tmp / "bad.pt").write_bytes(data[: len(data) - 100])
        return tmp / "bad.pt"

    def prohmr_given(tmp, lifting, prohmr):
        return prohmr

    def change(edit):
        def make(tmp, lifting, prohmr):
            state = torch.load(lifting, weights_only=True)
            edit(state["model"])
            return _save(tmp / "bad.pt", state)

        return make

    def drop(model):
        model.pop(next(key for key in model if key.startswith("backbone.")))

    def reshape(model):
        key = next(key for key in model if key.endswith("weight") and model[key].ndim == 2)
        model[key] = torch.zeros(3, 3)

    return [
        pytest.param(truncated, r"is truncated", id="truncated"),
        pytest.param(
            prohmr_given,
            r"is a prohmr checkpoint, not a lifting one: use it with tools/eval_regression\.py",
            id="prohmr-checkpoint",
        ),
        pytest.param(
            change(drop),
            r"does not fit the lifting model its config describes: 1 missing key\(s\): backbone\.",
            id="missing-key",
        ),
        pytest.param(
            change(reshape),
            r"1 shape mismatch\(es\): .* \(checkpoint \(3, 3\), model",
            id="wrong-shape",
        ),
    ]


@pytest.mark.parametrize(("make", "match"), _lifting_cases())
def test_bad_lifting_checkpoint_in_eval_lifting(
    tmp_path, lifting_checkpoint, checkpoint, make, match
):
    path = make(tmp_path, lifting_checkpoint, checkpoint)
    tool = load_tool("eval_lifting")
    with pytest.raises(CheckpointError, match=rf"^checkpoint {re.escape(str(path))}:? .*{match}"):
        tool.main(["--checkpoint", str(path), "--ns", "1", "--out", str(tmp_path / "out")])


def test_load_checkpoint_kind_is_checked():
    with pytest.raises(ValueError, match=r"`kind` must be one of \['lifting', 'prohmr'\]"):
        load_checkpoint("x.pt", kind="smpl")


# ---------------------------------------------------------------------------------------------
# Every program that loads a ProHMR model: a truncated checkpoint, named in one sentence
# ---------------------------------------------------------------------------------------------

PROGRAMS = {
    "eval_regression": ["--limit", "1"],
    "eval_fitting": ["--limit", "1", "--no-smplify"],
    "eval_multiview": ["--limit", "1"],
    "demo": ["--image", "x.jpg", "--box", "0", "0", "8", "8"],
    "visualize_latent": ["--grid", "2"],
}


@pytest.mark.parametrize("program", list(PROGRAMS))
def test_every_program_names_a_truncated_checkpoint(tmp_path, checkpoint, program):
    data = checkpoint.read_bytes()
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[: len(data) * 3 // 4])
    tool = load_tool(program)
    argv = ["--checkpoint", str(bad), "--device", "cpu", "--out", str(tmp_path / "out")]
    with pytest.raises(CheckpointError, match=rf"^checkpoint {re.escape(str(bad))} is truncated"):
        tool.main([*argv, *PROGRAMS[program]])


# ---------------------------------------------------------------------------------------------
# NaN weights: every evaluation refuses the non-finite predictions, naming the checkpoint
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory: pytest.TempPathFactory, state: dict) -> Path:
    model = {
        key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
        for key, value in state["model"].items()
    }
    return _save(tmp_path_factory.mktemp("nan") / "nan.pt", {**state, "model": model})


NAN_RUNS = {
    "eval_regression": ["--limit", "2", "--batch-size", "2", "--num-samples", "2", "--ns", "1"],
    "eval_fitting": ["--limit", "2", "--batch-size", "2", "--no-smplify", "--max-iters", "1"],
    "eval_multiview": ["--limit", "1", "--max-iters", "1"],
    "visualize_latent": ["--grid", "2", "--cell", "16"],
}


@pytest.mark.parametrize("program", list(NAN_RUNS))
def test_nan_weights_are_refused_by_every_evaluation(tmp_path, nan_checkpoint, program):
    tool = load_tool(program)
    argv = ["--checkpoint", str(nan_checkpoint), "--device", "cpu", "--out", str(tmp_path)]
    pattern = (
        rf"^checkpoint {re.escape(str(nan_checkpoint))} produced (\d+) non-finite prediction\(s\)"
        r" .* out of (\d+) for (?:images \d+-\d+|frames \d+-\d+|image \d+ of [\w-]+); "
        r"the evaluation refuses to score them$"
    )
    with pytest.raises(NonFinitePredictionError, match=pattern) as info:
        tool.main([*argv, *NAN_RUNS[program]])
    count, total = re.match(pattern, str(info.value)).group(1, 2)
    assert int(count) == int(total) > 0  # every weight is NaN: every pose is
    assert not list(tmp_path.glob("*summary.json"))  # no report of NaN means was written


def test_nan_weights_in_eval_regression_exit_non_zero(tmp_path, nan_checkpoint):
    result = subprocess.run(
        [
            sys.executable,
            str(TOOLS / "eval_regression.py"),
            "--checkpoint", str(nan_checkpoint), "--device", "cpu", "--out", str(tmp_path),
            *NAN_RUNS["eval_regression"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert re.search(
        rf"NonFinitePredictionError: checkpoint {re.escape(str(nan_checkpoint))} produced 4 "
        r"non-finite prediction\(s\) .* out of 4 for images 0-1",
        result.stderr,
    ), result.stderr[-2000:]


def test_nan_lifting_weights_are_refused_by_eval_lifting(tmp_path, lifting_checkpoint):
    state = torch.load(lifting_checkpoint, weights_only=True)
    state["model"] = {
        key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
        for key, value in state["model"].items()
    }
    path = _save(tmp_path / "nan.pt", state)
    tool = load_tool("eval_lifting")
    with pytest.raises(
        NonFinitePredictionError,
        match=rf"^checkpoint {re.escape(str(path))} produced 12 non-finite prediction\(s\) .* "
        r"out of 12 for test rows 0-3",
    ):
        tool.main(["--checkpoint", str(path), "--ns", "1", "3", "--out", str(tmp_path / "o")])


def test_train_prohmr_report_refuses_nan_predictions(tmp_path, checkpoint, state):
    """The final report of train_prohmr (ProHMRSession.evaluate_and_report) on a NaN model."""
    config = _build(ProHMRConfig, state["config"], "", str(checkpoint))
    config = replace(config, output_dir=str(tmp_path))
    session = ProHMRSession(config, ctx=DistributedContext(0, 1, 0, torch.device("cpu")))
    try:
        session.model.load_state_dict(state["model"])
        with torch.no_grad():
            next(session.model.flow.parameters()).fill_(float("nan"))
        with pytest.raises(
            NonFinitePredictionError,
            match=rf"^the model trained in {re.escape(str(tmp_path))} produced \d+ non-finite "
            r"prediction\(s\)",
        ):
            session.evaluate_and_report(progress=False)
    finally:
        session.close()
    assert not (tmp_path / "report.md").exists()


def test_mean_pose_baseline_reads_only_rows_with_smpl_poses(tmp_path) -> None:
    """Training sets without SMPL arrays (COCO, MPII) or with rows lacking them: the final
    report's mean-pose baseline uses the rows that have poses, or is left out (no KeyError)."""
    from pipeline.session import training_smpl

    np.savez(tmp_path / "coco.npz", imgname=np.array(["a.jpg", "b.jpg"]))
    assert training_smpl([tmp_path / "coco.npz"]) is None
    poses = np.arange(3 * 72, dtype=np.float32).reshape(3, 72)
    betas = np.stack([np.full(10, 1.0), np.full(10, 5.0), np.full(10, 3.0)]).astype(np.float32)
    np.savez(
        tmp_path / "mixed.npz",
        body_pose=poses,
        betas=betas,
        has_body_pose=np.array([1.0, 0.0, 1.0]),
        has_betas=np.array([1.0, 0.0, 1.0]),
    )
    found = training_smpl([tmp_path / "coco.npz", tmp_path / "mixed.npz"])
    assert found is not None
    np.testing.assert_array_equal(found[0], poses[[0, 2]])
    np.testing.assert_array_equal(found[1], np.full(10, 2.0))
