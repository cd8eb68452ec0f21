"""Inputs shared by the operator tests."""

import torch

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
