"""pix2pixHD (Wang et al. 2018): high-resolution image synthesis from semantic label maps.

G = {G1, G2} (global generator and local enhancer) maps the one-hot label map,
the instance boundary map and, optionally, per-instance features from the
encoder E to an image; a multiscale discriminator judges (label, image) pairs.
Objective (Eq. 4 and Sec. 3.3): LSGAN + lambda_feat * feature matching +
lambda_vgg * VGG perceptual loss.

Training as the paper: with ``netG: local``, G1 alone at half resolution for
``global_epochs``, then the enhancer alone for ``niter_fix_global`` epochs, then
both jointly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vid2vid.data.label_maps import instance_boundaries, one_hot_labels
from vid2vid.data.labels import LabelDataConfig, LabelDataset
from vid2vid.models.discriminators import MultiscaleDiscriminator
from vid2vid.models.feature_clusters import NearestFeatures
from vid2vid.models.generators import (
    FeatureEncoder,
    FeatureInjectedGenerator,
    GlobalGenerator,
    LocalEnhancer,
    downsample2,
)
from vid2vid.models.layers import NormKind, init_weights, training_mode
from vid2vid.models.losses import GANLoss, GanMode, feature_matching_loss, multiscale_gan_loss
from vid2vid.models.vgg import vgg_loss_or_none
from vid2vid.training import DistContext, StepContext, TrainConfig, adam, unwrap


@dataclass(frozen=True)
class LabelModelConfig:
    """What the ``model:`` sections of pix2pixHD and vid2vid share: the label input, the
    generator's width, the multiscale discriminator, the image losses and the instance
    feature encoder; the defaults are NVIDIA's for Cityscapes."""

    label_nc: int = 35
    """classes of the label maps (one-hot); 0: the label images are RGB and used as they are"""
    use_instance: bool = True
    """add the boundary map of the instance maps to the input"""
    output_nc: int = 3
    ngf: int = 64
    norm: NormKind = "instance"
    ndf: int = 64
    n_layers_D: int = 3
    num_D: int = 2
    gan_mode: GanMode = "lsgan"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_l1: float = 0.0
    """L1 to the real image (pix2pix's loss): not in the originals, which have the VGG loss; for runs
    without VGG weights (the CPU demos ship none)"""
    vgg_weights: str | None = None
    """ImageNet VGG19 weights (torchvision's vgg19-dcbb9e9d.pth); None: torchvision's cache if it has them"""
    vgg_required: bool = False
    """stop with an error instead of training without the VGG loss when no weights are found"""
    use_features: bool = False
    """the instance-wise feature encoder for multimodal synthesis (pix2pixHD Sec. 3.4)"""
    feat_num: int = 3
    nef: int = 16
    n_downsample_E: int = 4

    def __post_init__(self):
        if self.label_nc < 0 or self.feat_num < 1 or self.num_D < 1:
            raise ValueError(f"need label_nc >= 0, feat_num >= 1 and num_D >= 1, got {self.label_nc}, "
                             f"{self.feat_num}, {self.num_D}")


@dataclass(frozen=True)
class Pix2PixHDModelConfig(LabelModelConfig):
    """The ``model:`` section of pix2pixHD."""

    extra_nc: int = 0
    """channels of the extra input maps (data.extra)"""
    input_nc: int = 3
    """channels of a picture input (label_nc 0): 3 for RGB; 15 for NVIDIA's edge2face first frames"""
    netG: Literal["global", "local", "global_with_features"] = "global"
    """global_with_features: the global generator with the encoder's features joining it at every
    resolution (NVIDIA/vid2vid's edge2face first-frame generator; needs use_features)"""
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    global_epochs: int = 0
    """netG local: epochs that train the global generator alone at half resolution first"""
    niter_fix_global: int = 0
    """netG local: epochs after those that train the local enhancer with the global generator fixed"""
    feature_bank: tuple[int, int] = (0, 0)
    """(parts, images): with the encoder, each image takes the features of the training image nearest
    to its own encoding, from a bank of that many (NVIDIA's edge2face features.npy; converted runs)"""

    def __post_init__(self):
        super().__post_init__()
        if self.netG == "global_with_features" and not self.use_features:
            raise ValueError("netG global_with_features takes the encoder's features: set use_features")
        if self.feature_bank[0] and not self.use_features:
            raise ValueError("a feature_bank chooses among the encoder's features: set use_features")

    @property
    def label_channels(self) -> int:
        """Channels of the encoded label input: one-hot classes (or RGB) plus the boundary map."""
        return (self.label_nc or self.input_nc) + int(self.use_instance) + self.extra_nc


