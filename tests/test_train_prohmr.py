"""tools/train_prohmr.py end to end on a tiny synthetic world: resume, DDP, NaN reporting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pipeline.testing import run_train_prohmr, tiny_prohmr_overrides

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "train_prohmr.py"
CONFIG = ROOT / "tools" / "configs" / "synthetic_cpu.yaml"


def tiny_overrides(world: Path, out: Path, steps: int) -> list[str]:
    return tiny_prohmr_overrides(world, out, steps=steps)


def run_script(args: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_train_prohmr(args, timeout=timeout)


def losses_by_step(out: Path, rank: int = 0) -> dict[int, dict[str, float]]:
    records = {}
    for line in (out / f"losses_rank{rank}.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["step"]] = record  # a resumed run overwrites the killed run's steps
    return records


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generate the tiny world once (the first run builds it; later runs reuse it)."""
    path = tmp_path_factory.mktemp("world")
    out = tmp_path_factory.mktemp("warmup")
    result = run_script(["--no-eval", "--set", *tiny_overrides(path, out, 1)])
    assert result.returncode == 0, result.stderr[-3000:]
    return path


def test_resume_after_kill_matches_uninterrupted_run(world: Path, tmp_path: Path) -> None:
    steps = 12
    straight = tmp_path / "straight"
    result = run_script(["--no-eval", "--set", *tiny_overrides(world, straight, steps)])
    assert result.returncode == 0, result.stderr[-3000:]
    reference = losses_by_step(straight)
    assert sorted(reference) == list(range(1, steps + 1))

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(SCRIPT), "--config", str(CONFIG), "--no-progress", "--no-eval"]
    process = subprocess.Popen(
        [*args, "--set", *tiny_overrides(world, killed, steps)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    checkpoint = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if checkpoint.is_file():
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.is_file(), "the run was killed before its first checkpoint"
    killed_at = torch.load(checkpoint, weights_only=True)["step"]
    assert killed_at < steps, "the run finished before it could be killed; nothing to resume"

    result = run_script(["--no-eval", "--resume", "--set", *tiny_overrides(world, killed, steps)])
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = losses_by_step(killed)
    assert sorted(resumed) == list(range(1, steps + 1))
    for step in range(killed_at + 1, steps + 1):
        for key, value in reference[step].items():
            assert resumed[step][key] == pytest.approx(value, rel=1e-5, abs=1e-7), (step, key)
    final = torch.load(checkpoint, weights_only=True)
    reference_final = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    assert final["step"] == reference_final["step"] == steps
    for key, value in reference_final["model"].items():
        torch.testing.assert_close(final["model"][key], value, rtol=1e-5, atol=1e-6)


def test_two_process_ddp_ranks_hold_identical_weights(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--standalone", str(SCRIPT), "--config", str(CONFIG), "--no-progress",
        "--no-eval", "--device", "cpu", "--save-rank-weights",
        "--set", *tiny_overrides(world, out, 4),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rank0 = torch.load(out / "weights_rank0.pt", weights_only=True)
    rank1 = torch.load(out / "weights_rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0)
    # both ranks trained on different data (disjoint streams) yet hold the same weights
    first0 = losses_by_step(out, 0)[1]["loss"]
    first1 = losses_by_step(out, 1)[1]["loss"]
    assert first0 != first1
    assert not (out / "run.lock").exists()  # the main rank's lock, removed at the clean end


def test_non_finite_loss_stops_training_with_step_and_batch(world: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from pipeline.config import ProHMRConfig, load_config
    from pipeline.runtime import DistributedContext, NonFiniteLossError
    from pipeline.session import ProHMRSession

    config: ProHMRConfig = load_config(
        ProHMRConfig, CONFIG, tiny_overrides(world, tmp_path / "nan", 4)
    )
    session = ProHMRSession(config, ctx=DistributedContext(0, 1, 0, torch.device("cpu")))
    decode = session.model.decode

    def poisoned(*args, **kwargs):
        output = decode(*args, **kwargs)
        return replace(output, keypoints_2d=output.keypoints_2d * float("nan"))

    session.model.decode = poisoned  # type: ignore[method-assign]
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 0: .*keypoints_2d.*jpg"):
        session.train(resume=False, progress=False)
    session.close()
    assert not (tmp_path / "nan" / "checkpoints" / "last.pt").exists()
