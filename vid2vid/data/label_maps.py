"""Label and instance maps: Cityscapes ids <-> colours, remapping tables,
instance boundaries and one-hot encoding."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch
import yaml
from torch import Tensor

from vid2vid.config import ConfigError
from vid2vid.data.images import DatasetError

# Colours of the Cityscapes label ids 0 .. 33 (cityscapesScripts' labels.py); several ids
# share a colour (0..4 black, 17/18 grey), so colour -> id takes the first of them.
CITYSCAPES_PALETTE = np.array([
    (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (111, 74, 0), (81, 0, 81), (128, 64, 128),
    (244, 35, 232), (250, 170, 160), (230, 150, 140), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (180, 165, 180), (150, 100, 100), (150, 120, 90), (153, 153, 153), (153, 153, 153), (250, 170, 30),
    (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142),
    (0, 0, 70), (0, 60, 100), (0, 0, 90), (0, 0, 110), (0, 80, 100), (0, 0, 230), (119, 11, 32),
], dtype=np.uint8)


def ids_to_colors(ids: np.ndarray, palette: np.ndarray = CITYSCAPES_PALETTE) -> np.ndarray:
    """(H, W) integer ids -> (H, W, 3) uint8 colours; ids beyond the palette are an error."""
    ids = np.asarray(ids)
    if ids.min() < 0 or ids.max() >= len(palette):
        raise DatasetError(f"label ids must be 0 .. {len(palette) - 1} for this palette, got {ids.min()} .. "
                           f"{ids.max()}")
    return palette[ids]


def colors_to_ids(colors: np.ndarray, palette: np.ndarray = CITYSCAPES_PALETTE) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) uint8 ids, the first id of each colour; a colour not in the palette is an error."""
    colors = np.asarray(colors, dtype=np.uint8)[..., :3]
    keys = (colors[..., 0].astype(np.int64) << 16) | (colors[..., 1].astype(np.int64) << 8) | colors[..., 2]
    palette_keys = (palette[:, 0].astype(np.int64) << 16) | (palette[:, 1].astype(np.int64) << 8) | palette[:, 2]
    lookup = {}
    for index, key in enumerate(palette_keys.tolist()):
        lookup.setdefault(key, index)
    unique, inverse = np.unique(keys, return_inverse=True)
    unknown = [k for k in unique.tolist() if k not in lookup]
    if unknown:
        shown = ", ".join(f"({k >> 16}, {(k >> 8) & 255}, {k & 255})" for k in unknown[:3])
        raise DatasetError(f"{len(unknown)} colours are not in the palette (first: {shown})")
    return np.array([lookup[k] for k in unique.tolist()], dtype=np.uint8)[inverse].reshape(keys.shape)


def parse_remap(text: str) -> dict[int, int]:
    """A remapping table from ``"11:21,12:21"`` (source:target pairs) or a YAML file of them."""
    if os.path.isfile(text):
        with open(text) as f:
            table = yaml.safe_load(f)
        if not isinstance(table, dict):
            raise ConfigError(f"{text} must hold a mapping of label ids, source: target")
    else:
        table = {}
        for pair in filter(None, (p.strip() for p in text.split(","))):
            source, sep, target = pair.partition(":")
            if not sep:
                raise ConfigError(f"remap entry {pair!r} must look like SRC:DST")
            table[source] = target
    try:
        return {int(k): int(v) for k, v in table.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"remap table {text!r} must map integer label ids to integer label ids") from None


def remap_labels(ids: np.ndarray | Tensor, table: Mapping[int, int]) -> np.ndarray | Tensor:
    """ids with every key of table replaced by its value (all at once, so 1:2,2:1 swaps)."""
    if isinstance(ids, Tensor):
        out = ids.clone()
        for source, target in table.items():
            out[ids == source] = target
        return out
    out = np.array(ids, copy=True)
    for source, target in table.items():
        out[np.asarray(ids) == source] = target
    return out


def instance_boundaries(instances: Tensor) -> Tensor:
    """pix2pixHD's boundary map (Sec. 3.3): 1 where a pixel's instance id differs from a
    horizontal or vertical neighbour's (both pixels of the pair), else 0.

    instances (B, 1, H, W) integer ids -> (B, 1, H, W) float."""
    edges = torch.zeros_like(instances, dtype=torch.bool)
    horizontal = instances[..., :, 1:] != instances[..., :, :-1]
    vertical = instances[..., 1:, :] != instances[..., :-1, :]
    edges[..., :, 1:] |= horizontal
    edges[..., :, :-1] |= horizontal
    edges[..., 1:, :] |= vertical
    edges[..., :-1, :] |= vertical
    return edges.float()


def one_hot_labels(labels: Tensor, label_nc: int) -> Tensor:
    """(B, 1, H, W) class ids -> (B, label_nc, H, W) one-hot float."""
    return torch.nn.functional.one_hot(labels[:, 0].long(), label_nc).permute(0, 3, 1, 2).float()

