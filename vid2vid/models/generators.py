"""Image-to-image generators: the U-Net of pix2pix (Isola et al. 2017, Sec. 3.2.1)
and the ResNet generator of Johnson et al. 2016, whose residual blocks pix2pixHD
and vid2vid build on."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vid2vid.models.layers import NormKind, conv_bias, norm_layer


class UnetBlock(nn.Module):
    """One level of the U-Net: down (LeakyReLU, stride-2 conv, norm), the inner
    levels, up (ReLU, stride-2 transposed conv, norm), and the skip connection
    concatenating this level's input with its output."""

    def __init__(self, outer: int, inner: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 *, outermost: bool = False, output_nc: int | None = None, norm: NormKind = "batch",
                 dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        down_conv = nn.Conv2d(input_nc or outer, inner, 4, 2, 1, bias=bias)
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, output_nc or outer, 4, 2, 1), nn.Tanh()]
            layers = [down_conv, submodule, *up]
        elif submodule is None:  # innermost: no norm at the bottleneck, nothing to concatenate below
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), make_norm(outer)]
            layers = [nn.LeakyReLU(0.2, True), down_conv, *up]
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), make_norm(outer)]
            layers = [nn.LeakyReLU(0.2, True), down_conv, make_norm(inner), submodule, *up]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat((x, self.model(x)), 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (8 for 256x256 inputs: the 1x1
    bottleneck), so H and W must be multiples of 2**num_downs. Dropout (the
    paper's noise) in the three innermost ngf*8 levels but the bottleneck."""

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64, norm: NormKind = "batch",
                 dropout: bool = True):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 levels, got num_downs={num_downs}")
        self.multiple = 2 ** num_downs
        block = UnetBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for outer in (ngf * 4, ngf * 2, ngf):
            block = UnetBlock(outer, outer * 2, submodule=block, norm=norm)
        self.model = UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm,
                               output_nc=output_nc)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    """x + (pad, 3x3 conv, norm, ReLU, [dropout], pad, 3x3 conv, norm)(x)."""

    def __init__(self, channels: int, norm: NormKind = "batch", dropout: bool = False, padding: str = "reflect",
                 activation: nn.Module | None = None):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=bias),
            make_norm(channels),
            activation or nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=bias), make_norm(channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 downsamplings, ``n_blocks`` residual blocks, two
    stride-2 upsamplings and a 7x7 conv to tanh; H and W must be multiples of 4."""

    multiple = 4

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9, norm: NormKind = "batch",
                 dropout: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU(True)
        ]
        for i in range(2):
            channels = ngf * 2 ** i
            layers += [nn.Conv2d(channels, channels * 2, 3, 2, 1, bias=bias), make_norm(channels * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            channels = ngf * 4 // 2 ** i
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1, bias=bias),
                       make_norm(channels // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


GENERATORS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")


def build_generator(name: str, input_nc: int, output_nc: int, ngf: int = 64, norm: NormKind = "batch",
                    dropout: bool = True) -> nn.Module:
    """A pix2pix generator by name: unet_256, unet_128, resnet_9blocks or resnet_6blocks.
    The generator's ``multiple`` attribute says what H and W must be multiples of."""
    if name.startswith("unet_") and name in GENERATORS:
        return UnetGenerator(input_nc, output_nc, {"unet_256": 8, "unet_128": 7}[name], ngf, norm, dropout)
    if name.startswith("resnet_") and name in GENERATORS:
        return ResnetGenerator(input_nc, output_nc, ngf, {"resnet_9blocks": 9, "resnet_6blocks": 6}[name], norm,
                               dropout)
    raise ValueError(f"generator must be one of {', '.join(GENERATORS)}; got {name!r}")
