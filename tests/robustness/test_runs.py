"""Runs that cannot hurt each other or lose work (tools/train_prohmr.py, tools/train_lifting.py).

1. one run per output folder (run.lock: live owners refused, stale locks taken over, foreign
   hosts reported), 2. ``--resume`` refuses result-changing config changes unless allowed (and
   records them), 3. orphaned checkpoint temporaries are removed, 4. a non-finite stop says the
   truth about the last checkpoint and never writes a non-finite one, 5. the loss log holds each
   step once after a resume. The programs run in this process (``main(argv)``) on the tiny
   configurations of tests/test_train_prohmr.py; a second process holds a live lock or is
   killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import train_lifting
import train_prohmr
import yaml
from pipeline.run_guard import (
    LOCK_NAME,
    ResumeConfigError,
    RunLockError,
    acquire_run_lock,
    open_run_folder,
    resume_config_changes,
    truncate_loss_log,
)
from pipeline.runtime import (
    DistributedContext,
    NonFiniteLossError,
    NonFiniteWeightsError,
    check_finite,
    save_checkpoint,
)
from pipeline.testing import tiny_prohmr_overrides

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
CONFIG = TOOLS / "configs" / "synthetic_cpu.yaml"
HOST = socket.gethostname()
CPU = DistributedContext(0, 1, 0, torch.device("cpu"))
STEPS = 12  # total steps of the ProHMR runs; they stop early with --stop-after


def prohmr_overrides(world: Path, out: Path) -> list[str]:
    return tiny_prohmr_overrides(world, out, steps=STEPS)


def prohmr_argv(world: Path, out: Path, *flags: str, changes: tuple[str, ...] = ()) -> list[str]:
    return [
        "--config", str(CONFIG), "--no-progress", "--no-eval", *flags,
        "--set", *prohmr_overrides(world, out), *changes,
    ]  # fmt: skip


def loss_steps(path: Path) -> list[int]:
    """The step of every line of a loss log, in file order (duplicates kept)."""
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def losses(path: Path) -> dict[int, dict[str, float]]:
    return {json.loads(line)["step"]: json.loads(line) for line in path.read_text().splitlines()}


def lock_message(folder: Path, pid: int) -> str:
    """What a refusal names: the folder and the owner's pid, host and start time."""
    return (
        rf"{re.escape(str(folder))}.*pid {pid} on host {re.escape(HOST)}, "
        r"started \d{4}-\d\d-\d\dT"
    )


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder: Path, pid: int, host: str = HOST) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    started = "2026-01-01T00:00:00+0000"
    path.write_text(json.dumps({"pid": pid, "host": host, "started": started}))
    return path


