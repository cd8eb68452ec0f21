#!/usr/bin/env python
"""Train vid2vid (Wang et al. 2018) on sequences of label, edge or pose maps and their videos.

    python scripts/train_vid2vid.py                          # the built-in demo: generated label videos
    python scripts/train_vid2vid.py --config configs/vid2vid_cityscapes_512x256.yaml \\
        --output runs/city256 --vgg-weights ~/vgg19-dcbb9e9d.pth
    torchrun --standalone --nproc_per_node=2 scripts/train_vid2vid.py ...

Same options as the other training scripts (--config, --output, --max-iters,
--resume, section.key=value overrides). After training, the first test sequence
of the dataset (ROOT/test_A, test_B) is rendered to OUTPUT/render/video.mp4,
input | output | ground truth.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vid2vid.data.demo import build_video_demo_dataset
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.rendering import render_sequence
from vid2vid.training.launch import dataset_root, train_main, training_parser

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "vid2vid_demo.yaml"


def build(config: Vid2VidConfig, dist, output: Path):
    root = dataset_root(config.data.root, output, dist, build_video_demo_dataset)
    task = Vid2Vid(config, dist.device)
    dataset = sequence_dataset(config, root, "train", multiple=task.multiple)
    return task, dataset


def render_first_test_sequence(config: Vid2VidConfig, task: Vid2Vid, output: Path) -> str:
    root = Path(config.data.root) if config.data.root else output / "demo_data"
    frames = root / "test_B"
    sequences = sorted(frames.iterdir()) if frames.is_dir() else []
    if not sequences:
        return f"no {frames} to render"
    name = sequences[0].name
    source = sequences[0] if config.data.input == "canny" else root / "test_A" / name
    instances = root / "test_inst" / name
    count = render_sequence(task, source, output / "render", ground_truth=sequences[0], side_by_side=True,
                            instances=instances if config.model.use_instance and instances.is_dir() else None,
                            progress=False)
    return f"rendered {count} frames of {source} to {output / 'render' / 'video.mp4'} (input | output | ground truth)"


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, DEFAULT_CONFIG, "runs/vid2vid_demo")
    parser.add_argument("--vgg-weights", help="ImageNet VGG19 weights for the perceptual loss (model.vgg_weights)")
    return train_main(argv, Vid2VidConfig, parser, build,
                      lambda args: [f"model.vgg_weights={args.vgg_weights}"] if args.vgg_weights else [],
                      finish=render_first_test_sequence)


if __name__ == "__main__":
    sys.exit(main())
