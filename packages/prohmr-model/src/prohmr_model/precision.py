"""Numeric precision of the networks: ``fp32`` (the default), ``bf16`` or ``fp16``.

A precision names the autocast dtype of the parts that tolerate it; everything else stays in
float32, as in the original's mixed-precision training:

- training: the backbone runs under autocast (its convolutions and matrix products in the low
  precision), the flow, the body model and the losses in float32;
- evaluation, sampling and fitting (the model in eval mode): the backbone and the flow's coupling
  networks run under autocast; the flow's invertible layers (ActNorm, LU, the additive
  couplings' sums), the body model and every metric stay in float32.

``fp16`` is for GPUs only (training then needs a gradient scaler). ``bf16`` is used only where
the device computes it natively: CUDA devices that report bf16 support, and CPUs with bf16
instructions (``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on Arm). Elsewhere bf16 runs
through emulation, many times slower than float32 (a 4096x1024x1024 matrix product: 0.85 against
73 GFLOPS on a 2-core AVX2 CPU), so `resolve_precision` falls back to fp32 and warns, unless
``allow_emulated=True`` (for measuring what bf16 does to the numbers, not for speed).
See docs/model.md#precision.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = [
    "PRECISIONS",
    "autocast",
    "autocast_dtype",
    "native_bf16",
    "resolve_precision",
]

#: The precision names, and the autocast dtype each stands for (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}

_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def _cpu_flags() -> frozenset[str]:
    """The CPU feature flags Linux reports (``flags`` on x86, ``Features`` on Arm); empty
    elsewhere."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return frozenset()
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(device: torch.device | str) -> tuple[bool, str]:
    """Whether `device` computes bf16 natively, and why (or why not), in words."""
    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{torch.cuda.get_device_name(device)} supports bf16"
        return False, f"{torch.cuda.get_device_name(device)} has no native bf16"
    if device.type == "cpu":
        flags = _cpu_flags()
        found = [flag for flag in _CPU_BF16_FLAGS if flag in flags]
        if found:
            return True, f"this CPU has {', '.join(found)}"
        if platform.machine().lower() in ("aarch64", "arm64") and "bf16" in flags:
            return True, "this Arm CPU has bf16"
        return False, (
            "this CPU reports no bf16 instructions (none of avx512_bf16, amx_bf16 in "
            "/proc/cpuinfo): bf16 would run emulated, many times slower than fp32"
        )
    return False, f"bf16 support on {device.type} devices is not known to this package"


def resolve_precision(
    precision: object, device: torch.device | str, *, allow_emulated: bool = False
) -> str:
    """Check `precision` for `device` and return the precision to use.

    Raises:
        ValueError: `precision` is not one of ``PRECISIONS``, or fp16 is asked of a non-CUDA
            device.
    Warns:
        UserWarning: bf16 asked of a device without native bf16: fp32 is returned instead,
            unless `allow_emulated`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"`precision` fp16 needs a CUDA device (float16 autocast), got device {device}; "
            "use bf16 or fp32"
        )
    if precision == "bf16" and not allow_emulated:
        native, why = native_bf16(device)
        if not native:
            warnings.warn(f"precision bf16 asked, but {why}; running in fp32", stacklevel=2)
            return "fp32"
    return str(precision)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name (None for fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


@contextlib.contextmanager
def autocast(precision: str, device_type: str) -> Iterator[None]:
    """``torch.autocast`` in `precision` on `device_type`; a no-op context for fp32 (it does not
    switch off an autocast opened outside)."""
    dtype = autocast_dtype(precision)
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device_type, dtype=dtype):
        yield
