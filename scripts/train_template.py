#!/usr/bin/env python
"""Train the template model (vid2vid/models/template.py): image A -> image B by L1 regression.

    python scripts/train_template.py                       # the built-in demo: edges -> shapes
    python scripts/train_template.py --config configs/template_demo.yaml --output runs/mine data.root=datasets/facades

The starting point of a new model: see docs/adding_a_model.md. Writes what every trainer
writes: OUTPUT/config.yaml, OUTPUT/checkpoints/, OUTPUT/losses.jsonl, OUTPUT/web/index.html.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vid2vid.data.aligned import AlignedDataset
from vid2vid.data.demo import build_demo_dataset
from vid2vid.models.template import Template, TemplateConfig
from vid2vid.training.launch import dataset_root, train_main, training_parser

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "template_demo.yaml"


def build(config: TemplateConfig, dist, output: Path):
    """The task and its training data; data.root null builds the demo dataset in the run folder."""
    root = dataset_root(config.data.root, output, dist,
                        lambda folder: build_demo_dataset(folder, size=config.data.crop_size))
    task = Template(config.model, config.train, dist.device)
    return task, AlignedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple)


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, DEFAULT_CONFIG, "runs/template_demo")
    return train_main(argv, TemplateConfig, parser, build)


if __name__ == "__main__":
    sys.exit(main())
