"""Unpaired images for CycleGAN and its kin: CycleGAN's layout, ``<phase>A/`` and
``<phase>B/`` folders of images, B drawn independently of A. A may hold videos instead
(sub-folders of frames, or video files), with the flows between their frames in
``<phase>A_flow/<sequence>/`` (.flo) for the temporal loss.

Every draw (which B goes with A number i, each image's crop and flip) is a function of
(seed, epoch, index), so that a resumed run sees the same batches. The built-in demo
makes two procedural domains of the same kind of geometry, told apart by palettes,
textures and speckle, and keeps the geometry (``<phase>A_structure/``) for evaluation.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from flownet.flow_utils import read_flo
from vid2vid.data.demo import demo_scene, demo_video, is_built, mark_built
from vid2vid.data.images import DatasetError, list_images, read_image, to_tensor
from vid2vid.data.procedural import random_texture, seeded_generator, uniform
from vid2vid.data.sequences import VIDEO_SUFFIXES, FrameSource, as_picture, sequence_entries, transform_flow
from vid2vid.data.transforms import PreprocessConfig


@dataclass(frozen=True)
class UnpairedDataConfig(PreprocessConfig):
    """The ``data:`` section of unpaired configs (CycleGAN's options, as ours are named)."""

    root: str | None = None
    """dataset folder with trainA/, trainB/ (testA/, testB/); None builds the demo domains in the run's folder"""
    max_size: int | None = None
    """use at most this many images of each domain (sorted by name)"""
    demo: Literal["images", "video"] = "images"
    """what root null builds: the two demo domains as images, or video (A: moving scenes as frame folders with
    their exact flows in <phase>A_flow/, B: the winter images)"""


def read_colour(path: Path) -> tuple[Image.Image, str]:
    """(the image as RGB, its mode as stored). Grey-scale, palette and RGBA images are converted
    (RGBA's alpha dropped), as CycleGAN's loader does."""
    image = read_image(path, mode=None)
    return image.convert("RGB"), image.mode


class UnpairedDataset(Dataset):
    """Item i: ``{"A": (3, H, W), "B": (3, H, W), "A_path": str, "B_path": str}`` in -1..1:
    image i of A (cycled), and a B drawn at random, each with its own crop and flip; as many
    items as the larger domain has images. With ``train=False`` B is image i of B (cycled)
    and the crops are centred.

    When ``<phase>A/`` holds videos (sub-folders of frames or video files) its frames are A's images;
    with ``temporal`` each item also has the frame before, ``A_prev`` (a sequence's first frame is never
    A then), and with ``with_flow`` ``A_flow`` (2, H, W): the flow from A to A_prev in pixels, read from
    ``<phase>A_flow/<sequence>/`` (entry i from frame i+1 to i, as vid2vid's datasets), all three through
    the same crop and flip."""

    def __init__(self, root: str | os.PathLike, phase: str, config: UnpairedDataConfig, *, train: bool = True,
                 seed: int = 0, multiple: int = 1, temporal: bool = False, with_flow: bool = False):
        self.root, self.config, self.train, self.seed, self.epoch = Path(root), config, train, seed, 0
        self.temporal = temporal
        self.files, self.videos, self.flows = {}, [], []
        for domain in ("A", "B"):
            folder = self.root / f"{phase}{domain}"
            files = list_images(folder)[: config.max_size]
            if domain == "A" and not files:
                self.videos = [FrameSource(path) for path in sequence_entries(folder, VIDEO_SUFFIXES).values()]
                self.videos = self.videos[: config.max_size]
            if not files and not self.videos:
                raise DatasetError(f"{folder} holds no images (CycleGAN's layout: {phase}A/ and {phase}B/, one "
                                   f"folder of images each; A may hold videos instead)")
            self.files[domain] = files
        if temporal and not self.videos:
            raise DatasetError(f"model.lambda_temporal needs videos in {self.root / f'{phase}A'} (a sub-folder of "
                               f"frames or a video file per sequence), not images")
        for video in self.videos if with_flow else ():
            folder = self.root / f"{phase}A_flow" / video.path.name.removesuffix(video.path.suffix)
            flows = FrameSource(folder, (".flo",)) if folder.is_dir() else None
            if flows is None or flows.length != video.length - 1:
                raise DatasetError(f"{video.path} has {video.length} frames: expected {video.length - 1} flows "
                                   f"(.flo) in {folder}")
            self.flows.append(flows)
        # A's items: image paths, or (video, frame) pairs
        self.items_A = self.files["A"] or [(v, t) for v, video in enumerate(self.videos)
                                           for t in range(int(temporal), video.length)]
        first = self.files["A"][0] if self.files["A"] else None
        a_picture = read_colour(first)[0] if first else as_picture(self.videos[0].read(0, 1)[0])
        config.preprocessing.check(a_picture.size, multiple, first or self.videos[0].path)
        b_picture, _ = read_colour(self.files["B"][0])  # the size checks; every file is read as it is used
        config.preprocessing.check(b_picture.size, multiple, self.files["B"][0])
        self._warned = False  # of images converted to RGB: once

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.items_A), len(self.files["B"]))

    def _load(self, path: Path, rng: np.random.Generator) -> dict:
        """{"A": an image file with its own crop and flip, "A_path": its path}."""
        image, mode = read_colour(path)
        if mode != "RGB" and not self._warned:
            self._warned = True
            warnings.warn(f"converted to RGB: {path.name} ({mode}) in {path.parent}, and any other image that is "
                          f"not RGB", stacklevel=2)
        geometry = self.config.preprocessing.draw(image.size, rng, self.train)
        return {"A": to_tensor(geometry.apply(image)), "A_path": str(path)}

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        b_files = self.files["B"]
        item = self.items_A[index % len(self.items_A)]
        b_path = b_files[int(rng.integers(len(b_files)))] if self.train else b_files[index % len(b_files)]
        a = self._load(item, rng) if isinstance(item, Path) else self._video_frames(*item, rng)
        return {**a, "B": self._load(b_path, rng)["A"], "B_path": str(b_path)}

    def _video_frames(self, video: int, t: int, rng: np.random.Generator) -> dict:
        """Frame t of a video as A (with the frame before it and the flow between, as asked), one crop and flip."""
        source = self.videos[video]
        frames = [as_picture(f) for f in source.read(t - 1, 2)] if self.temporal else \
            [as_picture(source.read(t, 1)[0])]
        geometry = self.config.preprocessing.draw(frames[-1].size, rng, self.train)
        out = {"A": to_tensor(geometry.apply(frames[-1])), "A_path": f"{source.path}#{t}"}
        if self.temporal:
            out["A_prev"] = to_tensor(geometry.apply(frames[0]))
        if self.flows:
            flow = transform_flow(read_flo(self.flows[video].read(t - 1, 1)[0]), geometry)
            out["A_flow"] = torch.from_numpy(flow).permute(2, 0, 1)
        return out


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
    if is_built(folder, recipe):
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
    return mark_built(folder, recipe)


