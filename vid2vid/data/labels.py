"""Label maps, instance maps and images for pix2pixHD (and, per frame, vid2vid).

Layout (NVIDIA/pix2pixHD's): ``ROOT/<phase>_label/``, ``ROOT/<phase>_inst/``
(optional), ``ROOT/<phase>_img/``, matched by sorted order. A vid2vid sequence
dataset (``<phase>_A/<seq>/``, ``<phase>_inst/<seq>/``, ``<phase>_B/<seq>/``)
serves as well, every frame of every sequence an item: so a frame-by-frame
pix2pixHD baseline trains on the very data vid2vid does. Label maps hold
class ids as pixel values (Cityscapes ``*_labelIds.png`` are read as they are);
instance maps hold an id per object (Cityscapes ``*_instanceIds.png``, 16 bit).
With ``label_nc: 0`` the label images are RGB pictures used as they are
(edges, poses drawn as images).

Every file is checked when the dataset is built: label values below
``label_nc``, instance maps of the label map's size, readable images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from vid2vid.data.images import DatasetError, list_images, read_image, to_tensor
from vid2vid.data.transforms import Geometry, Preprocess, PreprocessConfig


@dataclass(frozen=True)
class LabelDataConfig(PreprocessConfig):
    """The ``data:`` section of pix2pixHD configs."""

    root: str | None = None
    """dataset folder; None builds the small demo dataset in the run's output folder"""
    preprocess: Preprocess = "scale_width"
    load_size: int = 1024
    crop_size: int = 512
    max_size: int | None = None
    extra: tuple[str, ...] = ()
    """extra input maps: for each name, ROOT/<phase>_<name>/ holds one image per label map
    (grey or RGB, e.g. depth or edges), added to the input channels (model.extra_nc in all)"""


SEQUENCE_FOLDERS = {"label": "A", "inst": "inst", "img": "B"}
"""the vid2vid folder that holds each pix2pixHD folder's frames, one sub-folder per sequence"""


def _column(root: Path, phase: str, name: str) -> list[Path]:
    """The images of ROOT/<phase>_<name>/, or the frames of every sequence of its vid2vid counterpart."""
    flat = root / f"{phase}_{name}"
    nested = root / f"{phase}_{SEQUENCE_FOLDERS[name]}" if name in SEQUENCE_FOLDERS else None
    if nested is not None and nested.is_dir() and not (flat.is_dir() and list_images(flat)):
        sequences = sorted(p for p in nested.iterdir() if p.is_dir())
        if sequences:
            return [frame for sequence in sequences for frame in list_images(sequence)]
    return list_images(flat)


def has_images(root: str | os.PathLike, phase: str) -> bool:
    """Whether a dataset has real images for its label maps: ROOT/<phase>_img/, or the frames of a
    sequence dataset's ROOT/<phase>_B/."""
    root = Path(root)
    if not any((root / f"{phase}_{name}").is_dir() for name in ("img", SEQUENCE_FOLDERS["img"])):
        return False  # test sets often come without them (NVIDIA's test_label/, test_inst/ alone)
    return bool(_column(root, phase, "img"))


def check_label_range(ids: np.ndarray, label_nc: int, path: Path) -> None:
    """DatasetError naming path unless every id lies in 0 .. label_nc - 1."""
    if ids.max() >= label_nc or ids.min() < 0:
        raise DatasetError(f"{path} holds label {int(ids.max())}, but model.label_nc is {label_nc} "
                           f"(labels must be 0 .. {label_nc - 1})")


def ids_tensor(ids: np.ndarray, geometry: Geometry) -> Tensor:
    """Label or instance ids (H, W) through the geometry (nearest) as (1, H', W') int64."""
    image = geometry.apply(Image.fromarray(ids.astype(np.int32), mode="I"), Image.NEAREST)
    return torch.from_numpy(np.asarray(image, dtype=np.int64).copy())[None]


def _read_ids(path: Path) -> np.ndarray:
    """A label or instance map's integer ids as stored (8- or 16-bit grey, or palette indices)."""
    image = read_image(path, mode=None)
    if image.mode in ("RGB", "RGBA"):
        raise DatasetError(f"{path} is an {image.mode} image; label and instance maps hold one id per pixel "
                           f"(use data.label_nc=0 for RGB label pictures)")
    return np.asarray(image, dtype=np.int64)


