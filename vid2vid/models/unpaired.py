"""The unpaired translation family on one config: ``model.name`` picks the model.

Today: ``cyclegan`` (vid2vid/models/cyclegan.py), ``cut`` and ``fastcut`` (vid2vid/models/cut.py),
``ssal`` (vid2vid/models/ssal.py).
The keys below are the union of the family's options, as the anchors' option parsers have
them; each model reads its own, and keys left at null take the model's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from vid2vid.data.unpaired import UnpairedDataConfig
from vid2vid.models.cut import CUT
from vid2vid.models.cyclegan import CycleGAN
from vid2vid.models.layers import InitKind, NormKind
from vid2vid.models.ssal import SSAL
from vid2vid.models.losses import GanMode
from vid2vid.training import TrainConfig

ModelName = Literal["cyclegan", "cut", "fastcut", "ssal"]


@dataclass(frozen=True)
class UnpairedModelConfig:
    """The ``model:`` section. The defaults are CycleGAN's (junyanz/pytorch-CycleGAN-and-pix2pix)."""

    name: ModelName = "cyclegan"
    """the model: cyclegan, cut, fastcut or ssal"""
    ngf: int = 64
    ndf: int = 64
    netG: Literal["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"] = "resnet_9blocks"
    netD: Literal["basic", "n_layers", "pixel"] = "basic"
    """basic: the 70x70 PatchGAN"""
    n_layers_D: int = 3
    norm: NormKind = "instance"
    dropout: bool = False
    init_type: InitKind = "normal"
    init_gain: float = 0.02
    gan_mode: GanMode = "lsgan"
    antialias: bool | None = None
    """blur-pooled down- and upsampling in G and D; null: the model's default (cut, fastcut: true; cyclegan: false)"""
    lambda_A: float = 10.0
    """cycle A -> B -> A"""
    lambda_B: float = 10.0
    """cycle B -> A -> B"""
    lambda_identity: float = 0.5
    """identity: G(b) = b and F(a) = a, weighted by lambda_B and lambda_A times this"""
    pool_size: int = 50
    """cyclegan: generated images kept to show the discriminators (0: only the newest)"""
    lambda_GAN: float = 1.0
    """cut, fastcut: weight of the adversarial loss"""
    lambda_NCE: float | None = None
    """cut, fastcut, ssal: weight of PatchNCE; null: 1 (cut, ssal), 10 (fastcut)"""
    nce_idt: bool | None = None
    """cut, fastcut: PatchNCE on G(b) against b too; null: true (cut), false (fastcut)"""
    flip_equivariance: bool | None = None
    """cut, fastcut: translate flipped inputs half the time and compare flipped back; null: false (cut), true
    (fastcut)"""
    nce_layers: tuple[int, ...] | None = None
    """cut, fastcut: the generator's layers (indices of its Sequential) PatchNCE reads, null: 0, 4, 8, 12, 16;
    ssal: the content encoder's stages (0: the first conv, then the downsamplings, then the residual blocks),
    null: the first conv, the downsamplings and the last block"""
    num_patches: int = 256
    """cut, fastcut, ssal: positions sampled per layer and image"""
    netF_nc: int = 256
    """cut, fastcut, ssal: width of the MLP head"""
    nce_T: float = 0.07
    """cut, fastcut, ssal: the temperature of PatchNCE"""
    n_downsample: int = 2
    """ssal: downsamplings of the content encoder"""
    n_res: int = 4
    """ssal: residual blocks of the content encoder, and AdaIN blocks of the decoder"""
    style_dim: int = 8
    """ssal: length of a style code (MUNIT's 8)"""
    latent_dim: int = 16
    """ssal: noise of the mapping network (StarGAN v2's 16)"""
    num_D: int = 2
    """ssal: scales of the multiscale PatchGAN"""
    lambda_SSA: float = 1.0
    """ssal: weight of the self-structure attention loss"""
    attention_window: int = 7
    """ssal: side of the local window each query attends over"""
    attention_T: float = 0.1
    """ssal: temperature of the attention's softmax"""
    attention_queries: int = 64
    """ssal: query positions per layer and image (the first of PatchNCE's sampled ones)"""
    lambda_content: float = 1.0
    """ssal: the output's content code equals the source's (L1)"""
    lambda_style: float = 1.0
    """ssal: the output's style code equals the one it was made with (L1)"""
    lambda_colour: float = 1.0
    """ssal: RGB mean and covariance of the output against the reference's"""
    lambda_histogram: float = 1.0
    """ssal: Hellinger distance of the log-chroma histograms of output and reference"""
    lambda_ds: float = 1.0
    """ssal: diversity-sensitive weight at the start (two random styles, different outputs)"""
    ds_iters: int = 10000
    """ssal: iterations over which the diversity-sensitive weight decays linearly to 0"""
    lambda_temporal: float = 0.0
    """trained on A videos: the output of frame t must equal the output of frame t-1 warped by the source's flow,
    where that flow explains the source frames (L1); 0: off"""
    flow_source: Literal["files", "flownet"] = "files"
    """lambda_temporal's flow: .flo files in <phase>A_flow/<sequence>/, or FlowNet2 (model.flownet_checkpoint)"""
    flownet_checkpoint: str | None = None
    """flow_source flownet: the FlowNet2 checkpoint (NVIDIA/flownet2-pytorch's .pth.tar)"""

    def __post_init__(self):
        if self.lambda_temporal and self.flow_source == "flownet" and not self.flownet_checkpoint:
            raise ValueError("model.flow_source=flownet needs model.flownet_checkpoint (a FlowNet2 checkpoint)")
        if self.name in ("cut", "fastcut") and not self.netG.startswith("resnet"):
            raise ValueError(f"{self.name} reads the encoder layers of a ResNet generator; netG={self.netG}")
        if self.pool_size < 0 or min(self.lambda_A, self.lambda_B, self.lambda_identity) < 0:
            raise ValueError(f"pool_size and the lambdas must be >= 0, got pool_size={self.pool_size}, "
                             f"lambda_A={self.lambda_A}, lambda_B={self.lambda_B}, "
                             f"lambda_identity={self.lambda_identity}")


@dataclass(frozen=True)
class UnpairedConfig:
    model: UnpairedModelConfig = field(default_factory=UnpairedModelConfig)
    data: UnpairedDataConfig = field(default_factory=UnpairedDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_unpaired(config: UnpairedConfig, device: torch.device = torch.device("cpu")) -> CycleGAN | CUT | SSAL:
    """The task that ``model.name`` names."""
    model = {"cyclegan": CycleGAN, "cut": CUT, "fastcut": CUT, "ssal": SSAL}[config.model.name]
    return model(config.model, config.train, device)
