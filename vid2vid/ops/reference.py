"""Pure-PyTorch reference of every operator: the definition of their semantics
and the oracle of the tests.

Each operator has a forward and an explicit backward (the public custom ops
need backward functions they can call below autograd). The forwards are also
differentiable by autograd, which the tests use to check the explicit
backwards. Half-precision inputs are computed in float32, like the kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vid2vid.ops.geometry import correlation_geometry

Tensor = torch.Tensor


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype of the kernels: float64 stays, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------- warp


def _bilinear_sample(flow: Tensor, height: int, width: int):
    """Corners, weights and border masks of the samples at pixel + flow.

    flow: (B, 2, H, W) in pixels, channel 0 horizontal. Returns flat corner
    indices (B, 1, H*W) of (y0, x0), (y0, x1), (y1, x0), (y1, x1), the weights
    wx, wy of the x1 column and y1 row, and the 0/1 masks saying where the
    clamped position still moves with the flow, each (B, 1, H*W).
    """
    batch = flow.shape[0]
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device).view(1, 1, width) + flow[:, 0]
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device).view(1, height, 1) + flow[:, 1]
    x_inside = ((xs > 0) & (xs < width - 1)).to(flow.dtype)
    y_inside = ((ys > 0) & (ys < height - 1)).to(flow.dtype)
    # Clamp to the border (grid_sample's padding_mode="border"); a NaN lands on 0.
    zero = xs.new_zeros(())
    xs = torch.where(xs > 0, xs, zero)
    xs = torch.where(xs < width - 1, xs, xs.new_full((), width - 1))
    ys = torch.where(ys > 0, ys, zero)
    ys = torch.where(ys < height - 1, ys, ys.new_full((), height - 1))
    x0f, y0f = xs.floor(), ys.floor()
    wx, wy = xs - x0f, ys - y0f
    x0, y0 = x0f.long(), y0f.long()
    x1, y1 = (x0 + 1).clamp(max=width - 1), (y0 + 1).clamp(max=height - 1)
    corners = [(yy * width + xx).reshape(batch, 1, -1) for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1))]
    flat = lambda t: t.reshape(batch, 1, -1)  # noqa: E731
    return corners, flat(wx), flat(wy), flat(x_inside), flat(y_inside)


def warp_forward(input: Tensor, flow: Tensor) -> Tensor:
    """Bilinear sample of ``input`` at ``(x + flow[:, 0], y + flow[:, 1])``, clamped to the border.

    input: (B, C, H, W); flow: (B, 2, H, W) in pixels, channel 0 horizontal.
    Equals ``grid_sample(input, grid, "bilinear", "border", align_corners=True)``
    with the grid made from the flow.
    """
    batch, channels, height, width = input.shape
    acc = acc_dtype(input.dtype)
    flat = input.to(acc).reshape(batch, channels, height * width)
    corners, wx, wy, _, _ = _bilinear_sample(flow.to(acc), height, width)
    v00, v01, v10, v11 = (flat.gather(2, idx.expand(-1, channels, -1)) for idx in corners)
    top = v00 + wx * (v01 - v00)
    bottom = v10 + wx * (v11 - v10)
    out = top + wy * (bottom - top)
    return out.reshape(batch, channels, height, width).to(input.dtype)


def warp_with_grid_sample(input: Tensor, flow: Tensor) -> Tensor:
    """:func:`warp_forward` written with ``grid_sample`` (the grid built from the
    flow): the semantics warp reproduces, and the baseline it is timed against."""
    _, _, height, width = input.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=input.dtype, device=input.device),
        torch.arange(width, dtype=input.dtype, device=input.device),
        indexing="ij",
    )
    gx = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    gy = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(input, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp_backward(grad_output: Tensor, input: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of :func:`warp_forward` for ``input`` and ``flow``."""
    batch, channels, height, width = input.shape
    acc = acc_dtype(input.dtype)
    flat = input.to(acc).reshape(batch, channels, height * width)
    grad = grad_output.to(acc).reshape(batch, channels, height * width)
    corners, wx, wy, x_inside, y_inside = _bilinear_sample(flow.to(acc), height, width)
    v00, v01, v10, v11 = (flat.gather(2, idx.expand(-1, channels, -1)) for idx in corners)

    grad_input = torch.zeros_like(flat)
    weights = ((1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy)
    for idx, weight in zip(corners, weights):
        grad_input.scatter_add_(2, idx.expand(-1, channels, -1), grad * weight)

    d_dx = x_inside * ((1 - wy) * (v01 - v00) + wy * (v11 - v10))
    d_dy = y_inside * ((1 - wx) * (v10 - v00) + wx * (v11 - v01))
    grad_flow = torch.cat([(grad * d_dx).sum(1, keepdim=True), (grad * d_dy).sum(1, keepdim=True)], 1)
    return (
        grad_input.reshape(input.shape).to(input.dtype),
        grad_flow.reshape(batch, 2, height, width).to(flow.dtype),
    )


# -------------------------------------------------------------------- correlation


def _correlation_windows(a: Tensor, b: Tensor, pad_size, kernel_size, max_displacement, stride1, stride2):
    """Padded inputs in the accumulation dtype, the geometry, the slice of the
    padded image that the windows of `a` cover, and every displacement (dy, dx)
    in output-channel order."""
    g = correlation_geometry(a.shape[2], a.shape[3], pad_size, kernel_size, max_displacement, stride1, stride2)
    acc = acc_dtype(a.dtype)
    pad = [pad_size] * 4
    a_p, b_p = F.pad(a.to(acc), pad), F.pad(b.to(acc), pad)
    # Rows (and columns) read by the windows of a: from the first centre minus
    # the radius to the last centre plus the radius.
    top = g.border - g.kernel_radius
    rows = slice(top, top + (g.out_height - 1) * stride1 + kernel_size)
    cols = slice(top, top + (g.out_width - 1) * stride1 + kernel_size)
    r = g.displacement_radius
    shifts = [(j * stride2, i * stride2) for j in range(-r, r + 1) for i in range(-r, r + 1)]
    return a_p, b_p, g, rows, cols, shifts


def _shift(s: slice, d: int) -> slice:
    return slice(s.start + d, s.stop + d)


def correlation_forward(
    a: Tensor, b: Tensor, pad_size: int, kernel_size: int, max_displacement: int, stride1: int, stride2: int
) -> Tensor:
    """FlowNetC's correlation of a and b (B, C, H, W) -> (B, (2r+1)^2, H_out, W_out).

    Output channel ``(j + r) * (2r + 1) + (i + r)``, ``r = max_displacement // stride2``,
    holds displacement ``(dy, dx) = (j * stride2, i * stride2)``: the mean over
    channels and the kernel window of ``a * b`` shifted by it, reading zeros
    outside the zero-padded inputs.
    """
    a_p, b_p, g, rows, cols, shifts = _correlation_windows(
        a, b, pad_size, kernel_size, max_displacement, stride1, stride2
    )
    window = a_p[:, :, rows, cols]
    outputs = []
    for dy, dx in shifts:
        product = (window * b_p[:, :, _shift(rows, dy), _shift(cols, dx)]).mean(1, keepdim=True)
        outputs.append(F.avg_pool2d(product, kernel_size, stride1))
    return torch.cat(outputs, 1).to(a.dtype)


def correlation_backward(
    grad_output: Tensor,
    a: Tensor,
    b: Tensor,
    pad_size: int,
    kernel_size: int,
    max_displacement: int,
    stride1: int,
    stride2: int,
) -> tuple[Tensor, Tensor]:
    """Gradients of :func:`correlation_forward` for ``a`` and ``b``."""
    a_p, b_p, g, rows, cols, shifts = _correlation_windows(
        a, b, pad_size, kernel_size, max_displacement, stride1, stride2
    )
    channels = a.shape[1]
    grad = grad_output.to(a_p.dtype)
    # The adjoint of avg_pool2d(kernel_size, stride1): spread each output's
    # gradient over its window.
    spread = torch.full((1, 1, kernel_size, kernel_size), 1.0 / (kernel_size**2 * channels), dtype=a_p.dtype,
                        device=a_p.device)
    grad_a_p, grad_b_p = torch.zeros_like(a_p), torch.zeros_like(b_p)
    window = a_p[:, :, rows, cols]
    for d, (dy, dx) in enumerate(shifts):
        g_window = F.conv_transpose2d(grad[:, d : d + 1], spread, stride=stride1)
        grad_a_p[:, :, rows, cols] += g_window * b_p[:, :, _shift(rows, dy), _shift(cols, dx)]
        grad_b_p[:, :, _shift(rows, dy), _shift(cols, dx)] += g_window * window
    height, width = a.shape[2:]
    crop = (slice(None), slice(None), slice(pad_size, pad_size + height), slice(pad_size, pad_size + width))
    return grad_a_p[crop].to(a.dtype), grad_b_p[crop].to(b.dtype)


# ------------------------------------------------------------------- channel norm


def channel_norm_forward(input: Tensor) -> Tensor:
    """L2 norm over channels: (B, C, H, W) -> (B, 1, H, W)."""
    x = input.to(acc_dtype(input.dtype))
    return x.square().sum(1, keepdim=True).sqrt().to(input.dtype)


def channel_norm_backward(grad_output: Tensor, input: Tensor, output: Tensor) -> Tensor:
    """Gradient of :func:`channel_norm_forward`: ``grad * x / norm``, and 0 where the norm is 0."""
    acc = acc_dtype(input.dtype)
    norm = output.to(acc)
    scale = torch.where(norm > 0, grad_output.to(acc) / norm.clamp_min(torch.finfo(acc).tiny), 0.0)
    return (scale * input.to(acc)).to(input.dtype)
