"""Adversarial losses: vanilla (cross-entropy), LSGAN, WGAN-GP and hinge, on
discriminator logits of any shape (patch maps included)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GanMode = Literal["vanilla", "lsgan", "wgangp", "hinge"]


class GANLoss(nn.Module):
    """``loss(logits, target_is_real, for_discriminator)``.

    - vanilla: binary cross-entropy with logits against 1 (real) or 0 (fake);
    - lsgan: mean squared distance to 1 or 0 (Mao et al. 2017);
    - wgangp: -mean for real, +mean for fake (the critic's score; add :func:`gradient_penalty`);
    - hinge: discriminator mean(relu(1 - real)) and mean(relu(1 + fake)), generator -mean.
    The generator passes target_is_real=True and for_discriminator=False.
    """

    def __init__(self, mode: GanMode = "vanilla"):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "wgangp", "hinge"):
            raise ValueError(f"gan_mode must be vanilla, lsgan, wgangp or hinge; got {mode!r}")
        self.mode = mode

    def forward(self, logits: Tensor, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        logits = logits.float()  # the loss in full precision under autocast
        if self.mode == "vanilla":
            target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.mode == "lsgan":
            return F.mse_loss(logits, torch.full_like(logits, 1.0 if target_is_real else 0.0))
        if self.mode == "hinge" and for_discriminator:
            return F.relu(1 - logits).mean() if target_is_real else F.relu(1 + logits).mean()
        return -logits.mean() if target_is_real else logits.mean()


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): weight * (|grad D(x)| - 1)^2 at random points x between real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = discriminator(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def multiscale_gan_loss(gan_loss: GANLoss, outputs: list[list[Tensor]], target_is_real: bool,
                        for_discriminator: bool = True) -> Tensor:
    """The GAN loss summed over the scales of a multiscale discriminator (on each scale's logits)."""
    return sum(gan_loss(scale[-1], target_is_real, for_discriminator) for scale in outputs)


def feature_matching_loss(fake: list[list[Tensor]], real: list[list[Tensor]], weight: float = 10.0) -> Tensor:
    """pix2pixHD's feature matching (Eq. 4): L1 between the discriminator's intermediate features
    of generated and real pairs, every layer but the logits, averaged over the scales, each scale's
    layers weighted 4 / (n_layers + 1) as in NVIDIA/pix2pixHD."""
    loss = fake[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake, real):
        layer_weight = 4.0 / (len(fake_scale) - 1)  # n_layers + 2 blocks, the logits excluded
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            loss = loss + layer_weight / len(fake) * F.l1_loss(f.float(), r.detach().float())
    return weight * loss
