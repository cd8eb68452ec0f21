"""The compiled backend: the C++/CUDA kernels of ``vid2vid._C`` (csrc/).

Importing this module loads the extension; it raises ImportError where the
extension was not built.
"""

from __future__ import annotations

import torch

import vid2vid._C  # noqa: F401  (registers torch.ops.vid2vid_C)

_ops = torch.ops.vid2vid_C

cuda_enabled: bool = bool(_ops.cuda_enabled())


def launch_config(kernel: str, sizes: list[int], max_blocks: int | None = None) -> tuple[int, int]:
    """(blocks, threads) of a kernel's launch ("warp", "channel_norm", "correlation_forward",
    "correlation_backward"), from the function its CUDA launcher calls; ``max_blocks`` caps
    grid-stride loops (default: the launcher's cap)."""
    blocks, threads = _ops.launch_config(kernel, sizes, max_blocks)
    return blocks, threads


def __getattr__(name: str):
    """Every kernel entry point the extension registers (``warp_forward``, ...) under its own name:
    a new operator registered in csrc/bindings.cpp needs no line here."""
    try:
        return getattr(_ops, name)
    except (AttributeError, RuntimeError):
        raise AttributeError(f"vid2vid._C registers no operator {name!r}") from None
