"""SSAL-GAN (Zhao et al., 2022, "基于自相似性与对比学习的图像跨域转换算法", Journal of Computer
Research and Development): diverse unpaired translation A -> B guided by a reference image of B,
keeping the source's structure and taking the reference's colours.

The paper's exact layers and weights are not public here; this follows its description, and
each part says which public anchor it is built from:

* networks (NVlabs/MUNIT, clovaai/stargan-v2): a content encoder (convolutions and residual
  blocks with instance norm); a style encoder to a style code (MUNIT's: strided convs, global
  pooling, no norm); a mapping network from noise to a style code, for random styles (StarGAN
  v2's MLP); a decoder of AdaIN residual blocks whose scales and shifts an MLP makes from the
  style code, then upsampling with layer norm (MUNIT's); a multiscale PatchGAN (pix2pixHD's);
* contrastive loss: PatchNCE between the content features of the source and of the output
  (taesungp/contrastive-unpaired-translation, with its MLP head);
* self-structure attention loss (the paper's first contribution, after self-attention and
  lyndonzheng/F-LSeSim's spatially-correlative loss): at sampled query positions of the content
  features, the softmax attention over a local window, of the source and of the output; their
  KL divergence, the source's detached. It ties the output's structure to the source's without
  tying its features to the source's values;
* content loss: the output's content code equals the source's (MUNIT's content reconstruction);
* style loss: the output's style code equals the one it was made with (MUNIT, StarGAN v2);
* colour statistics loss (the paper's second contribution): the output's RGB mean and covariance
  against the reference's, plus the Hellinger distance of their log-chroma histograms
  (mahmoudnafifi/HistoGAN's RGB-uv histogram, differentiable): all the reference's colours, not
  its few salient ones;
* diversity-sensitive loss: two random styles must give different outputs (StarGAN v2), its
  weight decaying linearly to 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.models.colour import colour_moments, hellinger, log_chroma_histogram, moments_gap
from vid2vid.models.cut import PatchNCETask, patch_nce
from vid2vid.models.discriminators import MultiscaleDiscriminator
from vid2vid.models.generators import ResnetBlock, run_padded
from vid2vid.models.layers import init_weights, training_mode
from vid2vid.training import StepContext, TrainConfig, unwrap


class ContentEncoder(nn.Module):
    """7x7 conv, ``n_down`` stride-2 convs (channels doubling), ``n_res`` residual blocks; instance
    norm throughout. ``forward(x, layers)`` returns the outputs of those stages (0: the first conv,
    1 .. n_down: the downsamplings, then the residual blocks): the features of PatchNCE and of the
    self-structure attention."""

    def __init__(self, ngf: int, n_down: int, n_res: int):
        super().__init__()
        stages = [nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True))]
        for i in range(n_down):
            c = ngf * 2 ** i
            stages.append(nn.Sequential(nn.Conv2d(c, 2 * c, 4, 2, 1, padding_mode="reflect"),
                                        nn.InstanceNorm2d(2 * c), nn.ReLU(True)))
        stages += [ResnetBlock(ngf * 2 ** n_down, "instance") for _ in range(n_res)]
        self.stages = nn.ModuleList(stages)
        self.channels = ngf * 2 ** n_down
        self.multiple = 2 ** n_down

    def forward(self, x: Tensor, layers: tuple[int, ...] = ()) -> Tensor | list[Tensor]:
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in layers:
                features.append(x)
        return features if layers else x


class StyleEncoder(nn.Module):
    """MUNIT's: 7x7 conv, stride-2 4x4 convs (doubling twice, then keeping the width), global average
    pooling and a 1x1 conv to the style code; no normalisation (it would erase the style)."""

    def __init__(self, ngf: int, n_down: int, style_dim: int):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.ReLU(True)]
        c = ngf
        for i in range(n_down):
            out = c * 2 if i < 2 else c
            layers += [nn.Conv2d(c, out, 4, 2, 1, padding_mode="reflect"), nn.ReLU(True)]
            c = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).flatten(1)


class MappingNetwork(nn.Module):
    """StarGAN v2's: noise (B, latent_dim) through a ReLU MLP to a style code (B, style_dim)."""

    def __init__(self, latent_dim: int, style_dim: int, hidden: int = 256, depth: int = 4):
        super().__init__()
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(depth - 1):
            layers += [nn.Linear(width, hidden), nn.ReLU(True)]
            width = hidden
        layers.append(nn.Linear(width, style_dim))
        self.model = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.model(z)


class AdaINBlock(nn.Module):
    """A residual block whose two instance norms take their scale and shift from the style:
    x + (conv, AdaIN, ReLU, conv, AdaIN)(x), the AdaIN parameters an affine map of the style code."""

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.affine = nn.Linear(style_dim, 4 * channels)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        g1, b1, g2, b2 = self.affine(style)[..., None, None].chunk(4, dim=1)
        h = F.relu(F.instance_norm(self.conv1(x)) * (1 + g1) + b1)
        return x + F.instance_norm(self.conv2(h)) * (1 + g2) + b2


