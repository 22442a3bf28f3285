"""Command-line argument checks shared by the programs in ``tools/``.

Each check fails while the arguments are parsed, before any work: numbers out of range through
``argparse`` types (``type=at_least(1)``: "argument --num-samples: must be >= 1, got 0"), output
locations that cannot be folders (``check_output_dir``, ``check_output_args``).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from prohmr_model.precision import PRECISIONS

__all__ = [
    "add_precision_argument",
    "at_least",
    "check_output_args",
    "check_output_dir",
    "check_output_file",
    "fraction",
    "positive_float",
]


def at_least(low: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """An ``argparse`` type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def check_output_dir(path: str | os.PathLike[str], name: str) -> None:
    """Raise unless ``path`` is a folder or a folder can be made there (cheap checks only).

    Raises:
        NotADirectoryError: naming ``name`` (a config key or flag) and the path, if it is an
            existing file or a parent of it is a file.
        PermissionError: likewise, if the nearest existing parent is not writable.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            f"{name} {str(path)!r} is an existing file; expected a folder (or a path where one "
            "can be made)"
        )
    existing = target
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(
            f"{name} {str(path)!r} cannot be made: {existing} is a file; expected a folder"
        )
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{name} {str(path)!r} cannot be written: {existing} is read-only")


def check_output_file(path: str | os.PathLike[str], name: str) -> None:
    """Raise unless a file can be written at ``path`` (cheap checks only).

    Raises:
        IsADirectoryError: naming ``name`` and the path, if it is an existing folder.
        NotADirectoryError, PermissionError: as ``check_output_dir`` for its parent.
    """
    if Path(path).is_dir():
        raise IsADirectoryError(f"{name} {str(path)!r} is an existing folder; expected a file path")
    check_output_dir(Path(path).parent, f"{name} {str(path)!r}: the folder")


def check_output_args(
    parser: argparse.ArgumentParser,
    *,
    dirs: dict[str, object] | None = None,
    files: dict[str, object] | None = None,
) -> None:
    """``check_output_dir`` / ``check_output_file`` for command-line flags
    (``dirs={"--out": args.out}``; None values are skipped); a problem ends the program with
    the parser's usage error (exit status 2) before any work."""
    checks = [(check_output_dir, flag, path) for flag, path in (dirs or {}).items()]
    checks += [(check_output_file, flag, path) for flag, path in (files or {}).items()]
    for check, flag, path in checks:
        if path is None:
            continue
        try:
            check(path, flag)  # type: ignore[arg-type]
        except OSError as err:
            parser.error(str(err))


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision fp32|bf16|fp16`` for the programs that run the model (see
    ``prohmr_model.precision``)."""
    parser.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="fp32",
        help="autocast precision of the backbone and the flow's coupling networks (bf16 only "
        "where the device has it natively, else fp32 with a warning; fp16 on CUDA only)",
    )
