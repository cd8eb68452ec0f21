"""A template for a new model: the least a trainer of this framework needs.

It learns image A -> image B by L1 regression with one of the shared generators, on the
paired data of pix2pix. Copy this file to start a model of your own, and follow the list in
docs/adding_a_model.md (config, task, script, config file, tests, docs). Each part below says
what the trainer (vid2vid.training.Trainer) expects of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.data.aligned import AlignedDataConfig
from vid2vid.models.generators import build_generator
from vid2vid.models.layers import NormKind, init_weights, training_mode
from vid2vid.training import DistContext, StepContext, TrainConfig, adam, unwrap


@dataclass(frozen=True)
class TemplateModelConfig:
    """The ``model:`` section. Every field is a config key (``model.ngf=32`` on the command
    line); its docstring below it becomes its line in docs/configs.md."""

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 32
    netG: Literal["unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"] = "resnet_6blocks"
    norm: NormKind = "instance"
    lambda_L1: float = 1.0
    """weight of the L1 distance to the target"""

    def __post_init__(self):
        # checks here become one-line config errors naming the section (vid2vid.config)
        if self.lambda_L1 <= 0:
            raise ValueError(f"lambda_L1 must be positive, got {self.lambda_L1}")


@dataclass(frozen=True)
class TemplateConfig:
    """The whole config: the model's section, the data's and the trainer's."""

    model: TemplateModelConfig = field(default_factory=TemplateModelConfig)
    data: AlignedDataConfig = field(default_factory=AlignedDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class Template:
    """The networks and their training step: a :class:`vid2vid.training.TrainingTask`."""

    def __init__(self, config: TemplateModelConfig, train: TrainConfig, device: torch.device = torch.device("cpu")):
        self.config = config
        generator = build_generator(config.netG, config.input_nc, config.output_nc, config.ngf, config.norm, False)
        self.generator = init_weights(generator, "normal", 0.02).to(device)
        self._optimizers = {"G": adam(self.generator.parameters(), train.lr, (train.beta1, train.beta2))}

    @property
    def multiple(self) -> int:
        """What the input's H and W must be multiples of (the datasets check it)."""
        return unwrap(self.generator).multiple

    def networks(self) -> dict[str, nn.Module]:
        """Saved in checkpoints by these names; "G" is what the inference helpers load."""
        return {"G": self.generator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.generator = dist.wrap(self.generator)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        """One iteration. No ``.item()``, no tensor made off ``ctx.device``: the step must also run
        on the meta device, where plan_gpu.py and the tests plan its memory."""
        self.generator.train()
        with ctx.autocast():
            made = self.generator(batch["A"])
            loss = F.l1_loss(made.float(), batch["B"].float()) * self.config.lambda_L1
        ctx.step(loss, "G", "generator")
        return {"L1": loss.detach()}

    @torch.no_grad()
    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Shown in OUTPUT/web/index.html each epoch: (B, C, H, W) in -1..1."""
        generator = unwrap(self.generator)
        with training_mode(generator):
            return {"input": batch["A"], "output": generator(batch["A"]), "target": batch["B"]}