def build_unpaired_video_demo_dataset(folder: str | os.PathLike, *, train: int = 8, test: int = 2, frames: int = 16,
                                      size: int = 64, seed: int = 0) -> Path:
    """Writes an unpaired video layout, unless already there: ``<phase>A/seqNN/`` frames of the vid2vid
    demo's moving scenes (textured shapes gliding over a panning background), ``<phase>A_flow/seqNN/``
    their exact flows (.flo, frame t+1 -> t), and ``<phase>B/`` the winter domain's images."""
    from flownet.flow_utils import write_flo

    folder = Path(folder)
    recipe = {"kind": "unpaired_video", "train": train, "test": test, "frames": frames, "size": size, "seed": seed}
    if is_built(folder, recipe):
        return folder
    for phase, count, offset in (("train", train, 0), ("test", test, train)):
        (folder / f"{phase}B").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            video = demo_video(seed, offset + i, frames, size)
            for sub in ("A", "A_flow"):
                (folder / f"{phase}{sub}" / f"seq{i:02d}").mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                Image.fromarray(video["image"][t]).save(folder / f"{phase}A" / f"seq{i:02d}" / f"{t:04d}.png")
                if t:
                    write_flo(folder / f"{phase}A_flow" / f"seq{i:02d}" / f"{t - 1:04d}.flo", video["flow"][t - 1])
        for i in range(count * 4):  # as many winter images as there are videos' frames, roughly
            _, picture = demo_domain_picture(seed, "B", offset * 8 + 2 * i + 1, size)
            array = (picture * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{phase}B" / f"{i:04d}.png")
    return mark_built(folder, recipe)
