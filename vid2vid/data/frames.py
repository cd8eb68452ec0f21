"""Reading and writing frame sequences: folders of PNG/JPG images and video
files (anything PyAV decodes), behind one lazy reader."""

from __future__ import annotations

import contextlib
import itertools
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
    with _open_video(Path(path)) as (_, stream):
        return float(stream.average_rate) if stream.average_rate else None


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
    with _open_video(source) as (container, stream):
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


class VideoFile:
    """A video's frames by index. Opening it decodes it once, for its length and each frame's
    timestamp (containers rarely know their frame count); a read then seeks to the keyframe at or
    before its first frame and decodes from there, instead of from the start of the video."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _open_video(self.path) as (container, stream):
            self.timestamps: list[int | None] = [frame.pts for frame in container.decode(stream)]

    def __len__(self) -> int:
        return len(self.timestamps)

    def read(self, start: int, count: int) -> list[np.ndarray]:
        """Frames start .. start + count - 1 (fewer at the end), as (H, W, 3) uint8 RGB arrays."""
        wanted = self.timestamps[start:start + count]
        if not wanted:
            return []
        if any(t is None for t in wanted):  # streams without timestamps can only be read in order
            return list(itertools.islice(iter_frames(self.path), start, start + count))
        frames = []
        with _open_video(self.path) as (container, stream):
            container.seek(wanted[0], stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts < wanted[0]:
                    continue  # between the keyframe and the first frame asked for
                if frame.pts != wanted[len(frames)]:
                    break  # the seek landed past the frame: read in order instead
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == len(wanted):
                    return frames
        return list(itertools.islice(iter_frames(self.path), start, start + count))


@contextlib.contextmanager
def _open_video(path: Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """A video file's container and first video stream, with decoding errors as FrameReadError."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FrameReadError(f"{path} has no video stream")
            yield container, container.streams.video[0]
    except av.FFmpegError as e:
        raise FrameReadError(f"cannot decode video {path}: {e}") from None


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
