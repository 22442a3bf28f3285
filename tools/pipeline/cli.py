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

__all__ = ["at_least", "check_output_args", "check_output_dir", "positive_float"]


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


def check_output_args(parser: argparse.ArgumentParser, **paths: object) -> None:
    """``check_output_dir`` for command-line flags (``out=args.out`` checks ``--out``); a
    problem ends the program with the parser's usage error (exit status 2)."""
    for dest, path in paths.items():
        if path is None:
            continue
        try:
            check_output_dir(path, "--" + dest.replace("_", "-"))  # type: ignore[arg-type]
        except OSError as err:
            parser.error(str(err))
