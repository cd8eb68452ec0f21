"""The public operators: argument checks, then the registered custom ops
``vid2vid::*`` whose kernels run on the backend chosen for the device
(:mod:`vid2vid.ops.backends`).

The custom ops carry fake (meta) kernels and autograd formulas, so they work
under ``torch.compile`` and pass ``torch.library.opcheck``. Backward is
first-order only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vid2vid.ops.backends import backend_for
from vid2vid.ops.geometry import correlation_geometry

# ----------------------------------------------------------------------- checks

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def autocast_enabled(device_type: str) -> bool:
    """torch.is_autocast_enabled for this device type. Meta tensors, which have no autocast, follow
    the CPU's state, as vid2vid.training.planning.MetaAutocast emulates autocast for them."""
    # (torch.amp.is_autocast_available would say which types have one, but torch.compile cannot trace it)
    return torch.is_autocast_enabled("cpu" if device_type == "meta" else device_type)


def _check_tensor(t: object, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32, float64, float16 or bfloat16, got {t.dtype}")
    if t.dim() != 4:
        raise ValueError(f"{name} must be 4-D (B, C, H, W), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")


def _check_pair(a: Tensor, a_name: str, b: Tensor, b_name: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{a_name} is on {a.device} but {b_name} is on {b.device}")
    if a.dtype != b.dtype:
        raise TypeError(f"{a_name} is {a.dtype} but {b_name} is {b.dtype}; give both the same dtype")


def _check_int(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


# ------------------------------------------------------------------------- warp


@torch.library.custom_op("vid2vid::warp", mutates_args=())
def _warp(input: Tensor, flow: Tensor) -> Tensor:
    return backend_for(input.device).warp_forward(input, flow)


@_warp.register_fake
def _(input: Tensor, flow: Tensor) -> Tensor:
    return input.new_empty(input.shape)


@torch.library.custom_op("vid2vid::warp_backward", mutates_args=())
def _warp_backward(grad_output: Tensor, input: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    return tuple(backend_for(input.device).warp_backward(grad_output, input, flow))


@_warp_backward.register_fake
def _(grad_output: Tensor, input: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    return input.new_empty(input.shape), flow.new_empty(flow.shape)


def _warp_setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)


def _warp_autograd(ctx, grad_output: Tensor):
    input, flow = ctx.saved_tensors
    return _warp_backward(grad_output, input, flow)


_warp.register_autograd(_warp_autograd, setup_context=_warp_setup_context)


def warp(input: Tensor, flow: Tensor) -> Tensor:
    """Warps ``input`` by ``flow`` with bilinear sampling (FlowNet2's Resample2d).

    ``out[b, c, y, x]`` is ``input[b, c]`` sampled at
    ``(x + flow[b, 0, y, x], y + flow[b, 1, y, x])``, the position clamped to the
    image border: the values of ``grid_sample(mode="bilinear",
    padding_mode="border", align_corners=True)``.

    Args:
        input: (B, C, H, W) image or features.
        flow: (B, 2, H, W) flow in pixels, channel 0 horizontal (x), channel 1 vertical (y),
            of the same dtype and device as ``input``.

    Returns:
        (B, C, H, W) warped input. Differentiable for both arguments. Under autocast, where
        inputs of mixed precision are the norm, it samples in float32 (as autocast runs grid_sample).
    """
    _check_tensor(input, "input")
    _check_tensor(flow, "flow")
    if input.device == flow.device and autocast_enabled(input.device.type):
        input, flow = input.float(), flow.float()
    _check_pair(input, "input", flow, "flow")
    if flow.shape[1] != 2:
        raise ValueError(f"flow must have exactly 2 channels (x, y), got shape {tuple(flow.shape)}")
    if flow.shape[0] != input.shape[0] or flow.shape[2:] != input.shape[2:]:
        raise ValueError(
            f"flow shape {tuple(flow.shape)} does not match input shape {tuple(input.shape)}: "
            "batch size and H x W must agree"
        )
    return _warp(input, flow)


# ------------------------------------------------------------------ correlation


@torch.library.custom_op("vid2vid::correlation", mutates_args=())
def _correlation(
    input1: Tensor, input2: Tensor, pad_size: int, kernel_size: int, max_displacement: int, stride1: int, stride2: int
) -> Tensor:
    return backend_for(input1.device).correlation_forward(
        input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2
    )


@_correlation.register_fake
def _(input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    g = correlation_geometry(
        input1.shape[2], input1.shape[3], pad_size, kernel_size, max_displacement, stride1, stride2
    )
    return input1.new_empty(input1.shape[0], g.displacements, g.out_height, g.out_width)


@torch.library.custom_op("vid2vid::correlation_backward", mutates_args=())
def _correlation_backward(
    grad_output: Tensor,
    input1: Tensor,
    input2: Tensor,
    pad_size: int,
    kernel_size: int,
    max_displacement: int,
    stride1: int,
    stride2: int,
) -> tuple[Tensor, Tensor]:
    return tuple(
        backend_for(input1.device).correlation_backward(
            grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2
        )
    )


@_correlation_backward.register_fake
def _(grad_output, input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2):
    return input1.new_empty(input1.shape), input2.new_empty(input2.shape)


def _correlation_setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.params = inputs[2:]


def _correlation_autograd(ctx, grad_output: Tensor):
    input1, input2 = ctx.saved_tensors
    grad1, grad2 = _correlation_backward(grad_output, input1, input2, *ctx.params)
    return grad1, grad2, None, None, None, None, None


_correlation.register_autograd(_correlation_autograd, setup_context=_correlation_setup_context)


def correlation(
    input1: Tensor,
    input2: Tensor,
    pad_size: int = 20,
    kernel_size: int = 1,
    max_displacement: int = 20,
    stride1: int = 1,
    stride2: int = 2,
) -> Tensor:
    """FlowNetC's correlation layer (Dosovitskiy et al. 2015, eq. 1).

    With ``r = max_displacement // stride2``, output channel
    ``(j + r) * (2r + 1) + (i + r)`` holds displacement
    ``(dy, dx) = (j * stride2, i * stride2)``: the mean over channels and the
    ``kernel_size`` x ``kernel_size`` window of ``input1 * input2(shifted)``,
    reading zeros outside the zero-padded inputs. Output pixel ``(oy, ox)`` is
    centred at padded position ``max_displacement + (kernel_size - 1) / 2 +
    (oy, ox) * stride1``. The defaults are FlowNetC's, which keep H x W.

    Args:
        input1, input2: (B, C, H, W) feature maps of the same shape, dtype and device.

    Returns:
        (B, (2r + 1)^2, H_out, W_out) with
        ``H_out = ceil((H + 2 * pad_size - 2 * (max_displacement + (kernel_size - 1) / 2)) / stride1)``.
    """
    _check_tensor(input1, "input1")
    _check_tensor(input2, "input2")
    _check_pair(input1, "input1", input2, "input2")
    if input1.shape != input2.shape:
        raise ValueError(f"input1 shape {tuple(input1.shape)} does not match input2 shape {tuple(input2.shape)}")
    _check_int(pad_size, "pad_size", 0)
    _check_int(kernel_size, "kernel_size", 1)
    _check_int(max_displacement, "max_displacement", 0)
    _check_int(stride1, "stride1", 1)
    _check_int(stride2, "stride2", 1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    g = correlation_geometry(input1.shape[2], input1.shape[3], pad_size, kernel_size, max_displacement, stride1,
                             stride2)
    if g.out_height <= 0 or g.out_width <= 0:
        raise ValueError(
            f"correlation output would be empty: input {tuple(input1.shape[2:])} padded by {pad_size} is smaller "
            f"than 2 * (max_displacement + kernel radius) = {2 * g.border} + 1"
        )
    return _correlation(input1, input2, pad_size, kernel_size, max_displacement, stride1, stride2)


# ----------------------------------------------------------------- channel norm


@torch.library.custom_op("vid2vid::channel_norm", mutates_args=())
def _channel_norm(input: Tensor) -> Tensor:
    return backend_for(input.device).channel_norm_forward(input)


@_channel_norm.register_fake
def _(input: Tensor) -> Tensor:
    return input.new_empty(input.shape[0], 1, input.shape[2], input.shape[3])


@torch.library.custom_op("vid2vid::channel_norm_backward", mutates_args=())
def _channel_norm_backward(grad_output: Tensor, input: Tensor, output: Tensor) -> Tensor:
    return backend_for(input.device).channel_norm_backward(grad_output, input, output)


@_channel_norm_backward.register_fake
def _(grad_output: Tensor, input: Tensor, output: Tensor) -> Tensor:
    return input.new_empty(input.shape)


def _channel_norm_setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0], output)


def _channel_norm_autograd(ctx, grad_output: Tensor):
    input, output = ctx.saved_tensors
    return _channel_norm_backward(grad_output, input, output)


_channel_norm.register_autograd(_channel_norm_autograd, setup_context=_channel_norm_setup_context)


def channel_norm(input: Tensor) -> Tensor:
    """L2 norm over channels (FlowNet2's ChannelNorm): (B, C, H, W) -> (B, 1, H, W).

    The gradient is ``grad * input / norm``, and 0 where the norm is 0.
    """
    _check_tensor(input, "input")
    return _channel_norm(input)
