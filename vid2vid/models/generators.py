"""Image-to-image generators: the U-Net of pix2pix (Isola et al. 2017, Sec. 3.2.1)
and the ResNet generator of Johnson et al. 2016, whose residual blocks pix2pixHD
and vid2vid build on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.models.layers import BlurDownsample, BlurUpsample, NormKind, conv_bias, norm_layer


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
    """x + (pad, 3x3 conv, norm, ReLU, [dropout], pad, 3x3 conv, norm)(x).

    ``bias`` None: convs have a bias unless batch norm follows (pix2pix's layout)."""

    def __init__(self, channels: int, norm: NormKind = "batch", dropout: bool = False, padding: str = "reflect",
                 activation: nn.Module | None = None, bias: bool | None = None):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm) if bias is None else bias
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
    stride-2 upsamplings and a 7x7 conv to tanh; H and W must be multiples of 4.

    With ``antialias`` (CUT's default) each downsampling is a stride-1 conv followed by a
    blur-and-subsample, and each upsampling a blur-upsample followed by a 3x3 conv: the layer
    indices then are CUT's, whose PatchNCE reads layers 0, 4, 8, 12 and 16."""

    multiple = 4

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9, norm: NormKind = "batch",
                 dropout: bool = False, antialias: bool = False):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), make_norm(ngf), nn.ReLU(True)
        ]
        for i in range(2):
            channels = ngf * 2 ** i
            if antialias:
                layers += [nn.Conv2d(channels, channels * 2, 3, 1, 1, bias=bias), make_norm(channels * 2),
                           nn.ReLU(True), BlurDownsample(channels * 2)]
            else:
                layers += [nn.Conv2d(channels, channels * 2, 3, 2, 1, bias=bias), make_norm(channels * 2),
                           nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):
            channels = ngf * 4 // 2 ** i
            if antialias:
                layers += [BlurUpsample(channels), nn.Conv2d(channels, channels // 2, 3, 1, 1, bias=bias)]
            else:
                layers += [nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1, bias=bias)]
            layers += [make_norm(channels // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor, layers: Sequence[int] = ()) -> Tensor | list[Tensor]:
        """The output, or with ``layers`` the outputs of those layers of ``model`` (indices), the
        rest of the network left out: the encoder's features of CUT's PatchNCE. (One forward with
        two uses, so that a DistributedDataParallel wrapper sees both.)"""
        if not layers:
            return self.model(x)
        features = []
        for index, layer in enumerate(self.model[: max(layers) + 1]):
            x = layer(x)
            if index in layers:
                features.append(x)
        return features


GENERATORS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")


def build_generator(name: str, input_nc: int, output_nc: int, ngf: int = 64, norm: NormKind = "batch",
                    dropout: bool = True, antialias: bool = False) -> nn.Module:
    """A pix2pix generator by name: unet_256, unet_128, resnet_9blocks or resnet_6blocks.
    The generator's ``multiple`` attribute says what H and W must be multiples of."""
    if name.startswith("unet_") and name in GENERATORS:
        return UnetGenerator(input_nc, output_nc, {"unet_256": 8, "unet_128": 7}[name], ngf, norm, dropout)
    if name.startswith("resnet_") and name in GENERATORS:
        return ResnetGenerator(input_nc, output_nc, ngf, {"resnet_9blocks": 9, "resnet_6blocks": 6}[name], norm,
                               dropout, antialias)
    raise ValueError(f"generator must be one of {', '.join(GENERATORS)}; got {name!r}")


def resnet_blocks(channels: int, n_blocks: int, norm: NormKind) -> list[nn.Module]:
    """pix2pixHD's and vid2vid's residual blocks: every conv has a bias, batch norm or not (NVIDIA's
    layout, so that their checkpoints load)."""
    return [ResnetBlock(channels, norm, bias=True) for _ in range(n_blocks)]


def stem_and_downsampling(input_nc: int, ngf: int, n_downsampling: int, norm: NormKind) -> list[nn.Module]:
    """pix2pixHD's front end: a 7x7 conv to ngf channels, then n stride-2 convs doubling them."""
    make_norm = norm_layer(norm)
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), make_norm(ngf), nn.ReLU(True)]
    for i in range(n_downsampling):
        channels = ngf * 2 ** i
        layers += [nn.Conv2d(channels, channels * 2, 3, 2, 1), make_norm(channels * 2), nn.ReLU(True)]
    return layers


def upsampling(ngf: int, n_downsampling: int, norm: NormKind) -> list[nn.Module]:
    """n stride-2 transposed convs from ngf * 2**n channels back to ngf."""
    make_norm = norm_layer(norm)
    layers: list[nn.Module] = []
    for i in range(n_downsampling):
        channels = ngf * 2 ** (n_downsampling - i)
        layers += [nn.ConvTranspose2d(channels, channels // 2, 3, 2, 1, output_padding=1), make_norm(channels // 2),
                   nn.ReLU(True)]
    return layers


def to_image(ngf: int, output_nc: int, activation: nn.Module | None = None) -> list[nn.Module]:
    """The 7x7 output conv (tanh by default)."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), activation if activation is not None else nn.Tanh()]


def _global_layers(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
                   norm: NormKind) -> list[nn.Module]:
    """pix2pixHD's G1 as a flat list: 7x7 conv, n_downsampling stride-2 convs, n_blocks residual
    blocks, as many stride-2 transposed convs, and the 7x7 conv to tanh (the last three layers)."""
    return (stem_and_downsampling(input_nc, ngf, n_downsampling, norm)
            + resnet_blocks(ngf * 2 ** n_downsampling, n_blocks, norm)
            + upsampling(ngf, n_downsampling, norm) + to_image(ngf, output_nc))


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator G1 (Wang et al. 2018, Sec. 3.2): H and W multiples of 2**n_downsampling."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 4, n_blocks: int = 9,
                 norm: NormKind = "instance"):
        super().__init__()
        self.multiple = 2 ** n_downsampling
        self.model = nn.Sequential(*_global_layers(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class FeatureInjectedGenerator(nn.Module):
    """A global generator whose feature map (the last ``feat_nc`` input channels) joins it again at
    every resolution: concatenated to the input, to the residual blocks' input and to the first
    upsampling's (average-pooled to their size), and to the output conv's. NVIDIA/vid2vid's
    Global_with_z, the first-frame generator of edge2face; forward takes the label and the
    features concatenated, as pix2pixHD's global generator does."""

    def __init__(self, input_nc: int, output_nc: int, feat_nc: int, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 9, norm: NormKind = "instance"):
        super().__init__()
        self.feat_nc, self.n_downsampling = feat_nc, n_downsampling
        self.multiple = 2 ** n_downsampling
        make_norm, width = norm_layer(norm), ngf * 2 ** n_downsampling
        self.front = nn.Sequential(*stem_and_downsampling(input_nc + feat_nc, ngf, n_downsampling, norm))
        self.blocks = nn.Sequential(*resnet_blocks(width + feat_nc, n_blocks, norm))
        first = [nn.ConvTranspose2d(width + 2 * feat_nc, width // 2, 3, 2, 1, output_padding=1),
                 make_norm(width // 2), nn.ReLU(True)]
        self.back = nn.Sequential(*first, *upsampling(ngf, n_downsampling, norm)[3:])
        self.head = nn.Sequential(*to_image(ngf + feat_nc, output_nc))

    def forward(self, x: Tensor) -> Tensor:
        features = x[:, -self.feat_nc:]
        pooled = features
        for _ in range(self.n_downsampling):
            pooled = downsample2(pooled)
        blocks = self.blocks(torch.cat((self.front(x), pooled), 1))
        return self.head(torch.cat((self.back(torch.cat((blocks, pooled), 1)), features), 1))


def downsample2(x: Tensor) -> Tensor:
    """The half-resolution input of pix2pixHD's coarser levels: 3x3 average, stride 2, borders not padded with zeros."""
    return torch.nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


class LocalEnhancer(nn.Module):
    """G = {G1, G2}: the global generator (its last 7x7 conv removed) runs on the input
    downsampled n_local_enhancers times; each enhancer G2 adds its own front end's features
    to the coarser result, then residual blocks and a x2 upsampling (Sec. 3.2, Fig. 3).

    ``global_only=True`` runs G1 alone at the coarsest scale, with its own output layer,
    for the first phase of training (the global generator is trained first at half size)."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsampling: int = 4, n_blocks: int = 9,
                 n_local_enhancers: int = 1, n_blocks_local: int = 3, norm: NormKind = "instance"):
        super().__init__()
        self.n_local_enhancers = n_local_enhancers
        self.multiple = 2 ** (n_downsampling + n_local_enhancers)
        make_norm = norm_layer(norm)
        global_layers = _global_layers(input_nc, output_nc, ngf * 2 ** n_local_enhancers, n_downsampling, n_blocks,
                                       norm)
        self.global_body = nn.Sequential(*global_layers[:-3])
        self.global_head = nn.Sequential(*global_layers[-3:])
        self.front, self.back = nn.ModuleList(), nn.ModuleList()
        for n in range(1, n_local_enhancers + 1):
            channels = ngf * 2 ** (n_local_enhancers - n)
            self.front.append(nn.Sequential(
                nn.ReflectionPad2d(3), nn.Conv2d(input_nc, channels, 7), make_norm(channels), nn.ReLU(True),
                nn.Conv2d(channels, channels * 2, 3, 2, 1), make_norm(channels * 2), nn.ReLU(True),
            ))
            back = resnet_blocks(channels * 2, n_blocks_local, norm)
            back += [nn.ConvTranspose2d(channels * 2, channels, 3, 2, 1, output_padding=1), make_norm(channels),
                     nn.ReLU(True)]
            if n == n_local_enhancers:
                back += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
            self.back.append(nn.Sequential(*back))

    def forward(self, x: Tensor, global_only: bool = False) -> Tensor:
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(downsample2(pyramid[-1]))
        features = self.global_body(pyramid[-1])
        if global_only:
            return self.global_head(features)
        for n in range(self.n_local_enhancers):
            features = self.back[n](self.front[n](pyramid[-2 - n]) + features)
        return features


class FeatureEncoder(nn.Module):
    """pix2pixHD's encoder E (Sec. 3.4): an encoder-decoder from the real image to a
    low-dimensional feature map, averaged over each instance so that every object
    gets one feature vector (the generator's extra input, clustered for sampling)."""

    def __init__(self, input_nc: int = 3, feat_nc: int = 3, ngf: int = 16, n_downsampling: int = 4,
                 norm: NormKind = "instance"):
        super().__init__()
        layers = (stem_and_downsampling(input_nc, ngf, n_downsampling, norm) + upsampling(ngf, n_downsampling, norm)
                  + to_image(ngf, feat_nc))
        self.model = nn.Sequential(*layers)
        self.multiple = 2 ** n_downsampling

    def forward(self, image: Tensor, instances: Tensor) -> Tensor:
        """image (B, 3, H, W), instances (B, 1, H, W) integer ids -> (B, feat_nc, H, W), constant per instance."""
        return instance_average(self.model(image), instances)


# Instance ids are below 2**16: instance maps are 8- or 16-bit images (Cityscapes' *_instanceIds.png, the demos').
INSTANCE_ID_LIMIT = 1 << 16


def instance_average(features: Tensor, instances: Tensor) -> Tensor:
    """Each pixel's features replaced by the mean over its instance (same id, same image).

    features (B, C, H, W), instances (B, 1, H, W) integer ids in 0 .. INSTANCE_ID_LIMIT - 1;
    differentiable in features. The sums go to a fixed table of INSTANCE_ID_LIMIT slots per image
    rather than to the ids that occur (torch.unique), so nothing waits for the device."""
    batch, channels = features.shape[:2]
    ids = instances.long().flatten(1)  # (B, HW)
    offsets = torch.arange(batch, device=ids.device).view(-1, 1) * INSTANCE_ID_LIMIT
    index = (ids + offsets).flatten()  # (B*HW,): slot of each pixel
    flat = features.permute(1, 0, 2, 3).reshape(channels, -1).float()  # (C, B*HW), summed in float32
    sums = flat.new_zeros(channels, batch * INSTANCE_ID_LIMIT).index_add_(1, index, flat)
    counts = flat.new_zeros(batch * INSTANCE_ID_LIMIT).index_add_(0, index, flat.new_ones(index.shape))
    means = (sums[:, index] / counts[index]).to(features.dtype)
    return means.reshape(channels, batch, *features.shape[2:]).permute(1, 0, 2, 3)


def run_padded(generator: nn.Module, images: Tensor, multiple: int) -> Tensor:
    """generator(images) for images (B, C, H, W) of any size: padded on the right and bottom to
    multiples of ``multiple`` (reflected, or replicated where the image is too small to reflect)
    and cropped back."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        images = F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
    return generator(images)[..., :height, :width]
