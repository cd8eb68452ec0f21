"""pix2pix (Isola et al. 2017): a conditional GAN from image A to image B.

The generator G maps A to B; the discriminator D judges (A, B) pairs patch by
patch. Objective (Eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L1(G).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.data.aligned import AlignedDataConfig
from vid2vid.models.discriminators import build_discriminator
from vid2vid.models.generators import build_generator, run_padded
from vid2vid.models.layers import InitKind, NormKind, init_weights, training_mode
from vid2vid.models.losses import GANLoss, GanMode, gradient_penalty
from vid2vid.training import DistContext, StepContext, TrainConfig, adam, unwrap


@dataclass(frozen=True)
class Pix2PixModelConfig:
    """The ``model:`` section: the defaults are the paper's."""

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    netG: Literal["unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"] = "unet_256"
    netD: Literal["basic", "n_layers", "pixel"] = "basic"
    n_layers_D: int = 3
    norm: NormKind = "batch"
    init_type: InitKind = "normal"
    init_gain: float = 0.02
    dropout: bool = True
    gan_mode: GanMode = "vanilla"
    lambda_L1: float = 100.0
    lambda_gp: float = 10.0
    """weight of the gradient penalty, for gan_mode wgangp"""


@dataclass(frozen=True)
class Pix2PixConfig:
    model: Pix2PixModelConfig = field(default_factory=Pix2PixModelConfig)
    data: AlignedDataConfig = field(default_factory=AlignedDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class Pix2Pix:
    """The pix2pix networks and their training step (a :class:`vid2vid.training.TrainingTask`)."""

    def __init__(self, config: Pix2PixModelConfig, train: TrainConfig, device: torch.device = torch.device("cpu")):
        self.config = config
        c = config
        self.generator = init_weights(build_generator(c.netG, c.input_nc, c.output_nc, c.ngf, c.norm, c.dropout),
                                      c.init_type, c.init_gain).to(device)
        self.discriminator = init_weights(
            build_discriminator(c.netD, c.input_nc + c.output_nc, c.ndf, c.n_layers_D, c.norm), c.init_type,
            c.init_gain,
        ).to(device)
        betas = (train.beta1, train.beta2)
        self._optimizers = {
            "G": adam(self.generator.parameters(), train.lr, betas),
            "D": adam(self.discriminator.parameters(), train.lr, betas),
        }
        self.gan_loss = GANLoss(c.gan_mode)

    @property
    def multiple(self) -> int:
        """What the input's H and W must be multiples of."""
        return unwrap(self.generator).multiple

    # ------------------------------------------------------------ TrainingTask

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.generator = dist.wrap(self.generator)
        self.discriminator = dist.wrap(self.discriminator)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        self.generator.train()
        self.discriminator.train()
        with ctx.autocast():
            fake_b = self.generator(real_a)

        # D: real pairs towards "real", generated pairs towards "fake" (halved, as the paper slows D down)
        with ctx.autocast():
            fake_pair = torch.cat((real_a, fake_b.detach()), 1)
            real_pair = torch.cat((real_a, real_b), 1)
            loss_d_fake = self.gan_loss(self.discriminator(fake_pair), False)
            loss_d_real = self.gan_loss(self.discriminator(real_pair), True)
            loss_d = 0.5 * (loss_d_fake + loss_d_real)
            if self.config.gan_mode == "wgangp":
                loss_d = loss_d + gradient_penalty(self.discriminator, real_pair, fake_pair, self.config.lambda_gp)
        ctx.step(loss_d, "D", "discriminator")

        # G: fool the (just updated) D and stay close to the target in L1. D is used
        # unwrapped and frozen here: its gradients are not wanted, nor synchronised.
        critic = unwrap(self.discriminator)
        critic.requires_grad_(False)
        try:
            with ctx.autocast():
                loss_g_gan = self.gan_loss(critic(torch.cat((real_a, fake_b), 1)), True, for_discriminator=False)
                loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float()) * self.config.lambda_L1
            ctx.step(loss_g_gan + loss_g_l1, "G", "generator")
        finally:
            critic.requires_grad_(True)
        return {name: value.detach() for name, value in
                (("G_GAN", loss_g_gan), ("G_L1", loss_g_l1), ("D_real", loss_d_real), ("D_fake", loss_d_fake))}

    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"input": batch["A"], "output": self.translate(batch["A"]), "target": batch["B"]}

    # ---------------------------------------------------------------- inference

    @torch.no_grad()
    def translate(self, images: Tensor, *, eval_mode: bool = False) -> Tensor:
        """G(A) for images (B, C, H, W) in -1..1 of any size: padded (reflect) to the
        generator's multiple and cropped back. pix2pix keeps batch norm and dropout in
        training mode at test time (the paper's noise); ``eval_mode=True`` turns them off."""
        generator = unwrap(self.generator)
        with training_mode(generator, mode=not eval_mode):
            return run_padded(generator, images, self.multiple)
