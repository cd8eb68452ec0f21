"""CUDA backends (compiled and CuPy) against the reference. Skipped without a GPU."""

import pytest
import torch

from vid2vid.ops import reference
from vid2vid.ops.backends import _availability
from tests.ops_cases import CORRELATION_CASES, WARP_SHAPES, non_contiguous, random_flow

pytestmark = pytest.mark.cuda

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
TOL = {
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float64: dict(atol=1e-10, rtol=1e-10),
    torch.float16: dict(atol=3e-2, rtol=3e-2),
    torch.bfloat16: dict(atol=2e-1, rtol=1e-1),
}


@pytest.fixture(params=["compiled", "cupy"])
def cuda_backend(request):
    module, why = _availability(request.param, "cuda")
    if module is None:
        pytest.skip(f"{request.param} backend unavailable: {why}")
    return module


def _compare(got, want, dtype):
    assert got.dtype == want.dtype and got.device.type == "cuda"
    torch.testing.assert_close(got.cpu().double(), want.cpu().double(), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WARP_SHAPES)
def test_warp_cuda(cuda_backend, dtype, shape):
    b, c, h, w = shape
    x = non_contiguous(torch.randn(shape, device="cuda").to(dtype))
    flow = random_flow(b, h, w, device="cuda").to(dtype)
    grad = torch.randn(shape, device="cuda").to(dtype)
    _compare(cuda_backend.warp_forward(x, flow), reference.warp_forward(x, flow), dtype)
    for got, want in zip(cuda_backend.warp_backward(grad, x, flow), reference.warp_backward(grad, x, flow)):
        # half-precision flow gradients sum many rounded products: compare loosely
        if dtype in (torch.float16, torch.bfloat16):
            torch.testing.assert_close(got.float(), want.float(), atol=0.5, rtol=0.1)
        else:
            _compare(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_correlation_cuda(cuda_backend, dtype, case):
    b, c, h, w, *params = case
    a = non_contiguous(torch.randn(b, c, h, w, device="cuda").to(dtype))
    bb = torch.randn(b, c, h, w, device="cuda").to(dtype)
    out = cuda_backend.correlation_forward(a, bb, *params)
    _compare(out, reference.correlation_forward(a, bb, *params), dtype)
    grad = torch.randn_like(out)
    for got, want in zip(cuda_backend.correlation_backward(grad, a, bb, *params),
                         reference.correlation_backward(grad, a, bb, *params)):
        _compare(got, want, dtype)


def test_correlation_cuda_flownetc_size(cuda_backend):
    a, b = torch.randn(1, 256, 32, 48, device="cuda"), torch.randn(1, 256, 32, 48, device="cuda")
    out = cuda_backend.correlation_forward(a, b, 20, 1, 20, 1, 2)
    assert out.shape == (1, 441, 32, 48)
    _compare(out, reference.correlation_forward(a, b, 20, 1, 20, 1, 2), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_norm_cuda(cuda_backend, dtype):
    x = non_contiguous(torch.randn(2, 33, 7, 9, device="cuda").to(dtype))
    x[0, :, 0, 0] = 0
    out = cuda_backend.channel_norm_forward(x)
    _compare(out, reference.channel_norm_forward(x), dtype)
    grad = torch.randn_like(out)
    got = cuda_backend.channel_norm_backward(grad, x, out)
    assert torch.isfinite(got.float()).all()
    _compare(got, reference.channel_norm_backward(grad, x, out), dtype)


def test_public_ops_on_cuda_gradcheck():
    import vid2vid.ops as ops

    x = torch.randn(1, 2, 5, 6, device="cuda", dtype=torch.float64, requires_grad=True)
    flow = random_flow(1, 5, 6, torch.float64, "cuda").requires_grad_()
    assert torch.autograd.gradcheck(ops.warp, (x, flow))
    a = torch.randn(1, 3, 6, 6, device="cuda", dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: ops.correlation(p, q, 2, 1, 2, 1, 1), (a, a.detach().clone()
                                                                                       .requires_grad_()))
    assert torch.autograd.gradcheck(ops.channel_norm, (a,))
    torch.library.opcheck(torch.ops.vid2vid.warp.default, (x, flow))
