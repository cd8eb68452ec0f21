"""The compiled kernels against the pure-PyTorch reference, and the reference
against its definitions (grid_sample, finite differences, a known shift)."""

import pytest
import torch

from vid2vid.ops import compiled, reference
from tests.ops_cases import (CORRELATION_CASES, WARP_SHAPES, check_warp_samples_where_float32_does,
                             non_contiguous, random_flow)

BACKENDS = {"reference": reference, "compiled": compiled}
HALF_TOL = {torch.float16: dict(atol=2e-2, rtol=2e-2), torch.bfloat16: dict(atol=1e-1, rtol=5e-2)}


# --------------------------------------------------------------------------- warp


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", WARP_SHAPES)
def test_warp_equals_grid_sample_border(backend, shape):
    b, c, h, w = shape
    x = torch.randn(shape, dtype=torch.float64)
    flow = random_flow(b, h, w, torch.float64)
    out = BACKENDS[backend].warp_forward(x, flow)
    torch.testing.assert_close(out, reference.warp_with_grid_sample(x, flow), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shape", WARP_SHAPES)
def test_warp_gradients_equal_grid_sample(shape):
    b, c, h, w = shape
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    flow = random_flow(b, h, w, torch.float64).requires_grad_()
    grad = torch.randn(shape, dtype=torch.float64)
    expected = torch.autograd.grad(reference.warp_with_grid_sample(x, flow), (x, flow), grad)
    got = compiled.warp_backward(grad, x.detach(), flow.detach())
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("threads", [1, 3, 8])
@pytest.mark.parametrize("shape", [(1, 3, 13, 17), (2, 4, 7, 5)])
def test_warp_gradients_on_any_number_of_threads(threads, shape):
    # With fewer images than threads, the CPU backward splits each image into
    # bands of rows that scatter into copies of the input gradient.
    b, c, h, w = shape
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    flow = random_flow(b, h, w, torch.float64).requires_grad_()
    grad = torch.randn(shape, dtype=torch.float64)
    expected = torch.autograd.grad(reference.warp_with_grid_sample(x, flow), (x, flow), grad)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = compiled.warp_backward(grad, x.detach(), flow.detach())
    finally:
        torch.set_num_threads(before)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("shape", WARP_SHAPES)
def test_warp_compiled_matches_reference_float32(shape):
    b, c, h, w = shape
    x = non_contiguous(torch.randn(shape))
    flow = non_contiguous(random_flow(b, h, w))
    grad = torch.randn(shape)
    torch.testing.assert_close(compiled.warp_forward(x, flow), reference.warp_forward(x, flow))
    for got, want in zip(compiled.warp_backward(grad, x, flow), reference.warp_backward(grad, x, flow)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_warp_negative_coordinates_have_exact_input_gradient():
    # Sample at x = -0.25 + 1 = 0.75 from pixel 1: the weights are 0.25 / 0.75
    # on columns 0 / 1. FlowNet2's CUDA backward gets these wrong for negative
    # positions (it takes xf - int(xf)); ours must not.
    x = torch.zeros(1, 1, 1, 4, dtype=torch.float64)
    flow = torch.zeros(1, 2, 1, 4, dtype=torch.float64)
    flow[0, 0, 0, 1] = -0.25
    flow[0, 0, 0, 0] = -0.5  # clamped to the border: all weight on column 0
    grad = torch.zeros_like(x)
    grad[0, 0, 0, :2] = 1
    for backend in BACKENDS.values():
        grad_x, _ = backend.warp_backward(grad, x, flow)
        torch.testing.assert_close(grad_x[0, 0, 0], torch.tensor([1.25, 0.75, 0, 0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_warp_half_precision(dtype):
    x = torch.randn(2, 3, 9, 10)
    flow = random_flow(2, 9, 10)
    grad = torch.randn_like(x)
    xh, fh, gh = x.to(dtype), flow.to(dtype), grad.to(dtype)
    out = compiled.warp_forward(xh, fh)
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference.warp_forward(xh, fh), **HALF_TOL[dtype])
    for got, want in zip(compiled.warp_backward(gh, xh, fh), reference.warp_backward(gh, xh, fh)):
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), want.float(), atol=0.3, rtol=5e-2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_warp_in_bfloat16_samples_at_float32_positions(backend):
    check_warp_samples_where_float32_does(BACKENDS[backend])


def test_warp_reference_backward_equals_autograd():
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    flow = random_flow(2, 6, 7, torch.float64).requires_grad_()
    grad = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    expected = torch.autograd.grad(reference.warp_forward(x, flow), (x, flow), grad)
    for e, g in zip(expected, reference.warp_backward(grad, x.detach(), flow.detach())):
        torch.testing.assert_close(g, e)


# -------------------------------------------------------------------- correlation


@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_correlation_compiled_matches_reference(case):
    b, c, h, w, *params = case
    a, bb = non_contiguous(torch.randn(b, c, h, w)), non_contiguous(torch.randn(b, c, h, w))
    out = compiled.correlation_forward(a, bb, *params)
    torch.testing.assert_close(out, reference.correlation_forward(a, bb, *params), atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(out)
    got = compiled.correlation_backward(grad, a, bb, *params)
    want = reference.correlation_backward(grad, a, bb, *params)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_correlation_reference_backward_equals_autograd(case):
    b, c, h, w, *params = case
    a = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    bb = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    out = reference.correlation_forward(a, bb, *params)
    grad = torch.randn_like(out)
    expected = torch.autograd.grad(out, (a, bb), grad)
    for e, g in zip(expected, reference.correlation_backward(grad, a.detach(), bb.detach(), *params)):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("backend", BACKENDS)
def test_correlation_finds_a_known_shift(backend):
    # b is a shifted by (dy, dx) = (2, -4): a[y, x] == b[y + 2, x - 4], so the
    # displacement (2, -4) (j = 1, i = -2 with stride2 = 2) holds the largest values.
    a = torch.randn(1, 16, 24, 24)
    b = torch.roll(a, shifts=(2, -4), dims=(2, 3))
    out = BACKENDS[backend].correlation_forward(a, b, 6, 1, 6, 1, 2)
    assert out.shape == (1, 49, 24, 24)
    r = 3
    peak = out[0, :, 8:16, 8:16].mean((1, 2)).argmax().item()
    assert peak == (1 + r) * (2 * r + 1) + (-2 + r)
    # and the value there is the mean over channels of a * a
    torch.testing.assert_close(out[0, peak, 12, 12], (a[0, :, 12, 12] ** 2).mean(), atol=1e-5, rtol=1e-5)


def test_correlation_output_size_formula():
    a = torch.randn(1, 2, 10, 9)
    for pad, k, md, s1, s2 in [(20, 1, 20, 1, 2), (3, 3, 2, 2, 1), (0, 1, 1, 3, 1)]:
        out = compiled.correlation_forward(a, a, pad, k, md, s1, s2)
        border = md + (k - 1) // 2
        expect_h = -(-(10 + 2 * pad - 2 * border) // s1)
        expect_w = -(-(9 + 2 * pad - 2 * border) // s1)
        assert out.shape == (1, (2 * (md // s2) + 1) ** 2, expect_h, expect_w)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_correlation_half_precision(dtype):
    a, b = torch.randn(2, 8, 9, 10), torch.randn(2, 8, 9, 10)
    params = (3, 1, 3, 1, 1)
    out = compiled.correlation_forward(a.to(dtype), b.to(dtype), *params)
    assert out.dtype == dtype
    want = reference.correlation_forward(a.to(dtype), b.to(dtype), *params)
    torch.testing.assert_close(out, want, **HALF_TOL[dtype])


# ------------------------------------------------------------------- channel norm


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 64, 4, 9)])
def test_channel_norm_compiled_matches_reference(shape):
    x = non_contiguous(torch.randn(shape))
    out = compiled.channel_norm_forward(x)
    torch.testing.assert_close(out, torch.linalg.vector_norm(x, dim=1, keepdim=True))
    torch.testing.assert_close(out, reference.channel_norm_forward(x))
    grad = torch.randn_like(out)
    torch.testing.assert_close(
        compiled.channel_norm_backward(grad, x, out), reference.channel_norm_backward(grad, x, out)
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_channel_norm_gradient_is_finite_at_zero(backend):
    x = torch.randn(1, 3, 2, 2)
    x[0, :, 0, 0] = 0
    out = BACKENDS[backend].channel_norm_forward(x)
    grad = BACKENDS[backend].channel_norm_backward(torch.ones_like(out), x, out)
    assert torch.isfinite(grad).all()
    assert (grad[0, :, 0, 0] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_channel_norm_half_precision(dtype):
    x = torch.randn(2, 32, 5, 6).to(dtype)
    out = compiled.channel_norm_forward(x)
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference.channel_norm_forward(x), **HALF_TOL[dtype])


# -------------------------------------------------------------------- determinism


def test_compiled_cpu_kernels_are_deterministic():
    x, flow = torch.randn(2, 5, 16, 18), random_flow(2, 16, 18)
    grad = torch.randn_like(x)
    a, b = torch.randn(2, 8, 12, 12), torch.randn(2, 8, 12, 12)
    runs = [
        (
            compiled.warp_forward(x, flow),
            *compiled.warp_backward(grad, x, flow),
            compiled.correlation_forward(a, b, 4, 1, 4, 1, 2),
            *compiled.correlation_backward(torch.ones(2, 25, 12, 12), a, b, 4, 1, 4, 1, 2),
        )
        for _ in range(3)
    ]
    for run in runs[1:]:
        for first, again in zip(runs[0], run):
            assert torch.equal(first, again)
