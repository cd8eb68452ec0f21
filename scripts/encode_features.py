#!/usr/bin/env python
"""Cluster the instance features of a pix2pixHD run (model.use_features) for multimodal synthesis.

    python scripts/encode_features.py --run runs/pix2pixhd_demo --clusters 10

Runs the trained encoder over the run's training set, collects every instance's
feature by class, clusters each class with K-means and writes RUN/features_clusters.npz
(or --output), which scripts/test_pix2pixhd.py samples from.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from torch.utils.data import DataLoader

from vid2vid.config import ConfigError
from vid2vid.data.images import DatasetError
from vid2vid.inference import load_run
from vid2vid.models.feature_clusters import cluster_features, instance_features, save_clusters
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, label_dataset
from vid2vid.training.distributed import resolve_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--clusters", type=int, default=10, help="K-means clusters per class (default 10)")
    parser.add_argument("--output", help="cluster file (default RUN/features_clusters.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        model, config, run = load_run(args.run, Pix2PixHDConfig, Pix2PixHD.for_inference, device)
        if not config.model.use_features:
            raise ConfigError(f"{run / 'config.yaml'} trains no feature encoder (model.use_features is false)")
        model.encoder.eval()
        root = config.data.root or run / "demo_data"
        no_flip = dataclasses.replace(config, data=dataclasses.replace(config.data, flip=False))
        data = label_dataset(no_flip, root, "train", use_instance=True, train=False, multiple=model.multiple)
        batches = ({k: v.to(device) if hasattr(v, "to") else v for k, v in b.items()}
                   for b in DataLoader(data, batch_size=4))
        centres = cluster_features(instance_features(model.encoder, batches), args.clusters, args.seed)
        output = Path(args.output) if args.output else run / "features_clusters.npz"
        save_clusters(output, centres, dataclasses.asdict(config.model))
    except (ConfigError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sizes = ", ".join(f"class {c}: {len(v)}" for c, v in sorted(centres.items()))
    print(f"wrote {output} ({sizes} clusters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
