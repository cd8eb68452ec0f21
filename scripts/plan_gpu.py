#!/usr/bin/env python
"""Plans one training iteration of a config for a GPU, without a GPU: the iteration runs on
torch's meta device (shapes, no data), which gives the parameters of each network, the peak
memory per GPU and what dominates it, the FLOPs, and a roofline lower bound of the time.

    python scripts/plan_gpu.py --config configs/vid2vid_cityscapes_2048x1024.yaml
    python scripts/plan_gpu.py --config configs/pix2pixhd_cityscapes_1024x512.yaml --gpu A100 --gpu-memory 40
    python scripts/plan_gpu.py --config configs/vid2vid_demo.yaml --size 256x256 train.amp=bf16

With --gpu-memory (GiB) it also finds the largest train.batch_size (vid2vid:
schedule.max_frames_per_gpu) whose iteration fits. The last line reads
``peak N.N GiB per GPU``. Not counted: cuDNN/cuBLAS workspaces and the
allocator's rounding and fragmentation; leave a margin of 10-20%. On a CUDA machine, --measure also
runs the iteration for real and prints its peak and time against the plan; --measure --profile then
prints the 15 kernels that take the most of one iteration's time and the share spent outside kernels.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from pathlib import Path

import torch

from vid2vid.cli import command, image_size
from vid2vid.config import ConfigError
from vid2vid.gpu_plan import FAMILIES, measure_iteration, plan_config, profile_iteration
from vid2vid.training.planning import GPUS, GiB, describe, find_gpu


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--model", choices=sorted(FAMILIES), help="the trainer (default: from the config's name)")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs of a DDP run (adds its gradient buckets)")
    parser.add_argument("--gpu", default="H100", help=f"the GPU of the roofline: {', '.join(g.name for g in GPUS.values())}")
    parser.add_argument("--gpu-memory", type=float, help="GiB per GPU: find the largest batch that fits")
    parser.add_argument("--size", type=image_size, help="HxW of the frames (default: from the preprocessing)")
    parser.add_argument("--measure", action="store_true",
                        help="on a CUDA machine, also run the iteration for real and print the measured peak and time")
    parser.add_argument("--profile", action="store_true",
                        help="with --measure: the 15 kernels that take the most time in one iteration, and the "
                             "share of it spent outside kernels (torch.profiler)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    args = parser.parse_args(argv)
    if args.profile and not args.measure:
        parser.error("--profile profiles the measured iteration: add --measure")
    if not args.config.is_file():
        raise ConfigError(f"no config file {str(args.config)!r}")
    gpu = find_gpu(args.gpu)
    if args.gpu_memory is not None:
        gpu = dataclasses.replace(gpu, memory=args.gpu_memory * GiB)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "no VGG weights": the plan needs none
        result = plan_config(args.config, args.overrides, model=args.model, gpus=args.gpus, size=args.size,
                             gpu=gpu if args.gpu_memory is not None else None)
    h, w = result.size
    print(f"{args.config} ({result.family}), frames {w}x{h}, {args.gpus} GPU(s)")
    print("\n".join(describe(result.plan, gpu)))
    if args.measure:
        if not torch.cuda.is_available():
            print("plan_gpu: --measure needs a CUDA GPU", file=sys.stderr)
            return 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peak, seconds = measure_iteration(args.config, args.overrides, model=args.model, size=args.size)
        planned = result.plan.peak_bytes
        print(f"measured on {torch.cuda.get_device_name()}: peak {peak / GiB:.2f} GiB allocated "
              f"(plan {planned / GiB:.2f} GiB, {100 * (planned - peak) / peak:+.1f}%), {1e3 * seconds:.1f} ms per "
              f"iteration (roofline bound on {gpu.name}: {1e3 * result.plan.roofline_seconds[gpu.name]:.1f} ms)")
        if args.profile:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                profiled = profile_iteration(args.config, args.overrides, model=args.model, size=args.size)
            print("profile of one iteration:\n" + "\n".join(profiled.table()))
    if result.fits is not None:
        key, largest, current = result.fits
        print(f"largest {key} that fits {args.gpu_memory:g} GiB: {largest} (the config has {current})")
    print(f"peak {result.plan.peak_bytes / GiB:.1f} GiB per GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
