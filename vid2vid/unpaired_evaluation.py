"""Measures of unpaired translation that need no trained network: how well the output keeps the
source's structure, how close its colours are to the target domain's (or a reference's), how
colourful and how diverse it is.

Images are (B, 3, H, W) in -1..1 throughout, as the models make them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from vid2vid.data.images import DatasetError
from vid2vid.data.label_maps import instance_boundaries
from vid2vid.errors import UserError
from vid2vid.models.colour import colour_moments, hellinger, log_chroma_histogram, moments_gap, unit_range


def self_similarity(images: Tensor, stride: int = 4, window: int = 9) -> Tensor:
    """Local self-similarity maps (B, Q, window**2): at query positions every ``stride`` pixels, the
    cosine similarity of the query's descriptor with every descriptor in the window around it. A
    descriptor is the pixel's 3x3 RGB neighbourhood minus its mean, so that the maps describe shapes
    and not colours (as F-LSeSim's spatially-correlative maps, on pixels instead of VGG features)."""
    x = unit_range(images)
    patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3)  # (B, 27, H*W)
    patches = patches - patches.mean(1, keepdim=True)
    b, c, (h, w) = patches.shape[0], patches.shape[1], x.shape[-2:]
    descriptors = F.normalize(patches, dim=1, eps=1e-3).view(b, c, h, w)
    queries = descriptors[:, :, window // 2:h - window // 2:stride, window // 2:w - window // 2:stride]
    windows = F.unfold(descriptors, window, stride=stride)  # (B, C * window^2, Q), the same query grid
    windows = windows.view(b, c, window * window, -1)
    return torch.einsum("bcq,bckq->bqk", queries.flatten(2), windows)


def self_similarity_distance(source: Tensor, output: Tensor) -> Tensor:
    """(B,) mean absolute difference of the two images' self-similarity maps: 0 for the same
    structure whatever the colours, up to 2."""
    return (self_similarity(source) - self_similarity(output)).abs().mean((1, 2))


def edges(images: Tensor) -> Tensor:
    """kornia's Canny edges (B, 1, H, W) of the images' luminance, thresholds 0.1 and 0.2."""
    grey = kornia.color.rgb_to_grayscale(unit_range(images))
    return kornia.filters.canny(grey, 0.1, 0.2)[1] > 0


def matched_f1(reference: Tensor, found: Tensor, tolerance: int = 1) -> Tensor:
    """(B,) F1 of boolean edge maps (B, 1, H, W): a pixel of one counts as matched when the other has one
    within ``tolerance`` pixels; 1 when neither has any."""
    a, b = reference.float(), found.float()
    near_a, near_b = (F.max_pool2d(t, 2 * tolerance + 1, 1, tolerance) for t in (a, b))
    precision = (b * near_a).sum((1, 2, 3)) / b.sum((1, 2, 3)).clamp_min(1)
    recall = (a * near_b).sum((1, 2, 3)) / a.sum((1, 2, 3)).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-8)
    return torch.where((a.sum((1, 2, 3)) == 0) & (b.sum((1, 2, 3)) == 0), 1.0, f1)


def edge_f1(source: Tensor, output: Tensor) -> Tensor:
    """(B,) F1 of the output's edges against the source's."""
    return matched_f1(edges(source), edges(output))


def boundary_f1(structure: Tensor, output: Tensor) -> Tensor:
    """(B,) F1 of the output's edges against the true region boundaries of ``structure`` ids
    (B, 1, H, W) (pixels whose id differs from a 4-neighbour's): the shapes kept, without credit
    for edges the output adds elsewhere."""
    return matched_f1(instance_boundaries(structure) > 0, edges(output))


def moment_distance(output: Tensor, reference: Tensor) -> Tensor:
    """(B,) ||mean difference|| + ||covariance difference||_F of RGB (0..1) against the reference
    (B or 1 images)."""
    return moments_gap(colour_moments(output), colour_moments(reference))


