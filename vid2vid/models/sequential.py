"""The sequential generator of vid2vid (Wang et al. 2018, Sec. 3.1, Eq. 4).

Frame t is made from the label maps s_{t-L..t} and the previously generated
frames x~_{t-L..t-1}: the network predicts a hallucinated image h_t, the flow
w_{t-1} from frame t to frame t-1 and a soft occlusion mask m_t, and composes

    x~_t = (1 - m_t) * warp(x~_{t-1}, w_{t-1}) + m_t * h_t.

With foreground classes (semantic labels), a separate foreground head draws
h_F where the labels are foreground, which replaces the composed frame there
(the background follows the flow; people and cars are redrawn each frame).

The layers are pix2pixHD's (residual blocks, stride-2 convolutions); the label
and image encoders are summed, the image and flow decoders share that sum.
This module is the coarsest scale (NVIDIA/vid2vid's CompositeGenerator); the
flow is in pixels of this scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vid2vid.models.generators import ResnetBlock, stem_and_downsampling, to_image, upsampling
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


class SequentialGenerator(nn.Module):
    """G at one scale: labels of n_frames_G frames and the n_frames_G - 1 previous frames in,
    frame t out. H and W must be multiples of 2**n_downsampling."""

    def __init__(self, label_nc: int, output_nc: int = 3, n_frames_G: int = 3, ngf: int = 64,
                 n_downsampling: int = 3, n_blocks: int = 9, norm: NormKind = "instance",
                 use_foreground: bool = False):
        super().__init__()
        if n_frames_G < 2:
            raise ValueError(f"n_frames_G must be at least 2 (frame t and one previous frame), got {n_frames_G}")
        self.n_frames_G, self.output_nc = n_frames_G, output_nc
        self.multiple = 2 ** n_downsampling
        half = n_blocks - n_blocks // 2
        self.label_encoder = _encoder(label_nc * n_frames_G, ngf, n_downsampling, half, norm)
        self.image_encoder = _encoder(output_nc * (n_frames_G - 1), ngf, n_downsampling, half, norm)
        self.image_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm)
        self.image_head = nn.Sequential(*to_image(ngf, output_nc))
        self.flow_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm)
        self.flow_head = nn.Sequential(*to_image(ngf, 2, nn.Identity()))
        self.mask_head = nn.Sequential(*to_image(ngf, 1, nn.Sigmoid()))
        self.foreground = None
        if use_foreground:
            ngf_fg = ngf // 2 if n_downsampling > 2 else ngf
            self.foreground = nn.Sequential(
                _encoder(label_nc * n_frames_G, ngf_fg, n_downsampling, 0, norm),
                _decoder(ngf_fg, n_downsampling, n_blocks, norm),
                nn.Sequential(*to_image(ngf_fg, output_nc)),
            )

    def forward(self, labels: Tensor, previous: Tensor | None, fg_mask: Tensor | None = None) -> FrameOutput:
        """
        Args:
            labels: (B, n_frames_G * label_nc, H, W), the label maps s_{t-L} ... s_t, oldest first.
            previous: (B, (n_frames_G - 1) * output_nc, H, W), the generated x~_{t-L} ... x~_{t-1},
                oldest first; None for a first frame (empty history: h_t is the frame).
            fg_mask: (B, 1, H, W) foreground of frame t, with a foreground head.
        """
        first = previous is None
        if first:
            previous = labels.new_zeros(labels.shape[0], self.output_nc * (self.n_frames_G - 1), *labels.shape[-2:])
        features = self.label_encoder(labels) + self.image_encoder(previous)
        hallucinated = self.image_head(self.image_decoder(features))
        flow = mask = None
        if first:
            frame = hallucinated
        else:
            flow_features = self.flow_decoder(features)
            flow = self.flow_head(flow_features) * FLOW_SCALE
            mask = self.mask_head(flow_features)
            frame = compose(warp(previous[:, -self.output_nc:], flow), hallucinated, mask)
        if self.foreground is not None:
            if fg_mask is None:
                raise ValueError("this generator has a foreground head: pass fg_mask")
            drawn = self.foreground(labels)
            frame = fg_mask * drawn + (1 - fg_mask) * frame
            hallucinated = fg_mask * drawn + (1 - fg_mask) * hallucinated
        return FrameOutput(frame, hallucinated, flow, mask)
