#!/usr/bin/env python
"""Score a vid2vid model against the real videos, beside a frame-by-frame pix2pixHD baseline.

    python scripts/evaluate_vid2vid.py --checkpoint runs/vid2vid_demo --dataset runs/vid2vid_demo/demo_data \\
        --phase test --pix2pixhd runs/pix2pixhd_frames
    python scripts/evaluate_vid2vid.py --checkpoint runs/vid2vid_demo --long-demo   # long videos: drift

For every sequence of DATASET/<phase>_A (and _inst, _B): PSNR and SSIM of the
made frames against the real ones, and the temporal warping error: the mean
difference (RGB levels) between each made frame and the previous made frame
warped by the real frames' flow, over the pixels that flow explains; and the
motion ratio, the made frames' raw frame-to-frame change over the real video's
(a video that barely moves has a low warping error for the wrong reason). For drift over long videos, the
long-range warping error (each frame against the first frame warped along the chained real flow, on the
pixels it trusts) and, where the dataset has instance maps (<phase>_inst), the per-object colour drift: each
object's median CIELAB colour against its colour on its first frame (CIEDE2000, the median over its frames,
the mean over the objects; per-frame ids, as Cityscapes', are linked into tracks along the real flow first
unless the run's data.instance_tracks says they are tracks), for the made and the real frames, and their
difference, the excess drift (what the generator adds to the scene's own changes). --long-demo scores the demo model on long generated
sequences that it never saw (240 frames; shapes leave, come back and occlude each other), built in
RUN/long_demo_data unless --dataset names a folder. The flow
comes from DATASET/<phase>_flow (scripts/compute_flow.py --dataset) when it
exists, else from --flownet-checkpoint, else from OpenCV's DIS flow (no weights;
pip install opencv-python-headless). Prints one table: vid2vid, pix2pixHD (with --pix2pixhd, a
run trained on the same label maps, e.g. on DATASET itself: pix2pixHD reads a
sequence dataset's frames), and the real video for reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from pathlib import Path

import torch

from vid2vid.cli import command
from vid2vid.config import ConfigError
from vid2vid.data.demo import DEMO_LABEL_NC, build_video_demo_dataset
from vid2vid.data.images import DatasetError
from vid2vid.errors import UserError
from vid2vid.evaluation import (
    pix2pixhd_frames,
    pix2pixhd_inputs,
    real_frames,
    score_videos,
    scores_table,
    vid2vid_frames,
    vid2vid_inputs,
)
from vid2vid.inference import load_run
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig
from vid2vid.models.temporal import estimate_backward_flows
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.training.distributed import resolve_device

LONG_DEMO = {"test": 2, "frames": 240, "size": 64, "seed": 1}
"""the long demo sequences: the demo's size; seed 1, where the demo trains on seed 0's sequences"""


def sequences(data, device, estimator):
    """The dataset's sequences on the device, each with the flows of its real frames (from
    estimator where the dataset has none)."""
    for index in range(len(data)):
        item = {k: v.to(device) for k, v in data[index].items() if torch.is_tensor(v) and v.dim() > 0}
        if estimator is not None:
            item["flow"] = estimate_backward_flows(estimator, item["image"][None])[0]
        yield item


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="vid2vid run folder or checkpoint file")
    parser.add_argument("--dataset", help="sequence dataset folder (with --long-demo: where to build it)")
    parser.add_argument("--phase", default="test")
    parser.add_argument("--long-demo", action="store_true",
                        help="build and score the long demo sequences (label models of the demo's classes)")
    parser.add_argument("--frames", type=int, default=LONG_DEMO["frames"], help="frames per long demo sequence")
    parser.add_argument("--sequences", type=int, default=LONG_DEMO["test"], help="long demo sequences")
    parser.add_argument("--pix2pixhd", help="pix2pixHD run folder (the frame-by-frame baseline)")
    parser.add_argument("--flownet-checkpoint", help="FlowNet2 checkpoint, when the dataset has no <phase>_flow")
    parser.add_argument("--json", help="also write the scores to this file")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, config, run = load_run(args.checkpoint, Vid2VidConfig, Vid2Vid.for_inference, device)
    if args.long_demo:
        if args.phase != "test":
            parser.error("--long-demo builds test sequences only: leave --phase out")
        if config.data.input != "labels" or config.model.label_nc != DEMO_LABEL_NC:
            raise ConfigError(f"--long-demo draws the demo's {DEMO_LABEL_NC} label classes; this run takes "
                              f"{vid2vid_inputs(config)}")
        args.dataset = build_video_demo_dataset(args.dataset or run / "long_demo_data", train=0, test=args.sequences,
                                                frames=args.frames, size=LONG_DEMO["size"], seed=LONG_DEMO["seed"],
                                                loop=True)
    elif args.dataset is None:
        parser.error("give --dataset, or --long-demo")
    flow_files = (Path(args.dataset) / f"{args.phase}_flow").is_dir()
    estimator = None
    if not flow_files and args.flownet_checkpoint:
        import flownet

        estimator = functools.partial(flownet.estimate,
                                      flownet.load_checkpoint(args.flownet_checkpoint).to(device).eval())
    elif not flow_files:
        from flownet.dis import dis_flow, require_dis

        try:
            require_dis()
        except UserError as e:
            raise DatasetError(f"{Path(args.dataset) / f'{args.phase}_flow'} does not exist, and {e}; or "
                               f"compute it with scripts/compute_flow.py --dataset, or pass "
                               f"--flownet-checkpoint") from None
        estimator = dis_flow
    still = dataclasses.replace(config, data=dataclasses.replace(config.data, flip=False))
    makers = {"vid2vid": vid2vid_frames(model)}
    multiple = model.multiple
    if args.pix2pixhd:
        baseline, baseline_config, _ = load_run(args.pix2pixhd, Pix2PixHDConfig, Pix2PixHD.for_inference, device)
        ours, theirs = vid2vid_inputs(config), pix2pixhd_inputs(baseline_config)
        if ours != theirs:
            raise ConfigError(f"the two runs must see the same inputs: vid2vid takes {ours}; pix2pixHD takes "
                              f"{theirs}")
        makers["pix2pixHD (frame by frame)"] = pix2pixhd_frames(baseline)
        multiple = max(multiple, baseline.multiple)
    makers["real video"] = real_frames
    data = sequence_dataset(still, args.dataset, args.phase, schedule=None, train=False, multiple=multiple,
                            with_flow=flow_files)
    scores = score_videos(makers, sequences(data, device, estimator), long_range=True,
                          instance_tracks=config.data.instance_tracks)
    print(f"{len(data)} sequences, {scores['vid2vid'].frames} frames of {args.dataset} ({args.phase})\n")
    print(scores_table(scores))
    if args.json:
        Path(args.json).write_text(json.dumps({k: dataclasses.asdict(v) for k, v in scores.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
