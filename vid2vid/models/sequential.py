"""The sequential generator of vid2vid (Wang et al. 2018, Sec. 3.1-3.2).

Frame t is made from the label maps s_{t-L..t} and the previously generated
frames x~_{t-L..t-1}: the network predicts a hallucinated image h_t, the flow
w_{t-1} from frame t to frame t-1 and a soft occlusion mask m_t, and composes

    x~_t = (1 - m_t) * warp(x~_{t-1}, w_{t-1}) + m_t * h_t          (Eq. 4)

With foreground classes (semantic labels), a foreground head draws h_F from the
labels alone and the main head draws the background h_B, so that

    h_t = (1 - m_B) * h_F + m_B * h_B                                (Eq. 5)

with m_B the background mask of frame t; the background head shares the flow
path's features, the foreground (people, cars) is redrawn where the flow fails.

Coarse to fine (Sec. 3.2): the coarsest level is pix2pixHD's global generator
split into label and image encoders, whose sum feeds an image decoder and a flow
decoder; each finer level is a local enhancer that adds its own front end's
features to the coarser level's decoder features, branch by branch. Every level
has its output heads, so training can start at the coarsest level and add the
finer ones (progressive training); a frame is made at the finest active level.
Flows are in pixels of the resolution they are made at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vid2vid.models.generators import ResnetBlock, downsample2, stem_and_downsampling, to_image, upsampling
from vid2vid.models.layers import NormKind
from vid2vid.ops import warp

FLOW_SCALE = 20.0
"""the flow head predicts pixels / 20, the FlowNet2 convention vid2vid keeps"""


def compose(warped_previous: Tensor, hallucinated: Tensor, occlusion_mask: Tensor) -> Tensor:
    """Eq. 4: (1 - m) * warped previous frame + m * hallucinated image; m (B, 1, H, W) in 0..1."""
    return (1 - occlusion_mask) * warped_previous + occlusion_mask * hallucinated


def foreground_mask(labels: Tensor, classes: tuple[int, ...]) -> Tensor:
    """(B, 1, H, W) class ids -> (B, 1, H, W) float, 1 where the class is one of ``classes``."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    for cls in classes:
        mask |= labels == cls
    return mask.float()


def _encoder(input_nc: int, ngf: int, n_downsampling: int, n_blocks: int, norm: NormKind) -> nn.Sequential:
    return nn.Sequential(*stem_and_downsampling(input_nc, ngf, n_downsampling, norm),
                         *[ResnetBlock(ngf * 2 ** n_downsampling, norm) for _ in range(n_blocks)])


def _decoder(ngf: int, n_downsampling: int, n_blocks: int, norm: NormKind) -> nn.Sequential:
    return nn.Sequential(*[ResnetBlock(ngf * 2 ** n_downsampling, norm) for _ in range(n_blocks)],
                         *upsampling(ngf, n_downsampling, norm))


@dataclass
class FrameOutput:
    """What the generator makes for frame t (all (B, ., H, W))."""

    frame: Tensor
    """x~_t, in -1..1"""
    hallucinated: Tensor
    """h_t (with the foreground drawn in, when there is a foreground head)"""
    flow: Tensor | None
    """w_{t-1}, from frame t to frame t-1, in pixels (None for a first frame)"""
    occlusion_mask: Tensor | None
    """m_t, the weight of h_t (None for a first frame)"""


@dataclass
class BranchFeatures:
    """A level's decoder features (B, ngf_level, H_level, W_level), one tensor per branch."""

    image: Tensor
    flow: Tensor | None
    """None for a first frame, which has nothing to warp"""
    foreground: Tensor | None


class CoarsestLevel(nn.Module):
    """Label and previous-frame encoders (summed), then the image and flow decoders;
    the foreground branch sees the labels only."""

    def __init__(self, labels_nc: int, previous_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
                 norm: NormKind, use_foreground: bool):
        super().__init__()
        half = n_blocks - n_blocks // 2
        self.label_encoder = _encoder(labels_nc, ngf, n_downsampling, half, norm)
        self.image_encoder = _encoder(previous_nc, ngf, n_downsampling, half, norm)
        self.image_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm)
        self.flow_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm)
        self.foreground = None
        if use_foreground:
            ngf_fg = ngf // 2 if n_downsampling > 2 else ngf  # NVIDIA/vid2vid's lighter foreground path
            self.foreground = nn.Sequential(_encoder(labels_nc, ngf_fg, n_downsampling, 0, norm),
                                            _decoder(ngf_fg, n_downsampling, n_blocks, norm),
                                            *([nn.Conv2d(ngf_fg, ngf, 1)] if ngf_fg != ngf else []))

    def forward(self, labels: Tensor, previous: Tensor, with_flow: bool = True) -> BranchFeatures:
        features = self.label_encoder(labels) + self.image_encoder(previous)
        return BranchFeatures(self.image_decoder(features), self.flow_decoder(features) if with_flow else None,
                              self.foreground(labels) if self.foreground is not None else None)


class FinerLevel(nn.Module):
    """A local enhancer level: its front ends (labels, previous frames) downsample once to the
    coarser level's resolution and channels; each branch adds the coarser branch's features,
    then residual blocks and a x2 upsampling back to ngf channels."""

    def __init__(self, labels_nc: int, previous_nc: int, ngf: int, n_blocks: int, norm: NormKind,
                 use_foreground: bool):
        super().__init__()
        self.label_front = nn.Sequential(*stem_and_downsampling(labels_nc, ngf, 1, norm))
        self.image_front = nn.Sequential(*stem_and_downsampling(previous_nc, ngf, 1, norm))
        self.image_branch = _decoder(ngf, 1, n_blocks, norm)
        self.flow_branch = _decoder(ngf, 1, n_blocks, norm)
        self.foreground_branch = _decoder(ngf, 1, n_blocks, norm) if use_foreground else None

    def forward(self, labels: Tensor, previous: Tensor, coarser: BranchFeatures) -> BranchFeatures:
        label_features = self.label_front(labels)
        features = label_features + self.image_front(previous)
        foreground = None
        if self.foreground_branch is not None:
            foreground = self.foreground_branch(label_features + coarser.foreground)
        flow = None if coarser.flow is None else self.flow_branch(features + coarser.flow)
        return BranchFeatures(self.image_branch(features + coarser.image), flow, foreground)


class OutputHeads(nn.Module):
    """A level's 7x7 output convolutions: image, flow, occlusion mask (and foreground image)."""

    def __init__(self, ngf: int, output_nc: int, use_foreground: bool):
        super().__init__()
        self.image = nn.Sequential(*to_image(ngf, output_nc))
        self.flow = nn.Sequential(*to_image(ngf, 2, nn.Identity()))
        self.mask = nn.Sequential(*to_image(ngf, 1, nn.Sigmoid()))
        self.foreground = nn.Sequential(*to_image(ngf, output_nc)) if use_foreground else None

    def forward(self, features: BranchFeatures, previous_frame: Tensor | None, fg_mask: Tensor | None) -> FrameOutput:
        hallucinated = self.image(features.image)
        if self.foreground is not None:
            if fg_mask is None:
                raise ValueError("this generator has a foreground head: pass fg_mask")
            hallucinated = compose(hallucinated, self.foreground(features.foreground), fg_mask)  # Eq. 5
        if previous_frame is None:  # a first frame: nothing to warp, h_t is the frame
            return FrameOutput(hallucinated, hallucinated, None, None)
        flow = self.flow(features.flow) * FLOW_SCALE
        mask = self.mask(features.flow)
        return FrameOutput(compose(warp(previous_frame, flow), hallucinated, mask), hallucinated, flow, mask)


class SequentialGenerator(nn.Module):
    """G: labels of n_frames_G frames and the n_frames_G - 1 previous frames in, frame t out.

    Level 0 is the coarsest (ngf channels); level s has ngf / 2**s. With ``scales=k`` active,
    the input is at the resolution of level k-1 and H, W must be multiples of
    2**(n_downsampling + k - 1)."""

    def __init__(self, label_nc: int, output_nc: int = 3, n_frames_G: int = 3, ngf: int = 64,
                 n_downsampling: int = 3, n_blocks: int = 9, norm: NormKind = "instance",
                 use_foreground: bool = False, n_scales: int = 1, n_blocks_local: int = 3):
        super().__init__()
        if n_frames_G < 2:
            raise ValueError(f"n_frames_G must be at least 2 (frame t and one previous frame), got {n_frames_G}")
        if n_scales < 1 or ngf % 2 ** (n_scales - 1):
            raise ValueError(f"n_scales must be >= 1 with ngf divisible by 2**(n_scales - 1), got n_scales={n_scales}, "
                             f"ngf={ngf}")
        self.n_frames_G, self.output_nc, self.n_scales = n_frames_G, output_nc, n_scales
        self.n_downsampling = n_downsampling
        labels_nc, previous_nc = label_nc * n_frames_G, output_nc * (n_frames_G - 1)
        self.coarsest = CoarsestLevel(labels_nc, previous_nc, ngf, n_downsampling, n_blocks, norm, use_foreground)
        self.finer = nn.ModuleList(FinerLevel(labels_nc, previous_nc, ngf // 2 ** s, n_blocks_local, norm,
                                              use_foreground) for s in range(1, n_scales))
        self.heads = nn.ModuleList(OutputHeads(ngf // 2 ** s, output_nc, use_foreground) for s in range(n_scales))

    @torch.no_grad()
    def start_from_global_generator(self, state: Mapping[str, Tensor]) -> None:
        """Copies pix2pixHD's global generator (a ``GlobalGenerator.state_dict()`` of the same ngf, n_downsampling
        and n_blocks) into the coarsest level's image path: label encoder, image decoder and image head, in
        that order of layers. Its first conv's weights go to the newest frame's label channels, zeros to the
        older frames'. Under instance norm the image encoder turns an empty history into zeros, so G then
        draws first frames as that generator does; the flow path and the finer levels keep their own weights.

        Raises:
            ValueError: the layouts differ (the key and both shapes named).
        """
        image_path = nn.Sequential(*self.coarsest.label_encoder, *self.coarsest.image_decoder, *self.heads[0].image)
        ours = image_path.state_dict()
        theirs = {key.removeprefix("model."): value for key, value in state.items()}
        stem = theirs.get("1.weight")
        if stem is not None and stem.shape[1] * self.n_frames_G == ours["1.weight"].shape[1]:
            theirs["1.weight"] = torch.cat((stem.new_zeros(stem.shape[0], ours["1.weight"].shape[1] - stem.shape[1],
                                                           *stem.shape[2:]), stem), 1)
        if set(theirs) != set(ours):
            raise ValueError(f"the pix2pixHD generator's layers ({len(theirs)} tensors) do not match this generator's "
                             f"image path ({len(ours)}): use netG global with the same ngf, n_downsample and n_blocks")
        for key, value in theirs.items():
            if value.shape != ours[key].shape:
                raise ValueError(f"pix2pixHD generator tensor model.{key} is {tuple(value.shape)}, this generator's "
                                 f"is {tuple(ours[key].shape)}: use the same ngf, n_downsample, n_blocks and inputs")
        image_path.load_state_dict(theirs)

    def multiple(self, scales: int | None = None) -> int:
        """What H and W must be multiples of with ``scales`` levels active (default: all)."""
        return 2 ** (self.n_downsampling + (scales or self.n_scales) - 1)

    def forward(self, labels: Tensor, previous: Tensor | None, fg_mask: Tensor | None = None,
                scales: int | None = None) -> FrameOutput:
        """
        Args:
            labels: (B, n_frames_G * label_nc, H, W), the label maps s_{t-L} ... s_t, oldest first.
            previous: (B, (n_frames_G - 1) * output_nc, H, W), the generated x~_{t-L} ... x~_{t-1},
                oldest first; None for a first frame (empty history: h_t is the frame).
            fg_mask: (B, 1, H, W) foreground of frame t, with a foreground head.
            scales: levels to use, coarsest first (default all); (H, W) is the finest one's size.
        """
        scales = scales or self.n_scales
        if not 1 <= scales <= self.n_scales:
            raise ValueError(f"scales must be in 1 .. {self.n_scales}, got {scales}")
        first = previous is None
        if first:
            previous = labels.new_zeros(labels.shape[0], self.output_nc * (self.n_frames_G - 1), *labels.shape[-2:])
        label_pyramid, previous_pyramid = [labels], [previous]
        for _ in range(scales - 1):
            label_pyramid.insert(0, downsample2(label_pyramid[0]))
            previous_pyramid.insert(0, downsample2(previous_pyramid[0]))
        features = self.coarsest(label_pyramid[0], previous_pyramid[0], with_flow=not first)
        for level in range(1, scales):
            features = self.finer[level - 1](label_pyramid[level], previous_pyramid[level], features)
        return self.heads[scales - 1](features, None if first else previous[:, -self.output_nc:], fg_mask)
