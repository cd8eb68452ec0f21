#!/usr/bin/env python
"""Evaluate a FlowNet2 checkpoint: endpoint error on held-out generated pairs,
and the photometric warping error on real consecutive frames.

    python scripts/eval_flownet.py --checkpoint runs/flownet2s/FlowNet2S_model_best.pth.tar --frames clip.mp4
    python scripts/eval_flownet.py --checkpoint CKPT --amp bf16    # what bf16 autocast changes in the flow

The generated pairs are the validation split of scripts/train_flownet.py (same
seed and size as the training run when the checkpoint came from it), never
seen in training. --frames takes a video file or a folder of frames and may be
given several times. --amp also runs the generated pairs under autocast (on a CPU too) and prints its EPE
and how far its flow lies from the float32 flow.
"""

from __future__ import annotations

import argparse
import sys

import torch

import flownet
from flownet.evaluation import frame_pair_warping, precision_report, synthetic_epe, zero_flow_epe
from flownet.sequence import NO_CHECKPOINT_MESSAGE
from flownet.synthetic import SyntheticFlowDataset
from flownet.training import read_training_config
from vid2vid.cli import command, image_size
from vid2vid.data.frames import iter_frames
from vid2vid.training.trainer import AMP_DTYPES


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="FlowNet2 checkpoint (.pth.tar or state dict)")
    parser.add_argument("--model", choices=sorted(flownet.MODELS), help="variant (default: inferred from the weights)")
    parser.add_argument("--size", type=image_size,
                        help="HxW of the generated pairs (default: the training run's, else 256x256)")
    parser.add_argument("--val-pairs", type=int, help="generated pairs (default: the training run's, else 64)")
    parser.add_argument("--seed", type=int, help="seed of the generated set (default: the training run's, else 0)")
    parser.add_argument("--frames", action="append", default=[], help="video or folder of real frames")
    parser.add_argument("--max-pairs", type=int, default=50, help="frame pairs per --frames source")
    parser.add_argument("--fit", choices=["resize", "pad"], default="resize")
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="also score the generated pairs under autocast")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    if not args.checkpoint:
        print(NO_CHECKPOINT_MESSAGE, file=sys.stderr)
        return 2
    model = flownet.load_checkpoint(args.checkpoint, args.model).to(args.device).eval()
    trained = read_training_config(args.checkpoint)
    height, width = args.size or ((trained.height, trained.width) if trained else (256, 256))
    pairs = args.val_pairs or (trained.val_pairs if trained else 64)
    seed = args.seed if args.seed is not None else (trained.seed if trained else 0)
    val_set = SyntheticFlowDataset(pairs, height, width, seed=seed, split="val")
    print(f"{type(model).__name__} from {args.checkpoint}")
    print(f"generated pairs ({pairs} of {height}x{width}, seed {seed}): "
          f"EPE {synthetic_epe(model, val_set):.3f} px (zero flow: {zero_flow_epe(val_set):.3f} px)")
    if args.amp:
        report = precision_report(model, val_set, AMP_DTYPES[args.amp])
        print(f"under {args.amp} autocast: EPE {report.reduced:.3f} px (float32 {report.full:.3f} px); "
              f"{report.between:.3f} px from the float32 flow")
    for source in args.frames:
        report = frame_pair_warping(model, iter_frames(source), max_pairs=args.max_pairs, fit=args.fit)
        print(f"{source} ({report.pairs} frame pairs): warping error {report.model_error:.2f} "
              f"(zero flow: {report.zero_flow_error:.2f}) RGB levels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
