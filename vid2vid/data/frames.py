"""Reading and writing frame sequences: folders of PNG/JPG images and video
files (anything PyAV decodes), behind one lazy reader."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from vid2vid.data.images import IMAGE_SUFFIXES, DatasetError


class FrameReadError(DatasetError):
    """A frame source that cannot be read; the message names the file."""


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder, in name order."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FrameReadError(f"{folder} holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_image(path: str | os.PathLike) -> np.ndarray:
    """One image as (H, W, 3) uint8 RGB."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise FrameReadError(f"cannot read image {path}: {e}") from None


def video_frame_rate(path: str | os.PathLike) -> float | None:
    """The frame rate a video file declares, or None if it declares none."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FrameReadError(f"{path} has no video stream")
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except av.FFmpegError as e:
        raise FrameReadError(f"cannot decode video {path}: {e}") from None


def iter_frames(source: str | os.PathLike) -> Iterator[np.ndarray]:
    """Yields the frames of a video file or a folder of images, one at a time,
    as (H, W, 3) uint8 RGB arrays, so memory stays flat however long the source."""
    source = Path(source)
    if not source.exists():
        raise FrameReadError(f"{source} does not exist")
    if source.is_dir():
        for path in list_frame_files(source):
            yield read_image(path)
        return
    try:
        with av.open(str(source)) as container:
            if not container.streams.video:
                raise FrameReadError(f"{source} has no video stream")
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as e:
        raise FrameReadError(f"cannot decode video {source}: {e}") from None


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes an (H, W, 3) uint8 image; the format follows the suffix."""
    Image.fromarray(image).save(path)


def write_video(path: str | os.PathLike, frames: Sequence[np.ndarray] | Iterator[np.ndarray], fps: float = 10) -> None:
    """Writes (H, W, 3) uint8 RGB frames to an H.264 mp4 (sizes rounded down to even)."""
    with av.open(str(path), "w") as container:
        stream = None
        for image in frames:
            if stream is None:
                stream = container.add_stream("libx264", rate=int(round(fps)))
                stream.height, stream.width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
                stream.pix_fmt = "yuv420p"
            image = np.ascontiguousarray(image[: stream.height, : stream.width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
