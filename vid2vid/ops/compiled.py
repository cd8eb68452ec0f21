"""The compiled backend: the C++/CUDA kernels of ``vid2vid._C`` (csrc/).

Importing this module loads the extension. It raises ImportError where the
extension was not built, and ErrorsDoNotReachPython (an ImportError) where it
was built so that an error raised inside it would crash the interpreter
(checked once per build: :mod:`vid2vid.ops.extension`).
"""

from __future__ import annotations

import torch

from vid2vid.ops.extension import launch_config, require_errors_reach_python  # noqa: F401  (launch_config: for the tests)

require_errors_reach_python()

import vid2vid._C  # noqa: E402, F401  (registers torch.ops.vid2vid_C)

_ops = torch.ops.vid2vid_C

cuda_enabled: bool = bool(_ops.cuda_enabled())


def __getattr__(name: str):
    """Every kernel entry point the extension registers (``warp_forward``, ...) under its own name:
    a new operator registered in csrc/bindings.cpp needs no line here."""
    try:
        return getattr(_ops, name)
    except (AttributeError, RuntimeError):
        raise AttributeError(f"vid2vid._C registers no operator {name!r}") from None