def colourfulness(images: Tensor) -> Tensor:
    """(B,) Hasler and Süsstrunk's colourfulness (2003) on 0..255 values: 0 grey, ~100+ very colourful."""
    r, g, b = (unit_range(images) * 255).unbind(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    spread = (rg.flatten(1).std(1) ** 2 + yb.flatten(1).std(1) ** 2).sqrt()
    level = (rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2).sqrt()
    return spread + 0.3 * level


@dataclass(frozen=True)
class UnpairedScores:
    """Means over the test images."""

    self_similarity: float
    """structure: self-similarity distance to the source (lower keeps more)"""
    edge_f1: float
    """structure: edge F1 against the source (higher keeps more)"""
    histogram: float
    """colour: Hellinger distance of log-chroma histograms to the reference (lower is closer)"""
    moments: float
    """colour: RGB mean and covariance distance to the reference (lower is closer)"""
    colourfulness: float
    """of the outputs (the reference's is reported beside)"""
    diversity: float
    """mean pairwise L1 (0..2 scale) between the samples made for one input; 0 with one sample"""
    seconds: float
    """per translated image"""
    boundary_f1: float | None = None
    """structure: F1 of the output's edges against the true region boundaries (with ground truth)"""


def score_unpaired(make: Callable[[Tensor], list[tuple[Tensor, Tensor | None]]], sources: Iterable[Tensor],
                   reference: Tensor, structures: Iterable[Tensor] | None = None) -> UnpairedScores:
    """Scores of a model. ``make(source (1, 3, H, W))`` returns its samples for one input (one for a
    deterministic model), each with the reference image it was guided by, or None; the colour
    measures compare each sample with its reference, or else with the pooled histogram and moments
    of ``reference`` (N, 3, H, W: the target domain's test images). ``structures``: each source's
    true region ids (1, 1, H, W), for the boundary F1."""
    reference_histogram = log_chroma_histogram(reference).mean(0, keepdim=True)
    reference_mean, reference_cov = colour_moments(reference)
    pooled_reference = (reference_mean.mean(0, keepdim=True), reference_cov.mean(0, keepdim=True))
    totals = torch.zeros(7, dtype=torch.float64)
    count, made_count, seconds = 0, 0, 0.0
    structures = iter(structures) if structures is not None else None
    for source in sources:
        started = time.perf_counter()
        made = make(source)
        seconds += time.perf_counter() - started
        samples = [sample for sample, _ in made]
        output = torch.cat(samples)
        pairs = [(a - b).abs().mean() for i, a in enumerate(samples) for b in samples[i + 1:]]
        guided = [guide for _, guide in made]
        if all(g is not None for g in guided):  # each against its own reference
            guides = torch.cat(guided)
            target_histogram, (target_mean, target_cov) = log_chroma_histogram(guides), colour_moments(guides)
        else:
            target_histogram, (target_mean, target_cov) = reference_histogram, pooled_reference
        moments = moments_gap(colour_moments(output), (target_mean, target_cov))
        totals += torch.tensor([
            float(self_similarity_distance(source.expand_as(output), output).sum()),
            float(edge_f1(source.expand_as(output), output).sum()),
            float(hellinger(log_chroma_histogram(output), target_histogram).sum()),
            float(moments.sum()), float(colourfulness(output).sum()),
            float(torch.stack(pairs).mean()) * len(samples) if pairs else 0.0,
            float(boundary_f1(next(structures).expand(len(output), -1, -1, -1), output).sum())
            if structures is not None else 0.0,
        ], dtype=torch.float64)
        count += 1
        made_count += len(samples)
    if count == 0:
        raise DatasetError("no test images to score")
    means = (totals / made_count).tolist()
    return UnpairedScores(*means[:6], seconds=seconds / made_count,
                          boundary_f1=means[6] if structures is not None else None)


class _Given(torch.nn.Module):
    """torchmetrics' feature extractor for features computed already (each image's once, for both metrics)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def fid_kid(real: Iterable[Tensor], made: Iterable[Tensor], inception: torch.nn.Module,
            subset_size: int = 50) -> tuple[float, float, float]:
    """(FID, KID mean, KID std) between real images and made ones (batches (B, 3, H, W) in -1..1), by
    torchmetrics on the pool features of the FID Inception network
    (:func:`vid2vid.models.inception.load_fid_inception`). KID's subsets are as large as the smaller
    set allows, up to ``subset_size``.

    Raises:
        UserError: torchmetrics is not installed.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance
    except ImportError:
        raise UserError("FID and KID need torchmetrics: pip install torchmetrics (or '.[fid]')") from None
    with torch.no_grad():
        features = [torch.cat([inception(unit_range(b)) for images in sets for b in images.split(16)]).double()
                    for sets in ([*real], [*made])]
    given = _Given(features[0].shape[1])
    fid = FrechetInceptionDistance(feature=given)
    with warnings.catch_warnings():  # that it keeps every feature: these are a test set's
        warnings.filterwarnings("ignore", "Metric `Kernel Inception Distance` will save all extracted features")
        kid = KernelInceptionDistance(feature=given, subset_size=max(2, min(subset_size, *map(len, features))))
    for values, is_real in zip(features, (True, False)):
        fid.update(values, real=is_real)
        kid.update(values, real=is_real)
    kid_mean, kid_std = kid.compute()
    return float(fid.compute()), float(kid_mean), float(kid_std)
