#!/usr/bin/env python
"""A short demonstration of vid2vid.ops on a synthetic frame pair.

Moves a textured frame by a known flow with warp(), finds the motion again
with FlowNetC's correlation, warps the second frame back onto the first, and
prints which backend ran each operator and how long it took.

    python scripts/demo_ops.py [--device cuda] [--size 256x384]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

import vid2vid.ops as ops
from vid2vid.cli import command, image_size


def textured_frame(height: int, width: int, device: str, seed: int = 0) -> torch.Tensor:
    """(1, 3, H, W) smooth random colour texture in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=g)
    fine = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return fine.clamp(0, 1).to(device)


def timed(fn):
    """fn's result and the milliseconds of a second call (the first loads the backend)."""
    fn()
    start = time.perf_counter()
    out = fn()
    if isinstance(out, torch.Tensor) and out.is_cuda:
        torch.cuda.synchronize()
    return out, (time.perf_counter() - start) * 1e3


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=image_size, default=(256, 384), help="HxW of the frames")
    args = parser.parse_args(argv)
    height, width = args.size
    device = args.device

    print("Backends (operator, tensor device, backend and why):")
    print(ops.format_backend_info())
    print()

    frame1 = textured_frame(height, width, device)
    # frame2[y, x] = frame1[y - 4, x + 8]: the content moves 8 px left and 4 px down.
    motion = torch.tensor([8.0, -4.0], device=device).view(1, 2, 1, 1).expand(1, 2, height, width)
    frame2, t_warp = timed(lambda: ops.warp(frame1, motion.contiguous()))
    print(f"warp         {tuple(frame1.shape)} by a constant flow (8, -4) px      {t_warp:7.2f} ms")

    # Correlate features at 1/4 resolution, as FlowNetC does at 1/8: the peak
    # displacement d satisfies frame1[p] ~ frame2[p + d], i.e. d = (dy, dx) = (4, -8) / 4 = (1, -2).
    f1, f2 = F.avg_pool2d(frame1 - 0.5, 4), F.avg_pool2d(frame2 - 0.5, 4)
    corr, t_corr = timed(lambda: ops.correlation(f1, f2, pad_size=4, kernel_size=1, max_displacement=4,
                                                 stride1=1, stride2=1))
    r = 4
    interior = corr[0, :, r:-r, r:-r].mean((1, 2))
    best = int(interior.argmax())
    dy, dx = best // (2 * r + 1) - r, best % (2 * r + 1) - r
    print(f"correlation  {tuple(f1.shape)} -> {tuple(corr.shape)}, peak at (dy, dx) = ({dy}, {dx}) "
          f"at 1/4 scale  {t_corr:7.2f} ms")

    back = torch.tensor([-8.0, 4.0], device=device).view(1, 2, 1, 1).expand(1, 2, height, width).contiguous()
    restored = ops.warp(frame2, back)
    error, t_norm = timed(lambda: ops.channel_norm(restored - frame1))
    inner = error[..., 8:-8, 8:-8]
    print(f"channel_norm of the error after warping back: max {inner.max().item():.2e} "
          f"inside an 8 px border                          {t_norm:7.2f} ms")

    flow = motion.contiguous().requires_grad_()
    loss = (ops.warp(frame1, flow) - frame2).abs().mean()
    loss.backward()
    print(f"gradient of an L1 warp loss w.r.t. the flow: finite = {bool(torch.isfinite(flow.grad).all())}")
    ok = inner.max().item() < 1e-5 and (dy, dx) == (1, -2)
    print("\nOK: the operators recovered the motion." if ok else "\nUNEXPECTED RESULT: see the numbers above.")
    raise SystemExit(0 if ok else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
