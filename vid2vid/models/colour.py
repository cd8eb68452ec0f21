"""Colour statistics of images, differentiable: the colour loss of SSAL-GAN and the colour
measures of vid2vid.unpaired_evaluation share them. Images are (B, 3, H, W) in -1..1."""

from __future__ import annotations

import torch
from torch import Tensor


def unit_range(images: Tensor) -> Tensor:
    """-1..1 to 0..1, in float32."""
    return (images.float() + 1) / 2


def log_chroma_histogram(images: Tensor, bins: int = 32, sigma: float = 0.02, span: float = 3.0) -> Tensor:
    """HistoGAN's RGB-uv histogram (Afifi et al. 2021), differentiable: for each channel as the
    reference, the log-ratios of the other two to it, binned softly (inverse-quadratic kernels over
    ``bins`` x ``bins`` centres in -span..span) and weighted by the pixel's intensity. (B, 3, bins, bins),
    each image's summing to 1."""
    x = unit_range(images).flatten(2) + 1e-6  # (B, 3, N)
    weight = x.norm(dim=1)  # (B, N)
    centres = torch.linspace(-span, span, bins, device=x.device)
    planes = []
    for c in range(3):
        u = torch.log(x[:, (c + 1) % 3] / x[:, c])
        v = torch.log(x[:, (c + 2) % 3] / x[:, c])
        ku = 1 / (1 + ((u[:, None] - centres[None, :, None]) / sigma / span) ** 2)  # (B, bins, N)
        kv = 1 / (1 + ((v[:, None] - centres[None, :, None]) / sigma / span) ** 2)
        planes.append(torch.einsum("bin,bjn,bn->bij", ku, kv, weight))
    histogram = torch.stack(planes, 1)
    return histogram / histogram.sum((1, 2, 3), keepdim=True).clamp_min(1e-12)


def hellinger(p: Tensor, q: Tensor) -> Tensor:
    """(B,) Hellinger distance of histograms (B, ...) each summing to 1: 0 equal, 1 disjoint."""
    overlap = (p * q).clamp_min(0).sqrt().flatten(1).sum(1)
    return (1 - overlap).clamp_min(0).sqrt()


def colour_moments(images: Tensor) -> tuple[Tensor, Tensor]:
    """(mean (B, 3), covariance (B, 3, 3)) of the images' RGB values in 0..1."""
    x = unit_range(images).flatten(2)
    mean = x.mean(2)
    centred = x - mean[..., None]
    return mean, centred @ centred.transpose(1, 2) / x.shape[2]


def moments_gap(moments: tuple[Tensor, Tensor], target: tuple[Tensor, Tensor]) -> Tensor:
    """(B,) ||mean difference|| + ||covariance difference||_F between colour moments (as
    :func:`colour_moments` gives them), the target's broadcast (B or 1)."""
    (m1, c1), (m2, c2) = moments, target
    return (m1 - m2).norm(dim=1) + (c1 - c2).flatten(1).norm(dim=1)
