#!/usr/bin/env python
"""Train pix2pixHD (Wang et al. 2018) on label maps, instance maps and images.

    python scripts/train_pix2pixhd.py                       # the built-in demo: generated scenes
    python scripts/train_pix2pixhd.py --config configs/pix2pixhd_cityscapes_1024x512.yaml \\
        --output runs/city512 --vgg-weights ~/vgg19-dcbb9e9d.pth
    torchrun --standalone --nproc_per_node=2 scripts/train_pix2pixhd.py ...

Same options as train_pix2pix.py (--config, --output, --max-iters, --resume,
section.key=value overrides). The VGG loss needs ImageNet VGG19 weights
(torchvision's vgg19-dcbb9e9d.pth): --vgg-weights, or torchvision's cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vid2vid.data.demo import build_label_demo_dataset
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, label_dataset
from vid2vid.training.launch import dataset_root, train_main, training_parser

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "pix2pixhd_demo.yaml"


def build(config: Pix2PixHDConfig, dist, output: Path):
    root = dataset_root(config.data.root, output, dist, build_label_demo_dataset)
    task = Pix2PixHD(config.model, config.train, dist.device)
    dataset = label_dataset(config, root, "train", multiple=task.multiple)
    return task, dataset


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, DEFAULT_CONFIG, "runs/pix2pixhd_demo")
    parser.add_argument("--vgg-weights", help="ImageNet VGG19 weights for the perceptual loss (model.vgg_weights)")
    return train_main(argv, Pix2PixHDConfig, parser, build,
                      lambda args: [f"model.vgg_weights={args.vgg_weights}"] if args.vgg_weights else [])


if __name__ == "__main__":
    sys.exit(main())
