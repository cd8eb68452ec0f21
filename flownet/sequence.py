"""Flow for every consecutive pair of a frame sequence, written as .flo files
and a colour-coded visualisation (PNG frames and an mp4)."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from flownet.checkpoint import load_checkpoint
from flownet.estimate import CompiledFlowNet, estimate
from flownet.flow_utils import flow_to_color, write_flo
from vid2vid.data.frames import iter_frames, write_image, write_video
from vid2vid.data.images import DatasetError

NO_CHECKPOINT_MESSAGE = """\
No FlowNet2 checkpoint given (--checkpoint). The weights are not shipped with vid2vid:
  * the official ones (FlowNet2_checkpoint.pth.tar, and FlowNet2-C/-S/-SD/-CS/-CSS) are
    linked from the README of NVIDIA/flownet2-pytorch; download one and pass its path;
  * or train one on generated data (no download needed), for example
      python scripts/train_flownet.py --model FlowNet2S --steps 3000 --out runs/flownet2s
    and pass runs/flownet2s/FlowNet2S_model_best.pth.tar;
  * or use flow that needs no weights: --method dis (OpenCV's DIS; pip install opencv-python-headless).
See docs/troubleshooting.md#missing-weights-files."""

# frames a, b (B, 3, H, W) in 0..255 -> flow (B, 2, H, W) from a to b: flownet.estimate with a model bound,
# or flownet.dis.dis_flow
FlowEstimator = Callable[[Tensor, Tensor], Tensor]


def _frame(frame: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)


def flownet2_estimator(checkpoint: str | os.PathLike, variant: str | None = None, *, device: str | torch.device = "cpu",
                       fit: str = "resize", amp: torch.dtype | None = None,
                       channels_last: bool | None = None, compile: bool = False) -> FlowEstimator:
    """A FlowNet2 checkpoint (the variant inferred from its weights unless named) as a FlowEstimator.

    ``channels_last`` (None: on a GPU) stores the weights channels-last, so that every convolution runs
    NHWC (cuDNN's tensor-core kernels take NHWC; NCHW costs them transposes) and the correlation gets
    its channels-last inputs without a copy. The flow is the same either way. ``compile``: the model as
    :class:`flownet.estimate.CompiledFlowNet` (a minute of compilation first; then, on a GPU, one CUDA
    graph a call), for videos of one frame size."""
    model = load_checkpoint(checkpoint, variant)
    channels_last = torch.device(device).type == "cuda" if channels_last is None else channels_last
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format).eval()
    return functools.partial(estimate, CompiledFlowNet(model).eval() if compile else model, fit=fit, amp=amp)


def default_batch_size(device: str | torch.device) -> int:
    """Frame pairs per call of a FlowNet2 estimator on ``device``: 8 on a GPU (about twice the pairs per
    second of one pair at a time), 1 on a CPU (no gain there)."""
    return 8 if torch.device(device).type == "cuda" else 1


def pair_flows(estimator: FlowEstimator, frames: Iterable[np.ndarray], batch_size: int = 1,
               backward: bool = False) -> Iterator[Tensor]:
    """The flow (2, H, W) of each pair of neighbouring frames ((H, W, 3) arrays), in order: from frame N to
    N+1, or with ``backward`` from N+1 back to N. ``batch_size`` pairs go to the estimator at once
    (:func:`default_batch_size`); each frame is decoded once."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    waiting: list[Tensor] = []  # the frames of the next batch of pairs (the last one of a batch starts the next)
    for frame in frames:
        waiting.append(_frame(frame))
        if len(waiting) == batch_size + 1:
            yield from _batch_flows(estimator, waiting, backward)
            waiting = waiting[-1:]
    if len(waiting) > 1:
        yield from _batch_flows(estimator, waiting, backward)


def _batch_flows(estimator: FlowEstimator, frames: list[Tensor], backward: bool) -> Iterator[Tensor]:
    earlier, later = torch.stack(frames[:-1]), torch.stack(frames[1:])
    yield from estimator(later, earlier) if backward else estimator(earlier, later)


def compute_sequence_flow(
    estimator: FlowEstimator,
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    max_frames: int | None = None,
    fps: float = 10,
    batch_size: int = 1,
    progress: bool = True,
) -> int:
    """Writes output/flow/NNNNN.flo (flow from frame N to N+1), output/color/NNNNN.png
    and output/flow.mp4 for a video file or folder of frames, ``batch_size`` pairs at a time.
    Returns the number of flows."""
    output = Path(output)
    (output / "flow").mkdir(parents=True, exist_ok=True)
    (output / "color").mkdir(parents=True, exist_ok=True)
    colours = []
    frames = itertools.islice(iter_frames(source), max_frames)
    flows = pair_flows(estimator, frames, batch_size)
    for count, flow in enumerate(tqdm(flows, desc="flow", unit="pair", disable=not progress)):
        write_flo(output / "flow" / f"{count:05d}.flo", flow)
        colour = flow_to_color(flow)
        write_image(output / "color" / f"{count:05d}.png", colour)
        colours.append(colour)
    if not colours:
        raise DatasetError(f"{source} has fewer than 2 frames: no flow to compute")
    write_video(output / "flow.mp4", colours, fps=fps)
    return len(colours)


def compute_dataset_flow(
    estimator: FlowEstimator,
    root: str | os.PathLike,
    phase: str = "train",
    *,
    batch_size: int = 1,
    progress: bool = True,
) -> int:
    """The reference flows of a vid2vid dataset: for every sequence of ROOT/<phase>_B (a folder of
    frames or a video), writes ROOT/<phase>_flow/<sequence>/NNNNN.flo, file i holding the flow from
    frame i+1 back to frame i (the direction vid2vid warps in), ``batch_size`` pairs at a time.
    Returns the number of flows."""
    from vid2vid.data.sequences import VIDEO_SUFFIXES  # vid2vid's layout, only for this tool

    frames_root = Path(root) / f"{phase}_B"
    if not frames_root.is_dir():
        raise DatasetError(f"{frames_root} does not exist (one frame folder or video per sequence)")
    sequences = sorted(p for p in frames_root.iterdir() if p.is_dir() or p.suffix.lower() in VIDEO_SUFFIXES)
    if not sequences:
        raise DatasetError(f"{frames_root} holds no sequence folders or videos")
    count = 0
    for sequence in tqdm(sequences, desc="sequences", disable=not progress):
        folder = Path(root) / f"{phase}_flow" / (sequence.name if sequence.is_dir() else sequence.stem)
        folder.mkdir(parents=True, exist_ok=True)
        for index, flow in enumerate(pair_flows(estimator, iter_frames(sequence), batch_size, backward=True)):
            write_flo(folder / f"{index:05d}.flo", flow)
            count += 1
    return count
