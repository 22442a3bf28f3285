"""Pytest options shared by every package (added once here: two packages adding one collide).

`--device` picks where device-aware tests run (default cpu). Tests marked `gpu` are skipped unless
`--device` names a CUDA device and CUDA is available.
"""

from __future__ import annotations

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        action="store",
        default="cpu",
        help="torch device for device-aware tests, e.g. cpu or cuda:0 (default: cpu)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    device = str(config.getoption("--device"))
    if device.startswith("cuda") and torch.cuda.is_available():
        return
    reason = f"needs CUDA: run with --device=cuda on a machine with a GPU (got --device={device})"
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    """The torch device named by --device."""
    return torch.device(str(request.config.getoption("--device")))
