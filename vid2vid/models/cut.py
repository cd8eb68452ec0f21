"""CUT and FastCUT (Park et al. 2020, "Contrastive learning for unpaired image-to-image
translation"): one generator A -> B, kept faithful to its input by PatchNCE.

PatchNCE (Sec. 3.1): the generator's encoder sees the input and the output; at each of a few
encoder layers, 256 positions are sampled, each feature goes through a small MLP to a unit
vector, and the output's vector at a position must pick out the input's vector at the same
position among the input's vectors at the other sampled positions (InfoNCE, temperature 0.07).
CUT adds the same loss on G(b) against b (identity); FastCUT drops it, weighs NCE 10, and asks
the translation to commute with horizontal flips. Defaults as the anchor's
(taesungp/contrastive-unpaired-translation): anti-aliased ResNet-9 generator and PatchGAN,
layers 0, 4, 8, 12, 16, LSGAN.

Unlike the anchor, the MLP head is made with the model (its widths read off the encoder by one
forward of a tiny input), so that it is in the optimiser, the checkpoint and DDP from the start:
the anchor's lazily built head is what breaks its multi-GPU runs and resumes (its issues #2, #114).
"""

from __future__ import annotations

from collections.abc import Sequence
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


class PatchSampler(nn.Module):
    """The anchor's PatchSampleF with its MLP: per layer, the features at the sampled positions
    (the same positions for every image of the batch), through Linear-ReLU-Linear, L2-normalised."""

    def __init__(self, widths: Sequence[int], channels: int = 256):
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(width, channels), nn.ReLU(), nn.Linear(channels, channels))
                                   for width in widths)

    def forward(self, features: list[Tensor], count: int, positions: list[Tensor] | None = None
                ) -> tuple[list[Tensor], list[Tensor]]:
        """(B * count, channels) unit vectors per layer, and the positions drawn (or given)."""
        vectors, drawn = [], []
        for k, (feature, head) in enumerate(zip(features, self.heads)):
            flat = feature.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H*W, C)
            where = positions[k] if positions is not None else \
                torch.randperm(flat.shape[1], device=flat.device)[:count]
            sample = head(flat[:, where].flatten(0, 1))
            vectors.append(sample / (sample.norm(dim=1, keepdim=True) + 1e-7))
            drawn.append(where)
        return vectors, drawn


def patch_nce(query: Tensor, key: Tensor, batch: int, temperature: float) -> Tensor:
    """InfoNCE per query (B * N,): query i's positive is key i; its negatives the other N - 1 keys of
    the same image (the anchor's default: negatives from the same image only). Keys are detached."""
    key = key.detach()
    positive = (query * key).sum(1, keepdim=True)
    q, k = query.view(batch, -1, query.shape[1]), key.view(batch, -1, key.shape[1])
    negative = torch.bmm(q, k.transpose(1, 2))
    same = torch.eye(q.shape[1], dtype=torch.bool, device=query.device)[None]
    negative = negative.masked_fill(same, -10.0).flatten(0, 1)  # a position is not its own negative
    logits = torch.cat((positive, negative), 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=query.device), reduction="none")


class PatchNCETask:
    """What CUT and SSAL-GAN share: a generator ``G``, a discriminator ``D`` and the PatchNCE head ``F``,
    made together (F's widths read off G's encoder), G and F stepping on one loss."""

    G: nn.Module
    D: nn.Module

    def _add_head(self, widths: list[int], config: Any, train: TrainConfig, device: torch.device) -> None:
        self.F = init_weights(PatchSampler(widths, config.netF_nc), config.init_type, config.init_gain).to(device)
        betas = (train.beta1, train.beta2)
        # G and F step together on one loss: one Adam over both is the anchor's two (same settings)
        self._optimizers = {
            "G": adam([*self.G.parameters(), *self.F.parameters()], train.lr, betas),
            "D": adam(self.D.parameters(), train.lr, betas),
        }
        self.gan_loss = GANLoss(config.gan_mode)
        self.temporal = temporal_consistency(config, device)

    @property
    def multiple(self) -> int:
        return unwrap(self.G).multiple

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "F": self.F}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.G, self.D, self.F = dist.wrap(self.G), dist.wrap(self.D), dist.wrap(self.F)


