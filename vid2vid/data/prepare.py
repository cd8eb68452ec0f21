"""Turning videos into the sequence layout the trainers read::

    OUTPUT/train_B/<video>_<k>/00000.png ...   the frames (targets)
    OUTPUT/train_A/<video>_<k>/00000.png ...   their inputs (edge maps), when asked for
    OUTPUT/test_B/...  and  OUTPUT/test_A/...  the held-out sequences

Frames are decoded one at a time (memory stays flat), subsampled to a frame
rate, resized (stretched, or scaled to cover and centre-cropped), split into
sequences of a chosen length and distributed over train and test.
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vid2vid.config import ConfigError
from vid2vid.data.edges import canny_edges
from vid2vid.data.face import write_landmarks
from vid2vid.data.frames import iter_frames, video_frame_rate
from vid2vid.data.images import DatasetError


@dataclass(frozen=True)
class VideoPreparation:
    """How videos become sequences."""

    fps: float | None = None
    """target frame rate (frames are subsampled by the nearest whole stride); None keeps every frame"""
    size: tuple[int, int] | None = None
    """(H, W) of the frames; None keeps the video's size"""
    fit: Literal["crop", "stretch"] = "crop"
    """crop: scale to cover (H, W) and take the centre; stretch: resize to (H, W)"""
    sequence_length: int = 30
    """frames per sequence; a shorter remainder of at least 2 frames becomes a sequence of its own"""
    test_every: int = 0
    """every n-th sequence goes to test_*; 0: none"""
    test_tail: int = 0
    """the last this many frames of each video go to test_* as one sequence (<video>_tail), the frames
    before them to train_*; 0: none. Excludes test_every"""
    edges: Literal["none", "canny", "face"] = "none"
    """inputs to write in *_A: none, Canny edge maps, or face: each frame's landmarks (given per video) as a
    text file, the inputs of data.input=face (NVIDIA's edge2face maps, drawn as the data is read)"""

    def __post_init__(self):
        if self.sequence_length < 2:
            raise ConfigError(f"sequence_length must be at least 2, got {self.sequence_length}")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if self.test_every < 0:
            raise ConfigError(f"test_every must be >= 0, got {self.test_every}")
        if self.test_tail < 0 or self.test_tail == 1 or (self.test_tail and self.test_every):
            raise ConfigError(f"test_tail must be 0 or at least 2, and not given with test_every; got test_tail "
                             f"{self.test_tail}, test_every {self.test_every}")


def frame_stride(source_fps: float | None, target_fps: float | None) -> int:
    """Keep one frame in this many to go from source_fps to about target_fps."""
    if target_fps is None or source_fps is None:
        return 1
    return max(1, round(source_fps / target_fps))


def fit_frame(frame: np.ndarray, size: tuple[int, int] | None, fit: str) -> np.ndarray:
    """A frame at (H, W): stretched, or scaled to cover and centre-cropped."""
    if size is None:
        return frame
    height, width = size
    image = Image.fromarray(frame)
    if fit == "stretch":
        return np.asarray(image.resize((width, height), Image.BICUBIC))
    scale = max(width / image.width, height / image.height)
    scaled = image.resize((max(width, math.ceil(image.width * scale)), max(height, math.ceil(image.height * scale))),
                          Image.BICUBIC)
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    return np.asarray(scaled.crop((left, top, left + width, top + height)))


def _sequences(frames: Iterator[np.ndarray], length: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == length:
            yield chunk
            chunk = []
    if len(chunk) >= 2:
        yield chunk


def _hold_back(items: Iterator, count: int, held: list) -> Iterator:
    """items but the last count, which end up in held once items is exhausted."""
    buffer: collections.deque = collections.deque()
    for item in items:
        buffer.append(item)
        if len(buffer) > count:
            yield buffer.popleft()
    held.extend(buffer)


@dataclass
class PreparedSequence:
    name: str
    split: str
    frames: int


def _write_sequence(output: Path, split: str, name: str, chunk: list[tuple[int, np.ndarray]],
                    config: VideoPreparation, landmarks: np.ndarray | None, video: str | os.PathLike
                    ) -> PreparedSequence:
    """Writes one sequence's frames to <split>_B/name/ and their inputs to <split>_A/name/."""
    target = output / f"{split}_B" / name
    target.mkdir(parents=True, exist_ok=True)
    inputs = output / f"{split}_A" / name
    if config.edges != "none":
        inputs.mkdir(parents=True, exist_ok=True)
    for j, (index, frame) in enumerate(chunk):
        Image.fromarray(frame).save(target / f"{j:05d}.png")
        if config.edges == "canny":
            Image.fromarray(canny_edges(frame)).save(inputs / f"{j:05d}.png")
        elif config.edges == "face":
            if index >= len(landmarks):
                raise DatasetError(f"{video}: frame {index} has no landmarks ({len(landmarks)} given)")
            write_landmarks(inputs / f"{j:05d}.txt", landmarks[index])
    return PreparedSequence(name, split, len(chunk))


def prepare_video_dataset(videos: Sequence[str | os.PathLike], output: str | os.PathLike,
                          config: VideoPreparation = VideoPreparation(),
                          landmarks: Sequence[np.ndarray] | None = None) -> list[PreparedSequence]:
    """Writes the sequences of every video under output; returns what it wrote.

    Args:
        landmarks: for ``edges="face"``, one (frames, 68, 2) array per video, in the video's
            original frame numbering and pixel coordinates of the resized frames.
    """
    if config.edges == "face" and (landmarks is None or len(landmarks) != len(videos)):
        raise DatasetError("face edge maps need one landmark array per video (--face-landmarks)")
    output = Path(output)
    written: list[PreparedSequence] = []
    count = 0
    for v, video in enumerate(videos):
        stride = frame_stride(video_frame_rate(video) if Path(video).is_file() else None, config.fps)
        numbered = ((i, fit_frame(f, config.size, config.fit)) for i, f in enumerate(iter_frames(video))
                    if i % stride == 0)
        stem = Path(video).stem
        tail: list[tuple[int, np.ndarray]] = []
        for k, chunk in enumerate(_sequences(_hold_back(numbered, config.test_tail, tail), config.sequence_length)):
            count += 1
            split = "test" if config.test_every and count % config.test_every == 0 else "train"
            written.append(_write_sequence(output, split, f"{stem}_{k:03d}", chunk, config,
                                           landmarks[v] if landmarks else None, video))
        if config.test_tail:
            if len(tail) < config.test_tail:
                raise DatasetError(f"{video} has {len(tail)} frames, not more than test_tail {config.test_tail}")
            written.append(_write_sequence(output, "test", f"{stem}_tail", tail, config,
                                           landmarks[v] if landmarks else None, video))
    return written
