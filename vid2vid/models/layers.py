"""Normalisation and initialisation choices shared by every generator and discriminator."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NormKind = Literal["batch", "batch_frame", "instance", "none"]
InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]


class FrameBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that normalises with the statistics of its input in eval mode too: NVIDIA/vid2vid's
    test.py never calls eval(), so its batch-norm models render that way. Training tracks the running
    statistics as usual (for the checkpoint's sake); nothing reads them."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def norm_layer(kind: NormKind) -> Callable[[int], nn.Module]:
    """A constructor of the normalisation layer for a number of channels: batch norm with
    learned affine and running statistics (batch_frame: the input's statistics at test time too,
    see FrameBatchNorm2d), instance norm without either (as pix2pix), or none."""
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "batch_frame":
        return FrameBatchNorm2d
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"norm must be 'batch', 'batch_frame', 'instance' or 'none', got {kind!r}")


def conv_bias(kind: NormKind) -> bool:
    """Whether convolutions followed by this norm need a bias (batch norm brings its own shift)."""
    return kind not in ("batch", "batch_frame")


def init_weights(net: nn.Module, kind: InitKind = "normal", gain: float = 0.02) -> nn.Module:
    """Initialises conv and linear weights as pix2pix does (N(0, gain) by default), biases to
    zero, and batch-norm scales to N(1, gain)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if kind == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"init must be one of normal, xavier, kaiming, orthogonal; got {kind!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _binomial_filter(taps: int, channels: int) -> Tensor:
    """A normalised 2-D binomial filter (taps x taps: 3 is [1, 2, 1] outer [1, 2, 1] / 16), one per channel."""
    row = torch.tensor([float(math.comb(taps - 1, k)) for k in range(taps)])
    kernel = row[:, None] * row[None, :]
    return (kernel / kernel.sum()).expand(channels, 1, taps, taps).contiguous()


class BlurDownsample(nn.Module):
    """Anti-aliased stride-2 subsampling (Zhang 2019, "Making convolutional networks shift-invariant
    again"): a 3x3 binomial blur on the reflect-padded input, then every second pixel. CUT's
    generators and discriminators downsample this way (their ``Downsample``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", _binomial_filter(3, channels), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel, stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Anti-aliased 2x upsampling: zeros between the pixels of the replicate-padded input, a 4x4
    binomial blur (times 4, to keep the mean), cropped to exactly twice the size. CUT's ``Upsample``."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("kernel", _binomial_filter(4, channels) * 4, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        up = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel, stride=2, padding=2,
                                groups=x.shape[1])
        return up[:, :, 1:-1, 1:-1]


@contextlib.contextmanager
def training_mode(*modules: nn.Module, mode: bool = False) -> Iterator[None]:
    """The modules in training (``mode`` True) or evaluation mode for a ``with`` block, each put
    back in the mode it was in afterwards (inference inside a training run leaves it as it was)."""
    before = [module.training for module in modules]
    for module in modules:
        module.train(mode)
    try:
        yield
    finally:
        for module, was in zip(modules, before):
            module.train(was)
