"""A moving average of the generator's weights, for rendering (``train.ema_halflife``).

GAN generators oscillate around a good solution from step to step; the
exponential moving average of their weights (Karras et al., "Progressive
Growing of GANs", and StyleGAN's G_ema) renders from the middle of that
oscillation: steadier, less speckled frames, at no cost to training. The
trainer keeps the average beside G, saves it in checkpoints as ``G_ema``, and
:func:`vid2vid.inference.load_networks` renders with it in G's place.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

AVERAGE_NAME = "G_ema"
"""the average's name among a checkpoint's networks"""


class WeightAverage:
    """An exponential moving average of a network's parameters (its buffers copied as they are).

    Each update moves the average towards the network by 1 - 0.5 ** (1 / h): a step's weight halves
    after h updates. h ramps up as ``rampup * updates`` (to ``halflife`` at most), so that the
    random weights at the start fade out quickly, as StyleGAN's ema_rampup does.
    """

    def __init__(self, network: nn.Module, halflife: float, rampup: float = 0.1):
        if not halflife > 0:
            raise ValueError(f"the average's half-life must be positive, got {halflife}")
        self.network = copy.deepcopy(network).eval().requires_grad_(False)
        self.halflife, self.rampup = halflife, rampup

    @torch.no_grad()
    def update(self, network: nn.Module, updates: int) -> None:
        """Moves the average towards ``network``, after its ``updates``-th update (1, 2, ...)."""
        halflife = min(self.halflife, self.rampup * updates)
        keep = 0.5 ** (1 / halflife) if halflife > 0 else 0.0
        for average, current in zip(self.network.parameters(), network.parameters()):
            average.lerp_(current.detach(), 1 - keep)
        for average, current in zip(self.network.buffers(), network.buffers()):
            average.copy_(current)
