"""Fixtures only: every test runs with a fixed seed inside its own RNG state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    """Seed torch's global generator for the test and restore the previous state afterwards."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield
