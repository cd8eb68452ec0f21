"""VGG19 features for the perceptual loss of pix2pixHD and vid2vid, without torchvision.

The layers are laid out as torchvision's ``vgg19().features``, so its ImageNet
weights (``vgg19-dcbb9e9d.pth``, in torchvision's cache or any path) load as
they are. Nothing is downloaded here: :func:`find_vgg19_weights` looks for a
file the user already has."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid import serialization
from vid2vid.config import ConfigError
from vid2vid.errors import see

# torchvision's configuration "E": channels, or "M" for a 2x2 max pool
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
# the feature maps the loss compares: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (indices in ``features``)
SLICE_ENDS = (2, 7, 12, 21, 30)
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """Frozen VGG19 conv layers; ``forward`` returns the five relu*_1 maps of an image in -1..1.

    Inputs are mapped to ImageNet statistics first, the normalisation the weights were
    trained with (NVIDIA/pix2pixHD feeds -1..1 unnormalised)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # always a fixed feature extractor

    def forward(self, image: Tensor) -> list[Tensor]:
        x = ((image + 1) / 2 - self.mean) / self.std
        outputs, start = [], 0
        for end in SLICE_ENDS:
            x = self.features[start:end](x)
            outputs.append(x)
            start = end
        return outputs


def find_vgg19_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The given path, else torchvision's cached ImageNet VGG19 if present, else None."""
    if path is not None:
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    return cached if cached.is_file() else None


def load_vgg19(path: str | os.PathLike) -> VGG19Features:
    """VGG19Features with the weights of a torchvision VGG19 state dict (classifier entries ignored)."""
    state = serialization.load(path)
    model = VGG19Features()
    wanted = {k: v for k, v in state.items() if k.startswith("features.")} if isinstance(state, dict) else {}
    expected = model.state_dict()
    bad = [k for k in expected if k not in wanted or wanted[k].shape != expected[k].shape]
    if bad:
        raise ValueError(f"{os.fspath(path)!r} is not a torchvision VGG19 state dict (missing or misshapen: "
                         f"{', '.join(bad[:3])})")
    model.load_state_dict(wanted)
    return model


class VGGLoss(nn.Module):
    """Perceptual loss: sum_i w_i * L1(VGG_i(x), VGG_i(y)), w = 1/32, 1/16, 1/8, 1/4, 1 (pix2pixHD)."""

    WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

    def __init__(self, vgg: VGG19Features):
        super().__init__()
        self.vgg = vgg

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        loss = x.new_zeros((), dtype=torch.float32)
        for w, fx, fy in zip(self.WEIGHTS, self.vgg(x), self.vgg(y)):
            loss = loss + w * F.l1_loss(fx.float(), fy.detach().float())
        return loss


def vgg_loss_or_none(path: str | os.PathLike | None, required: bool,
                     device: torch.device = torch.device("cpu")) -> VGGLoss | None:
    """The VGG loss on ``device``, from the weights at path (or torchvision's cache). Without
    weights: an error if required, else None after one warning that training goes on without it.
    On the meta device (planning, vid2vid.training.planning) no value is ever read, so the
    network comes without weights."""
    if device.type == "meta":
        return VGGLoss(VGG19Features()).to(device)
    found = find_vgg19_weights(path)
    if found is None or not found.is_file():
        where = f"{os.fspath(path)!r} does not exist" if path is not None else (
            f"no {TORCHVISION_FILE} in torchvision's cache ({Path(torch.hub.get_dir()) / 'checkpoints'})")
        if required:
            raise ConfigError(f"the VGG loss is required (model.vgg_required) but {where}; pass the ImageNet VGG19 "
                              f"weights with --vgg-weights PATH (model.vgg_weights)" + see("missing-weights-files"))
        warnings.warn(f"training without the VGG perceptual loss: {where}; pass --vgg-weights PATH "
                      f"(torchvision's {TORCHVISION_FILE}) to use it", stacklevel=2)
        return None
    return VGGLoss(load_vgg19(found)).to(device)
