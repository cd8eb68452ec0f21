#!/usr/bin/env python
"""Train a FlowNet2 variant on generated pairs with exact flow (no data to download).

    python scripts/train_flownet.py --model FlowNet2S --steps 3000 --out runs/flownet2s

Writes OUT/<Model>_checkpoint.pth.tar (latest, resumable with --resume),
OUT/<Model>_model_best.pth.tar (lowest validation EPE; the official checkpoint
format, usable with compute_flow.py --checkpoint) and OUT/log.csv.
"""

from __future__ import annotations

import argparse
import sys

import torch

import flownet
from flownet.checkpoint import read_checkpoint
from flownet.training import FlowTrainingConfig, checkpoint_paths, train_flownet
from vid2vid.cli import command, image_size


@command
def main(argv: list[str] | None = None) -> int:
    defaults = FlowTrainingConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(flownet.MODELS), default=defaults.model)
    parser.add_argument("--size", type=image_size, default=(defaults.height, defaults.width),
                        help="HxW of the generated pairs, multiples of 64 (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate")
    parser.add_argument("--no-augment", action="store_true", help="no photometric augmentation")
    parser.add_argument("--train-pairs", type=int,
                        help="a fixed set of this many training pairs, cycled (default: fresh pairs every step)")
    parser.add_argument("--val-pairs", type=int, default=defaults.val_pairs, help="held-out generated pairs")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="steps between evaluations")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default="runs/flownet", help="output folder (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/<Model>_checkpoint.pth.tar")
    parser.add_argument("--init", help="start from this checkpoint of the same variant (fine-tuning)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader processes generating pairs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    config = FlowTrainingConfig(
        model=args.model, height=args.size[0], width=args.size[1], batch_size=args.batch_size,
        steps=args.steps, lr=args.lr, augment=not args.no_augment, train_pairs=args.train_pairs, val_pairs=args.val_pairs,
        eval_every=args.eval_every, seed=args.seed,
    )
    history = train_flownet(config, args.out, device=args.device, resume=args.resume, init=args.init,
                            workers=args.workers, progress=not args.quiet)
    _, best = checkpoint_paths(args.out, config.model)
    if not history:
        print(f"nothing to do: the run in {args.out} has done its {config.steps} steps already")
    print(f"best validation EPE {read_checkpoint(best)['best_EPE']:.3f} px; weights in {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
