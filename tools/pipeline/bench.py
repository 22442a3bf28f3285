"""What the benchmark programs share: interleaved timing of several paths and the table.

Every benchmark compares, in one process, the paths a user can run: the plain fp32 eager code,
the default path (what the programs run when no option is given) and the bf16 path, plus the
program's own reference (e.g. a straightforward nflows composition). The paths run in
alternating rounds, because a shared machine's speed drifts; each path's time is its fastest
round, and the ratio against the first path is the median over rounds of the per-round ratio.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from prohmr_model.precision import native_bf16

__all__ = [
    "Timing",
    "bf16_path",
    "machine_line",
    "print_table",
    "published_size_checkpoint",
    "synchronize",
    "timed_paths",
]


@dataclass(frozen=True)
class Timing:
    name: str
    best_s: float
    ratio: float  # median over rounds of first path's time / this path's time


def synchronize(device: torch.device | None) -> None:
    """Wait for the device's queued work (CUDA); nothing elsewhere."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_paths(
    paths: Sequence[tuple[str, Callable[[], object]]],
    repeats: int,
    *,
    device: torch.device | None = None,
    warmup: int = 1,
) -> list[Timing]:
    """Time each path `repeats` times in rotating order after `warmup` untimed calls each."""
    for _, fn in paths:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in paths]
    for round_index in range(repeats):
        shift = round_index % len(paths)
        for k in [*range(shift, len(paths)), *range(shift)]:
            synchronize(device)
            start = time.perf_counter()
            paths[k][1]()
            synchronize(device)
            times[k].append(time.perf_counter() - start)
    return [
        Timing(
            name,
            min(own),
            statistics.median(a / b for a, b in zip(times[0], own, strict=True)),
        )
        for (name, _), own in zip(paths, times, strict=True)
    ]


def bf16_path(device: torch.device, allow_emulated: bool) -> tuple[bool, str]:
    """Whether the bf16 path runs, and the line that says why (not)."""
    native, why = native_bf16(device)
    if native:
        return True, f"bf16: native ({why})"
    if allow_emulated:
        return True, f"bf16: EMULATED ({why}); timed because --bf16-emulated was given"
    return False, f"bf16: not run, {why} (pass --bf16-emulated to time it anyway)"


def machine_line(device: torch.device) -> str:
    """The machine, threads, torch and load, for the head of a table."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return (
        f"{platform.processor() or platform.machine()} ({where}), {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}, 1-min load average at start {load:.2f}"
    )


def print_table(title: str, timings: Sequence[Timing], unit: str = "ms") -> None:
    """A markdown table: path, best time, ratio against the first row."""
    scale = 1e3 if unit == "ms" else 1.0
    print(f"\n{title}")
    print(f"| path | best ({unit}) | speed-up vs {timings[0].name} (median per round) |")
    print("|---|---:|---:|")
    for timing in timings:
        print(f"| {timing.name} | {timing.best_s * scale:.1f} | {timing.ratio:.2f}x |")


def published_size_checkpoint(path: str | os.PathLike[str], *, image_size: int = 224) -> str:
    """Write a ProHMR checkpoint of the published sizes (ResNet-50, flow hidden 1024, 4 layers)
    with random trained-looking weights, on the embedded synthetic world of the default run
    (its datasets, the procedural body), and return its path: the model the benchmarks time,
    as a file the evaluation programs read."""
    from dataclasses import replace
    from pathlib import Path

    from pipeline.config import ModelConfig, ProHMRConfig, config_to_dict, load_config
    from pose_body import BodyModel
    from pose_flows.testing import perturb_parameters
    from prohmr_model.checkpoint import save_checkpoint
    from prohmr_model.model import build_prohmr

    config_file = Path(__file__).resolve().parents[1] / "configs" / "synthetic_cpu.yaml"
    config = load_config(ProHMRConfig, config_file)
    config = replace(
        config,
        model=ModelConfig(),
        data=replace(config.data, image_size=image_size),
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_prohmr(
            config.model,
            body_model=BodyModel.procedural(),
            mean_camera=torch.tensor([0.9, 0.0, 0.0]).numpy(),
        )
    perturb_parameters(model.flow.flow, generator=torch.Generator().manual_seed(0))
    model.initialized.fill_(True)
    state = {"step": 0, "model": model.state_dict(), "config": config_to_dict(config)}
    return str(save_checkpoint(path, state))
