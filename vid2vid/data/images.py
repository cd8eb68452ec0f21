"""Reading images for datasets: listing a folder, decoding with clear errors, tensors in -1..1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vid2vid.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


class DatasetError(UserError):
    """A dataset that cannot be used, with the folder or file at fault named."""


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder, sorted by name; DatasetError if the folder is missing."""
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, mode: str | None = "RGB") -> Image.Image:
    """The image at path, fully decoded and converted to mode (None: as stored, e.g. label ids);
    DatasetError naming the file if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert(mode) if mode else image.copy()
    except (OSError, SyntaxError, ValueError) as e:  # PIL signals truncated/corrupt files with these
        raise DatasetError(f"cannot read image {path}: {e}") from None


def read_rgb(path: Path) -> Image.Image:
    return read_image(path, "RGB")


def to_tensor(image: Image.Image) -> Tensor:
    """An RGB image as (3, H, W) float in -1..1."""
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return array.float() / 127.5 - 1
