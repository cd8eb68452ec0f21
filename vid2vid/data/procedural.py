"""Procedural images for data that needs no download: colour textures with
structure at every scale, and anti-aliased star-shaped polygons. FlowNet's
generated training pairs (:mod:`flownet.synthetic`) and the pix2pix demo
dataset (:mod:`vid2vid.data.demo`) are drawn with them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU generator whose stream is a pure function of the non-negative integer keys, distinct for distinct keys."""
    state = np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def uniform(gen: torch.Generator, low: float, high: float, size: tuple[int, ...] = ()) -> Tensor:
    """Samples of U(low, high) of the given shape from gen."""
    return low + (high - low) * torch.rand(size, generator=gen)


def random_texture(gen: torch.Generator, height: int, width: int) -> Tensor:
    """A colour texture (3, H, W) in 0..1 with structure at every scale: value
    noise summed over octaves, mixed through a random colour matrix, with
    hard-edged patches from a thresholded octave so that there are corners to match."""
    octaves = []
    cells = 2
    while cells <= max(height, width) // 4:  # finer noise would alias when frame B resamples it
        noise = torch.rand(3, 1, cells + 1, cells + 1, generator=gen)
        octaves.append(F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=True)[:, 0])
        cells *= 2
    weights = uniform(gen, 0.3, 1.0, (len(octaves), 1, 1, 1)) * 0.85 ** torch.arange(len(octaves)).view(-1, 1, 1, 1)
    texture = (torch.stack(octaves) * weights).sum(0)
    patch_octave = octaves[int(torch.randint(len(octaves), (1,), generator=gen))][0]
    patches = (patch_octave > patch_octave.median()).float()
    texture = texture + uniform(gen, 0.0, 1.5) * patches * uniform(gen, -1.0, 1.0, (3, 1, 1))
    texture = torch.einsum("ij,jhw->ihw", uniform(gen, -1.0, 1.0, (3, 3)) + 1.5 * torch.eye(3), texture)
    low = texture.amin(dim=(1, 2), keepdim=True)
    high = texture.amax(dim=(1, 2), keepdim=True)
    # stretch each channel to a random sub-range of 0..1 so that layers differ in brightness
    span = uniform(gen, 0.4, 1.0, (3, 1, 1))
    offset = uniform(gen, 0.0, 1.0, (3, 1, 1)) * (1 - span)
    return offset + span * (texture - low) / (high - low).clamp_min(1e-6)


def sample_texture(texture: Tensor, points: Tensor) -> Tensor:
    """texture (3, H, W) sampled bilinearly at pixel positions points (2, H', W'), mirrored beyond its border."""
    height, width = texture.shape[-2:]
    scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)]).view(2, 1, 1)
    grid = (points * scale - 1).permute(1, 2, 0).unsqueeze(0)
    return F.grid_sample(texture.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection", align_corners=True)[0]


@dataclass
class Polygon:
    """A star-shaped polygon: vertices (N, 2) around ``centre``, counter-clockwise by angle."""

    centre: Tensor
    vertices: Tensor

    @classmethod
    def random(cls, gen: torch.Generator, height: int, width: int, size: tuple[float, float] = (0.08, 0.3)) -> Polygon:
        """Random vertices around a random centre, the radius a fraction ``size`` (low, high) of the image side."""
        n = int(torch.randint(3, 11, (1,), generator=gen))
        # gaps between vertex angles stay below pi, so the centre is inside and every point has one sector
        angles = 2 * math.pi * (torch.arange(n) + uniform(gen, -0.2, 0.2, (n,))) / n + uniform(gen, 0, 2 * math.pi)
        angles = torch.sort(angles % (2 * math.pi)).values
        radius = min(height, width) * uniform(gen, *size) * uniform(gen, 0.5, 1.0, (n,))
        centre = torch.stack((uniform(gen, 0, width - 1), uniform(gen, 0, height - 1)))
        return cls(centre, torch.stack((angles.cos(), angles.sin()), 1) * radius.view(n, 1))

    def coverage(self, points: Tensor) -> Tensor:
        """Anti-aliased coverage (H, W) in 0..1 of pixels centred at points (2, H, W): the signed
        distance to the edge of the point's sector, clamped to one pixel of ramp."""
        local = points - self.centre.view(2, 1, 1)
        vertex_angles = torch.atan2(self.vertices[:, 1], self.vertices[:, 0]) % (2 * math.pi)
        angle = torch.atan2(local[1], local[0]) % (2 * math.pi)
        sector = (torch.searchsorted(vertex_angles.contiguous(), angle.contiguous(), right=True) - 1) % len(vertex_angles)
        start = self.vertices[sector]  # (H, W, 2)
        edge = self.vertices[(sector + 1) % len(vertex_angles)] - start
        offset = local.permute(1, 2, 0) - start
        inside_distance = (edge[..., 0] * offset[..., 1] - edge[..., 1] * offset[..., 0]) / edge.norm(dim=-1)
        return (inside_distance + 0.5).clamp(0, 1)
