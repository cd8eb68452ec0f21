#!/usr/bin/env python
"""Cluster the instance features of a pix2pixHD or vid2vid run (model.use_features) for multimodal synthesis.

    python scripts/encode_features.py --run runs/pix2pixhd_demo --clusters 10

Runs the trained encoder over the run's training set (every frame of every
sequence, for vid2vid), collects every instance's feature by class, clusters
each class with K-means and writes RUN/features_clusters.npz (or --output),
which scripts/test_pix2pixhd.py and scripts/render_vid2vid.py --style sample from.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from torch.utils.data import DataLoader

from vid2vid.cli import command
from vid2vid.config import ConfigError, read_sections
from vid2vid.inference import find_checkpoint, load_run
from vid2vid.models.feature_clusters import cluster_features, instance_features, save_clusters
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, label_dataset
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.training.distributed import resolve_device


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--clusters", type=int, default=10, help="K-means clusters per class (default 10)")
    parser.add_argument("--output", help="cluster file (default RUN/features_clusters.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    config_path = find_checkpoint(args.run)[1]
    video = "schedule" in read_sections(config_path)  # a vid2vid run
    config_cls, make = (Vid2VidConfig, Vid2Vid.for_inference) if video else (Pix2PixHDConfig,
                                                                             Pix2PixHD.for_inference)
    model, config, run = load_run(args.run, config_cls, make, device)
    if not config.model.use_features:
        raise ConfigError(f"{run / 'config.yaml'} trains no feature encoder (model.use_features is false)")
    model.encoder.eval()
    root = config.data.root or run / "demo_data"
    no_flip = dataclasses.replace(config, data=dataclasses.replace(config.data, flip=False))
    if video:  # every frame of the sequences' first n_frames_total
        data = sequence_dataset(no_flip, root, "train", use_instance=True, with_flow=False, train=False,
                                multiple=model.multiple)
        data.set_epoch(10 ** 6)  # the longest clips of the schedule
    else:
        data = label_dataset(no_flip, root, "train", use_instance=True, train=False, multiple=model.multiple)
    keep = lambda v: v.to(device).flatten(0, 1) if video else v.to(device)  # noqa: E731 (clips: all frames)
    batches = ({k: keep(b[k]) for k in ("label", "instance", "image")}
               for b in DataLoader(data, batch_size=1 if video else 4))
    centres = cluster_features(instance_features(model.encoder, batches), args.clusters, args.seed)
    output = Path(args.output) if args.output else run / "features_clusters.npz"
    save_clusters(output, centres, dataclasses.asdict(config.model))
    sizes = ", ".join(f"class {c}: {len(v)}" for c, v in sorted(centres.items()))
    print(f"wrote {output} ({sizes} clusters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
