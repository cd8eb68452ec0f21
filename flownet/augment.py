"""Photometric augmentation of frame pairs for training flow networks.

The ranges are those of FlowNet (Dosovitskiy et al. 2015, Sec. 5.2): additive
Gaussian noise with sigma in [0, 0.04], contrast in [-0.8, 0.4], multiplicative
colour changes per channel in [0.5, 2], gamma in [0.7, 1.5] and an additive
brightness change with sigma 0.2, on values in 0..1. Both frames of a pair get
the same change, then the second frame a small change of its own, as FlowNet 2.0
does, so that the network does not rely on brightness constancy. Geometry is
left alone: the flow stays exact.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _uniform(gen: torch.Generator, low: float, high: float, shape: tuple[int, ...], like: Tensor) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=gen).to(like.device, like.dtype)


def _photometric(x: Tensor, gen: torch.Generator, contrast: tuple[float, float], colour: tuple[float, float],
                 gamma: tuple[float, float], brightness_sigma: float) -> Tensor:
    """One random change per sample of x (B, 3, F, H, W) in 0..1, shared by its F frames."""
    batch = x.shape[0]
    per_sample = (batch, 1, 1, 1, 1)
    x = x * _uniform(gen, *colour, (batch, 3, 1, 1, 1), x)
    mean = x.mean(dim=(1, 2, 3, 4), keepdim=True)
    x = (x - mean) * (1 + _uniform(gen, *contrast, per_sample, x)) + mean
    x = x + brightness_sigma * torch.randn(per_sample, generator=gen).to(x.device, x.dtype)
    return x.clamp(0, 1) ** _uniform(gen, *gamma, per_sample, x)


def photometric_augment(pairs: Tensor, gen: torch.Generator) -> Tensor:
    """Randomly recoloured copies of frame pairs.

    Args:
        pairs: (B, 3, 2, H, W) RGB in 0..255, the layout of the FlowNet2 models.
        gen: a CPU generator; the same state gives the same augmentation.

    Returns:
        (B, 3, 2, H, W) in 0..255, same dtype and device.
    """
    if pairs.dim() != 5 or pairs.shape[1] != 3 or pairs.shape[2] != 2:
        raise ValueError(f"expected frame pairs of shape (B, 3, 2, H, W), got {tuple(pairs.shape)}")
    x = _photometric(pairs / 255, gen, contrast=(-0.8, 0.4), colour=(0.5, 2.0), gamma=(0.7, 1.5),
                     brightness_sigma=0.2)
    second = _photometric(x[:, :, 1:], gen, contrast=(-0.05, 0.05), colour=(0.95, 1.05), gamma=(0.95, 1.05),
                          brightness_sigma=0.02)
    x = torch.cat((x[:, :, :1], second), 2)
    sigma = _uniform(gen, 0.0, 0.04, (x.shape[0], 1, 1, 1, 1), x)
    noise = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
    return (x + sigma * noise).clamp(0, 1) * 255
