#!/usr/bin/env python
"""Render label maps with a trained pix2pixHD generator.

    python scripts/test_pix2pixhd.py --run runs/pix2pixhd_demo --input runs/pix2pixhd_demo/demo_data \\
        --n-samples 4 --output results/pix2pixhd_demo

--input is a dataset folder with test_label/ (and test_inst/, and test_img/ to show
the targets), or a sequence dataset (test_A/<seq>/, test_B/<seq>/: every frame). With the feature encoder (model.use_features), --n-samples K renders
K images per label map, each instance (each class with --per-class) taking a
random cluster centre from RUN/features_clusters.npz (scripts/encode_features.py).
Writes OUTPUT/images/<name>_{input_label,synthesized_image,real_image}.png (pix2pixHD's
names; synthesized_image_<k> with several samples) and OUTPUT/index.html.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from vid2vid.cli import command
from vid2vid.data.labels import has_images
from vid2vid.inference import load_run
from vid2vid.models.feature_clusters import load_clusters, sample_feature_map
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, colorize_labels, label_dataset
from vid2vid.training.distributed import resolve_device
from vid2vid.training.logging import save_picture_row, write_html_index


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--input", required=True, help="dataset folder with <phase>_label/ (and _inst/, _img/)")
    parser.add_argument("--phase", default="test")
    parser.add_argument("--output", default="results/pix2pixhd")
    parser.add_argument("--n-samples", type=int, default=1, help="images per label map (feature encoder runs)")
    parser.add_argument("--per-class", action="store_true", help="one cluster per class instead of per instance")
    parser.add_argument("--clusters", help="cluster file (default RUN/features_clusters.npz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, config, run = load_run(args.run, Pix2PixHDConfig, Pix2PixHD.for_inference, device)
    centres = None
    if config.model.use_features:
        centres = load_clusters(args.clusters or run / "features_clusters.npz",
                                dataclasses.asdict(config.model))
    no_flip = dataclasses.replace(config, data=dataclasses.replace(config.data, flip=False))
    data = label_dataset(no_flip, args.input, args.phase, train=False, multiple=model.multiple,
                         need_images=has_images(args.input, args.phase))
    images = Path(args.output) / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(len(data)):
        item = {k: v.unsqueeze(0).to(device) if torch.is_tensor(v) else v for k, v in data[index].items()}
        path = Path(item["path"])
        # a sequence dataset's frames are <phase>_A/<sequence>/NNNNN.png: keep the sequence in the name
        name = path.stem if path.parent.name == f"{args.phase}_label" else f"{path.parent.name}_{path.stem}"
        # pix2pixHD's file names: <name>_input_label.png (ids in colour; edge maps, label_nc 0, as they
        # are), <name>_synthesized_image.png (one per sample with several), <name>_real_image.png
        pictures = {"input_label": colorize_labels(item["label"], config.model.label_nc)}
        samples = args.n_samples if centres is not None else 1
        for s in range(samples):
            features = None
            if centres is not None:
                generator = torch.Generator().manual_seed(args.seed * 100_003 + s)
                features = sample_feature_map(item["label"], item["instance"], centres, config.model.feat_num,
                                              generator, per_class=args.per_class)
            pictures["synthesized_image" + (f"_{s}" if samples > 1 else "")] = model.synthesize(item, features)
        if "image" in item:
            pictures["real_image"] = item["image"]
        rows.append((name, save_picture_row(images, name, pictures)))
    write_html_index(Path(args.output) / "index.html", f"pix2pixHD: {args.input}", rows)
    print(f"rendered {len(data)} inputs to {Path(args.output) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
