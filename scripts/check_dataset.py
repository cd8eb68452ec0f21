#!/usr/bin/env python
"""Check a sequence dataset before training: frame counts and sizes across
train_A/train_B/train_inst/train_flow, readable images and .flo files, label
values within label_nc, sequence lengths against n_frames_total.

    python scripts/check_dataset.py datasets/mine --label-nc 35 --n-frames-total 8
    python scripts/check_dataset.py datasets/mine --config configs/pix2pixhd_cityscapes_1024x512.yaml

Prints a summary and every problem with its file; exits with 1 when there are problems.
--config takes model.label_nc from a pix2pixHD config, and from a vid2vid config
model.label_nc (label inputs) and schedule.n_frames_total.
"""

from __future__ import annotations

import argparse
import sys

from vid2vid.cli import command
from vid2vid.config import load_config, read_sections
from vid2vid.data.checker import check_sequence_dataset
from vid2vid.models.pix2pixhd import Pix2PixHDConfig
from vid2vid.models.vid2vid import Vid2VidConfig


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="dataset folder")
    parser.add_argument("--phase", default="train")
    parser.add_argument("--config", help="a pix2pixHD or vid2vid config to take label_nc (and n_frames_total) from")
    parser.add_argument("--label-nc", type=int, help="the inputs are label ids below this")
    parser.add_argument("--n-frames-total", type=int, help="the shortest sequence length training needs")
    args = parser.parse_args(argv)
    label_nc, n_frames_total = args.label_nc, args.n_frames_total
    if args.config:
        if "schedule" in read_sections(args.config):  # a vid2vid config
            config = load_config(Vid2VidConfig, args.config)
            label_nc = config.model.label_nc if config.data.input == "labels" else None
            n_frames_total = n_frames_total or config.schedule.n_frames_total
        else:
            label_nc = load_config(Pix2PixHDConfig, args.config).model.label_nc or None
    report = check_sequence_dataset(args.root, args.phase, label_nc=label_nc, n_frames_total=n_frames_total)
    print(report.summary())
    for problem in report.problems:
        print(f"  {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
