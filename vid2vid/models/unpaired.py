"""The unpaired translation family on one config: ``model.name`` picks the model.

Today: ``cyclegan`` (vid2vid/models/cyclegan.py). The keys below are the union of the
family's options, as the anchors' option parsers have them; each model reads its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from vid2vid.data.unpaired import UnpairedDataConfig
from vid2vid.models.cyclegan import CycleGAN
from vid2vid.models.layers import InitKind, NormKind
from vid2vid.models.losses import GanMode
from vid2vid.training import TrainConfig

ModelName = Literal["cyclegan"]


@dataclass(frozen=True)
class UnpairedModelConfig:
    """The ``model:`` section. The defaults are CycleGAN's (junyanz/pytorch-CycleGAN-and-pix2pix)."""

    name: ModelName = "cyclegan"
    """the model: cyclegan"""
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
    lambda_A: float = 10.0
    """cycle A -> B -> A"""
    lambda_B: float = 10.0
    """cycle B -> A -> B"""
    lambda_identity: float = 0.5
    """identity: G(b) = b and F(a) = a, weighted by lambda_B and lambda_A times this"""
    pool_size: int = 50
    """generated images kept to show the discriminators (0: only the newest)"""

    def __post_init__(self):
        if self.pool_size < 0 or min(self.lambda_A, self.lambda_B, self.lambda_identity) < 0:
            raise ValueError(f"pool_size and the lambdas must be >= 0, got pool_size={self.pool_size}, "
                             f"lambda_A={self.lambda_A}, lambda_B={self.lambda_B}, "
                             f"lambda_identity={self.lambda_identity}")


@dataclass(frozen=True)
class UnpairedConfig:
    model: UnpairedModelConfig = field(default_factory=UnpairedModelConfig)
    data: UnpairedDataConfig = field(default_factory=UnpairedDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_unpaired(config: UnpairedConfig, device: torch.device = torch.device("cpu")) -> CycleGAN:
    """The task that ``model.name`` names."""
    return {"cyclegan": CycleGAN}[config.model.name](config.model, config.train, device)
