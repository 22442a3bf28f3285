"""Helpers for the pipeline tests: programs of ``tools/`` loaded as modules, and tiny runs.

The tiny ProHMR run (ResNet-18 on 32-px crops of a 24-image synthetic world, flow width 32, two
flow layers, batch 4) trains a few steps in seconds on one CPU thread; tests that need a trained
checkpoint, a run to kill and resume, or a run folder to lock start from it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["CPU_CONFIG", "TOOLS", "load_tool", "run_train_prohmr", "tiny_prohmr_overrides"]

TOOLS = Path(__file__).resolve().parents[1]
CPU_CONFIG = TOOLS / "configs" / "synthetic_cpu.yaml"


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module (the programs are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tiny_prohmr_overrides(
    world: Path,
    out: Path,
    *,
    steps: int,
    checkpoint_steps: int = 2,
    hidden: int = 32,
    num_train: int = 24,
    num_val_samples: int = 4,
    report_samples: int = 16,
) -> list[str]:
    """``--set`` overrides of the tiny run writing to `out`, with its world in `world` (its
    report: best-of-n up to ``report_samples``, no fitting or multiview)."""
    return [
        f"output_dir={out}",
        f"synthetic.output_dir={world}",
        f"synthetic.num_train={num_train}",
        "synthetic.num_val=8",
        "synthetic.image_size=64",
        "data.image_size=32",
        "data.num_workers=0",
        "model.backbone_depth=18",
        f"model.flow_hidden_features={hidden}",
        f"model.fc_hidden_features={hidden}",
        "model.flow_num_layers=2",
        f"train.total_steps={steps}",
        "train.batch_size=4",
        f"train.num_val_samples={num_val_samples}",
        "train.val_steps=1000",
        "train.image_log_steps=1000",
        "train.log_steps=1",
        f"train.checkpoint_steps={checkpoint_steps}",
        f"report.max_samples={report_samples}",
        "report.fitting_images=0",
        "report.multiview_frames=0",
    ]


def run_train_prohmr(args: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``tools/train_prohmr.py --config <synthetic_cpu.yaml> --no-progress <args>`` on one
    thread, in a subprocess; the completed process (check its return code)."""
    program = [sys.executable, str(TOOLS / "train_prohmr.py"), "--config", str(CPU_CONFIG)]
    return subprocess.run(
        [*program, "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=False,
    )
