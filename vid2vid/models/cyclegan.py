"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Two generators, G: A -> B and F: B -> A, and two PatchGAN discriminators, D_B judging
G's outputs against real B and D_A judging F's against real A. Objective (Eq. 3, with the
identity term of Sec. 5.2): L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_A ||F(G(a)) - a||_1
+ lambda_B ||G(F(b)) - b||_1 + lambda_identity (lambda_B ||G(b) - b||_1 + lambda_A ||F(a) - a||_1).
The defaults are the anchor's (junyanz/pytorch-CycleGAN-and-pix2pix): ResNet-9 generators,
70x70 PatchGANs, LSGAN, lambda 10, identity 0.5, discriminators fed from pools of 50 images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.models.discriminators import build_discriminator
from vid2vid.models.generators import build_generator, run_padded
from vid2vid.models.layers import init_weights, training_mode
from vid2vid.models.losses import GANLoss
from vid2vid.models.temporal import temporal_consistency
from vid2vid.training import DistContext, StepContext, TrainConfig, adam, unwrap


class ImagePool(nn.Module):
    """The history of generated images that a discriminator is shown (Shrivastava et al. 2017):
    until ``size`` are kept each new image is kept and shown; after that, each new image is shown
    as it is or, with probability 1/2, swapped for a random kept one, which it replaces.

    The kept images are a buffer, so checkpoints hold them and a resumed run shows the
    discriminator the same images; the draws come from torch's CPU generator, whose state the
    trainer saves."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "images")
        if saved is not None:  # the pool fills as training goes: take the saved one's size
            self.images = torch.empty_like(saved, device=self.images.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        shown = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images = torch.cat((self.images.to(image), image)) if len(self.images) else image.clone()
                shown.append(image)
            elif float(torch.rand(())) < 0.5:  # a CPU draw: the step stays free of device syncs
                k = int(torch.randint(self.size, ()))
                shown.append(self.images[k:k + 1].clone())
                self.images[k] = image[0]
            else:
                shown.append(image)
        return torch.cat(shown)


class CycleGAN:
    """The CycleGAN networks and their training step (a :class:`vid2vid.training.TrainingTask`).
    ``G`` translates A to B (the name the trainer's weight average and the inference helpers use),
    ``F`` B to A."""

    def __init__(self, config: Any, train: TrainConfig, device: torch.device = torch.device("cpu")):
        self.config = c = config
        antialias = bool(c.antialias)  # null: CycleGAN's plain strided convs

        def generator() -> nn.Module:
            net = build_generator(c.netG, 3, 3, c.ngf, c.norm, c.dropout, antialias)
            return init_weights(net, c.init_type, c.init_gain).to(device)

        def discriminator() -> nn.Module:
            net = build_discriminator(c.netD, 3, c.ndf, c.n_layers_D, c.norm, antialias)
            return init_weights(net, c.init_type, c.init_gain).to(device)

        self.G, self.F = generator(), generator()
        self.D_A, self.D_B = discriminator(), discriminator()
        self.pool_A, self.pool_B = ImagePool(c.pool_size).to(device), ImagePool(c.pool_size).to(device)
        betas = (train.beta1, train.beta2)
        self._optimizers = {
            "G": adam([*self.G.parameters(), *self.F.parameters()], train.lr, betas),
            "D": adam([*self.D_A.parameters(), *self.D_B.parameters()], train.lr, betas),
        }
        self.gan_loss = GANLoss(c.gan_mode)
        self.temporal = temporal_consistency(c, device)

    @property
    def multiple(self) -> int:
        return unwrap(self.G).multiple

    # ------------------------------------------------------------ TrainingTask

    def networks(self) -> dict[str, nn.Module]:
        # the pools are no networks, but their images belong in the checkpoint (exact resume)
        return {"G": self.G, "F": self.F, "D_A": self.D_A, "D_B": self.D_B, "pool_A": self.pool_A,
                "pool_B": self.pool_B}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.G, self.F = dist.wrap(self.G), dist.wrap(self.F)
        self.D_A, self.D_B = dist.wrap(self.D_A), dist.wrap(self.D_B)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        for net in (self.G, self.F, self.D_A, self.D_B):
            net.train()

        # G and F, against the discriminators as they are (frozen, unwrapped: no gradients for them)
        critics = unwrap(self.D_A), unwrap(self.D_B)
        for critic in critics:
            critic.requires_grad_(False)
        try:
            with ctx.autocast():
                fake_b, fake_a = self.G(real_a), self.F(real_b)
                losses = {
                    "G_GAN": self.gan_loss(critics[1](fake_b), True, for_discriminator=False),
                    "F_GAN": self.gan_loss(critics[0](fake_a), True, for_discriminator=False),
                    "cycle_A": F.l1_loss(self.F(fake_b).float(), real_a.float()) * c.lambda_A,
                    "cycle_B": F.l1_loss(self.G(fake_a).float(), real_b.float()) * c.lambda_B,
                }
                if c.lambda_identity > 0:  # G leaves B alone, F leaves A alone (keeps colours)
                    losses["idt_B"] = F.l1_loss(self.G(real_b).float(), real_b.float()) * c.lambda_B * c.lambda_identity
                    losses["idt_A"] = F.l1_loss(self.F(real_a).float(), real_a.float()) * c.lambda_A * c.lambda_identity
                if self.temporal is not None:  # G(a_t) against G(a_t-1) warped
                    losses["temporal"] = self.temporal(unwrap(self.G), fake_b, batch)
            ctx.step(sum(losses.values()), "G", "generators")
        finally:
            for critic in critics:
                critic.requires_grad_(True)

        # D_A and D_B: real images towards "real", generated ones (from the pools) towards "fake", halved
        shown_b, shown_a = self.pool_B(fake_b), self.pool_A(fake_a)
        with ctx.autocast():
            d_b = 0.5 * (self.gan_loss(self.D_B(real_b), True) + self.gan_loss(self.D_B(shown_b), False))
            d_a = 0.5 * (self.gan_loss(self.D_A(real_a), True) + self.gan_loss(self.D_A(shown_a), False))
        ctx.step(d_a + d_b, "D", "discriminators")
        return {**{name: value.detach() for name, value in losses.items()}, "D_A": d_a.detach(), "D_B": d_b.detach()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        g, f = unwrap(self.G), unwrap(self.F)
        with training_mode(g, f):
            fake_b, fake_a = g(batch["A"]), f(batch["B"])
            return {"real_A": batch["A"], "fake_B": fake_b, "rec_A": f(fake_b),
                    "real_B": batch["B"], "fake_A": fake_a, "rec_B": g(fake_a)}

    directions = ("AtoB", "BtoA")

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """G(a) (or F(b) for BtoA) for images (B, 3, H, W) in -1..1 of any size."""
        generator = unwrap(self.G if direction == "AtoB" else self.F)
        with training_mode(generator):
            return run_padded(generator, images, self.multiple)
