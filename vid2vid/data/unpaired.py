"""Unpaired images for CycleGAN and its kin: CycleGAN's layout, ``<phase>A/`` and
``<phase>B/`` folders of images, B drawn independently of A.

Every draw (which B goes with A number i, each image's crop and flip) is a function of
(seed, epoch, index), so that a resumed run sees the same batches. The built-in demo
makes two procedural domains of the same kind of geometry, told apart by palettes,
textures and speckle, and keeps the geometry (``<phase>A_structure/``) for evaluation.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from vid2vid.data.demo import demo_scene
from vid2vid.data.images import DatasetError, list_images, read_image, to_tensor
from vid2vid.data.procedural import random_texture, seeded_generator, uniform
from vid2vid.data.transforms import PreprocessConfig


@dataclass(frozen=True)
class UnpairedDataConfig(PreprocessConfig):
    """The ``data:`` section of unpaired configs (CycleGAN's options, as ours are named)."""

    root: str | None = None
    """dataset folder with trainA/, trainB/ (testA/, testB/); None builds the demo domains in the run's folder"""
    max_size: int | None = None
    """use at most this many images of each domain (sorted by name)"""


def read_colour(path: Path) -> tuple[Image.Image, str]:
    """(the image as RGB, its mode as stored). Grey-scale, palette and RGBA images are converted
    (RGBA's alpha dropped), as CycleGAN's loader does."""
    image = read_image(path, mode=None)
    return image.convert("RGB"), image.mode


class UnpairedDataset(Dataset):
    """Item i: ``{"A": (3, H, W), "B": (3, H, W), "A_path": str, "B_path": str}`` in -1..1:
    image i of A (cycled), and a B drawn at random, each with its own crop and flip; as many
    items as the larger domain has images. With ``train=False`` B is image i of B (cycled)
    and the crops are centred."""

    def __init__(self, root: str | os.PathLike, phase: str, config: UnpairedDataConfig, *, train: bool = True,
                 seed: int = 0, multiple: int = 1):
        self.root, self.config, self.train, self.seed, self.epoch = Path(root), config, train, seed, 0
        self.files = {}
        for domain in ("A", "B"):
            folder = self.root / f"{phase}{domain}"
            files = list_images(folder)[: config.max_size]
            if not files:
                raise DatasetError(f"{folder} holds no images (CycleGAN's layout: {phase}A/ and {phase}B/, one "
                                   f"folder of images each)")
            self.files[domain] = files
        for files in self.files.values():
            first, _ = read_colour(files[0])  # the size check; every file is read as it is used
            config.preprocessing.check(first.size, multiple, files[0])
        self._warned = False  # of images converted to RGB: once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.files["A"]), len(self.files["B"]))

    def _load(self, path: Path, rng: np.random.Generator) -> torch.Tensor:
        image, mode = read_colour(path)
        if mode != "RGB" and not self._warned:
            self._warned = True
            warnings.warn(f"converted to RGB: {path.name} ({mode}) in {path.parent}, and any other image that is "
                          f"not RGB", stacklevel=2)
        geometry = self.config.preprocessing.draw(image.size, rng, self.train)
        return to_tensor(geometry.apply(image))

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        a_files, b_files = self.files["A"], self.files["B"]
        a_path = a_files[index % len(a_files)]
        b_path = b_files[int(rng.integers(len(b_files)))] if self.train else b_files[index % len(b_files)]
        return {"A": self._load(a_path, rng), "B": self._load(b_path, rng), "A_path": str(a_path),
                "B_path": str(b_path)}


# ----------------------------------------------------------------------------- the demo domains

# Each domain's palettes (background, then one colour per shape class of the demo scenes):
# A is a warm, green "summer", B a cold, pale "winter" with snow-like speckle. Several palettes
# per domain, so that references of one domain really differ.
_PALETTES = {
    "A": torch.tensor([
        [[0.35, 0.6, 0.25], [0.85, 0.3, 0.2], [0.95, 0.8, 0.3], [0.55, 0.35, 0.2], [0.3, 0.45, 0.8]],
        [[0.55, 0.7, 0.3], [0.9, 0.55, 0.2], [0.7, 0.2, 0.3], [0.45, 0.3, 0.15], [0.25, 0.6, 0.7]],
        [[0.3, 0.5, 0.2], [0.95, 0.65, 0.55], [0.85, 0.85, 0.35], [0.6, 0.25, 0.45], [0.35, 0.35, 0.7]],
    ]),
    "B": torch.tensor([
        [[0.85, 0.88, 0.92], [0.45, 0.5, 0.6], [0.6, 0.7, 0.85], [0.3, 0.32, 0.4], [0.7, 0.75, 0.8]],
        [[0.78, 0.82, 0.9], [0.35, 0.4, 0.55], [0.55, 0.6, 0.7], [0.25, 0.28, 0.35], [0.6, 0.68, 0.78]],
        [[0.9, 0.9, 0.95], [0.5, 0.45, 0.55], [0.65, 0.75, 0.9], [0.35, 0.38, 0.45], [0.8, 0.82, 0.88]],
    ]),
}


def demo_domain_picture(seed: int, domain: str, index: int, size: int) -> tuple[np.ndarray, torch.Tensor]:
    """(structure: the scene's class ids (H, W) uint8, picture (3, H, W) in 0..1) of scene ``index``
    rendered in a domain: the demo scene's geometry, one of the domain's palettes, a texture, and
    for B a speckle of snow."""
    label, _, _ = demo_scene(seed, index, size)
    gen = seeded_generator(seed, 7, ord(domain), index)
    palette = _PALETTES[domain][int(torch.randint(len(_PALETTES[domain]), (1,), generator=gen))]
    ids = torch.from_numpy(label.astype(np.int64)) - 1  # 0: background, 1..: the shape classes
    picture = palette[ids].permute(2, 0, 1)
    picture = picture * (0.85 + 0.3 * (random_texture(gen, size, size) - 0.5))
    if domain == "B":
        snow = (torch.rand(1, size, size, generator=gen) < uniform(gen, 0.01, 0.04)).float()
        picture = picture * (1 - snow) + snow * 0.97
    return label, picture.clamp(0, 1)


def build_unpaired_demo_dataset(folder: str | os.PathLike, *, train: int = 48, test: int = 8, size: int = 64,
                                seed: int = 0) -> Path:
    """Writes CycleGAN's layout (``trainA/ trainB/ testA/ testB/``) of the two demo domains, and
    each A image's structure (``<phase>A_structure/``, class ids), unless already there. A and B
    images are different scenes: the data is unpaired."""
    folder = Path(folder)
    recipe = {"kind": "unpaired", "train": train, "test": test, "size": size, "seed": seed}
    marker = folder / "demo_dataset.json"
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return folder
    for phase, count, offset in (("train", train, 0), ("test", test, 2 * train)):
        for sub in ("A", "B", "A_structure"):
            (folder / f"{phase}{sub}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            for domain, scene in (("A", offset + 2 * i), ("B", offset + 2 * i + 1)):
                structure, picture = demo_domain_picture(seed, domain, scene, size)
                array = (picture * 255).round().byte().permute(1, 2, 0).numpy()
                Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{phase}{domain}" / f"{i:04d}.png")
                if domain == "A":
                    Image.fromarray(structure).save(folder / f"{phase}A_structure" / f"{i:04d}.png")
    marker.write_text(json.dumps(recipe))
    return folder