class LockHolder:
    """A second process holding the folder's lock through the real API until closed."""

    def __init__(self, folder: Path) -> None:
        code = (
            "import sys; from pipeline.run_guard import acquire_run_lock;"
            "lock = acquire_run_lock(sys.argv[1]); print('locked', flush=True);"
            "sys.stdin.read(); lock.release()"
        )
        path = os.pathsep.join(filter(None, [str(TOOLS), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": path},  # the child imports tools/pipeline
        )
        assert self.process.stdout.readline().strip() == "locked"
        self.pid = self.process.pid

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def make_orphans(folder: Path) -> list[Path]:
    """What a run killed inside save_checkpoint / an atomic text write leaves behind."""
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    orphans = [folder / "checkpoints" / ".last.pt.k3j9x_2a.tmp", folder / ".config.yaml.q8.tmp"]
    for path in orphans:
        path.write_bytes(b"half a checkpoint")
    return orphans


def snapshot(folder: Path) -> dict[str, bytes]:
    """Bytes of every file of a run folder (except tensorboard event files)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "tensorboard" not in p.parts
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny synthetic world, made once (by a one-step run)."""
    path = tmp_path_factory.mktemp("world")
    out = tmp_path_factory.mktemp("warmup")
    assert train_prohmr.main(prohmr_argv(path, out, changes=("train.total_steps=1",))) == 0
    return path


@pytest.fixture(scope="module")
def prohmr_runs(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """'base': a run stopped with its checkpoint at step 2; 'straight': steps 1..4 in one go."""
    root = tmp_path_factory.mktemp("prohmr")
    base, straight = root / "base", root / "straight"
    assert train_prohmr.main(prohmr_argv(world, base, "--stop-after", "2")) == 0
    assert train_prohmr.main(prohmr_argv(world, straight, "--stop-after", "4")) == 0
    return {"base": base, "straight": straight}


@pytest.fixture()
def prohmr_copy(prohmr_runs: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the base run (checkpoint at step 2) at a new path."""
    copy = tmp_path / "run"
    shutil.copytree(prohmr_runs["base"], copy)
    return copy


@pytest.fixture(scope="module")
def lifting_data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from pose_data.lifting import write_lifting_npz, write_lifting_stats

    root = tmp_path_factory.mktemp("lifting_data")
    rng = np.random.default_rng(0)
    rows = 40
    write_lifting_npz(
        root / "train.npz",
        keypoints_2d=rng.uniform(0, 500, (rows, 17, 2)),
        keypoints_3d=0.3 * rng.normal(size=(rows, 17, 3)),
        imgname=[f"row{i}" for i in range(rows)],
    )
    write_lifting_stats(
        root / "stats.npz", mean=np.full((17, 2), 250.0), std=np.full((17, 2), 150.0)
    )
    return ["--train", str(root / "train.npz"), "--val", str(root / "train.npz"),
            "--stats", str(root / "stats.npz")]  # fmt: skip


def lifting_argv(data: list[str], out: Path, *flags: str, steps: int = 6, changes=()) -> list[str]:
    return [
        *data, "--no-progress", *flags, "--set", f"output_dir={out}", "model.hidden_features=32",
        "model.flow_hidden_features=16", "model.flow_num_layers=2", "batch_size=8", f"total_steps={steps}",
        "checkpoint_steps=2", "lr_schedule=constant", *changes,
    ]  # fmt: skip
    # constant rate: these runs change total_steps on resume, which moves a cosine schedule


@pytest.fixture(scope="module")
def lifting_runs(lifting_data: list[str], tmp_path_factory: pytest.TempPathFactory):
    """'base': a lifting run of 2 steps (checkpoint at 2); 'straight': 6 steps in one go."""
    root = tmp_path_factory.mktemp("lifting")
    assert train_lifting.main(lifting_argv(lifting_data, root / "base", steps=2)) == 0
    assert train_lifting.main(lifting_argv(lifting_data, root / "straight")) == 0
    return {"base": root / "base", "straight": root / "straight"}


@pytest.fixture()
def lifting_copy(lifting_runs, tmp_path: Path) -> Path:
    copy = tmp_path / "lift"
    shutil.copytree(lifting_runs["base"], copy)
    # the copy's config.yaml names the base folder as output_dir: a neutral key
    return copy


# --------------------------------------------------------------------------- 1. the lock


@pytest.mark.parametrize("program", ["prohmr", "lifting"])
@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
def test_live_owner_refuses_a_second_run_and_is_never_overridden(
    program: str, resume: bool, request: pytest.FixtureRequest
) -> None:
    if program == "prohmr":
        world = request.getfixturevalue("world")
        folder = request.getfixturevalue("prohmr_copy")
        argv = prohmr_argv(world, folder, *(["--resume"] if resume else []))
        main = train_prohmr.main
    else:
        data = request.getfixturevalue("lifting_data")
        folder = request.getfixturevalue("lifting_copy")
        argv = lifting_argv(data, folder, *(["--resume"] if resume else []))
        main = train_lifting.main
    orphans = make_orphans(folder)
    before = snapshot(folder)
    holder = LockHolder(folder)
    try:
        lock_bytes = (folder / LOCK_NAME).read_bytes()
        with pytest.raises(SystemExit, match=lock_message(folder, holder.pid)):
            main(argv)
        # nothing touched: lock, orphans (only the holder may clean), checkpoint, logs, config
        assert (folder / LOCK_NAME).read_bytes() == lock_bytes
        assert all(path.exists() for path in orphans)
        after = snapshot(folder)
        del after[LOCK_NAME]
        assert after == before
    finally:
        holder.close()
    assert not (folder / LOCK_NAME).exists()  # the holder's clean end removed its lock


@pytest.mark.parametrize("whose", ["dead-pid", "own-pid"])
def test_stale_lock_of_a_dead_pid_is_taken_over_with_a_message(tmp_path: Path, whose) -> None:
    # own pid: a run that had this process's pid ended (a restarted container reuses pids)
    pid = dead_pid() if whose == "dead-pid" else os.getpid()
    write_lock(tmp_path, pid)
    said: list[str] = []
    with acquire_run_lock(tmp_path, log=said.append) as lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
        assert lock.owner.pid == os.getpid()
    assert len(said) == 1
    assert re.search(rf"stale lock .*pid {pid} on host {re.escape(HOST)}.*no longer alive", said[0])
    assert not (tmp_path / LOCK_NAME).exists()


def test_foreign_host_lock_is_reported_not_taken_over_unless_asked(tmp_path: Path) -> None:
    write_lock(tmp_path, 4242, host="gpu-node-17")
    pattern = r"another host \(pid 4242 on host gpu-node-17, .*--take-over-lock"
    with pytest.raises(RunLockError, match=pattern):
        acquire_run_lock(tmp_path)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "gpu-node-17"
    said: list[str] = []
    with acquire_run_lock(tmp_path, take_over_foreign=True, log=said.append):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == HOST
    assert re.search(r"lock .* of another host \(pid 4242 on host gpu-node-17", said[0])


def test_take_over_lock_flag_of_the_programs(lifting_data: list[str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    write_lock(out, 4242, host="gpu-node-17")
    with pytest.raises(SystemExit, match=r"gpu-node-17.*--take-over-lock"):
        train_lifting.main(lifting_argv(lifting_data, out, steps=2))
    assert not (out / "checkpoints").exists()
    assert train_lifting.main(lifting_argv(lifting_data, out, "--take-over-lock", steps=2)) == 0
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    assert not (out / LOCK_NAME).exists()  # removed at the clean end


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", r"unreadable \(expected JSON with pid, host and started, got ''"),
        ("not json", r"unreadable \(expected JSON .*got 'not json'"),
        ('{"pid": 12}', r"unreadable .*'host'"),
        ('{"pid": 0, "host": "h", "started": "t"}', r"holds pid 0; expected a pid > 0"),
    ],
    ids=["empty", "garbage", "missing-keys", "pid-0"],
)
def test_unreadable_lock_is_refused_naming_the_file(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / LOCK_NAME).write_text(content)
    with pytest.raises(RunLockError, match=rf"{re.escape(str(tmp_path / LOCK_NAME))}.*{expected}"):
        acquire_run_lock(tmp_path)
    assert (tmp_path / LOCK_NAME).read_text() == content


def test_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("a file")
    with pytest.raises(ValueError, match=rf"`output_dir` must be a folder, got the file {path}"):
        acquire_run_lock(path)


def test_only_the_main_rank_holds_the_lock(tmp_path: Path, monkeypatch) -> None:
    barriers: list[int] = []
    monkeypatch.setattr(torch.distributed, "barrier", lambda: barriers.append(1))
    rank1 = DistributedContext(1, 2, 1, torch.device("cpu"))
    orphans = make_orphans(tmp_path)
    assert open_run_folder(tmp_path, rank1) is None
    assert not (tmp_path / LOCK_NAME).exists()
    assert all(path.exists() for path in orphans)  # only the lock holder cleans
    rank0 = DistributedContext(0, 2, 0, torch.device("cpu"))
    lock = open_run_folder(tmp_path, rank0, log=lambda message: None)
    assert lock is not None and (tmp_path / LOCK_NAME).is_file()
    assert not any(path.exists() for path in orphans)
    assert barriers == [1, 1]  # both ranks wait for the lock before touching the folder
    lock.release()


def test_release_never_removes_another_owners_lock(tmp_path: Path) -> None:
    lock = acquire_run_lock(tmp_path)
    write_lock(tmp_path, 4242, host="gpu-node-17")  # taken over from elsewhere meanwhile
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == 4242


def test_killed_run_resumes_taking_over_its_stale_lock(world: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(TOOLS / "train_prohmr.py"), *prohmr_argv(world, out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    checkpoint = out / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not checkpoint.is_file():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = torch.load(checkpoint, weights_only=True)["step"]
    assert killed_at < STEPS, "the run finished before it could be killed"
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == process.pid  # left behind

    assert train_prohmr.main(prohmr_argv(world, out, "--resume")) == 0
    err = capsys.readouterr().err
    assert re.search(rf"taking over the stale lock .*pid {process.pid} on host", err)
    assert loss_steps(out / "losses_rank0.jsonl") == list(range(1, STEPS + 1))
    assert torch.load(checkpoint, weights_only=True)["step"] == STEPS
    assert not (out / LOCK_NAME).exists()


# --------------------------------------------------------------------------- 2. resume config


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ("train.lr=0.001", r"train\.lr: 0\.0001 -> 0\.001"),
        ("train.batch_size=2", r"train\.batch_size: 4 -> 2"),
        ("train.seed=3", r"train\.seed: 0 -> 3"),
        ("model.flow_hidden_features=16", r"model\.flow_hidden_features: 32 -> 16"),
        ("data.image_size=48", r"data\.image_size: 32 -> 48"),
    ],
    ids=["lr", "batch_size", "seed", "model-size", "data"],
)
def test_prohmr_resume_with_result_changing_config_is_refused(
    world: Path, prohmr_copy: Path, capsys, change: str, listed: str
) -> None:
    before = snapshot(prohmr_copy)
    checkpoint = prohmr_copy / "checkpoints" / "last.pt"
    pattern = rf"--resume from {re.escape(str(checkpoint))}.*{listed}.*--allow-config-change"
    with pytest.raises(SystemExit, match=pattern):
        train_prohmr.main(prohmr_argv(world, prohmr_copy, "--resume", changes=(change,)))
    after = snapshot(prohmr_copy)
    for name in before:  # checkpoint, loss log, config.yaml: as they were
        if name != LOCK_NAME:
            assert after[name] == before[name], name
    assert not (prohmr_copy / LOCK_NAME).exists()


@pytest.mark.parametrize(
    "change",
    ["train.total_steps=14", "train.log_steps=5", "train.checkpoint_steps=3", "train.val_steps=7"],
    ids=["total_steps-extension", "log_steps", "checkpoint_steps", "val_steps"],
)
def test_prohmr_resume_with_result_neutral_change_continues_exactly(
    world: Path, prohmr_runs: dict[str, Path], prohmr_copy: Path, change: str
) -> None:
    argv = prohmr_argv(world, prohmr_copy, "--resume", "--stop-after", "4", changes=(change,))
    assert train_prohmr.main(argv) == 0
    resumed = losses(prohmr_copy / "losses_rank0.jsonl")
    straight = losses(prohmr_runs["straight"] / "losses_rank0.jsonl")
    assert resumed == straight  # steps 1..4, each once, identical values (same process)
    saved = yaml.safe_load((prohmr_copy / "config.yaml").read_text())
    key, value = change.split("=")
    section, name = key.split(".")
    assert saved[section][name] == int(value)  # config.yaml tells what ran from here on
    history = torch.load(prohmr_copy / "checkpoints" / "last.pt", weights_only=True)[
        "config_history"
    ]
    assert history[0]["step"] == 2 and history[0]["changes"][key][1] == int(value)


def test_prohmr_allowed_config_change_is_recorded(world: Path, prohmr_copy: Path, capsys) -> None:
    flags = ("--resume", "--allow-config-change", "--stop-after", "4")
    argv = prohmr_argv(world, prohmr_copy, *flags, changes=("train.lr=0.001",))
    assert train_prohmr.main(argv) == 0
    said = capsys.readouterr().err
    assert re.search(
        r"resuming after step 2 with config changes: .*train\.lr: 0\.0001 -> 0\.001", said
    )
    state = torch.load(prohmr_copy / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4
    assert state["config"]["train"]["lr"] == 0.001
    (entry,) = state["config_history"]
    assert entry["step"] == 2
    assert entry["changes"]["train.lr"] == [0.0001, 0.001]
    assert set(entry["changes"]) == {"output_dir", "train.lr"}  # the copy's folder moved too
    text = (prohmr_copy / "config.yaml").read_text()
    assert "# Resumed after step 2 with changed values (old -> new):" in text
    assert "#   train.lr: 0.0001 -> 0.001" in text
    assert yaml.safe_load(text)["train"]["lr"] == 0.001
    assert loss_steps(prohmr_copy / "losses_rank0.jsonl") == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("change", "listed"),
    [
        ("lr=0.01", r"lr: 0\.003 -> 0\.01"),  # 0.003: lifting_cpu.yaml
        ("batch_size=4", r"batch_size: 8 -> 4"),
        ("seed=5", r"seed: 0 -> 5"),
        ("model.hidden_features=16", r"model\.hidden_features: 32 -> 16"),
        ("pose_3d_noise=0.01", r"pose_3d_noise: 0\.005 -> 0\.01"),
    ],
    ids=["lr", "batch_size", "seed", "model-size", "noise"],
)
def test_lifting_resume_with_result_changing_config_is_refused(
    lifting_data: list[str], lifting_copy: Path, change: str, listed: str
) -> None:
    before = snapshot(lifting_copy)
    with pytest.raises(SystemExit, match=rf"train_lifting\.py: --resume from .*{listed}"):
        train_lifting.main(lifting_argv(lifting_data, lifting_copy, "--resume", changes=(change,)))
    assert snapshot(lifting_copy) == before


def test_lifting_resume_with_changed_training_data_is_refused(
    lifting_data: list[str], lifting_copy: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.npz"
    shutil.copy(lifting_data[1], other)
    data = [*lifting_data]
    data[1] = str(other)
    with pytest.raises(
        SystemExit, match=rf"train_file: '.*train\.npz' -> '{re.escape(str(other))}"
    ):
        train_lifting.main(lifting_argv(data, lifting_copy, "--resume"))


def test_lifting_allowed_change_history_accumulates(
    lifting_data: list[str], lifting_copy: Path
) -> None:
    flags = ("--resume", "--allow-config-change")
    argv = lifting_argv(lifting_data, lifting_copy, *flags, steps=4, changes=("lr=0.001",))
    assert train_lifting.main(argv) == 0
    argv = lifting_argv(lifting_data, lifting_copy, "--resume", steps=6, changes=("lr=0.001",))
    assert train_lifting.main(argv) == 0  # the same values again: nothing to allow
    state = torch.load(lifting_copy / "checkpoints" / "last.pt", weights_only=True)
    assert [entry["step"] for entry in state["config_history"]] == [2, 4]
    assert state["config_history"][0]["changes"]["lr"] == [0.003, 0.001]  # lifting_cpu.yaml's
    assert state["config_history"][1]["changes"] == {"total_steps": [4, 6]}
    text = (lifting_copy / "config.yaml").read_text()
    assert "#   lr: 0.003 -> 0.001" in text and "#   total_steps: 4 -> 6" in text
    assert yaml.safe_load(text)["lr"] == 0.001


def test_world_size_change_is_result_changing() -> None:
    with pytest.raises(ResumeConfigError, match=r"ckpt\.pt.*world_size: 2 -> 1"):
        resume_config_changes(
            {"seed": 0, "world_size": 2},
            {"seed": 0, "world_size": 1},
            kind="LiftingConfig",
            checkpoint="ckpt.pt",
            allow=False,
        )
    changes = resume_config_changes(
        {"seed": 0, "total_steps": 5},
        {"seed": 0, "total_steps": 9},
        kind="LiftingConfig",
        checkpoint="ckpt.pt",
        allow=False,
    )
    assert changes == {"total_steps": [5, 9]}
    # with a cosine schedule the total sets the remaining steps' rates: a change is refused
    with pytest.raises(ResumeConfigError, match=r"total_steps: 5 -> 9"):
        resume_config_changes(
            {"seed": 0, "total_steps": 5, "lr_schedule": "cosine"},
            {"seed": 0, "total_steps": 9, "lr_schedule": "cosine"},
            kind="LiftingConfig",
            checkpoint="ckpt.pt",
            allow=False,
        )


def test_config_yaml_of_a_fresh_run_is_the_config_that_ran(world, prohmr_runs) -> None:
    saved = yaml.safe_load((prohmr_runs["straight"] / "config.yaml").read_text())
    state = torch.load(prohmr_runs["straight"] / "checkpoints" / "last.pt", weights_only=True)
    assert saved == state["config"]
    assert state["config_history"] == []


# --------------------------------------------------------------------------- 3. orphans


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
def test_prohmr_start_removes_orphaned_temporaries(
    world: Path, prohmr_copy: Path, capsys, resume: bool
) -> None:
    orphans = make_orphans(prohmr_copy)
    flags = ["--stop-after", "4" if resume else "1", *(["--resume"] if resume else [])]
    assert train_prohmr.main(prohmr_argv(world, prohmr_copy, *flags)) == 0
    assert not any(path.exists() for path in orphans)
    err = capsys.readouterr().err
    pattern = r"removed 2 temporary file\(s\) left by an interrupted write: .*\.config\.yaml\.q8"
    assert re.search(pattern + r"\.tmp.*\.last\.pt\.k3j9x_2a\.tmp", err)
    assert not list(prohmr_copy.rglob("*.tmp"))


@pytest.mark.parametrize("resume", [False, True], ids=["fresh", "resume"])
def test_lifting_start_removes_orphaned_temporaries(
    lifting_data: list[str], lifting_copy: Path, capsys, resume: bool
) -> None:
    orphans = make_orphans(lifting_copy)
    flags = ["--resume"] if resume else []
    assert train_lifting.main(lifting_argv(lifting_data, lifting_copy, *flags, steps=4)) == 0
    assert not any(path.exists() for path in orphans)
    assert "removed 2 temporary file(s)" in capsys.readouterr().err


def test_lock_temporaries_of_live_starters_are_kept(tmp_path: Path) -> None:
    live = tmp_path / f".{LOCK_NAME}.{os.getppid()}.a8x2.tmp"  # a starter writing its lock
    dead = tmp_path / f".{LOCK_NAME}.{dead_pid()}.k2j1.tmp"  # one killed while writing it
    live.write_text("{}")
    dead.write_text("{}")
    with acquire_run_lock(tmp_path):
        from pipeline.run_guard import remove_orphan_temporaries

        assert remove_orphan_temporaries(tmp_path, log=lambda message: None) == [dead]
    assert live.exists()


# --------------------------------------------------------------------------- 4. non-finite


def small_state(step: int, value: float = 1.0) -> dict:
    return {
        "step": step,
        "model": {"w": torch.full((3,), value), "initialized": torch.tensor(True)},
        "optimizer": {"state": {0: {"exp_avg": torch.zeros(3)}}},
        "rng": {"torch": torch.get_rng_state()},
    }


@pytest.mark.parametrize(
    ("poison", "key"),
    [
        (lambda s: s["model"]["w"].fill_(float("nan")), "model.w"),
        (lambda s: s["model"]["w"].fill_(float("inf")), "model.w"),
        (lambda s: s["optimizer"]["state"][0]["exp_avg"].fill_(float("-inf")),
         "optimizer.state.0.exp_avg"),
    ],
    ids=["nan-weight", "inf-weight", "optimizer-state"],
)  # fmt: skip
def test_a_non_finite_state_is_never_written_as_last_pt(tmp_path: Path, poison, key) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, small_state(2), require_finite=True)
    good = path.read_bytes()
    bad = small_state(4)
    poison(bad)
    pattern = (
        rf"refusing to write {re.escape(str(path))}: non-finite values in {re.escape(key)}; "
        r"the last checkpoint .* is intact at step 2"
    )
    with pytest.raises(NonFiniteWeightsError, match=pattern):
        save_checkpoint(path, bad, require_finite=True)
    assert path.read_bytes() == good
    assert not list(path.parent.glob(".*.tmp"))


@pytest.mark.parametrize("kind", ["intact", "non-finite", "unreadable", "absent"])
def test_non_finite_loss_message_tells_the_truth_about_the_checkpoint(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "last.pt"
    if kind == "intact":
        save_checkpoint(path, small_state(6))
        expected = rf"the last checkpoint {re.escape(str(path))} is intact at step 6\."
    elif kind == "non-finite":
        save_checkpoint(path, small_state(6, float("nan")))  # as older versions could write
        expected = (
            rf"the last checkpoint {re.escape(str(path))} \(step 6\) holds non-finite "
            r"values in model\.w; do not resume from it\."
        )
    elif kind == "unreadable":
        path.write_bytes(b"PK\x03\x04 truncated")
        expected = rf"the last checkpoint {re.escape(str(path))} cannot be read .*do not resume"
    else:
        expected = rf"no checkpoint has been written \({re.escape(str(path))} does not exist\)"
    logs = {"loss": torch.tensor(float("nan")), "keypoints_2d": torch.tensor(float("nan"))}
    pattern = rf"non-finite loss at step 7: .*Training stopped; {expected}"
    with pytest.raises(NonFiniteLossError, match=pattern) as error:
        check_finite(7, logs, ["a.jpg"], checkpoint=path)
    if kind != "intact":
        assert "intact" not in str(error.value)


def test_prohmr_non_finite_stop_after_resume_names_the_intact_checkpoint(
    world: Path, prohmr_copy: Path
) -> None:
    from dataclasses import replace

    from pipeline.config import ProHMRConfig, load_config
    from pipeline.session import ProHMRSession

    config = load_config(ProHMRConfig, CONFIG, prohmr_overrides(world, prohmr_copy))
    session = ProHMRSession(config, ctx=CPU)
    decode = session.model.decode

    def poisoned(*args, **kwargs):
        output = decode(*args, **kwargs)
        return replace(output, keypoints_2d=output.keypoints_2d * float("nan"))

    session.model.decode = poisoned  # type: ignore[method-assign]
    checkpoint = prohmr_copy / "checkpoints" / "last.pt"
    try:
        pattern = (
            r"non-finite loss at step 2: .*Training stopped; the last checkpoint "
            rf"{re.escape(str(checkpoint))} is intact at step 2\."
        )
        with pytest.raises(NonFiniteLossError, match=pattern):
            session.train(resume=True, progress=False)
    finally:
        session.close()


def test_lifting_weights_turning_non_finite_are_not_checkpointed(
    lifting_data: list[str], tmp_path: Path, monkeypatch
) -> None:
    import pipeline.lifting_training as lifting

    class PoisonedAdamW(torch.optim.AdamW):
        steps = 0

        def step(self, closure=None):
            result = super().step(closure)
            PoisonedAdamW.steps += 1
            if PoisonedAdamW.steps == 4:  # the weights blow up in step 4, its loss was finite
                with torch.no_grad():
                    next(iter(self.param_groups[0]["params"])).fill_(float("nan"))
            return result

    monkeypatch.setattr(lifting.torch.optim, "AdamW", PoisonedAdamW)
    out = tmp_path / "run"
    checkpoint = out / "checkpoints" / "last.pt"
    pattern = (
        rf"refusing to write {re.escape(str(checkpoint))}: non-finite values in "
        r"model\.backbone\..*the last checkpoint .* is intact at step 2"
    )
    with pytest.raises(NonFiniteWeightsError, match=pattern):
        train_lifting.main(lifting_argv(lifting_data, out))
    state = torch.load(checkpoint, weights_only=True)
    assert state["step"] == 2
    assert not any(torch.isnan(v).any() for v in state["model"].values() if v.is_floating_point())
    assert not (out / LOCK_NAME).exists()  # the lock goes with the run, whatever stopped it


# --------------------------------------------------------------------------- 5. loss log


def test_lifting_resume_drops_the_killed_runs_log_entries(
    lifting_data: list[str], lifting_runs, lifting_copy: Path, capsys
) -> None:
    log = lifting_copy / "losses.jsonl"
    with log.open("a") as file:  # what a run killed after step 4 (checkpoint at 2) wrote
        file.write(json.dumps({"step": 3, "loss": 123.0}) + "\n")
        file.write(json.dumps({"step": 4, "loss": 456.0}) + "\n")
        file.write('{"step": 5, "lo')  # killed mid-line
    assert train_lifting.main(lifting_argv(lifting_data, lifting_copy, "--resume")) == 0
    said = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(log))}: dropped 3 entries after step 2", said)
    assert loss_steps(log) == [1, 2, 3, 4, 5, 6]
    straight = losses(lifting_runs["straight"] / "losses.jsonl")
    assert losses(log) == straight


def test_prohmr_resume_drops_the_killed_runs_log_entries(
    world: Path, prohmr_runs: dict[str, Path], prohmr_copy: Path
) -> None:
    log = prohmr_copy / "losses_rank0.jsonl"
    with log.open("a") as file:
        file.write(json.dumps({"step": 3, "loss": 1e9}) + "\n")
    argv = prohmr_argv(world, prohmr_copy, "--resume", "--stop-after", "4")
    assert train_prohmr.main(argv) == 0
    assert loss_steps(log) == [1, 2, 3, 4]
    assert losses(log) == losses(prohmr_runs["straight"] / "losses_rank0.jsonl")


def test_fresh_start_keeps_the_earlier_run_and_begins_a_new_loss_log(
    lifting_data: list[str], lifting_copy: Path, capsys
) -> None:
    """No run clobbers another: a start without --resume moves the earlier run's files to
    previous/<time>/ (data/ stays) and writes its own from scratch."""
    earlier_log = (lifting_copy / "losses.jsonl").read_text()
    earlier_checkpoint = (lifting_copy / "checkpoints" / "last.pt").read_bytes()
    assert train_lifting.main(lifting_argv(lifting_data, lifting_copy, steps=3)) == 0
    assert loss_steps(lifting_copy / "losses.jsonl") == [1, 2, 3]
    (kept,) = (lifting_copy / "previous").iterdir()
    assert (kept / "losses.jsonl").read_text() == earlier_log
    assert (kept / "checkpoints" / "last.pt").read_bytes() == earlier_checkpoint
    assert (kept / "config.yaml").is_file()
    said = capsys.readouterr().err
    assert f"kept the earlier run's files of {lifting_copy} in {kept}" in said
    # a second fresh start keeps the first one's files beside the earlier ones
    assert train_lifting.main(lifting_argv(lifting_data, lifting_copy, steps=1)) == 0
    assert len(list((lifting_copy / "previous").iterdir())) == 2
    assert loss_steps(lifting_copy / "losses.jsonl") == [1]


def test_keep_earlier_run_leaves_the_lock_data_and_previous_in_place(tmp_path: Path) -> None:
    from pipeline.run_guard import keep_earlier_run

    for name in (LOCK_NAME, "data/x.npz", "previous/old/config.yaml", "config.yaml", "report.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    kept = keep_earlier_run(tmp_path, log=lambda message: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LOCK_NAME, "data", "previous"])
    assert sorted(p.name for p in kept.iterdir()) == ["config.yaml", "report.md"]
    assert keep_earlier_run(tmp_path, log=lambda message: None) is None  # nothing left to keep


def test_resume_from_a_checkpoint_without_config_is_refused(tmp_path: Path) -> None:
    from pipeline.run_guard import begin_training

    pattern = r"--resume from ckpt\.pt: expected a training checkpoint .*without \['config'\]"
    with pytest.raises(ValueError, match=pattern):
        begin_training(
            {"seed": 0},
            {"step": 3, "model": {}},
            kind="LiftingConfig",
            checkpoint="ckpt.pt",
            loss_log=None,
            config_path=tmp_path / "config.yaml",
        )
    assert not (tmp_path / "config.yaml").exists()


@pytest.mark.parametrize(
    ("lines", "step", "kept"),
    [
        ([1, 2, 3, 4], 2, [1, 2]),
        ([1, 2, 3, 2, 3], 3, [1, 2, 3]),  # a log of older versions: a step twice
        ([1, 2], 2, [1, 2]),  # nothing to drop: the file is not rewritten
        ([1, 2, 3], 0, []),
    ],
    ids=["after-checkpoint", "duplicates", "nothing", "fresh"],
)
def test_truncate_loss_log(tmp_path: Path, lines: list[int], step: int, kept: list[int]) -> None:
    path = tmp_path / "losses.jsonl"
    entries = [json.dumps({"step": s, "loss": float(i)}) + "\n" for i, s in enumerate(lines)]
    path.write_text("".join(entries))
    before = path.stat().st_mtime_ns
    dropped = truncate_loss_log(path, step, log=lambda message: None)
    assert dropped == len(lines) - len(kept)
    assert loss_steps(path) == kept
    if lines == [1, 2, 3, 2, 3]:  # the last entry of a step wins
        assert [json.loads(x)["loss"] for x in path.read_text().splitlines()] == [0.0, 3.0, 4.0]
    if not dropped:
        assert path.stat().st_mtime_ns == before
