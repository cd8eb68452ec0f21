"""The building blocks of the FlowNet family, named and shaped as in
NVIDIA/flownet2-pytorch so that the published checkpoints load unchanged
(``conv1.0.weight`` is the convolution of the ``conv1`` block, ``conv1.1`` its
batch norm when there is one)."""

from __future__ import annotations

from torch import nn


def conv(batch_norm: bool, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution ("same" padding), optional batch norm, LeakyReLU(0.1)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_planes))
    layers.append(nn.LeakyReLU(0.1, inplace=True))
    return nn.Sequential(*layers)


def i_conv(batch_norm: bool, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """The "inter" convolution of FlowNetSD and FlowNetFusion: no activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding=(kernel_size - 1) // 2, bias=True)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_planes))
    return nn.Sequential(*layers)


def deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    """x2 transposed convolution and LeakyReLU(0.1)."""
    return nn.Sequential(nn.ConvTranspose2d(in_planes, out_planes, 4, 2, 1, bias=True), nn.LeakyReLU(0.1, inplace=True))


def predict_flow(in_planes: int) -> nn.Conv2d:
    """3x3 convolution to a 2-channel flow."""
    return nn.Conv2d(in_planes, 2, kernel_size=3, stride=1, padding=1, bias=True)


def upsample_flow(bias: bool) -> nn.ConvTranspose2d:
    """Learned x2 upsampling of a flow."""
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=bias)


def init_weights(module: nn.Module) -> None:
    """He initialisation for the LeakyReLU(0.1) layers and zero biases.

    The reference draws biases from U(0, 1) (with Xavier weights); through the
    deep encoder those offsets pile up into large activations, and from scratch
    on generated pairs such networks sat at the zero-flow error for hundreds of
    steps where these reach a fraction of it (``scripts/train_flownet.py``).
    Loaded checkpoints replace every parameter, so this only matters for training."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(m.weight, a=0.1, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
