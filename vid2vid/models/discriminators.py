"""Discriminators: the PatchGAN of pix2pix (Isola et al. 2017, Sec. 3.2.2), the
1x1 PixelGAN, and the multiscale stack of pix2pixHD and vid2vid built from it."""

from __future__ import annotations

from torch import Tensor, nn

from vid2vid.models.layers import BlurDownsample, NormKind, conv_bias, norm_layer


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a stride-2 4x4 conv and ``n_layers - 1`` more (channels doubling
    up to ndf*8, with norm), a stride-1 one, and a 4x4 conv to one logit per patch.
    With n_layers=3 each logit sees a 70x70 patch. Blocks are kept apart so that
    ``forward(x, features=True)`` can return every block's output for the
    feature-matching loss of pix2pixHD (which pads by 2 where pix2pix pads by 1). With
    ``antialias`` (CUT's default) the stride-2 convs are stride-1 ones followed by a blur-and-subsample."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: NormKind = "batch",
                 padding: int = 1, antialias: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)

        def block(conv_in: int, conv_out: int, stride: int, bias: bool, *after: nn.Module) -> nn.Sequential:
            if antialias and stride == 2:
                return nn.Sequential(nn.Conv2d(conv_in, conv_out, 4, 1, padding, bias=bias), *after,
                                     BlurDownsample(conv_out))
            return nn.Sequential(nn.Conv2d(conv_in, conv_out, 4, stride, padding, bias=bias), *after)

        blocks = [block(input_nc, ndf, 2, True, nn.LeakyReLU(0.2, True))]  # no norm there: always a bias
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2 ** n, 8)
            blocks.append(block(channels, out, 2 if n < n_layers else 1, bias, make_norm(out), nn.LeakyReLU(0.2, True)))
            channels = out
        blocks.append(nn.Sequential(nn.Conv2d(channels, 1, 4, 1, padding)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, features: bool = False) -> Tensor | list[Tensor]:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs if features else x


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("PixelGAN"): judges each pixel's colour on its own."""

    def __init__(self, input_nc: int, ndf: int = 64, norm: NormKind = "batch"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=conv_bias(norm)), norm_layer(norm)(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=conv_bias(norm)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


DISCRIMINATORS = ("basic", "n_layers", "pixel")


def build_discriminator(name: str, input_nc: int, ndf: int = 64, n_layers: int = 3,
                        norm: NormKind = "batch", antialias: bool = False) -> nn.Module:
    """A pix2pix discriminator: ``basic`` (70x70 PatchGAN), ``n_layers`` (PatchGAN of n_layers) or ``pixel``."""
    if name == "basic":
        return NLayerDiscriminator(input_nc, ndf, 3, norm, antialias=antialias)
    if name == "n_layers":
        return NLayerDiscriminator(input_nc, ndf, n_layers, norm, antialias=antialias)
    if name == "pixel":
        return PixelDiscriminator(input_nc, ndf, norm)
    raise ValueError(f"discriminator must be one of {', '.join(DISCRIMINATORS)}; got {name!r}")


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's D1..Dk (Wang et al. 2018, Sec. 3.2): the same PatchGAN design on the
    input at full, half, quarter ... resolution, so that the coarsest sees global
    structure and the finest the details. ``forward`` returns, for each scale (finest
    first), the outputs of every block, the last being the patch logits."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: NormKind = "instance", num_D: int = 3):
        super().__init__()
        # pix2pixHD pads its 4x4 convolutions by 2, where pix2pix pads by 1
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm, padding=2) for _ in range(num_D))

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        outputs = []
        for i, discriminator in enumerate(self.scales):
            if i:
                x = nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x, features=True))
        return outputs