class Decoder(nn.Module):
    """MUNIT's decoder: AdaIN residual blocks, then per downsampling of the encoder a 2x nearest
    upsampling and a 5x5 conv with layer norm, and a 7x7 conv to tanh."""

    def __init__(self, channels: int, n_up: int, n_res: int, style_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(AdaINBlock(channels, style_dim) for _ in range(n_res))
        up: list[nn.Module] = []
        for _ in range(n_up):
            up += [nn.Upsample(scale_factor=2), nn.Conv2d(channels, channels // 2, 5, 1, 2, padding_mode="reflect"),
                   nn.GroupNorm(1, channels // 2), nn.ReLU(True)]  # GroupNorm(1, C): layer norm over C, H, W
            channels //= 2
        up += [nn.ReflectionPad2d(3), nn.Conv2d(channels, 3, 7), nn.Tanh()]
        self.up = nn.Sequential(*up)

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        for block in self.blocks:
            content = block(content, style)
        return self.up(content)


class SSALGenerator(nn.Module):
    """The content encoder, style encoder, mapping network and decoder as one module. Every use
    goes through ``forward`` (``part`` names which), so that a DistributedDataParallel wrapper
    sees them all: translate (x, style), content (x, with ``layers`` its stages' outputs), style
    (x), mapping (noise), decode (content, style)."""

    def __init__(self, ngf: int, n_down: int, n_res: int, style_dim: int, latent_dim: int):
        super().__init__()
        self.content = ContentEncoder(ngf, n_down, n_res)
        self.style = StyleEncoder(ngf, n_down + 2, style_dim)
        self.mapping = MappingNetwork(latent_dim, style_dim)
        self.decoder = Decoder(self.content.channels, n_down, n_res, style_dim)
        self.multiple = self.content.multiple

    def forward(self, x: Tensor, style: Tensor | None = None, *, part: str = "translate",
                layers: tuple[int, ...] = ()) -> Tensor | list[Tensor]:
        if part == "translate":
            return self.decoder(self.content(x), style)
        if part == "content":
            return self.content(x, layers)
        if part == "style":
            return self.style(x)
        if part == "mapping":
            return self.mapping(x)
        if part == "decode":
            return self.decoder(x, style)
        raise ValueError(f"unknown part {part!r}")


def structure_attention(features: Tensor, positions: Tensor, window: int, temperature: float) -> Tensor:
    """Self-attention of sampled query positions over their local windows: (B, Q, window**2)
    probabilities, from the cosine similarities of the L2-normalised features (B, C, H, W) of each
    query (flat index in ``positions``) with the features in the window around it."""
    b, c, h, w = features.shape
    unit = F.normalize(features, dim=1)
    windows = F.unfold(F.pad(unit, [window // 2] * 4, mode="reflect"), window)  # (B, C * window^2, H*W)
    windows = windows.view(b, c, window * window, h * w)[..., positions]  # (B, C, K, Q)
    queries = unit.flatten(2)[..., positions]  # (B, C, Q)
    return torch.softmax(torch.einsum("bcq,bckq->bqk", queries, windows) / temperature, dim=2)


class SSAL(PatchNCETask):
    """SSAL-GAN: the generator (content and style encoders, mapping network, decoder), the PatchNCE
    head and a multiscale PatchGAN; a :class:`vid2vid.training.TrainingTask`."""

    directions = ("AtoB",)

    def __init__(self, config: Any, train: TrainConfig, device: torch.device = torch.device("cpu")):
        self.config = c = config
        self.G = init_weights(SSALGenerator(c.ngf, c.n_downsample, c.n_res, c.style_dim, c.latent_dim),
                              c.init_type, c.init_gain).to(device)
        self.D = init_weights(MultiscaleDiscriminator(3, c.ndf, c.n_layers_D, c.norm, c.num_D),
                              c.init_type, c.init_gain).to(device)
        # null: the first conv, the downsamplings and the last residual block
        self.nce_layers = c.nce_layers or (*range(c.n_downsample + 1), c.n_downsample + c.n_res)
        with torch.no_grad():
            probe = torch.zeros(1, 3, 4 * self.G.multiple, 4 * self.G.multiple, device=device)
            widths = [f.shape[1] for f in self.G.content(probe, self.nce_layers)]
        self._add_head(widths, c, train, device)

    # ------------------------------------------------------------------ losses

    def _adversarial(self, outputs: list[list[Tensor]], real: bool, for_discriminator: bool = True) -> Tensor:
        return sum(self.gan_loss(scale[-1], real, for_discriminator) for scale in outputs) / len(outputs)

    def _structure(self, source_features: list[Tensor], output_features: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(PatchNCE, self-structure attention) between the content features of source and output."""
        c = self.config
        keys, positions = self.F(source_features, c.num_patches)
        queries, _ = self.F(output_features, c.num_patches, positions)
        batch = len(source_features[0])
        nce = sum(patch_nce(q, k, batch, c.nce_T).mean() for q, k in zip(queries, keys)) / len(keys)
        # the attention's queries: the first positions PatchNCE drew, at most attention_queries of them
        attention = []
        for source, output, where in zip(source_features, output_features, positions):
            where = where[: c.attention_queries]
            p = structure_attention(source.detach(), where, c.attention_window, c.attention_T)
            q = structure_attention(output, where, c.attention_window, c.attention_T)
            attention.append((p * (p.clamp_min(1e-8).log() - q.clamp_min(1e-8).log())).sum(2).mean())
        return nce, sum(attention) / len(attention)

    @staticmethod
    def _colour(output: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
        """(moment distance, histogram Hellinger distance) of each output to its reference, means."""
        moments = moments_gap(colour_moments(output), colour_moments(reference)).mean()
        return moments, hellinger(log_chroma_histogram(output), log_chroma_histogram(reference)).mean()

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        c = self.config
        real_a, real_b = batch["A"], batch["B"]
        for net in (self.G, self.D, self.F):
            net.train()
        G, stages = self.G, tuple(range(len(unwrap(self.G).content.stages)))
        z = torch.randn(2, len(real_a), c.latent_dim, device=real_a.device)
        with ctx.autocast():
            styles = (G(real_b, part="style"), G(z[0], part="mapping"), G(z[1], part="mapping"))
            source_features = G(real_a, part="content", layers=stages)
            content = source_features[-1]
            made = [G(content, s, part="decode") for s in styles]  # by the reference's style, two random ones

        with ctx.autocast():
            d_real = self._adversarial(self.D(real_b), True)
            d_fake = sum(self._adversarial(self.D(m.detach()), False) for m in made[:2]) / 2
        ctx.step(d_real + d_fake, "D", "discriminator")

        critic = unwrap(self.D)
        critic.requires_grad_(False)
        try:
            with ctx.autocast():
                fake = made[0]
                losses = {"G_GAN": sum(self._adversarial(critic(m), True, False) for m in made[:2]) / 2 * c.lambda_GAN}
                output_features = G(fake, part="content", layers=stages)
                layers = self.nce_layers
                chosen = [source_features[i] for i in layers], [output_features[i] for i in layers]
                nce, attention = self._structure(*chosen)
                losses["NCE"] = nce * (1.0 if c.lambda_NCE is None else c.lambda_NCE)
                losses["SSA"] = attention * c.lambda_SSA
                losses["content"] = F.l1_loss(output_features[-1], content.detach()) * c.lambda_content
                losses["style"] = sum(F.l1_loss(G(m, part="style"), s.detach()) for m, s in zip(made, styles)) / 3 \
                    * c.lambda_style
                moments, histogram = self._colour(fake, real_b)
                losses["colour"] = moments * c.lambda_colour
                losses["histogram"] = histogram * c.lambda_histogram
                decay = max(0.0, 1 - ctx.iteration / c.ds_iters) if c.ds_iters else 0.0
                diversity = (made[1].float() - made[2].float()).abs().mean()
                if self.temporal is not None:  # G(a_t, s) against G(a_t-1, s) warped, s the reference's style
                    g = unwrap(G)
                    losses["temporal"] = self.temporal(lambda x: g(x, styles[0].detach()), fake, batch)
                total = sum(losses.values()) - c.lambda_ds * decay * diversity
            ctx.step(total, "G", "generator")
        finally:
            critic.requires_grad_(True)
        return {**{k: v.detach() for k, v in losses.items()}, "diversity": diversity.detach(),
                "D_real": d_real.detach(), "D_fake": d_fake.detach()}

    # --------------------------------------------------------------- inference

    @torch.no_grad()
    def styles_of(self, references: Tensor) -> Tensor:
        """The style codes (N, style_dim) of reference images (N, 3, H, W) of domain B."""
        g = unwrap(self.G)
        with training_mode(g):
            return g.style(references)

    @torch.no_grad()
    def random_styles(self, count: int, generator: torch.Generator) -> Tensor:
        """``count`` random style codes, from seeded noise through the mapping network."""
        g = unwrap(self.G)
        z = torch.randn(count, g.mapping.latent_dim, generator=generator).to(next(g.parameters()).device)
        with training_mode(g):
            return g.mapping(z)

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB", style: Tensor | None = None) -> Tensor:
        """G(a, style) for images (B, 3, H, W) of any size; style (1 or B, style_dim), default the
        mapping network's output for zero noise (its mean style)."""
        g = unwrap(self.G)
        with training_mode(g):
            if style is None:
                style = g.mapping(torch.zeros(1, g.mapping.latent_dim, device=images.device))
            style = style.expand(len(images), -1)
            return run_padded(lambda x: g(x, style), images, self.multiple)

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        g = unwrap(self.G)
        noise = torch.randn(len(batch["A"]), g.mapping.latent_dim, device=batch["A"].device)
        with training_mode(g):
            return {"source": batch["A"], "reference": batch["B"], "output": g(batch["A"], g.style(batch["B"])),
                    "random_style": g(batch["A"], g.mapping(noise))}
