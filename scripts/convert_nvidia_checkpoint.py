#!/usr/bin/env python
"""Convert a checkpoint of NVIDIA's pix2pixHD or vid2vid into a run of this project.

    python scripts/convert_nvidia_checkpoint.py checkpoints/label2city_1024p --output runs/label2city_1024p \\
        -- --name label2city_1024p --netG local --ngf 32 --resize_or_crop none
    python scripts/test_pix2pixhd.py --run runs/label2city_1024p --input datasets/cityscapes --output results/1024p

    python scripts/convert_nvidia_checkpoint.py checkpoints/label2city_2048 --output runs/label2city_2048 \\
        --first-frame-generator checkpoints/label2city_single/latest_net_G_2048.pth \\
        -- --name label2city_2048 --label_nc 35 --loadSize 2048 --n_scales_spatial 3 --use_instance --fg --use_single_G
    python scripts/render_vid2vid.py --checkpoint runs/label2city_2048 --input datasets/Cityscapes/test_A/stuttgart_00 \\
        --instances datasets/Cityscapes/test_inst/stuttgart_00 --output results/stuttgart_00

    python scripts/convert_nvidia_checkpoint.py checkpoints/edge2face_512 --output runs/edge2face_512 \\
        --first-frame-generator checkpoints/edge2face_single/latest_net_G.pth \\
        -- --name edge2face_512 --dataroot datasets/face/ --dataset_mode face --input_nc 15 --loadSize 512 --use_single_G
    python scripts/render_vid2vid.py --checkpoint runs/edge2face_512 --input datasets/face/test_keypoints/0001 \\
        --ground-truth datasets/face/test_img/0001 --output results/face_0001

After ``--`` come the original test script's own flags, as in its scripts/*.sh; the
structure they leave out is read from the weights, and a flag that disagrees with the
weights stops the conversion with the tensor and both shapes named. The run renders
with the ordinary scripts and fine-tunes with train.init_from=RUN. Converted weights
keep NVIDIA's licence (CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import argparse
import sys

from vid2vid.cli import command
from vid2vid.nvidia import convert_checkpoint


@command
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, original = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="NVIDIA's checkpoint folder (latest_net_G.pth, or latest_net_G0.pth ...)")
    parser.add_argument("--output", required=True, help="the run folder to write")
    parser.add_argument("--first-frame-generator", help="vid2vid: the single-image generator (--use_single_G)")
    parser.add_argument("--encoder", help="pix2pixHD: the feature encoder (default CHECKPOINT/latest_net_E.pth); "
                        "edge2face: the first frames' encoder (default: beside --first-frame-generator)")
    args = parser.parse_args(ours)
    summary = convert_checkpoint(args.checkpoint, args.output, original, args.first_frame_generator,
                                 args.encoder)
    print(f"converted {summary}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
