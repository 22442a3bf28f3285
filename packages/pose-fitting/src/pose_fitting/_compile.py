"""Private: ``torch.compile`` for the optional compiled fitting, with errors that say what to do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

#: Compiled variants kept per function (batch sizes, kinds of objective; torch's default is 8):
#: past it a ``fullgraph`` function raises, the others run eagerly.
RECOMPILE_LIMIT = 64


def _from_the_compiler(error: BaseException) -> bool:
    """True for errors raised by torch's compiler stack (dynamo tracing, inductor codegen)."""
    return type(error).__module__.startswith(
        ("torch._dynamo", "torch._inductor", "torch.fx.experimental")
    )


def _untraceable(error: BaseException) -> bool:
    """True for a graph break under ``fullgraph=True``: unsupported code, or a branch or index
    on a tensor's value (``.item()``, data-dependent shapes)."""
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    exc = torch._dynamo.exc
    return isinstance(error, (exc.Unsupported, exc.UserError, GuardOnDataDependentSymNode))


@functools.cache
def compile_function(
    function: Callable[..., Any], *, option: str, fullgraph: bool = False, untraceable: str = ""
) -> Callable[..., Any]:
    """``torch.compile(function, dynamic=False)``; a compiler failure raises RuntimeError naming
    `option` (the setting that asked for compilation) and the usual cause.

    With ``fullgraph=True`` code that does not trace as one graph raises RuntimeError too, with
    torch's reason and `untraceable` (what to do instead).

    Made once per process for the same arguments (the same compiled wrapper comes back), so
    torch's cache of compiled code, per input shapes and guards, serves every later fit.
    Compilation happens at the first call of each new input shape, so that is where a missing
    C++ compiler (torch.compile on CPU needs one) surfaces.
    """
    compiled = torch.compile(
        function, dynamic=False, fullgraph=fullgraph, recompile_limit=RECOMPILE_LIMIT
    )

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except Exception as error:
            if not _from_the_compiler(error):
                raise
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            if isinstance(error, torch._dynamo.exc.FailOnRecompileLimitHit):
                raise RuntimeError(
                    f"{option}: torch.compile has made {RECOMPILE_LIMIT} compiled versions of "
                    f"{function.__name__} in this process (one per batch size and kind of "
                    "inputs), its limit; fit with fewer distinct batch sizes, or leave "
                    f"{option} off"
                ) from error
            if fullgraph and _untraceable(error):
                raise RuntimeError(
                    f"{option}: torch.compile could not trace {function.__name__} as one graph "
                    f"({type(error).__name__}: {reason}). {untraceable}"
                ) from error
            raise RuntimeError(
                f"{option}: torch.compile could not compile {function.__name__} "
                f"({type(error).__name__}: {reason}). "
                "On CPU it needs a working C++ compiler (g++ on PATH, or the CXX environment "
                f"variable); without one, leave {option} off (the eager path computes the same)"
            ) from error

    call.__name__ = function.__name__
    return call
