#!/usr/bin/env python
"""vid2vid against frame-by-frame pix2pixHD on your own clip, with the same time budget each.

    python scripts/benchmark_real.py clip.mp4 --minutes 10 --size 144x176 --test-frames 24 --output bench/clip

1. Builds an edges -> frames dataset from VIDEO in OUTPUT/data: Canny edge maps
   in, the frames out; the last --test-frames frames are the test sequence.
2. Trains vid2vid (configs/vid2vid_edges.yaml; reference flow: OpenCV's DIS flow
   of the real frames, no weights) and pix2pixHD (configs/pix2pixhd_edges.yaml,
   the same size) for --minutes of wall-clock time each, in OUTPUT/runs/.
   vid2vid learns single frames first for 2 epochs (100 iterations) per minute
   of the budget (schedule.image_epochs; about half the budget on 2 CPU cores),
   then the clips; it renders with the moving average of its weights.
3. Renders the test tail into OUTPUT/{real,input,vid2vid,pix2pixhd}/frames/NNNNN.png
   and OUTPUT/side_by_side.mp4 (input | vid2vid | pix2pixHD | real).
4. Prints one table, also written to OUTPUT/results.md: PSNR and SSIM against the
   real frames; the temporal warping error (RGB levels; each frame against the
   previous one warped by the DIS flow of the real frames, over the pixels that
   flow explains); the motion ratio (the frames' raw frame-to-frame change over
   the real video's: near 1 moves like the real video, far below 1 barely
   moves); and the iterations each model trained.

Needs opencv-python-headless (DIS flow). Finishes within about 2 * MINUTES + 5
minutes on 2 CPU cores. Extra key=value overrides after --vid2vid / --pix2pixhd
go to that model's config (e.g. --vid2vid model.ngf=64).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from flownet.dis import dis_flow, require_dis
from vid2vid import serialization
from vid2vid.cli import command, image_size
from vid2vid.config import ConfigError
from vid2vid.data.frames import write_image, write_video
from vid2vid.data.prepare import VideoPreparation, prepare_video_dataset
from vid2vid.errors import UserError
from vid2vid.evaluation import pix2pixhd_frames, score_videos, scores_table, vid2vid_frames
from vid2vid.inference import load_run
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig
from vid2vid.models.temporal import estimate_backward_flows
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.training.checkpoint import LATEST

ROOT = Path(__file__).resolve().parent.parent
IMAGE_EPOCHS_PER_MINUTE = 3
"""vid2vid's single-frame epochs (of 50 iterations) per minute of budget: about half of it on 2 CPU cores"""
MODELS = {"vid2vid": ("scripts/train_vid2vid.py", "configs/vid2vid_edges.yaml"),
          "pix2pixhd": ("scripts/train_pix2pixhd.py", "configs/pix2pixhd_edges.yaml")}


def train(name: str, data: Path, runs: Path, minutes: float, overrides: list[str]) -> int:
    """Trains one model for the budget; returns the iterations it reached."""
    script, config = MODELS[name]
    run = runs / name
    # epochs of 50 iterations: schedules in epochs stay meaningful on one short clip; no decay (the
    # budget, not an epoch count, ends the run)
    argv = [sys.executable, str(ROOT / script), "--config", str(ROOT / config), "--output", str(run), "--quiet",
               f"data.root={data}", f"train.max_minutes={minutes}", "train.iters_per_epoch=50",
               "train.epochs=100000", "train.epochs_decay=0", "train.checkpoint_every=500", *overrides]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:  # its own one-line message, or the traceback of a bug
        raise UserError(f"training {name} failed:\n{result.stderr.strip()}")
    iterations = serialization.load(run / "checkpoints" / LATEST)["iteration"]
    print(f"{name}: {iterations} iterations in {(time.monotonic() - started) / 60:.1f} min")
    return iterations


