"""Test helpers other packages may use: dtype-based tolerances and random rotations.

Tolerances are written once here so every package compares float32 and float64 results the same
way. Import from tests only (it has no effects at import and no test-framework dependency).
"""

from __future__ import annotations

import torch
from torch import Tensor

from pose_geometry.rotations import quat_wxyz_to_rotmat

__all__ = ["assert_close", "random_rotmat", "tolerance"]

_TOLERANCES: dict[torch.dtype, dict[str, float]] = {
    torch.float64: {"atol": 1e-10, "rtol": 1e-9},
    torch.float32: {"atol": 1e-5, "rtol": 1e-4},
    torch.float16: {"atol": 1e-2, "rtol": 1e-2},
    torch.bfloat16: {"atol": 5e-2, "rtol": 5e-2},
}


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """Return {'atol': ..., 'rtol': ...} for comparing results computed in `dtype`."""
    if dtype not in _TOLERANCES:
        raise ValueError(f"no tolerance for dtype {dtype}; expected a floating-point dtype")
    return dict(_TOLERANCES[dtype])


def assert_close(
    actual: Tensor, expected: Tensor, *, atol: float | None = None, rtol: float | None = None
) -> None:
    """torch.testing.assert_close with the tolerance of the less precise of the two dtypes."""
    dtype = actual.dtype if actual.dtype != torch.float64 else expected.dtype
    tol = tolerance(dtype) if dtype.is_floating_point else {"atol": 0.0, "rtol": 0.0}
    torch.testing.assert_close(
        actual,
        expected,
        atol=tol["atol"] if atol is None else atol,
        rtol=tol["rtol"] if rtol is None else rtol,
        check_dtype=False,
    )


def random_rotmat(
    *shape: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw rotation matrices uniformly from SO(3) (normalised Gaussian quaternions).

    Returns:
        (*shape, 3, 3) rotation matrices.
    """
    q = torch.randn(*shape, 4, dtype=dtype, device=device, generator=generator)
    return quat_wxyz_to_rotmat(q)
