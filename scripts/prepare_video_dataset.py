#!/usr/bin/env python
"""Turn videos into the frame-sequence layout the trainers read.

    python scripts/prepare_video_dataset.py clip1.mp4 clip2.mp4 --output datasets/mine \\
        --fps 15 --size 256x512 --sequence-length 30 --test-every 10 --edges

Writes OUTPUT/train_B/<video>_<k>/00000.png ... (and OUTPUT/test_B/ for every
--test-every-th sequence). --edges writes Canny edge maps of the frames to
OUTPUT/train_A/ as inputs; --face-landmarks LM.npy (one per video, (frames, 68, 2)
in output pixel coordinates, or folders of 68-line .txt files) writes each frame's landmarks
there instead (text files), the inputs of data.input=face (NVIDIA's edge2face maps).
--flow dis writes OUTPUT/<split>_flow/ with OpenCV's DIS flow (no weights; pip install
opencv-python-headless), what model.flow_source=files reads; --flow flownet2 --flow-checkpoint CKPT
the same with FlowNet2 (8 frame pairs a batch on a GPU), with the pairs per second it reached.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from flownet.dis import dis_flow, require_dis
from flownet.sequence import NO_CHECKPOINT_MESSAGE, compute_dataset_flow, default_batch_size, flownet2_estimator
from vid2vid.cli import command, image_size
from vid2vid.data.face import read_video_landmarks
from vid2vid.data.prepare import VideoPreparation, prepare_video_dataset


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", help="video files (or folders of frames)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--fps", type=float, help="target frame rate (default: every frame)")
    parser.add_argument("--size", type=image_size, help="HxW of the frames (default: as decoded)")
    parser.add_argument("--fit", choices=["crop", "stretch"], default="crop",
                        help="crop: scale to cover and centre-crop (default); stretch: resize")
    parser.add_argument("--sequence-length", type=int, default=30)
    parser.add_argument("--test-every", type=int, default=0, help="every n-th sequence to test_* (default: none)")
    parser.add_argument("--test-tail", type=int, default=0,
                        help="the last N frames of each video to test_*, the rest to train_* (default: none)")
    parser.add_argument("--edges", action="store_true", help="Canny edge maps as inputs (train_A)")
    parser.add_argument("--face-landmarks", nargs="+", help="landmarks per video for edge2face inputs")
    parser.add_argument("--flow", choices=["none", "dis", "flownet2"], default="none",
                        help="also write <split>_flow/: dis (OpenCV's DIS, no weights) or flownet2 (--flow-checkpoint)")
    parser.add_argument("--flow-checkpoint", help="with --flow flownet2: the FlowNet2 checkpoint")
    parser.add_argument("--flow-batch-size", type=int,
                        help="with --flow flownet2: frame pairs per call (default: 8 on a GPU, else 1)")
    parser.add_argument("--flow-compile", action="store_true",
                        help="with --flow flownet2: FlowNet2 compiled (torch.compile; CUDA graphs on a GPU)")
    args = parser.parse_args(argv)
    edges = "face" if args.face_landmarks else "canny" if args.edges else "none"
    config = VideoPreparation(fps=args.fps, size=args.size, fit=args.fit, sequence_length=args.sequence_length,
                              test_every=args.test_every, test_tail=args.test_tail, edges=edges)
    landmarks = [read_video_landmarks(p) for p in args.face_landmarks] if args.face_landmarks else None
    estimator, batch_size = None, 1
    if args.flow == "dis":
        require_dis()
        estimator = dis_flow
    elif args.flow == "flownet2":
        if not args.flow_checkpoint:
            print(NO_CHECKPOINT_MESSAGE.replace("--checkpoint", "--flow-checkpoint"), file=sys.stderr)
            return 2
        device = "cuda" if torch.cuda.is_available() else "cpu"
        estimator = flownet2_estimator(args.flow_checkpoint, device=device, compile=args.flow_compile)
        batch_size = args.flow_batch_size or default_batch_size(device)
    written = prepare_video_dataset(args.videos, args.output, config, landmarks)
    flows = {}
    for split in sorted({s.split for s in written} if estimator else ()):
        start = time.perf_counter()
        count = compute_dataset_flow(estimator, args.output, split, batch_size=batch_size, progress=False)
        flows[split] = f", flow in {args.output}/{split}_flow ({count / (time.perf_counter() - start):.1f} pairs/s)"
    for split in ("train", "test"):
        chosen = [s for s in written if s.split == split]
        if chosen:
            print(f"{split}: {len(chosen)} sequences, {sum(s.frames for s in chosen)} frames{flows.get(split, '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