class CUT(PatchNCETask):
    """CUT or FastCUT (``config.name``): G (A -> B), D (B's PatchGAN) and the PatchNCE head F,
    a :class:`vid2vid.training.TrainingTask`."""

    def __init__(self, config: Any, train: TrainConfig, device: torch.device = torch.device("cpu")):
        self.config = c = config
        fast = c.name == "fastcut"
        # the keys left at None take the mode's defaults (the anchor's --CUT_mode)
        self.lambda_NCE = c.lambda_NCE if c.lambda_NCE is not None else (10.0 if fast else 1.0)
        self.nce_idt = c.nce_idt if c.nce_idt is not None else not fast
        self.flip_equivariance = c.flip_equivariance if c.flip_equivariance is not None else fast
        antialias = c.antialias if c.antialias is not None else True
        self.nce_layers = c.nce_layers or (0, 4, 8, 12, 16)
        self.G = init_weights(build_generator(c.netG, 3, 3, c.ngf, c.norm, c.dropout, antialias),
                              c.init_type, c.init_gain).to(device)
        self.D = init_weights(build_discriminator(c.netD, 3, c.ndf, c.n_layers_D, c.norm, antialias),
                              c.init_type, c.init_gain).to(device)
        with torch.no_grad():  # the widths of the encoder's layers, for F's heads
            probe = torch.zeros(1, 3, 4 * unwrap(self.G).multiple, 4 * unwrap(self.G).multiple, device=device)
            widths = [f.shape[1] for f in self.G(probe, self.nce_layers)]
        self._add_head(widths, c, train, device)

    def _nce(self, source: Tensor, made: Tensor, flipped: bool) -> Tensor:
        """PatchNCE between an input and what G made of it (from the flipped input when ``flipped``:
        its features are flipped back), averaged over the layers."""
        c = self.config
        query = self.G(made, self.nce_layers)
        if flipped:  # compare positions of the unflipped images
            query = [torch.flip(q, [3]) for q in query]
        keys, positions = self.F(self.G(source, self.nce_layers), c.num_patches)
        queries, _ = self.F(query, c.num_patches, positions)
        losses = [patch_nce(q, k, len(source), c.nce_T).mean() * self.lambda_NCE for q, k in zip(queries, keys)]
        return sum(losses) / len(losses)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        for net in (self.G, self.D, self.F):
            net.train()
        real = torch.cat((real_a, real_b)) if self.nce_idt else real_a
        flipped = self.flip_equivariance and float(torch.rand(())) < 0.5  # a CPU draw, saved with the RNG state
        if flipped:
            real = torch.flip(real, [3])
        with ctx.autocast():
            made = self.G(real)
        fake_b = made[: len(real_a)]

        # D first, as the anchor: real B towards "real", G(a) towards "fake", halved
        with ctx.autocast():
            d_fake = self.gan_loss(self.D(fake_b.detach()), False)
            d_real = self.gan_loss(self.D(real_b), True)
        ctx.step(0.5 * (d_fake + d_real), "D", "discriminator")

        # G and F together: fool D (frozen, unwrapped), and PatchNCE
        critic = unwrap(self.D)
        critic.requires_grad_(False)
        try:
            with ctx.autocast():
                adversarial = self.gan_loss(critic(fake_b), True, for_discriminator=False)
                losses = {"G_GAN": adversarial * self.config.lambda_GAN}
                losses["NCE"] = self._nce(real_a, fake_b, flipped)
                nce = losses["NCE"]
                if self.nce_idt:  # G(b) should stay b, in PatchNCE's terms
                    losses["NCE_Y"] = self._nce(real_b, made[len(real_a):], flipped)
                    nce = 0.5 * (nce + losses["NCE_Y"])
                if self.temporal is not None:  # G(a_t) against G(a_t-1) warped, both flipped as this step's
                    g, turn = unwrap(self.G), (lambda x: torch.flip(x, [3])) if flipped else (lambda x: x)
                    losses["temporal"] = self.temporal(lambda x: turn(g(turn(x))), turn(fake_b), batch)
            ctx.step(losses["G_GAN"] + nce + losses.get("temporal", 0), "G", "generator")
        finally:
            critic.requires_grad_(True)
        return {**{k: v.detach() for k, v in losses.items()}, "D_real": d_real.detach(), "D_fake": d_fake.detach()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        g = unwrap(self.G)
        with training_mode(g):
            return {"real_A": batch["A"], "fake_B": g(batch["A"]), "real_B": batch["B"], "idt_B": g(batch["B"])}

    directions = ("AtoB",)

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """G(a) for images (B, 3, H, W) in -1..1 of any size (CUT learns A -> B only)."""
        generator = unwrap(self.G)
        with training_mode(generator):
            return run_padded(generator, images, self.multiple)