class LabelDataset(Dataset):
    """Item i: ``{"label": (1, H, W) int64 class ids, or (3, H, W) -1..1 when label_nc is 0;
    "instance": (1, H, W) int64 (zeros without instance maps); "image": (3, H, W) in -1..1;
    "path": str}``, all with the same random resize/crop/flip (nearest for the maps)."""

    def __init__(self, root: str | os.PathLike, phase: str, config: LabelDataConfig, *, label_nc: int,
                 use_instance: bool, extra_nc: int = 0, train: bool = True, seed: int = 0, multiple: int = 1,
                 need_images: bool = True):
        self.root, self.config, self.label_nc, self.extra_nc = Path(root), config, label_nc, extra_nc
        self.use_instance, self.train, self.seed, self.epoch = use_instance, train, seed, 0
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        labels = _column(self.root, phase, "label")[: config.max_size]
        if not labels:
            raise DatasetError(f"no label maps in {self.root / f'{phase}_label'}")
        columns = {"label": labels}
        if use_instance:
            columns["instance"] = _column(self.root, phase, "inst")[: config.max_size]
        if need_images:
            columns["image"] = _column(self.root, phase, "img")[: config.max_size]
        for name in config.extra:
            columns[f"extra_{name}"] = list_images(self.root / f"{phase}_{name}")[: config.max_size]
        for name, files in columns.items():
            if len(files) != len(labels):
                raise DatasetError(f"{len(labels)} label maps in {self.root / f'{phase}_label'} but {len(files)} "
                                   f"files in {files[0].parent if files else self.root / phase}")
        self.items = [dict(zip(columns, files)) for files in zip(*columns.values())]
        for item in self.items:
            self._check(item, multiple)

    def _check(self, item: dict[str, Path], multiple: int) -> None:
        if self.label_nc:
            ids = _read_ids(item["label"])
            check_label_range(ids, self.label_nc, item["label"])
            size = (ids.shape[1], ids.shape[0])
        else:
            size = read_image(item["label"]).size
        extra_channels = 0
        for name in item:
            if name == "label":
                continue
            if name.startswith("extra_"):
                extra_channels += len(read_image(item[name], mode=None).getbands()[:3])
            other = _read_ids(item[name]).shape[::-1] if name == "instance" else read_image(item[name]).size
            if tuple(other) != size:
                raise DatasetError(f"{item[name]} is {other[0]}x{other[1]} but its label map {item['label']} "
                                   f"is {size[0]}x{size[1]}")
        if extra_channels != self.extra_nc:
            raise DatasetError(f"the extra maps of {item['label']} ({', '.join(self.config.extra) or 'none'}) have "
                               f"{extra_channels} channels but model.extra_nc is {self.extra_nc}")
        self.config.preprocessing.check(size, multiple, item["label"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        """Item ``index % len(self)``, its random draws a function of (seed, epoch, index)."""
        item = self.items[index % len(self)]
        if self.label_nc:
            ids = _read_ids(item["label"])
            size = ids.shape[::-1]
        else:
            label_image = read_image(item["label"])
            size = label_image.size
        geometry = self.config.preprocessing.draw(size, np.random.default_rng([self.seed, self.epoch, index]),
                                                  self.train)
        label = ids_tensor(ids, geometry) if self.label_nc else to_tensor(geometry.apply(label_image, Image.BICUBIC))
        out = {"label": label, "path": str(item["label"])}
        if "instance" in item:
            out["instance"] = ids_tensor(_read_ids(item["instance"]), geometry)
        else:
            out["instance"] = torch.zeros(1, *label.shape[-2:], dtype=torch.int64)
        if "image" in item:
            out["image"] = to_tensor(geometry.apply(read_image(item["image"])))
        if self.config.extra:
            out["extra"] = torch.cat([self._extra(geometry.apply(read_image(item[f"extra_{n}"], mode=None)))
                                      for n in self.config.extra])
        return out

    @staticmethod
    def _extra(image: Image.Image) -> Tensor:
        """A grey or colour map as (1 or 3, H, W) in -1..1."""
        image = image.convert("L") if len(image.getbands()) < 3 else image.convert("RGB")
        array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).float() / 127.5 - 1
        return array.unsqueeze(0) if array.dim() == 2 else array.permute(2, 0, 1)
