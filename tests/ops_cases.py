"""Inputs shared by the operator tests, and the comparisons of a backend's raw kernels
with the reference that the CUDA tests and the emulated-CUDA tests make."""

import torch

from vid2vid.ops import reference

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOL = {
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float64: dict(atol=1e-10, rtol=1e-10),
    torch.float16: dict(atol=3e-2, rtol=3e-2),
    torch.bfloat16: dict(atol=2e-1, rtol=1e-1),
}

# (B, C, H, W): odd sizes, a single row/column, and a batch.
WARP_SHAPES = [(1, 1, 1, 1), (1, 3, 1, 9), (2, 3, 7, 5), (3, 4, 13, 17)]

# (B, C, H, W, pad_size, kernel_size, max_displacement, stride1, stride2)
CORRELATION_CASES = [
    (1, 3, 9, 11, 4, 1, 4, 1, 2),  # FlowNetC's settings, scaled down: keeps H x W
    (2, 5, 8, 7, 2, 1, 3, 1, 1),  # small pad: windows read the zero padding
    (1, 4, 10, 9, 3, 3, 2, 2, 1),  # kernel_size 3 and stride1 2
    (2, 2, 6, 13, 0, 1, 1, 1, 1),  # no padding: output smaller than input
]


def random_flow(b, h, w, dtype=torch.float32, device="cpu", scale=None):
    """Flows that push samples past every border and to negative coordinates."""
    scale = scale if scale is not None else 0.75 * max(h, w)
    return (torch.rand(b, 2, h, w, dtype=dtype, device=device) * 2 - 1) * scale


def non_contiguous(t):
    """The same values as t, as a non-contiguous view."""
    return t.transpose(2, 3).contiguous().transpose(2, 3)


def compare(got, want, dtype, **tolerance):
    """got equals want to the dtype's tolerance (or the one given), whatever device got is on."""
    assert got.dtype == want.dtype and got.shape == want.shape
    torch.testing.assert_close(got.cpu().double(), want.cpu().double(), **(tolerance or TOL[dtype]))


def smooth_flow(b, h, w, dtype=torch.float32, device="cpu"):
    """A flow whose neighbours sample neighbouring corners, as real flows mostly do: a fractional shift
    that varies slowly along the image, with jumps in the middle of each row and of each column (objects'
    edges), where neighbours along the row or the column sample apart."""
    y, x = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    fx = 1.3 + 0.02 * y + 0.05 * torch.sin(0.3 * x) + 3.0 * (x >= w // 2) + 2.0 * (y >= h // 2)
    fy = -0.6 + 0.03 * x
    flow = torch.stack([fx, fy]).float().expand(b, 2, h, w) + torch.arange(b, device=device).view(b, 1, 1, 1)
    return flow.to(dtype)


def check_warp(backend, dtype, shape, device="cpu"):
    """backend's warp_forward/warp_backward against the reference, non-contiguous input, for a random flow
    (neighbours sample apart, and past the borders) and a smooth one (neighbours share corners)."""
    b, c, h, w = shape
    x = non_contiguous(torch.randn(shape, device=device).to(dtype))
    grad = torch.randn(shape, device=device).to(dtype)
    half = dtype in (torch.float16, torch.bfloat16)  # flow gradients sum many rounded products
    for flow in (random_flow(b, h, w, device=device).to(dtype), smooth_flow(b, h, w, dtype, device)):
        compare(backend.warp_forward(x, flow), reference.warp_forward(x, flow), dtype)
        got, want = backend.warp_backward(grad, x, flow), reference.warp_backward(grad, x, flow)
        compare(got[0], want[0], dtype)
        compare(got[1], want[1], dtype, **(dict(atol=0.5, rtol=0.1) if half else {}))


def check_correlation(backend, dtype, case, device="cpu"):
    """backend's correlation_forward/backward against the reference on a CORRELATION_CASES entry."""
    b, c, h, w, *params = case
    a = non_contiguous(torch.randn(b, c, h, w, device=device).to(dtype))
    bb = torch.randn(b, c, h, w, device=device).to(dtype)
    out = backend.correlation_forward(a, bb, *params)
    compare(out, reference.correlation_forward(a, bb, *params), dtype)
    grad = torch.randn_like(out)
    for got, want in zip(backend.correlation_backward(grad, a, bb, *params),
                         reference.correlation_backward(grad, a, bb, *params)):
        compare(got, want, dtype)


def check_channel_norm(backend, dtype, shape=(2, 33, 7, 9), device="cpu"):
    """backend's channel_norm_forward/backward against the reference, with one zero vector."""
    x = non_contiguous(torch.randn(shape, device=device).to(dtype))
    x[0, :, 0, 0] = 0  # a zero vector: the gradient is 0 there, not NaN
    out = backend.channel_norm_forward(x)
    compare(out, reference.channel_norm_forward(x), dtype)
    grad = torch.randn_like(out)
    got = backend.channel_norm_backward(grad, x, out)
    assert torch.isfinite(got.float()).all()
    compare(got, reference.channel_norm_backward(grad, x, out), dtype)


def check_warp_samples_where_float32_does(backend, device="cpu"):
    """In bfloat16, backend's warp samples where it samples in float32 (positions x + flow computed in float32
    from the bf16 flow), so its output is the float32 warp of the same bf16 values, rounded once to bf16.
    A grid of bf16 normalised coordinates, as grid_sample takes in bf16, misses by whole pixels on an image
    512 wide: the bound checked here is far below what that costs."""
    x = torch.randn(1, 2, 8, 512, device=device).to(torch.bfloat16)
    flow = random_flow(1, 8, 512, device=device, scale=40.0).to(torch.bfloat16)
    got = backend.warp_forward(x, flow).float()
    want = backend.warp_forward(x.float(), flow.float())
    rounding = want.abs() * 2.0**-8 + 1e-6  # half an ulp of bf16, with a little room for the float32 sums
    assert ((got - want).abs() <= rounding).all(), float(((got - want).abs() - rounding).max())
    ys, xs = torch.meshgrid(torch.arange(8.0, device=device), torch.arange(512.0, device=device), indexing="ij")
    grid = torch.stack([(xs + flow[0, 0].float()) / 511 * 2 - 1, (ys + flow[0, 1].float()) / 7 * 2 - 1], -1)
    coarse = torch.nn.functional.grid_sample(x, grid[None].to(torch.bfloat16), mode="bilinear",
                                             padding_mode="border", align_corners=True).float()
    assert ((coarse - want).abs() > rounding).float().mean() > 0.5  # the bound tells the two apart
