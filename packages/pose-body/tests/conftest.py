"""Fixtures for pose-body's tests: the procedural body model, a BodyModel on it, shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pose_body import BodyModel, ProceduralBodyModel, procedural_body_model

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = Path(os.environ.get("POSE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def procedural() -> ProceduralBodyModel:
    return procedural_body_model()


@pytest.fixture(scope="session")
def body_model(procedural: ProceduralBodyModel) -> BodyModel:
    """The procedural model with both regressors, float32 (modules here have no state)."""
    return BodyModel(
        procedural.model,
        extra_regressor=procedural.extra_regressor,
        h36m_regressor=procedural.h36m_regressor,
    )


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (set POSE_SHARED_DATA)")
    return SHARED_DATA
