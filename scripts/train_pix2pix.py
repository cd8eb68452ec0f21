#!/usr/bin/env python
"""Train pix2pix (Isola et al. 2017) on paired images.

    python scripts/train_pix2pix.py                       # the built-in demo: edges -> shapes
    python scripts/train_pix2pix.py --config configs/pix2pix_facades.yaml --output runs/facades
    python scripts/train_pix2pix.py --output runs/demo --resume train.max_iters=400 model.ngf=32
    torchrun --nproc_per_node=2 scripts/train_pix2pix.py ...   # data parallel

Writes OUTPUT/config.yaml, OUTPUT/checkpoints/{iter_N,latest}.pt, OUTPUT/losses.jsonl
and OUTPUT/web/index.html (input/output/target per epoch).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vid2vid.data.aligned import AlignedDataset
from vid2vid.data.demo import build_demo_dataset
from vid2vid.models.pix2pix import Pix2Pix, Pix2PixConfig
from vid2vid.training.launch import dataset_root, train_main, training_parser

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "pix2pix_demo.yaml"


def build(config: Pix2PixConfig, dist, output: Path):
    root = dataset_root(config.data.root, output, dist,
                        lambda folder: build_demo_dataset(folder, size=config.data.crop_size))
    task = Pix2Pix(config.model, config.train, dist.device)
    dataset = AlignedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple)
    return task, dataset


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, DEFAULT_CONFIG, "runs/pix2pix_demo")
    return train_main(argv, Pix2PixConfig, parser, build)


if __name__ == "__main__":
    sys.exit(main())
