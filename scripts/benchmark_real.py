#!/usr/bin/env python
"""vid2vid against frame-by-frame pix2pixHD on real clips, with the same time budget for each model.

    python scripts/make_development_clips.py --output clips
    python scripts/benchmark_real.py --clips clips/*.mp4 --minutes 9 --output bench/dev

For each clip, in OUTPUT/<clip>/:

1. an edges -> frames dataset (data/): Canny edge maps in, the frames out; the last
   --test-frames frames are the test sequence, the --train-frames before them (default:
   all) the training frames. A clip of another size than --size is resized (with a
   notice), never cropped;
2. vid2vid (configs/vid2vid_edges.yaml; reference flow: OpenCV's DIS flow of the real
   frames, no weights) and pix2pixHD (configs/pix2pixhd_edges.yaml, the same size), each
   trained for --minutes of wall-clock time (runs/). vid2vid learns single frames first
   for 3 epochs (150 iterations) per minute of the budget (schedule.image_epochs), then
   the clips; it renders with the moving average of its weights;
3. the test tail rendered into {real,input,vid2vid,pix2pixhd}/frames/NNNNN.png and
   side_by_side.mp4 (input | vid2vid | pix2pixHD | real), and the clip's table in
   results.md: PSNR and SSIM against the real frames; the temporal warping error (RGB
   levels; each frame against the previous one warped by the DIS flow of the real
   frames, over the pixels that flow explains); the motion ratio (the frames' raw
   frame-to-frame change over the real video's: near 1 moves like the real video, far
   below 1 barely moves); and the iterations each model trained; under it, vid2vid's gap
   trend (the slope of its per-frame PSNR less pix2pixHD's along the tail, with its
   standard error; negative: it declines faster); and a line on what vid2vid's frames are
   made of (the share drawn anew by the occlusion mask, the PSNR of its hallucinated
   images and of the warped previous frames).

Then OUTPUT/results.md holds every clip's table and their mean, OUTPUT/frames.png the
first, middle and last test frames of every clip (input | vid2vid | pix2pixHD | real, a
row each), and OUTPUT/curves.png the per-frame curves along each test tail (PSNR, SSIM,
warping error, and sharpness: the variance of the Laplacian over the real frame's, above
1 for speckle, below for blur).

Needs opencv-python-headless (DIS flow) and matplotlib (the curves). Each clip takes about
2 * MINUTES + 2 minutes on 2 CPU cores. Extra key=value overrides after --vid2vid /
--pix2pixhd go to that model's config (e.g. --vid2vid model.ngf=64).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from flownet.dis import require_dis
from vid2vid.cli import command, image_size
from vid2vid.config import ConfigError
from vid2vid.real_benchmark import Budget, benchmark_clip, contact_sheet, plot_curves, summary


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", type=Path, help="one clip (a video file or a folder of frames)")
    parser.add_argument("--clips", nargs="+", type=Path, default=[], help="several clips, each with the same budget")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--minutes", type=float, default=9, help="training time per model and clip (default 9)")
    parser.add_argument("--size", type=image_size, default=(144, 176), help="HxW of the frames (default 144x176)")
    parser.add_argument("--test-frames", type=int, default=24, help="the last N frames are the test (default 24)")
    parser.add_argument("--train-frames", type=int, help="train on the N frames before the test (default: all)")
    parser.add_argument("--fps", type=float, help="subsample the clips to this frame rate (default: every frame)")
    parser.add_argument("--baseline-from", type=Path, metavar="EARLIER_OUTPUT",
                        help="take each clip's pix2pixHD run from an earlier benchmark of the same clips and budget")
    parser.add_argument("--vid2vid", nargs="*", default=[], metavar="KEY=VALUE", help="vid2vid config overrides")
    parser.add_argument("--pix2pixhd", nargs="*", default=[], metavar="KEY=VALUE",
                        help="pix2pixHD config overrides")
    args = parser.parse_args(argv)
    clips = ([args.video] if args.video else []) + args.clips
    if not clips:
        parser.error("give a clip, or several with --clips")
    if len({clip.stem for clip in clips}) < len(clips):
        raise ConfigError(f"two clips share a name: {', '.join(str(c) for c in clips)} (each gets OUTPUT/<name>/)")
    if args.test_frames < 2 or (args.train_frames is not None and args.train_frames < 2):
        raise ConfigError("--test-frames and --train-frames must be at least 2")
    if args.output.exists() and any(args.output.iterdir()):
        raise ConfigError(f"{args.output} is not empty: choose a new --output")
    require_dis()
    started = time.monotonic()
    budget = Budget(args.minutes, args.size, args.test_frames, args.train_frames, args.fps,
                    {"vid2vid": args.vid2vid, "pix2pixhd": args.pix2pixhd})
    results = []
    for clip in clips:
        baseline = args.baseline_from / clip.stem if args.baseline_from else None
        results.append(benchmark_clip(clip, args.output / clip.stem, budget, baseline))
        (args.output / "results.md").write_text(summary(results))  # as it goes: a long run shows what it has
        plot_curves(results, args.output / "curves.png")
        contact_sheet([args.output / r.name for r in results], args.output / "frames.png")
    print(f"\n{summary(results)}\nframes in {args.output}/<clip>/{{real,input,vid2vid,pix2pixhd}}/frames, "
          f"<clip>/side_by_side.mp4 (input | vid2vid | pix2pixHD | real), the first, middle and last test frames "
          f"of every clip in {args.output / 'frames.png'}; per-frame curves in "
          f"{args.output / 'curves.png'}; {(time.monotonic() - started) / 60:.1f} min in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
