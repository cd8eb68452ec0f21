"""CUDA backends (compiled and CuPy) against the reference. Skipped without a GPU."""

import pytest
import torch

from vid2vid.ops import reference
from vid2vid.ops.backends import _availability
from tests.ops_cases import (CORRELATION_CASES, DTYPES, WARP_SHAPES, check_channel_norm, check_correlation,
                              check_warp, compare, random_flow)

pytestmark = pytest.mark.cuda


@pytest.fixture(params=["compiled", "cupy"])
def cuda_backend(request):
    module, why = _availability(request.param, "cuda")
    if module is None:
        pytest.skip(f"{request.param} backend unavailable: {why}")
    return module


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WARP_SHAPES)
def test_warp_cuda(cuda_backend, dtype, shape):
    check_warp(cuda_backend, dtype, shape, "cuda")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_correlation_cuda(cuda_backend, dtype, case):
    check_correlation(cuda_backend, dtype, case, "cuda")


def test_correlation_cuda_flownetc_size(cuda_backend):
    a, b = torch.randn(1, 256, 32, 48, device="cuda"), torch.randn(1, 256, 32, 48, device="cuda")
    out = cuda_backend.correlation_forward(a, b, 20, 1, 20, 1, 2)
    assert out.shape == (1, 441, 32, 48) and out.device.type == "cuda"
    compare(out, reference.correlation_forward(a, b, 20, 1, 20, 1, 2), torch.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_norm_cuda(cuda_backend, dtype):
    check_channel_norm(cuda_backend, dtype, device="cuda")


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
