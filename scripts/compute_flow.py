#!/usr/bin/env python
"""Optical flow of a video or a folder of frames with FlowNet2, or with DIS (no weights).

    python scripts/compute_flow.py INPUT --checkpoint FlowNet2_checkpoint.pth.tar --output OUT
    python scripts/compute_flow.py --dataset ROOT --phase train --checkpoint FlowNet2_checkpoint.pth.tar
    python scripts/compute_flow.py --dataset ROOT --phase train --method dis

--method dis uses OpenCV's DIS flow (medium preset, CPU; pip install
opencv-python-headless): no weights needed, less accurate than FlowNet2.

INPUT is a video file (anything PyAV decodes) or a folder of PNG/JPG frames.
Writes OUT/flow/NNNNN.flo (Middlebury .flo, flow from frame N to N+1),
OUT/color/NNNNN.png (colour-coded flow) and OUT/flow.mp4.

With --dataset, the reference flows of a vid2vid dataset instead: for every
sequence of ROOT/<phase>_B, ROOT/<phase>_flow/<sequence>/NNNNN.flo holding the
flow from frame N+1 back to frame N (what model.flow_source=files reads).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import flownet
from flownet.dis import dis_flow, require_dis
from flownet.sequence import (NO_CHECKPOINT_MESSAGE, compute_dataset_flow, compute_sequence_flow,
                              default_batch_size, flownet2_estimator)
from vid2vid.cli import command
from vid2vid.training.trainer import AMP_DTYPES


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="video file or folder of frames")
    parser.add_argument("--dataset", help="vid2vid dataset folder: write <phase>_flow/ for its <phase>_B/ sequences")
    parser.add_argument("--phase", default="train", help="dataset phase with --dataset (default train)")
    parser.add_argument("--method", choices=["flownet2", "dis"], default="flownet2",
                        help="FlowNet2 (needs --checkpoint; default) or DIS (OpenCV, no weights)")
    parser.add_argument("--checkpoint", help="FlowNet2 checkpoint (.pth.tar or state dict)")
    parser.add_argument("--model", choices=sorted(flownet.MODELS), help="variant (default: inferred from the weights)")
    parser.add_argument("--output", default="flow_out", help="output folder (default: flow_out)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fit", choices=["resize", "pad"], default="resize",
                        help="reach multiples of 64 by resizing (default) or padding")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="autocast precision on a GPU")
    parser.add_argument("--batch-size", type=int,
                        help="frame pairs per call of the network (default: 8 for FlowNet2 on a GPU, else 1)")
    parser.add_argument("--compile", action="store_true",
                        help="FlowNet2 compiled (torch.compile; CUDA graphs on a GPU): about a minute first, then "
                             "faster on long videos of one frame size")
    parser.add_argument("--max-frames", type=int, help="read at most this many frames")
    parser.add_argument("--fps", type=float, default=10, help="frame rate of flow.mp4")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.dataset is None):
        parser.error("give either INPUT or --dataset ROOT")

    if args.method == "flownet2" and not args.checkpoint:
        print(NO_CHECKPOINT_MESSAGE, file=sys.stderr)
        return 2
    if args.method == "dis":
        require_dis()
        estimator = dis_flow
    else:
        amp = AMP_DTYPES.get(args.amp)
        estimator = flownet2_estimator(args.checkpoint, args.model, device=args.device, fit=args.fit, amp=amp,
                                       compile=args.compile)
    batch_size = args.batch_size or (default_batch_size(args.device) if args.method == "flownet2" else 1)
    start = time.perf_counter()
    if args.dataset:
        count = compute_dataset_flow(estimator, args.dataset, args.phase, batch_size=batch_size)
        written = f"{args.dataset}/{args.phase}_flow"
    else:
        count = compute_sequence_flow(estimator, args.input, args.output, max_frames=args.max_frames, fps=args.fps,
                                      batch_size=batch_size)
        written = f"{args.output}/flow, colour frames to {args.output}/color and {args.output}/flow.mp4"
    seconds = time.perf_counter() - start
    print(f"wrote {count} flows to {written} ({count / seconds:.1f} pairs/s, {batch_size} a batch, files included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