def as_uint8(frames: torch.Tensor) -> list[np.ndarray]:
    """(T, C, H, W) in -1..1 -> T (H, W, 3) uint8 pictures."""
    pictures = ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    if pictures.shape[1] == 1:
        pictures = pictures.expand(-1, 3, -1, -1)
    return list(pictures.permute(0, 2, 3, 1).numpy())


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="a video file (or a folder of frames)")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=10, help="training time per model (default 10)")
    parser.add_argument("--size", type=image_size, default=(144, 176), help="HxW of the frames (default 144x176)")
    parser.add_argument("--test-frames", type=int, default=24, help="the last N frames are the test (default 24)")
    parser.add_argument("--fps", type=float, help="subsample the video to this frame rate (default: every frame)")
    parser.add_argument("--vid2vid", nargs="*", default=[], metavar="KEY=VALUE", help="vid2vid config overrides")
    parser.add_argument("--pix2pixhd", nargs="*", default=[], metavar="KEY=VALUE",
                        help="pix2pixHD config overrides")
    args = parser.parse_args(argv)
    started = time.monotonic()
    require_dis()
    data = args.output / "data"
    if args.output.exists() and any(args.output.iterdir()):
        raise ConfigError(f"{args.output} is not empty: choose a new --output")
    prepared = prepare_video_dataset([args.video], data, VideoPreparation(
        fps=args.fps, size=args.size, sequence_length=10**9, test_tail=args.test_frames, edges="canny"))
    print(f"data: {prepared[0].frames} training frames, {prepared[-1].frames} test frames of "
          f"{args.size[0]}x{args.size[1]} in {data}")
    # the image phase takes a share of the budget (measured best near half on bigbuckbunny); yours come after
    image_phase = [f"schedule.image_epochs={round(IMAGE_EPOCHS_PER_MINUTE * args.minutes)}"]
    iterations = {name: train(name, data, args.output / "runs", args.minutes,
                              image_phase + args.vid2vid if name == "vid2vid" else args.pix2pixhd)
                  for name in MODELS}

    device = torch.device("cpu")
    model, config, _ = load_run(args.output / "runs" / "vid2vid", Vid2VidConfig, Vid2Vid.for_inference, device)
    baseline, _, _ = load_run(args.output / "runs" / "pix2pixhd", Pix2PixHDConfig, Pix2PixHD.for_inference,
                              device)
    test = sequence_dataset(config, data, "test", schedule=None, train=False, multiple=model.multiple)
    sequence = {k: v for k, v in test[0].items() if torch.is_tensor(v) and v.dim() > 0}
    sequence["flow"] = estimate_backward_flows(dis_flow, sequence["image"][None])[0]
    made = {"vid2vid": vid2vid_frames(model)(sequence), "pix2pixHD (frame by frame)":
            pix2pixhd_frames(baseline)(sequence)}
    scores = score_videos({**{name: (lambda s, f=frames: f) for name, frames in made.items()},
                           "real video": lambda s: s["image"]}, [sequence])

    pictures = {"input": as_uint8(sequence["label"]), "vid2vid": as_uint8(made["vid2vid"]),
                "pix2pixhd": as_uint8(made["pix2pixHD (frame by frame)"]), "real": as_uint8(sequence["image"])}
    for name, frames in pictures.items():
        (args.output / name / "frames").mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(frames):
            write_image(args.output / name / "frames" / f"{t:05d}.png", frame)
    write_video(args.output / "side_by_side.mp4",
                (np.concatenate(row, 1) for row in zip(*pictures.values())), fps=10)

    table = scores_table(scores, {"iterations": {"vid2vid": str(iterations["vid2vid"]),
                                                 "pix2pixHD (frame by frame)": str(iterations["pix2pixhd"])}})
    note = (f"{Path(args.video).name}: {prepared[0].frames} training frames, the last {args.test_frames} for "
            f"testing, {args.size[0]}x{args.size[1]}, {args.minutes:g} minutes of training per model, "
            f"{torch.get_num_threads()} CPU threads; flow for the scores: DIS of the real frames")
    (args.output / "results.md").write_text(f"{note}\n\n{table}\n")
    print(f"\n{note}\n\n{table}\n\nframes in {args.output}/{{real,input,vid2vid,pix2pixhd}}/frames, "
          f"{args.output / 'side_by_side.mp4'} (input | vid2vid | pix2pixHD | real); "
          f"{(time.monotonic() - started) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
