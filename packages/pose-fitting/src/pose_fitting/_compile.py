"""Private: ``torch.compile`` for the optional compiled fitting, with errors that say what to do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch


def _from_the_compiler(error: BaseException) -> bool:
    """True for errors raised by torch's compiler stack (dynamo tracing, inductor codegen)."""
    return type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))


@functools.cache
def compile_function(
    function: Callable[..., Any], *, option: str, fullgraph: bool = False
) -> Callable[..., Any]:
    """``torch.compile(function, dynamic=False)``; a compiler failure raises RuntimeError naming
    `option` (the setting that asked for compilation) and the usual cause.

    Made once per process for the same arguments (the same compiled wrapper comes back), so
    torch's cache of compiled code, per input shapes and guards, serves every later fit.
    Compilation happens at the first call of each new input shape, so that is where a missing
    C++ compiler (torch.compile on CPU needs one) surfaces.
    """
    compiled = torch.compile(function, dynamic=False, fullgraph=fullgraph)

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except Exception as error:
            if not _from_the_compiler(error):
                raise
            raise RuntimeError(
                f"{option}: torch.compile could not compile {function.__name__} "
                f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
                "On CPU it needs a working C++ compiler (g++ on PATH, or the CXX environment "
                f"variable); without one, leave {option} off (the eager path computes the same)"
            ) from error

    call.__name__ = function.__name__
    return call
