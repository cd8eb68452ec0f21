"""The CuPy backend: the CUDA kernels of csrc/ compiled at run time by NVRTC.

It serves CUDA tensors when vid2vid._C was built without CUDA (most often
because nvcc was missing at install time). The kernels are the very same
``*_kernel.cuh`` sources that nvcc compiles into the extension, and their
launch geometry comes from the same functions the ``*_cuda.cu`` launchers call
(through vid2vid._C, which every install builds, with or without CUDA).
"""

from __future__ import annotations

import functools

import cupy  # ImportError here means: no CuPy backend
import numpy as np
import torch

from vid2vid.ops.extension import launch_config
from vid2vid.ops.geometry import correlation_geometry
from vid2vid.ops.kernel_sources import kernel_source, kernel_source_dir, name_expression, name_expressions
from vid2vid.ops.reference import acc_dtype

Tensor = torch.Tensor

MAX_BLOCKS: int | None = None  # the cap of grid-stride loops (None: the launchers'); tests lower it

try:
    _SOURCE_DIR = kernel_source_dir()
except FileNotFoundError as e:
    raise ImportError(str(e)) from e


@functools.lru_cache(maxsize=None)
def _module(header: str, device_index: int) -> "cupy.RawModule":
    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(
            code=kernel_source(header),
            options=("-std=c++17", f"-I{_SOURCE_DIR}"),
            name_expressions=name_expressions(header),
        )
        module.compile()
    return module


def _device_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _kernel(header: str, name: str, like: Tensor):
    module = _module(header, _device_index(like.device))
    return module.get_function(name_expression(name, str(like.dtype).removeprefix("torch.")))


def _launch(kernel, launch: tuple[int, int], device: torch.device, *args) -> None:
    """Launches with (blocks, threads) on torch's current stream of `device`; tensors go as raw pointers."""
    blocks, threads = launch
    converted = tuple(np.uint64(a.data_ptr()) if isinstance(a, Tensor) else a for a in args)
    index = _device_index(device)
    stream = torch.cuda.current_stream(index)
    with cupy.cuda.Device(index), cupy.cuda.ExternalStream(stream.cuda_stream, index):
        kernel((int(blocks),), (int(threads),), converted)


def _i32(v: int) -> np.int32:
    return np.int32(v)


def warp_forward(input: Tensor, flow: Tensor) -> Tensor:
    input, flow = input.contiguous(), flow.contiguous()
    output = torch.empty_like(input)
    b, c, h, w = input.shape
    kernel = _kernel("warp/warp_kernel.cuh", "warp_forward_kernel", input)
    _launch(kernel, launch_config("warp", [b * h * w], MAX_BLOCKS), input.device, input, flow, output, _i32(b),
            _i32(c), _i32(h), _i32(w))
    return output


def warp_backward(grad_output: Tensor, input: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    grad_output, input, flow = grad_output.contiguous(), input.contiguous(), flow.contiguous()
    grad_input = torch.zeros(input.shape, dtype=acc_dtype(input.dtype), device=input.device)
    grad_flow = torch.empty_like(flow)
    b, c, h, w = input.shape
    kernel = _kernel("warp/warp_kernel.cuh", "warp_backward_kernel", input)
    _launch(kernel, launch_config("warp_backward", [b, h, w], MAX_BLOCKS), input.device, grad_output, input, flow,
            grad_input, grad_flow, _i32(b), _i32(c), _i32(h), _i32(w))
    return grad_input.to(input.dtype), grad_flow


def _pad_channels_last(x: Tensor, pad: int) -> Tensor:
    return torch.nn.functional.pad(x, [pad] * 4).permute(0, 2, 3, 1).contiguous()


def correlation_forward(a: Tensor, b: Tensor, pad_size: int, kernel_size: int, max_displacement: int,
                        stride1: int, stride2: int) -> Tensor:
    g = correlation_geometry(a.shape[2], a.shape[3], pad_size, kernel_size, max_displacement, stride1, stride2)
    batch, channels = a.shape[:2]
    output = a.new_empty(batch, g.displacements, g.out_height, g.out_width)
    kernel = _kernel("correlation/correlation_kernel.cuh", "correlation_forward_kernel", a)
    launch = launch_config("correlation_forward",
                           [batch, g.out_height, g.out_width, max_displacement, stride1, stride2])
    _launch(kernel, launch, a.device,
            _pad_channels_last(a, pad_size), _pad_channels_last(b, pad_size), output, _i32(channels),
            _i32(g.padded_height), _i32(g.padded_width), _i32(g.out_height), _i32(g.out_width),
            _i32(g.kernel_radius), _i32(max_displacement), _i32(stride1), _i32(stride2))
    return output


def correlation_backward(grad_output: Tensor, a: Tensor, b: Tensor, pad_size: int, kernel_size: int,
                         max_displacement: int, stride1: int, stride2: int) -> tuple[Tensor, Tensor]:
    g = correlation_geometry(a.shape[2], a.shape[3], pad_size, kernel_size, max_displacement, stride1, stride2)
    batch, channels, height, width = a.shape
    grad_a, grad_b = torch.empty_like(a, memory_format=torch.contiguous_format), torch.empty_like(
        b, memory_format=torch.contiguous_format)
    kernel = _kernel("correlation/correlation_kernel.cuh", "correlation_backward_kernel", a)
    launch = launch_config("correlation_backward", [batch, height, width, channels, max_displacement, stride2,
                                                    a.element_size()])
    _launch(kernel, launch, a.device,
            grad_output.contiguous(), _pad_channels_last(a, pad_size), _pad_channels_last(b, pad_size), grad_a,
            grad_b, _i32(channels), _i32(height), _i32(width), _i32(pad_size), _i32(g.out_height),
            _i32(g.out_width), _i32(g.kernel_radius), _i32(max_displacement), _i32(stride1), _i32(stride2))
    return grad_a, grad_b


def channel_norm_forward(input: Tensor) -> Tensor:
    input = input.contiguous()
    b, c, h, w = input.shape
    output = input.new_empty(b, 1, h, w)
    kernel = _kernel("channel_norm/channel_norm_kernel.cuh", "channel_norm_forward_kernel", input)
    _launch(kernel, launch_config("channel_norm", [b * h * w, c], MAX_BLOCKS), input.device, input, output, _i32(b),
            _i32(c), np.int64(h * w))
    return output


def channel_norm_backward(grad_output: Tensor, input: Tensor, output: Tensor) -> Tensor:
    grad_output, input, output = grad_output.contiguous(), input.contiguous(), output.contiguous()
    b, c, h, w = input.shape
    grad_input = torch.empty_like(input)
    kernel = _kernel("channel_norm/channel_norm_kernel.cuh", "channel_norm_backward_kernel", input)
    _launch(kernel, launch_config("channel_norm", [b * h * w, c], MAX_BLOCKS), input.device, grad_output, input,
            output, grad_input, _i32(b), _i32(c), np.int64(h * w))
    return grad_input
