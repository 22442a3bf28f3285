"""Input checks shared by every package: shapes, dtypes, devices and positive options.

Every public function of the project validates its tensors at the boundary with these helpers,
so that a wrong shape fails with a message naming the argument, the expected shape and the shape
that arrived, e.g. "`rotmat` must have shape (..., 3, 3), got (8, 3)".
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "check_floating",
    "check_module_input",
    "check_non_negative",
    "check_positive",
    "check_same_device",
    "check_same_dtype",
    "check_same_leading_shape",
    "check_tensor",
    "check_trailing_shape",
]


def check_tensor(name: str, x: object) -> Tensor:
    """Raise TypeError unless `x` is a torch.Tensor; return it unchanged."""
    if not isinstance(x, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")
    return x


def check_trailing_shape(name: str, x: Tensor, *trailing: int | None) -> None:
    """Raise ValueError unless `x` ends with the dimensions `trailing`.

    A `None` in `trailing` accepts any size in that position, e.g.
    ``check_trailing_shape("points", x, None, 3)`` accepts (..., N, 3).

    Raises:
        TypeError: if `x` is not a tensor.
        ValueError: "`name` must have shape (..., 3, 3), got (8, 3)".
    """
    check_tensor(name, x)
    n = len(trailing)
    actual = tuple(x.shape[x.ndim - n :]) if x.ndim >= n else None
    mismatch = actual is None or any(
        t is not None and a != t for a, t in zip(actual, trailing, strict=True)
    )
    if mismatch:
        expected = ", ".join(["...", *("N" if t is None else str(t) for t in trailing)])
        raise ValueError(f"`{name}` must have shape ({expected}), got {tuple(x.shape)}")


def check_floating(name: str, x: Tensor) -> None:
    """Raise TypeError unless `x` is a floating-point tensor (float16/bfloat16/32/64)."""
    check_tensor(name, x)
    if not torch.is_floating_point(x):
        raise TypeError(f"`{name}` must be a floating-point tensor, got dtype {x.dtype}")


def check_same_leading_shape(
    name_a: str, a: Tensor, num_trailing_a: int, name_b: str, b: Tensor, num_trailing_b: int
) -> None:
    """Raise ValueError unless the batch dimensions of `a` and `b` are equal.

    The batch (leading) dimensions are everything but the last `num_trailing_*` dimensions.
    """
    lead_a = tuple(a.shape[: a.ndim - num_trailing_a])
    lead_b = tuple(b.shape[: b.ndim - num_trailing_b])
    if lead_a != lead_b:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch dimensions, got "
            f"{tuple(a.shape)} and {tuple(b.shape)} (batch {lead_a} vs {lead_b})"
        )


def check_same_device(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise ValueError unless `b` is on the device of `a`.

    Raises:
        ValueError: "`target` must be on the device of `prediction` (cpu), got meta".
    """
    if a.device != b.device:
        raise ValueError(
            f"`{name_b}` must be on the device of `{name_a}` ({a.device}), got {b.device}"
        )


def check_same_dtype(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Raise TypeError unless `b` has the dtype of `a`.

    Raises:
        TypeError: "`betas` must have the dtype of `body_pose` (torch.float32), got
            torch.float64".
    """
    if a.dtype != b.dtype:
        raise TypeError(f"`{name_b}` must have the dtype of `{name_a}` ({a.dtype}), got {b.dtype}")


def check_module_input(name: str, x: Tensor, module: torch.nn.Module) -> None:
    """Raise unless `x` has the dtype and the device of `module`'s first parameter.

    A module without parameters accepts anything. Call it once per forward at the API
    boundary (it reads one parameter's attributes, no data).

    Raises:
        TypeError: "`images` must have the dtype of the module's parameters (torch.float32),
            got torch.float64; convert the input or the module with .to(...)".
        ValueError: the same for the device.
    """
    reference = next(module.parameters(), None)
    if reference is None:
        return
    if x.dtype != reference.dtype:
        raise TypeError(
            f"`{name}` must have the dtype of the module's parameters ({reference.dtype}), "
            f"got {x.dtype}; convert the input or the module with .to(...)"
        )
    if x.device != reference.device:
        raise ValueError(
            f"`{name}` must be on the device of the module's parameters ({reference.device}), "
            f"got {x.device}; move the input or the module with .to(...)"
        )


def check_positive(name: str, value: float | Tensor) -> None:
    """Raise ValueError unless `value` (a number or a small tensor) is finite and > 0 everywhere.

    For options such as focal lengths and sizes; a tensor is read once (one device sync), so
    call it at the API boundary, not in an inner loop.

    Raises:
        ValueError: "`focal_length_px` must be finite and > 0, got -5.0" (for a tensor, the
            first offending value and its index).
    """
    _check_bound(name, value, strict=True)


def check_non_negative(name: str, value: float | Tensor) -> None:
    """Raise ValueError unless `value` (a number or a small tensor) is finite and >= 0
    everywhere (weights, confidences); boolean tensors always pass. Read once, like
    :func:`check_positive`.

    Raises:
        ValueError: "`confidence` must be finite and >= 0, got -0.2 at index (1, 3)".
    """
    if isinstance(value, Tensor) and value.dtype == torch.bool:
        return
    _check_bound(name, value, strict=False)


def _check_bound(name: str, value: float | Tensor, *, strict: bool) -> None:
    rule = "> 0" if strict else ">= 0"
    if isinstance(value, Tensor):
        ok = torch.isfinite(value) & ((value > 0) if strict else (value >= 0))
        bad = ~ok
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
            where = f" at index {index}" if index else ""
            raise ValueError(
                f"`{name}` must be finite and {rule}, got {float(value[index]):g}{where}"
            )
        return
    inside = value > 0 if strict else value >= 0
    if not (inside and value != float("inf")):
        raise ValueError(f"`{name}` must be finite and {rule}, got {value!r}")
