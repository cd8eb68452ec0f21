"""The demo dataset that the trainers use when no dataset is given: pairs of
an edge map (input A, black lines on white, as edges2shoes) and the picture
it was traced from (target B), side by side. The pictures are procedural
(textured polygons over a textured background, :mod:`vid2vid.data.procedural`)
and the edges come from kornia's Canny, so nothing is downloaded."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import kornia
import numpy as np
import torch
from PIL import Image

from vid2vid.data.procedural import Polygon, random_texture, sample_texture, seeded_generator, uniform


def is_built(folder: Path, recipe: dict) -> bool:
    """Whether ``folder`` already holds the generated dataset ``recipe`` describes (its demo_dataset.json)."""
    marker = folder / "demo_dataset.json"
    return marker.exists() and json.loads(marker.read_text()) == recipe


def mark_built(folder: Path, recipe: dict) -> Path:
    """Records that ``folder`` holds the dataset of ``recipe`` (read by :func:`is_built`); returns folder."""
    (folder / "demo_dataset.json").write_text(json.dumps(recipe))
    return folder


def demo_picture(seed: int, index: int, size: int) -> torch.Tensor:
    """A (3, size, size) picture in 0..1: a smooth background and 2-5 textured polygons."""
    gen = seeded_generator(seed, index)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack((xs, ys))
    # a calm background, so that the edges are mostly the shapes' outlines
    picture = 0.6 + 0.4 * random_texture(gen, size, size) * 0.5
    for _ in range(int(torch.randint(2, 6, (1,), generator=gen))):
        alpha = Polygon.random(gen, size, size).coverage(grid)
        picture = alpha * random_texture(gen, size, size) + (1 - alpha) * picture
    return picture


def edge_map(picture: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in 0..1 -> (3, H, W) black Canny edges on white."""
    _, edges = kornia.filters.canny(picture.unsqueeze(0), low_threshold=0.1, high_threshold=0.25)
    return (1 - edges[0]).expand(3, -1, -1)


def build_demo_dataset(folder: str | os.PathLike, *, train: int = 64, test: int = 8, size: int = 128,
                       seed: int = 0) -> Path:
    """Writes ``folder/train/NNNN.png`` and ``folder/test/NNNN.png`` (A|B side by side) unless
    a dataset with the same parameters is there already; returns the folder."""
    folder = Path(folder)
    recipe = {"train": train, "test": test, "size": size, "seed": seed}
    if is_built(folder, recipe):
        return folder
    for phase, count, offset in (("train", train, 0), ("test", test, train)):
        (folder / phase).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            picture = demo_picture(seed, offset + i, size)
            pair = torch.cat((edge_map(picture), picture), 2)
            array = (pair.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(array)).save(folder / phase / f"{i:04d}.png")
    return mark_built(folder, recipe)


# The label demo: class 1 is the background, classes 2 .. DEMO_LABEL_NC - 1 the shapes.
DEMO_LABEL_NC = 6
# each shape class comes in two colour variants, so one label map has several right answers
_CLASS_COLOURS = torch.tensor([
    [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], [[0.75, 0.8, 0.85], [0.75, 0.8, 0.85]],
    [[0.85, 0.2, 0.2], [0.95, 0.75, 0.2]], [[0.2, 0.6, 0.25], [0.2, 0.3, 0.8]],
    [[0.6, 0.3, 0.7], [0.9, 0.5, 0.7]], [[0.2, 0.2, 0.25], [0.9, 0.9, 0.85]],
])


