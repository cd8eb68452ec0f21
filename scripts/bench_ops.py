#!/usr/bin/env python
"""Times vid2vid.ops on every available backend against plain PyTorch.

For each operator, at the sizes FlowNet2 and vid2vid use, prints forward and
forward+backward times of each backend and of a baseline written with plain
PyTorch, and each time's ratio to the baseline (above 1: faster):

* warp: grid_sample(bilinear, border, align_corners=True) with its grid built from the flow,
* correlation: the displacement loop of vid2vid.ops.reference, differentiated by autograd,
* channel_norm: torch.linalg.vector_norm over channels.

Each operator and size also gets its bytes moved (each tensor read or written
once) and its FLOPs, and from them the roofline lower bound of its time on an
H100 (3.35 TB/s, 67 TFLOP/s fp32); a GPU run prints each time's share of that
bound. On a GPU it also measures the copy bandwidth of the device and reports
the warp forward's effective bandwidth as a fraction of it.

    python scripts/bench_ops.py                 # CPU, and CUDA when present
    python scripts/bench_ops.py --device cpu --quick
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from typing import Callable

import torch

import vid2vid.ops as ops
from vid2vid.cli import command
from vid2vid.ops import backends, reference


def timed(fns: list[Callable[[], object]], device: str, min_time: float) -> list[float]:
    """Median seconds of one call of each of fns, called in turn until each has
    had min_time: taking turns spreads the noise of a shared machine evenly over
    the implementations being compared."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    sync()
    start = time.perf_counter()
    while time.perf_counter() - start < min_time * len(fns) or len(times[0]) < 3:
        for fn, fn_times in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            sync()
            fn_times.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def forward_backward(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> Callable[[], None]:
    leaves = [x.detach().requires_grad_() for x in inputs]

    def run() -> None:
        out = fn(*leaves)
        out.backward(torch.ones_like(out))
        for leaf in leaves:
            leaf.grad = None

    return run


def with_backend(name: str, fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def call(*args: torch.Tensor) -> torch.Tensor:
        os.environ[backends.ENV_VAR] = name
        return fn(*args)

    return call


def available_backends(device: str) -> list[str]:
    return [name for name in backends.BACKENDS if backends._availability(name, device)[0] is not None]


# The roofline of the README and of the bound column: an H100 SXM.
H100_BANDWIDTH, H100_FP32 = 3.35e12, 67e12


def work(op: str, inputs: tuple[torch.Tensor, ...], backward: bool) -> tuple[float, float]:
    """(bytes moved, FLOPs) of one call, forward or forward+backward, each tensor read or
    written once; float32 accumulators of the backward counted at 4 bytes."""
    x = inputs[0]
    size = x.element_size()
    if op == "warp":
        b, c, h, w = x.shape
        image, flow, pixels = b * c * h * w, b * 2 * h * w, b * h * w
        moved, flops = (2 * image + flow) * size, 8 * image + 12 * pixels  # 3 lerps per value, the sample per pixel
        if backward:  # reads grad, input, flow; writes the input gradient (float32) and the flow gradient
            moved, flops = moved + (2 * image + 2 * flow) * size + 4 * image, flops + 20 * image + 12 * pixels
        return moved, flops
    if op == "correlation":
        b, c, h, w = x.shape
        displacements, out_h, out_w, window = 441, h, w, 1  # FlowNetC's (20, 1, 20, 1, 2) keeps the size
        products = b * displacements * out_h * out_w * c * window
        moved, flops = (2 * b * c * h * w + b * displacements * out_h * out_w) * size, 2 * products
        if backward:
            moved, flops = moved + (b * displacements * out_h * out_w + 4 * b * c * h * w) * size, flops + 4 * products
        return moved, flops
    b, c, h, w = x.shape  # channel_norm
    moved, flops = (b * c * h * w + b * h * w) * size, 2 * b * c * h * w
    if backward:
        moved, flops = moved + (2 * b * c * h * w + 2 * b * h * w) * size, flops + 2 * b * c * h * w
    return moved, flops


def roofline_bound(moved: float, flops: float) -> float:
    """Seconds an H100 needs at least: the longer of moving the bytes and doing the FLOPs."""
    return max(moved / H100_BANDWIDTH, flops / H100_FP32)


def smooth_flow(b: int, h: int, w: int, device: str, reach: float = 8.0) -> torch.Tensor:
    """A flow as optical flows are, smooth but for edges: random at 1/16 of the size, upsampled bilinearly,
    up to `reach` pixels. (A flow random pixel by pixel, as the first runs timed, makes neighbours sample
    far apart: it defeats the caches and the warp backward's folding of neighbours' corners.)"""
    coarse = (torch.rand(b, 2, max(h // 16, 2), max(w // 16, 2), device=device) * 2 - 1) * reach
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)


def cases(device: str, quick: bool):
    """(operator, size label, baseline, public op, inputs)."""
    s = 4 if quick else 1
    gpu = device == "cuda"
    # on a GPU also at issue 25's sizes: vid2vid's features at 256x512 (batch 8), and 2048x1024 images
    warp_sizes = [(1, 3, 512 // s, 1024 // s), (4, 3, 256 // s, 512 // s), (4, 64, 128 // s, 256 // s)]
    warp_sizes += [(8, 64, 256, 512), (4, 3, 1024, 2048)] if gpu and not quick else []
    for b, c, h, w in warp_sizes:
        x = torch.randn(b, c, h, w, device=device)
        yield "warp", f"{b}x{c}x{h}x{w}", reference.warp_with_grid_sample, ops.warp, (x, smooth_flow(b, h, w, device))
    # FlowNetC: conv3 features (C=256) at 1/8 of a 512x1024 frame, 441 displacements; on a GPU also in
    # bfloat16 (which must beat float32), and at issue 25's size, a batch of 8 at 448x1024
    params = (20, 1, 20, 1, 2)
    sizes = [(1, 256, 64 // s, 128 // s)] + ([(8, 256, 56, 128)] if gpu and not quick else [])
    for (b, c, h, w), dtype in itertools.product(sizes, (torch.float32, torch.bfloat16) if gpu else (torch.float32,)):
        a, bb = (torch.randn(b, c, h, w, device=device, dtype=dtype) for _ in range(2))
        name = f"{b}x{c}x{h}x{w} d=441" + (" bf16" if dtype == torch.bfloat16 else "")
        yield ("correlation", name, lambda p, q: reference.correlation_forward(p, q, *params),
               lambda p, q: ops.correlation(p, q, *params), (a, bb))
    x = torch.randn(4, 256, 64 // s, 128 // s, device=device)
    yield ("channel_norm", "4x256x{}x{}".format(64 // s, 128 // s),
           lambda t: torch.linalg.vector_norm(t, dim=1, keepdim=True), ops.channel_norm, (x,))


def copy_bandwidth(device: str, min_time: float) -> float:
    src = torch.empty(256 * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / timed([lambda: dst.copy_(src)], device, min_time)[0]


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="sizes 4x smaller per side")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds to time each measurement")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    saved_env = os.environ.get(backends.ENV_VAR)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    for device in devices:
        names = available_backends(device)
        bandwidth = copy_bandwidth(device, args.min_time) if device == "cuda" else None
        print(f"\n{device}: backends {', '.join(names)}"
              + (f"; copy bandwidth {bandwidth / 1e9:.0f} GB/s" if bandwidth else ""))
        print(f"{'operator':<13}{'size':<26}{'pass':<9}{'implementation':<16}{'ms':>10}{'vs baseline':>13}"
              + ("   of H100 bound" if device == "cuda" else ""))
        for op, size, baseline, public, inputs in cases(device, args.quick):
            for label, make in (("fwd", lambda f: (lambda: f(*inputs))),
                                ("fwd+bwd", lambda f: forward_backward(f, *inputs))):
                moved, flops = work(op, inputs, backward=label == "fwd+bwd")
                bound = roofline_bound(moved, flops)
                print(f"{op:<13}{size:<26}{label:<9}{moved / 1e6:.1f} MB moved, {flops / 1e9:.3f} GFLOP, "
                      f"H100 roofline bound {bound * 1e6:.1f} us")
                base, *times = timed([make(baseline)] + [make(with_backend(f"{device}={name}", public))
                                                         for name in names], device, args.min_time)
                share = lambda t: f"{100 * bound / t:>12.0f}%" if device == "cuda" else ""  # noqa: E731
                print(f"{'':<13}{'':<26}{'':<9}{'baseline':<16}{base * 1e3:>10.3f}{1.0:>12.2f}x{share(base)}")
                for name, t in zip(names, times):
                    extra = ""
                    if op == "warp" and label == "fwd" and bandwidth:
                        extra = f"  {moved / t / 1e9:.0f} GB/s = {100 * moved / t / bandwidth:.0f}% of copy"
                    print(f"{'':<13}{'':<26}{'':<9}{name:<16}{t * 1e3:>10.3f}{base / t:>12.2f}x{share(t)}{extra}")
    if saved_env is None:
        os.environ.pop(backends.ENV_VAR, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
