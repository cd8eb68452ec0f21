"""Paired images for pix2pix: ``A|B`` side by side in one file, or matching
file names in ``A/<phase>/`` and ``B/<phase>/`` (the layout of pix2pix's
``combine_A_and_B.py``), with the anchors' preprocessing.

Every file is opened and decoded once when the dataset is built, so that a
missing folder, an unreadable or truncated image, a pair of different sizes or
an empty dataset stops the run before training starts, with the file named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from vid2vid.data.images import IMAGE_SUFFIXES, DatasetError, list_images, read_rgb, to_tensor
from vid2vid.data.transforms import PreprocessConfig


@dataclass(frozen=True)
class AlignedDataConfig(PreprocessConfig):
    """The ``data:`` section of pix2pix configs."""

    root: str | None = None
    """dataset folder; None builds the small demo dataset (edges -> shapes) in the run's output folder"""
    layout: Literal["side_by_side", "folders"] = "side_by_side"
    direction: Literal["AtoB", "BtoA"] = "AtoB"
    max_size: int | None = None
    """use at most this many pairs (sorted by name)"""


def _pair_sources(root: Path, phase: str, layout: str) -> list[tuple[Path, Path | None]]:
    if layout == "side_by_side":
        files = list_images(root / phase)
        return [(f, None) for f in files]
    a_files, b_files = list_images(root / "A" / phase), list_images(root / "B" / phase)
    b_by_stem = {f.stem: f for f in b_files}
    missing = [f.name for f in a_files if f.stem not in b_by_stem]
    if missing:
        raise DatasetError(f"{len(missing)} images of {root / 'A' / phase} have no partner in {root / 'B' / phase} "
                           f"(first: {', '.join(missing[:3])})")
    return [(f, b_by_stem[f.stem]) for f in a_files]


def split_pair(image: Image.Image, path: Path) -> tuple[Image.Image, Image.Image]:
    """The left and right halves of a side-by-side A|B image."""
    width, height = image.size
    if width % 2:
        raise DatasetError(f"{path} is {width} pixels wide; a side-by-side A|B image needs an even width")
    return image.crop((0, 0, width // 2, height)), image.crop((width // 2, 0, width, height))


class AlignedDataset(Dataset):
    """Item i: ``{"A": (3, H, W), "B": (3, H, W), "path": str}`` in -1..1, A the
    input and B the target (after ``direction``), both with the same random
    resize/crop/flip. The random draws are a function of (seed, epoch, index),
    so resumed runs see the same crops (the trainer calls ``set_epoch``)."""

    def __init__(self, root: str | os.PathLike, phase: str, config: AlignedDataConfig, *, train: bool = True,
                 seed: int = 0, multiple: int = 1):
        self.root = Path(root)
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.multiple = multiple
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        self.sources = _pair_sources(self.root, phase, config.layout)[: config.max_size]
        if not self.sources:
            where = self.root / phase if config.layout == "side_by_side" else self.root / "A" / phase
            raise DatasetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {where}")
        for index in range(len(self.sources)):
            a, b = self._load(index)
            if a.size != b.size:
                raise DatasetError(f"pair {index} has different sizes: {self.sources[index][0]} is "
                                   f"{a.size[0]}x{a.size[1]}, {self.sources[index][1]} is {b.size[0]}x{b.size[1]}")
            config.preprocessing.check(a.size, multiple, self.sources[index][0])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sources)

    def _load(self, index: int) -> tuple[Image.Image, Image.Image]:
        first, second = self.sources[index]
        if second is None:
            a, b = split_pair(read_rgb(first), first)
        else:
            a, b = read_rgb(first), read_rgb(second)
        return (b, a) if self.config.direction == "BtoA" else (a, b)

    def __getitem__(self, index: int) -> dict:
        """Pair ``index % len(self)``; the random draws are a function of (seed, epoch, index), so an index
        past the end is another draw of the same pair (the trainer's further passes over the data)."""
        pair = index % len(self)
        a, b = self._load(pair)
        geometry = self.config.preprocessing.draw(a.size, np.random.default_rng([self.seed, self.epoch, index]),
                                                  self.train)
        a, b = geometry.apply(a), geometry.apply(b)
        return {"A": to_tensor(a), "B": to_tensor(b), "path": str(self.sources[pair][0])}
