"""The CUDA kernel sources that the CuPy backend compiles at run time: where
they are, the translation unit for each operator, and the kernels and element
types to instantiate. Free of CuPy, so tests can compile the same units with
NVRTC alone."""

from __future__ import annotations

from pathlib import Path

# Element types of the kernels: torch dtype name -> C++ type.
CTYPES = {"float32": "float", "float64": "double", "float16": "__half", "bfloat16": "__nv_bfloat16"}

# Operator header (relative to csrc/) -> its __global__ kernel templates.
KERNELS = {
    "warp/warp_kernel.cuh": ("warp_forward_kernel", "warp_backward_kernel"),
    "correlation/correlation_kernel.cuh": ("correlation_forward_kernel", "correlation_backward_kernel"),
    "channel_norm/channel_norm_kernel.cuh": ("channel_norm_forward_kernel", "channel_norm_backward_kernel"),
}


def kernel_source_dir() -> Path:
    """csrc/ of a source checkout, or the copy of its headers that setup.py ships in the package."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_kernels", package.parent / "csrc"):
        if (candidate / "common" / "kernel_common.cuh").is_file():
            return candidate
    raise FileNotFoundError(
        f"the CUDA kernel sources (*.cuh) were found neither in {package / '_kernels'} nor in {package.parent / 'csrc'}"
    )


def kernel_source(header: str) -> str:
    """The translation unit for one operator: the header alone, which includes
    what it needs (the half types through common/kernel_common.cuh)."""
    return f'#include "{header}"\n'


def name_expressions(header: str) -> list[str]:
    """Every kernel instantiation of one operator, as NVRTC name expressions."""
    return [f"vid2vid::{kernel}<{ctype}>" for kernel in KERNELS[header] for ctype in CTYPES.values()]


def name_expression(kernel: str, dtype_name: str) -> str:
    return f"vid2vid::{kernel}<{CTYPES[dtype_name]}>"
