"""The preprocessing of the pix2pix family: resize, crop and flip, drawn once per
item and applied alike to every image of the item (input, target, label and
instance maps, the last two with nearest-neighbour resampling)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vid2vid.data.images import DatasetError

Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "scale_height",
                     "scale_height_and_middle_half", "none"]


def _vid2vid_rounding(size: int) -> int:
    """NVIDIA/vid2vid's rounding of a scaled side: to a multiple of 4, then to one of 32."""
    return int(round(int(round(size / 4)) * 4 / 32) * 32)


@dataclass(frozen=True)
class Geometry:
    """One draw of the preprocessing: resize to (w, h), then crop box, then horizontal flip."""

    resize: tuple[int, int] | None
    crop: tuple[int, int, int, int] | None
    flip: bool

    def apply(self, image: Image.Image, resample: int = Image.BICUBIC) -> Image.Image:
        if self.resize is not None:
            image = image.resize(self.resize, resample)
        if self.crop is not None:
            image = image.crop(self.crop)
        return image.transpose(Image.FLIP_LEFT_RIGHT) if self.flip else image


@dataclass(frozen=True)
class Preprocessing:
    """resize_and_crop: resize to load_size x load_size, crop crop_size; crop: crop only;
    scale_width: width to load_size, keeping the aspect; scale_width_and_crop: then crop;
    scale_height: height to load_size, keeping the aspect, both sides rounded to multiples of 32
    as NVIDIA/vid2vid rounds them; scale_height_and_middle_half: then the middle half of the width
    (2 * floor(W / 4 / 32) * 32 wide, full height: what NVIDIA's pose models see);
    none: as stored. Random crops and flips in training, centred crops otherwise."""

    mode: Preprocess
    load_size: int
    crop_size: int
    flip: bool

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) after preprocessing an image of this (width, height)."""
        width, height = size
        if self.mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
            return self.crop_size, self.crop_size
        if self.mode == "scale_width":
            return self.load_size, round(height * self.load_size / width)
        if self.mode in ("scale_height", "scale_height_and_middle_half"):
            resize = self._scaled_height(size)
            crop = self._middle_half(resize)
            return resize if crop is None else (crop[2] - crop[0], crop[3] - crop[1])
        return width, height

    def _scaled_height(self, size: tuple[int, int]) -> tuple[int, int]:
        width, height = size
        return _vid2vid_rounding(self.load_size * width // height), _vid2vid_rounding(self.load_size)

    def _middle_half(self, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
        if self.mode != "scale_height_and_middle_half":
            return None
        width, height = size
        half = int(width * 0.25) // 32 * 32
        return width // 2 - half, 0, width // 2 + half, height

    def check(self, size: tuple[int, int], multiple: int, path: Path) -> None:
        """DatasetError naming path if an image of this size cannot be preprocessed into
        a size the generator takes (multiples of ``multiple``)."""
        width, height = self.output_size(size)
        if width % multiple or height % multiple:
            raise DatasetError(
                f"{path} becomes {width}x{height} after preprocess={self.mode}, but the generator needs width and "
                f"height that are multiples of {multiple}: set data.crop_size (or data.load_size for scale_width) "
                f"to a multiple of {multiple}, or use preprocess=resize_and_crop/crop"
            )
        if width == 0:
            raise DatasetError(f"{path} ({size[0]}x{size[1]}) has no middle half after preprocess={self.mode}: "
                               f"its width scales to less than 128 pixels; raise data.load_size")
        if self.mode == "crop" and min(size) < self.crop_size:
            raise DatasetError(f"{path} ({size[0]}x{size[1]}) is smaller than crop_size {self.crop_size}")
        if self.mode == "scale_width_and_crop":
            scaled = round(size[1] * self.load_size / size[0])
            if scaled < self.crop_size:
                raise DatasetError(f"{path} is {scaled} pixels high after scaling to width {self.load_size}, "
                                   f"less than crop_size {self.crop_size}")

    def draw(self, size: tuple[int, int], rng: np.random.Generator, train: bool) -> Geometry:
        width, height = size
        resize = None
        if self.mode == "resize_and_crop":
            resize = (self.load_size, self.load_size)
        elif self.mode in ("scale_width", "scale_width_and_crop"):
            resize = (self.load_size, round(height * self.load_size / width))
        elif self.mode in ("scale_height", "scale_height_and_middle_half"):
            resize = self._scaled_height(size)
        if resize is not None:
            width, height = resize
        crop = self._middle_half((width, height))
        if self.mode in ("resize_and_crop", "crop", "scale_width_and_crop"):
            if train:
                x = int(rng.integers(0, width - self.crop_size + 1))
                y = int(rng.integers(0, height - self.crop_size + 1))
            else:
                x, y = (width - self.crop_size) // 2, (height - self.crop_size) // 2
            crop = (x, y, x + self.crop_size, y + self.crop_size)
        return Geometry(resize, crop, bool(train and self.flip and rng.random() < 0.5))


@dataclass(frozen=True)
class PreprocessConfig:
    """The preprocessing keys of every image dataset's ``data:`` section (see :class:`Preprocessing`);
    each dataset's config adds its own keys and may change these defaults."""

    preprocess: Preprocess = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def __post_init__(self):
        if self.crop_size < 1 or self.load_size < 1:
            raise ValueError(f"load_size and crop_size must be positive, got {self.load_size}, {self.crop_size}")
        if self.preprocess in ("resize_and_crop", "scale_width_and_crop") and self.crop_size > self.load_size:
            raise ValueError(f"crop_size {self.crop_size} is larger than load_size {self.load_size}")

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.preprocess, self.load_size, self.crop_size, self.flip)
