"""Frame pairs with exact optical flow, generated on the fly, in the spirit of
FlyingChairs (Dosovitskiy et al. 2015, Sec. 4): textured polygons under random
affine motions over a textured background that moves too.

Every layer (the background, then the polygons back to front) has a texture and,
for the polygons, an outline, both defined in the coordinates of frame A, and an
affine motion ``M`` taking a point of frame A to where it is in frame B. Frame A
shows each layer where it is; frame B samples each layer at ``M^-1(q)``; the flow
at a pixel ``p`` of frame A is ``M(p) - p`` of the topmost layer covering ``p``.
So ``frame_a[p] == frame_b[p + flow[p]]`` wherever ``p`` stays visible.

Each sample is a pure function of ``(seed, split, index)``: datasets are
reproducible, a training run resumes on the same data, and the ``"val"`` split
never repeats a training pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vid2vid.data.procedural import Polygon, random_texture, sample_texture, seeded_generator, uniform

SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class MotionRange:
    """How far layers move between the frames; shifts are fractions of the image size."""

    background_shift: float = 0.04
    background_rotation_deg: float = 5.0
    background_scale: float = 0.05
    object_shift: float = 0.10
    object_rotation_deg: float = 15.0
    object_scale: float = 0.15
    min_objects: int = 2
    max_objects: int = 6


def sample_generator(seed: int, split: str, index: int) -> torch.Generator:
    """The random stream of one sample; distinct for every (seed, split, index)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    return seeded_generator(seed, SPLITS[split], index)


def _affine(gen: torch.Generator, centre: Tensor, size: Tensor, shift: float, rotation_deg: float, scale: float) -> Tensor:
    """A random motion (2, 3) about ``centre``: p -> centre + t + A (p - centre)."""
    angle = math.radians(rotation_deg) * uniform(gen, -1.0, 1.0)
    zoom = 1 + scale * uniform(gen, -1.0, 1.0, (2,))  # slight anisotropy, as chairs seen at an angle
    rotation = torch.stack((torch.stack((angle.cos(), -angle.sin())), torch.stack((angle.sin(), angle.cos()))))
    linear = rotation * zoom.view(1, 2)
    translation = shift * size * uniform(gen, -1.0, 1.0, (2,))
    return torch.cat((linear, (centre + translation - linear @ centre).view(2, 1)), 1)


def _apply(motion: Tensor, points: Tensor) -> Tensor:
    """motion (2, 3) applied to points (2, H, W)."""
    return torch.einsum("ij,jhw->ihw", motion[:, :2], points) + motion[:, 2].view(2, 1, 1)


def _invert(motion: Tensor) -> Tensor:
    inverse = torch.linalg.inv(motion[:, :2])
    return torch.cat((inverse, -(inverse @ motion[:, 2:])), 1)


def generate_pair(gen: torch.Generator, height: int, width: int, motion: MotionRange = MotionRange()) -> tuple[Tensor, Tensor, Tensor]:
    """One generated sample.

    Returns:
        frame_a, frame_b: (3, H, W) float32 RGB in 0..255.
        flow: (2, H, W) float32 flow in pixels from frame_a to frame_b, channel 0 horizontal.
    """
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    grid = torch.stack((xs, ys))
    size = torch.tensor([width, height], dtype=torch.float32)
    centre = (size - 1) / 2

    background = random_texture(gen, height, width)
    background_motion = _affine(gen, centre, size, motion.background_shift, motion.background_rotation_deg,
                                motion.background_scale)
    frame_a = background.clone()
    frame_b = sample_texture(background, _apply(_invert(background_motion), grid))
    flow = _apply(background_motion, grid) - grid

    n_objects = int(torch.randint(motion.min_objects, motion.max_objects + 1, (1,), generator=gen))
    for _ in range(n_objects):
        texture = random_texture(gen, height, width)
        polygon = Polygon.random(gen, height, width)
        # objects move relative to the moving background, as the chairs do
        own = _affine(gen, polygon.centre, size, motion.object_shift, motion.object_rotation_deg, motion.object_scale)
        object_motion = torch.cat((own[:, :2] @ background_motion[:, :2],
                                   (own[:, :2] @ background_motion[:, 2:] + own[:, 2:])), 1)
        alpha_a = polygon.coverage(grid)
        source = _apply(_invert(object_motion), grid)
        alpha_b = polygon.coverage(source)
        frame_a = alpha_a * texture + (1 - alpha_a) * frame_a
        frame_b = alpha_b * sample_texture(texture, source) + (1 - alpha_b) * frame_b
        flow = torch.where(alpha_a >= 0.5, _apply(object_motion, grid) - grid, flow)
    return frame_a * 255, frame_b * 255, flow


class SyntheticFlowDataset(Dataset):
    """``length`` generated pairs of size (height, width). Item i is
    ``(pair, flow)``: pair (3, 2, H, W) RGB in 0..255, the layout the FlowNet2
    models take, and flow (2, H, W) in pixels."""

    def __init__(self, length: int, height: int, width: int, *, seed: int = 0, split: str = "train",
                 motion: MotionRange = MotionRange()):
        if length < 1 or height < 8 or width < 8:
            raise ValueError(f"need length >= 1 and a size of at least 8x8, got {length} pairs of {height}x{width}")
        sample_generator(seed, split, 0)  # validates split
        self.length, self.height, self.width = length, height, width
        self.seed, self.split, self.motion = seed, split, motion

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        gen = sample_generator(self.seed, self.split, index)
        frame_a, frame_b, flow = generate_pair(gen, self.height, self.width, self.motion)
        return torch.stack((frame_a, frame_b), 1), flow
