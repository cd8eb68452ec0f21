#!/usr/bin/env python
"""Train unpaired translation between two image domains: model.name picks the model (cyclegan,
cut, fastcut, ssal).

    python scripts/train_unpaired.py                                          # SSAL-GAN on the demo domains
    python scripts/train_unpaired.py --config configs/cyclegan_demo.yaml      # (also cut_, fastcut_demo.yaml)
    python scripts/train_unpaired.py --config configs/cyclegan_demo.yaml --output runs/horse2zebra \\
        data.root=datasets/horse2zebra data.load_size=286 data.crop_size=256
    torchrun --nproc_per_node=2 scripts/train_unpaired.py ...                    # data parallel

The data is CycleGAN's layout: ROOT/trainA/ and ROOT/trainB/, one folder of images each; A may
hold videos (a sub-folder of frames or a video file each), and model.lambda_temporal then keeps
the output of each frame consistent with the one before, warped by the flows of ROOT/trainA_flow/
(or FlowNet2's: model.flow_source=flownet model.flownet_checkpoint=FILE):

    python scripts/train_unpaired.py --config configs/cut_video_demo.yaml      # moving scenes -> winter
Writes OUTPUT/config.yaml, OUTPUT/checkpoints/, OUTPUT/losses.jsonl, OUTPUT/web/index.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vid2vid.data.unpaired import UnpairedDataset, build_unpaired_demo_dataset, build_unpaired_video_demo_dataset
from vid2vid.models.unpaired import UnpairedConfig, build_unpaired
from vid2vid.training.launch import dataset_root, train_main, training_parser

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ssal_demo.yaml"


def build(config: UnpairedConfig, dist, output: Path):
    demo = build_unpaired_video_demo_dataset if config.data.demo == "video" else build_unpaired_demo_dataset
    root = dataset_root(config.data.root, output, dist, lambda folder: demo(folder, size=config.data.crop_size))
    task = build_unpaired(config, dist.device)
    temporal = config.model.lambda_temporal > 0
    return task, UnpairedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple,
                                 temporal=temporal, with_flow=temporal and config.model.flow_source == "files")


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, DEFAULT_CONFIG, "runs/unpaired_demo")
    return train_main(argv, UnpairedConfig, parser, build)


if __name__ == "__main__":
    sys.exit(main())
