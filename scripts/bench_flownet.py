#!/usr/bin/env python
"""FlowNet2's inference throughput: frame pairs per second at one frame size, for each batch size,
precision and memory format of the weights, through flownet.estimate (what compute_flow.py and the flow
of training runs use).

    python scripts/bench_flownet.py                  # 448x1024, batches 1 and 8, fp32 and bf16, both formats
    python scripts/bench_flownet.py --device cpu --size 64x128 --batches 1 --dtypes fp32 --formats nchw
    python scripts/bench_flownet.py --formats compiled --dtypes bf16   # compute_flow.py --compile

The weights are random (the time does not depend on them; nothing is downloaded). Each setting is warmed
up, then called until --seconds have passed; one line each:
``FlowNet2 HxW batch B DTYPE FORMAT: N pairs/s``. ``channels_last`` is what flownet2_estimator uses on a GPU;
``compiled`` is that, as flownet.CompiledFlowNet (compute_flow.py --compile): each setting compiles anew
first (about a minute on a GPU), and only the calls after the warm-up are timed.
"""

from __future__ import annotations

import argparse
import time

import torch

import flownet
from flownet.estimate import estimate
from vid2vid.cli import command, image_size
from vid2vid.training.trainer import AMP_DTYPES

DTYPES = {"fp32": None, **AMP_DTYPES}
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last, "compiled": torch.channels_last}


def pairs_per_second(model: torch.nn.Module, batch: int, size: tuple[int, int], amp: torch.dtype | None,
                     device: torch.device, seconds: float) -> float:
    """Frame pairs per second of ``estimate`` on random frames of ``size`` (H, W), ``batch`` pairs a call."""
    generator = torch.Generator(device).manual_seed(0)
    frames = [torch.rand(batch, 3, *size, generator=generator, device=device) * 255 for _ in range(2)]

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):  # warm-up: cuDNN's algorithm search, the allocator; compiled: compiling, recording
        estimate(model, *frames, amp=amp)
    synchronize()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        estimate(model, *frames, amp=amp)
        calls += 1
        if calls % 4 == 0:
            synchronize()
    synchronize()
    return calls * batch / (time.perf_counter() - start)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=image_size, default=(448, 1024), help="HxW of the frames (default 448x1024)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["fp32", "bf16"])
    parser.add_argument("--formats", nargs="+", choices=sorted(FORMATS), default=["nchw", "channels_last"],
                        help="memory formats of the weights (and so of every convolution's output)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time each setting at least this long")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    height, width = args.size
    device = torch.device(args.device)
    model = flownet.FlowNet2().to(device).eval()
    for memory_format in args.formats:
        model = model.to(memory_format=FORMATS[memory_format])
        for batch in args.batches:
            for name in args.dtypes:
                timed = flownet.CompiledFlowNet(model).eval() if memory_format == "compiled" else model
                rate = pairs_per_second(timed, batch, (height, width), DTYPES[name], device, args.seconds)
                print(f"FlowNet2 {height}x{width} batch {batch} {name} {memory_format}: {rate:.1f} pairs/s",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