@dataclass(frozen=True)
class Pix2PixHDConfig:
    model: Pix2PixHDModelConfig = field(default_factory=Pix2PixHDModelConfig)
    data: LabelDataConfig = field(default_factory=LabelDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class Pix2PixHD:
    """The pix2pixHD networks and their training step (a :class:`vid2vid.training.TrainingTask`)."""

    def __init__(self, config: Pix2PixHDModelConfig, train: TrainConfig, device: torch.device = torch.device("cpu"),
                 *, with_losses: bool = True):
        self.config = c = config
        g_input = c.label_channels + (c.feat_num if c.use_features else 0)
        if c.netG == "global":
            generator: nn.Module = GlobalGenerator(g_input, c.output_nc, c.ngf, c.n_downsample_global,
                                                   c.n_blocks_global, c.norm)
        elif c.netG == "global_with_features":
            generator = FeatureInjectedGenerator(c.label_channels, c.output_nc, c.feat_num, c.ngf,
                                                 c.n_downsample_global, c.n_blocks_global, c.norm)
        else:
            generator = LocalEnhancer(g_input, c.output_nc, c.ngf, c.n_downsample_global, c.n_blocks_global,
                                      c.n_local_enhancers, c.n_blocks_local, c.norm)
        self.generator = init_weights(generator).to(device)
        self.discriminator = init_weights(
            MultiscaleDiscriminator(c.label_channels + c.output_nc, c.ndf, c.n_layers_D, c.norm, c.num_D)
        ).to(device)
        self.encoder = init_weights(FeatureEncoder(c.output_nc, c.feat_num, c.nef, c.n_downsample_E, c.norm)).to(
            device) if c.use_features else None
        self.bank = NearestFeatures(*c.feature_bank, c.feat_num).to(device) if c.feature_bank[0] else None
        g_params = list(self.generator.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        betas = (train.beta1, train.beta2)
        self._optimizers = {"G": adam(g_params, train.lr, betas),
                            "D": adam(self.discriminator.parameters(), train.lr, betas)}
        self.gan_loss = GANLoss(c.gan_mode)
        self.vgg_loss = (vgg_loss_or_none(c.vgg_weights, c.vgg_required, device)
                         if with_losses and c.lambda_vgg > 0 else None)

    @classmethod
    def for_inference(cls, config: Pix2PixHDConfig, device: torch.device) -> Pix2PixHD:
        """The networks of a config, without the training losses (no VGG weights needed)."""
        return cls(config.model, config.train, device, with_losses=False)

    @property
    def multiple(self) -> int:
        """What the input's H and W must be multiples of."""
        multiples = [unwrap(self.generator).multiple] + ([self.encoder.multiple] if self.encoder else [])
        return max(multiples)

    # ------------------------------------------------------------------ inputs

    def encode_labels(self, batch: dict[str, Tensor]) -> Tensor:
        """The label input of G and D: one-hot classes (or the RGB label), the instance boundaries, the extra maps."""
        label = batch["label"]
        x = one_hot_labels(label, self.config.label_nc) if self.config.label_nc else label
        if self.config.use_instance:
            x = torch.cat((x, instance_boundaries(batch["instance"])), 1)
        if self.config.extra_nc:
            x = torch.cat((x, batch["extra"]), 1)
        return x

    def _phase(self, epoch: int) -> str:
        c = self.config
        if c.netG != "local":
            return "joint"
        if epoch < c.global_epochs:
            return "global"
        return "fixed_global" if epoch < c.global_epochs + c.niter_fix_global else "joint"

    # ------------------------------------------------------------ TrainingTask

    def networks(self) -> dict[str, nn.Module]:
        nets = {"G": self.generator, "D": self.discriminator}
        if self.encoder is not None:
            nets["E"] = self.encoder
        if self.bank is not None:
            nets["bank"] = self.bank
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.generator = dist.wrap(self.generator)
        self.discriminator = dist.wrap(self.discriminator)
        if self.encoder is not None:
            self.encoder = dist.wrap(self.encoder)

    def _generate(self, label: Tensor, batch: dict[str, Tensor], phase: str) -> Tensor:
        x = label
        if self.encoder is not None:
            x = torch.cat((x, self.encoder(batch["image"], batch["instance"])), 1)
        if phase == "global":
            return self.generator(x, global_only=True)
        return self.generator(x)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        phase = self._phase(ctx.epoch)
        generator = unwrap(self.generator)
        if isinstance(generator, LocalEnhancer):
            generator.global_body.requires_grad_(phase != "fixed_global")
        self.generator.train()
        self.discriminator.train()
        label, image = self.encode_labels(batch), batch["image"]
        with ctx.autocast():
            fake = self._generate(label, batch, phase)
        if phase == "global":  # G1 alone learns the half-resolution image
            for _ in range(self.config.n_local_enhancers):
                label, image = downsample2(label), downsample2(image)

        with ctx.autocast():
            pred_fake = self.discriminator(torch.cat((label, fake.detach()), 1))
            pred_real = self.discriminator(torch.cat((label, image), 1))
            loss_d_fake = multiscale_gan_loss(self.gan_loss, pred_fake, False)
            loss_d_real = multiscale_gan_loss(self.gan_loss, pred_real, True)
        ctx.step(0.5 * (loss_d_fake + loss_d_real), "D", "discriminator")

        critic = unwrap(self.discriminator)
        critic.requires_grad_(False)
        try:
            with ctx.autocast():
                pred = critic(torch.cat((label, fake), 1))
                losses = {
                    "G_GAN": multiscale_gan_loss(self.gan_loss, pred, True, for_discriminator=False),
                    "G_FM": feature_matching_loss(pred, pred_real, self.config.lambda_feat),
                }
                if self.vgg_loss is not None:
                    losses["G_VGG"] = self.vgg_loss(fake, image) * self.config.lambda_vgg
                if self.config.lambda_l1 > 0:
                    losses["G_L1"] = (fake.float() - image.float()).abs().mean() * self.config.lambda_l1
            ctx.step(sum(losses.values()), "G", "generator")
        finally:
            critic.requires_grad_(True)
        return {name: value.detach() for name, value in
                {**losses, "D_real": loss_d_real, "D_fake": loss_d_fake}.items()}

    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"label": colorize_labels(batch["label"], self.config.label_nc), "output": self.synthesize(batch),
                "target": batch["image"]}

    # --------------------------------------------------------------- inference

    @torch.no_grad()
    def synthesize(self, batch: dict[str, Tensor], features: Tensor | None = None) -> Tensor:
        """G's image (B, 3, H, W) in -1..1 for a batch's label (and instance) maps. With the encoder,
        ``features`` (B, feat_num, H, W) is its input (e.g. sampled cluster centres); None encodes
        the batch's own image (with the feature bank: the features of the training image nearest to it)."""
        generator, encoder = unwrap(self.generator), self.encoder and unwrap(self.encoder)
        with training_mode(generator):
            x = self.encode_labels(batch)
            if encoder is not None:
                if features is None:
                    encoder.eval()
                    features = encoder(batch["image"], batch["instance"])
                    if self.bank is not None:
                        features = self.bank(features, batch["instance"])
                x = torch.cat((x, features), 1)
            return generator(x)


def label_dataset(config: Pix2PixHDConfig, root, phase: str, **options) -> LabelDataset:
    """The LabelDataset of a config's data at root (``<phase>_label/`` ...), with the model's
    label_nc, instance and extra-channel settings; options go to LabelDataset."""
    settings = {"label_nc": config.model.label_nc, "use_instance": config.model.use_instance,
                "extra_nc": config.model.extra_nc, "seed": config.train.seed, **options}
    return LabelDataset(root, phase, config.data, **settings)


def colorize_labels(label: Tensor, label_nc: int) -> Tensor:
    """Class ids (B, 1, H, W) as colours (B, 3, H, W) in -1..1 from a fixed palette; RGB labels as they are."""
    if not label_nc:
        return label
    palette = torch.rand(max(label_nc, 1), 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    palette[0] = -1.0  # class 0 ("none") in black
    return palette.to(label.device)[label[:, 0].long()].permute(0, 3, 1, 2)

