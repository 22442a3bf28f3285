"""Private input checks of pose-fitting (the generic shape checks come from pose-geometry)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from pose_geometry import check_floating, check_tensor


def check_finite(name: str, x: Tensor) -> None:
    """Raise ValueError if `x` holds NaN or inf, naming the first offending batch items."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        kind = "NaN" if bool(torch.isnan(x).any()) else "inf"
        items = torch.nonzero(bad.reshape(x.shape[0], -1).any(dim=1)).flatten().tolist()
        shown = ", ".join(map(str, items[:8])) + (", ..." if len(items) > 8 else "")
        raise ValueError(
            f"`{name}` contains {kind} (batch items [{shown}]); remove or zero-confidence those "
            f"keypoints (with finite coordinates) or drop the items before fitting"
        )


def check_batched(
    name: str, x: object, trailing: tuple[int | None, ...], batch: int | None
) -> Tensor:
    """Check a floating (B, *trailing) tensor (None in `trailing` = any size); return it.

    With `batch` None (the tensor that sets B), B = 0 is refused: an empty batch has nothing
    to fit ("`init_z` must hold at least one item (B >= 1), got shape (0, 8)").
    """
    x = check_tensor(name, x)
    check_floating(name, x)
    expected_ndim = 1 + len(trailing)
    ok = x.ndim == expected_ndim and all(
        t is None or s == t for s, t in zip(x.shape[1:], trailing, strict=True)
    )
    if ok and batch is not None:
        ok = x.shape[0] == batch
    if not ok:
        lead = "B" if batch is None else str(batch)
        dims = ", ".join([lead, *("N" if t is None else str(t) for t in trailing)])
        raise ValueError(f"`{name}` must have shape ({dims}), got {tuple(x.shape)}")
    if batch is None and x.shape[0] == 0:
        raise ValueError(
            f"`{name}` must hold at least one item (B >= 1), got shape {tuple(x.shape)}; "
            f"skip the call for an empty batch"
        )
    return x


def check_fit_dtype(name: str, x: Tensor) -> None:
    """Raise TypeError unless `x` is float32 or float64, the precisions a fit can run in.

    L-BFGS in float16/bfloat16 loses the curvature pairs to round-off (and some CPU kernels
    do not exist for them): the fit would end in NaN or stop at once.
    """
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"`{name}` must be float32 or float64 (the fit runs in its dtype), got {x.dtype}; "
            f"convert it with .float() or .double()"
        )


def check_callable(name: str, value: object) -> Callable:
    """Raise TypeError unless `value` is callable."""
    if not callable(value):
        raise TypeError(f"`{name}` must be callable, got {type(value).__name__}")
    return value


def check_pose_output(name: str, output: object, batch: int) -> tuple[Tensor, Tensor]:
    """Check a decoder output: (global_orient (B, 1, 3, 3), body_pose (B, J, 3, 3))."""
    if not (isinstance(output, tuple | list) and len(output) == 2):
        raise TypeError(
            f"`{name}` must return a pair (global_orient (B, 1, 3, 3), body_pose (B, J, 3, 3)), "
            f"got {type(output).__name__}"
        )
    global_orient, body_pose = output
    check_batched(f"{name}(...)[0] (global_orient)", global_orient, (1, 3, 3), batch)
    check_batched(f"{name}(...)[1] (body_pose)", body_pose, (None, 3, 3), batch)
    return global_orient, body_pose


def check_keypoints_output(name: str, output: object, batch: int, num_keypoints: int) -> Tensor:
    """Check a body-model output: keypoints (B, K, 3)."""
    if not isinstance(output, Tensor):
        raise TypeError(
            f"`{name}` must return a tensor of 3D keypoints (B, K, 3), got {type(output).__name__}"
        )
    return check_batched(f"{name}(...)", output, (num_keypoints, 3), batch)