def demo_scene(seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(label ids (H, W) uint8, instance ids (H, W) int32, picture (3, H, W) in 0..1) of one scene.
    Instance ids follow Cityscapes: class * 1000 + the object's number."""
    gen = seeded_generator(seed, 1, index)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack((xs, ys))
    label = torch.ones(size, size, dtype=torch.int64)
    instance = torch.full((size, size), 1000, dtype=torch.int64)
    picture = _CLASS_COLOURS[1, 0].view(3, 1, 1) * (0.85 + 0.3 * random_texture(gen, size, size) * 0.5)
    for k in range(int(torch.randint(2, 5, (1,), generator=gen))):
        cls = int(torch.randint(2, DEMO_LABEL_NC, (1,), generator=gen))
        variant = int(torch.randint(0, 2, (1,), generator=gen))
        inside = Polygon.random(gen, size, size).coverage(grid) >= 0.5
        texture = 0.8 + 0.4 * random_texture(gen, size, size) * 0.5
        picture = torch.where(inside, _CLASS_COLOURS[cls, variant].view(3, 1, 1) * texture, picture)
        label[inside] = cls
        instance[inside] = cls * 1000 + k
    return label.numpy().astype(np.uint8), instance.numpy().astype(np.int32), picture.clamp(0, 1)


def build_label_demo_dataset(folder: str | os.PathLike, *, train: int = 32, test: int = 4, size: int = 128,
                             seed: int = 0) -> Path:
    """Writes the pix2pixHD layout (``<phase>_label/``, ``<phase>_inst/`` as 16-bit PNG,
    ``<phase>_img/``) of generated scenes with DEMO_LABEL_NC classes, unless already there."""
    folder = Path(folder)
    recipe = {"kind": "labels", "train": train, "test": test, "size": size, "seed": seed}
    if is_built(folder, recipe):
        return folder
    for phase, count, offset in (("train", train, 0), ("test", test, train)):
        for sub in ("label", "inst", "img"):
            (folder / f"{phase}_{sub}").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            label, instance, picture = demo_scene(seed, offset + i, size)
            Image.fromarray(label).save(folder / f"{phase}_label" / f"{i:04d}.png")
            Image.fromarray(instance.astype(np.uint16)).save(folder / f"{phase}_inst" / f"{i:04d}.png")
            array = (picture * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{phase}_img" / f"{i:04d}.png")
    return mark_built(folder, recipe)


def demo_video(seed: int, index: int, frames: int, size: int, loop: bool = False) -> dict[str, np.ndarray]:
    """One generated sequence of the label demo's classes: textured shapes gliding over a
    panning textured background, occluding each other as they pass. Every layer translates
    by its own velocity (pixels per frame), so the flow is exact: from frame t to frame t-1
    it is minus the velocity of the topmost layer at each pixel. With ``loop``, a shape that
    leaves the frame comes back on the other side (its path wraps around a torus larger than the
    frame by more than the largest shape, so the jump happens out of view and the flow stays
    exact): long sequences whose objects enter, leave, occlude each other and return, with the
    same look each time.

    Instance ids follow Cityscapes: ``class * 1000 + k`` for the shapes (objects), the class id
    itself (1) for the background, which is stuff, not an object.

    Returns ``{"label": (T, H, W) uint8, "instance": (T, H, W) int32, "image": (T, H, W, 3) uint8,
    "flow": (T-1, H, W, 2) float32}``."""
    gen = seeded_generator(seed, 2, index)
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack((xs, ys))
    background = _CLASS_COLOURS[1, 0].view(3, 1, 1) * (0.85 + 0.3 * random_texture(gen, size, size) * 0.5)
    layers = [(1, 1, None, background, uniform(gen, -0.6, 0.6, (2,)))]
    largest = (0.15, 0.35)  # the shapes' radius, as a fraction of the side
    for k in range(int(torch.randint(2, 5, (1,), generator=gen))):
        cls = int(torch.randint(2, DEMO_LABEL_NC, (1,), generator=gen))
        colour = _CLASS_COLOURS[cls, int(torch.randint(0, 2, (1,), generator=gen))].view(3, 1, 1)
        texture = colour * (0.8 + 0.4 * random_texture(gen, size, size) * 0.5)
        speed, angle = uniform(gen, 0.5, 2.0), uniform(gen, 0, 2 * np.pi)
        layers.append((cls, cls * 1000 + k, Polygon.random(gen, size, size, largest), texture,
                       speed * torch.stack((angle.cos(), angle.sin()))))
    # with loop, a shape's centre moves on a torus of this period, out of view by its radius at the seam
    margin = math.ceil(largest[1] * size) + 2
    period = size - 1 + 2 * margin
    out = {"label": [], "instance": [], "image": [], "flow": []}
    for t in range(frames):
        label = torch.empty(size, size, dtype=torch.int64)
        instance = torch.empty(size, size, dtype=torch.int64)
        picture, flow = torch.empty(3, size, size), torch.empty(2, size, size)
        for cls, inst, polygon, texture, velocity in layers:
            shift = velocity * t
            if loop and polygon is not None:
                centre = polygon.centre + shift
                shift = (centre + margin) % period - margin - polygon.centre
            source = grid - shift.view(2, 1, 1)  # where this pixel was at frame 0
            inside = torch.ones(size, size, dtype=torch.bool) if polygon is None else polygon.coverage(source) >= 0.5
            picture = torch.where(inside, sample_texture(texture, source), picture)
            flow = torch.where(inside, -velocity.view(2, 1, 1), flow)
            label[inside], instance[inside] = cls, inst
        out["label"].append(label.numpy().astype(np.uint8))
        out["instance"].append(instance.numpy().astype(np.int32))
        out["image"].append((picture.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        if t:
            out["flow"].append(flow.permute(1, 2, 0).numpy())
    return {key: np.stack(value) for key, value in out.items()}


def build_video_demo_dataset(folder: str | os.PathLike, *, train: int = 16, test: int = 2, frames: int = 24,
                             size: int = 64, seed: int = 0, loop: bool = False) -> Path:
    """Writes the vid2vid layout of generated sequences (``<phase>_A/seqNN/`` label ids,
    ``<phase>_inst/`` 16-bit instance ids, ``<phase>_B/`` frames, ``<phase>_flow/`` the exact
    flow from each frame to the previous one as .flo files), unless already there; ``loop``: shapes
    that leave come back (:func:`demo_video`), for long sequences."""
    from flownet.flow_utils import write_flo  # flownet loads the compiled ops: only when building

    folder = Path(folder)
    recipe = {"kind": "video", "train": train, "test": test, "frames": frames, "size": size, "seed": seed,
              "loop": loop, "background_id": 1}
    if is_built(folder, recipe):
        return folder
    for phase, count, offset in (("train", train, 0), ("test", test, train)):
        for i in range(count):
            video = demo_video(seed, offset + i, frames, size, loop)
            dirs = {sub: folder / f"{phase}_{sub}" / f"seq{i:02d}" for sub in ("A", "inst", "B", "flow")}
            for path in dirs.values():
                path.mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                Image.fromarray(video["label"][t]).save(dirs["A"] / f"{t:04d}.png")
                Image.fromarray(video["instance"][t].astype(np.uint16)).save(dirs["inst"] / f"{t:04d}.png")
                Image.fromarray(video["image"][t]).save(dirs["B"] / f"{t:04d}.png")
                if t:
                    write_flo(dirs["flow"] / f"{t - 1:04d}.flo", video["flow"][t - 1])
    return mark_built(folder, recipe)
