#!/usr/bin/env python
"""Check a sequence dataset before training: frame counts and sizes across
train_A/train_B/train_inst/train_flow, readable images and .flo files, label
values within label_nc, sequence lengths against n_frames_total.

    python scripts/check_dataset.py datasets/mine --label-nc 35 --n-frames-total 8
    python scripts/check_dataset.py datasets/mine --config configs/pix2pixhd_cityscapes_1024x512.yaml

Prints a summary and every problem with its file; exits with 1 when there are problems.
--config takes model.label_nc from a pix2pixHD config.
"""

from __future__ import annotations

import argparse
import sys

from vid2vid.config import ConfigError, load_config
from vid2vid.data.checker import check_sequence_dataset
from vid2vid.models.pix2pixhd import Pix2PixHDConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="dataset folder")
    parser.add_argument("--phase", default="train")
    parser.add_argument("--config", help="a config to take label_nc from")
    parser.add_argument("--label-nc", type=int, help="the inputs are label ids below this")
    parser.add_argument("--n-frames-total", type=int, help="the shortest sequence length training needs")
    args = parser.parse_args(argv)
    label_nc = args.label_nc
    if args.config:
        try:
            label_nc = load_config(Pix2PixHDConfig, args.config).model.label_nc or None
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    report = check_sequence_dataset(args.root, args.phase, label_nc=label_nc, n_frames_total=args.n_frames_total)
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
