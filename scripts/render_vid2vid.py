#!/usr/bin/env python
"""Render a label, edge or pose sequence into a video with a trained vid2vid model.

    python scripts/render_vid2vid.py --checkpoint runs/vid2vid_demo --input SEQ --output DIR
    python scripts/render_vid2vid.py --checkpoint runs/city --input test_A/seq0 --remap 11:21   # buildings -> trees

--checkpoint is a run folder (its checkpoints/latest.pt) or a checkpoint file in one.
SEQ holds what the model was trained on (data.input): a folder of label-id PNGs,
a folder or video of edge/pose pictures, frames or a video to take Canny edges
from, or OpenPose JSON files. Writes DIR/frames/NNNNN.png and DIR/video.mp4;
the frames are made one at a time, so memory stays flat however long SEQ is.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from vid2vid.cli import command, image_size
from vid2vid.data.label_maps import parse_remap
from vid2vid.inference import load_run
from vid2vid.models.feature_clusters import load_clusters
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig
from vid2vid.rendering import render_sequence
from vid2vid.training.distributed import resolve_device


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--input", required=True, help="input sequence: folder of frames or a video")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--instances", help="folder of instance maps (label inputs)")
    parser.add_argument("--densepose", help="folder of DensePose IUV images (pose models with data.densepose)")
    parser.add_argument("--ground-truth", help="the real frames (folder or video), shown with --side-by-side")
    parser.add_argument("--side-by-side", action="store_true", help="write input | output [| ground truth]")
    parser.add_argument("--remap", help="label edits SRC:DST[,SRC:DST...] or a YAML file of them")
    parser.add_argument("--style", type=int, help="cluster index of the instance features (multimodal models)")
    parser.add_argument("--clusters", help="cluster file (default RUN/features_clusters.npz)")
    parser.add_argument("--size", type=image_size,
                        help="frame size HxW for OpenPose input without ground truth or DensePose images")
    parser.add_argument("--fps", type=float, default=10)
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--reset-memory-every", type=int, metavar="N",
                        help="with model.appearance_memory: forget the objects' first looks every N frames")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, config, run = load_run(args.checkpoint, Vid2VidConfig, Vid2Vid.for_inference, device)
    clusters = None
    if args.style is not None and config.model.use_features:
        clusters = load_clusters(args.clusters or run / "features_clusters.npz", dataclasses.asdict(config.model))
    count = render_sequence(model, args.input, args.output, instances=args.instances, densepose=args.densepose,
                            ground_truth=args.ground_truth, remap=parse_remap(args.remap) if args.remap else None,
                            style=args.style, clusters=clusters, size=args.size[::-1] if args.size else None,
                            side_by_side=args.side_by_side,
                            fps=args.fps, max_frames=args.max_frames, progress=not args.quiet,
                            reset_memory_every=args.reset_memory_every)
    print(f"rendered {count} frames to {Path(args.output) / 'video.mp4'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
