"""CUDA backends (compiled and CuPy) against the reference. Skipped without a GPU."""

import pytest
import torch

from vid2vid.ops import reference
from vid2vid.ops.backends import _availability
from tests.ops_cases import (CORRELATION_CASES, DTYPES, WARP_SHAPES, check_channel_norm, check_correlation,
                              check_warp, check_warp_samples_where_float32_does, compare, random_flow)

pytestmark = pytest.mark.cuda


@pytest.fixture(params=["compiled", "cupy"])
def cuda_backend(request):
    module, why = _availability(request.param, "cuda")
    if module is None:
        pytest.skip(f"{request.param} backend unavailable: {why}")
    return module


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", WARP_SHAPES + [(2, 6, 9, 11)])  # 6 channels: a batch of 4 and 2 one by one
def test_warp_cuda(cuda_backend, dtype, shape):
    check_warp(cuda_backend, dtype, shape, "cuda")


def test_warp_cuda_in_bfloat16_samples_at_float32_positions(cuda_backend):
    check_warp_samples_where_float32_does(cuda_backend, "cuda")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_correlation_cuda(cuda_backend, dtype, case):
    check_correlation(cuda_backend, dtype, case, "cuda")


def test_correlation_cuda_flownetc_size(cuda_backend):
    a, b = torch.randn(1, 256, 32, 48, device="cuda"), torch.randn(1, 256, 32, 48, device="cuda")
    out = cuda_backend.correlation_forward(a, b, 20, 1, 20, 1, 2)
    assert out.shape == (1, 441, 32, 48) and out.device.type == "cuda"
    compare(out, reference.correlation_forward(a, b, 20, 1, 20, 1, 2), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_correlation_cuda_both_passes_at_flownetc_settings(cuda_backend, dtype):
    # 256 channels: several chunks; 441 displacements in rows of 21; 40 columns: a full tile and a partial one
    check_correlation(cuda_backend, dtype, (2, 256, 12, 40, 20, 1, 20, 1, 2), "cuda")


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
