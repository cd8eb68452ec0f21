"""The sequential generator of vid2vid (Wang et al. 2018, Sec. 3.1-3.2).

Frame t is made from the label maps s_{t-L..t} and the previously generated
frames x~_{t-L..t-1}: the network predicts a hallucinated image h_t, the flow
w_{t-1} from frame t to frame t-1 and a soft occlusion mask m_t, and composes

    x~_t = (1 - m_t) * warp(x~_{t-1}, w_{t-1}) + m_t * h_t          (Eq. 4)

With foreground classes (semantic labels), a foreground branch draws h_F from
the labels alone, and the foreground is always drawn, never warped:

    x~_t = m_F * h_F + (1 - m_F) * ((1 - m_t) * warp(x~_{t-1}) + m_t * h_B)   (Eq. 5)

with m_F the foreground mask of frame t and h_B the main head's image (as
NVIDIA/vid2vid computes it); people and cars, which flow follows badly, are
redrawn each frame.

With a base flow (``base_flow``, model.input_flow: the motion of the inputs themselves, e.g. the optical
flow between frame t's edge map and frame t-1's), the flow heads predict a correction to it instead of the
whole flow, so the warp follows the scene before they have learnt anything.

With a warp tolerance (``warp_tolerance``), the history is rejected where it disagrees with the frame being
drawn, as temporal anti-aliasing in games rejects its history: where the warped previous frame differs from h_t
by much more than the tolerance over a small neighbourhood (motion the warp missed, disocclusions, new
content), the frame is drawn anew whatever m_t says; where they agree, m_t holds, and a low m_t smooths the
flicker of h_t along the flow:

    m'_t = 1 - (1 - m_t) * exp(-d_t^2 / tolerance^2)

with d_t^2 the squared difference of h_t and the warped previous frame, averaged over the colour channels and
a 5x5 neighbourhood. With a structure radius (``structure_radius``), h_t judges the history only within that
many pixels of the structure of frame t's input (where the map changes from pixel to pixel: edges, label
boundaries); farther from it the inputs show nothing that could have moved or appeared, so where h_t
disagrees with the history there it is h_t's own invention (a shadow drawn into a flat wall), and the history
is kept as m_t says. This applies when rendering (eval mode) only: in training, the frames that h_t is
rejected into are where the loss reaches h_t in full, and keeping the history in flat regions there would take
most of h_t's training signal away from them (two trainings with it drew a face's first frames 0.7 dB worse).
With a scene-cut agreement (``scene_cut_agreement``, rendering only), a frame whose history agrees with h_t less
than that on average over the judged region (exp(-d_t^2 / tolerance^2); about 0.9 or more from frame to frame
of one shot, 0.36 at a cut in real footage) starts afresh: m'_t = 1 everywhere, flat regions included, whose
history belongs to the previous shot.

Without flow heads (``predict_flow=False``, NVIDIA/vid2vid's --no_flow), every
frame is h_t, made from the labels and the previous frames; temporal coherence
then comes from the losses alone (the generated frames warped by the reference
flow, the video discriminators).

Coarse to fine (Sec. 3.2): the coarsest level is pix2pixHD's global generator
split into label and image encoders, whose sum feeds an image decoder and a flow
decoder; each finer level is a local enhancer that adds its own front end's
features to the coarser level's decoder features, branch by branch. Every level
has its output heads, so training can start at the coarsest level and add the
finer ones (progressive training); a frame is made at the finest active level.
Flows are in pixels of the resolution they are made at. The history of a coarser
level is the finest frames downsampled, or (``previous`` as a list) the frames that
level made itself, as NVIDIA/vid2vid keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vid2vid.models.generators import downsample2, resnet_blocks, stem_and_downsampling, to_image, upsampling
from vid2vid.models.layers import NormKind
from vid2vid.ops import warp

MASK_START = 0.95
"""the occlusion mask's default start after start_as_single_frame_generator: each frame 95% drawn anew"""
FLOW_SCALE = 20.0
"""the coarsest flow head predicts pixels / 20 (the FlowNet2 convention vid2vid keeps); level s, with
2**s times the pixels, predicts pixels / (20 * 2**s), as NVIDIA/vid2vid"""


AGREEMENT_RADIUS = 2
"""warp_tolerance compares h and the warped previous frame over (2 * 2 + 1)**2 neighbourhoods, so that
single pixels of speckle do not reject the history"""


def reject_history(occlusion_mask: Tensor, warped_previous: Tensor, hallucinated: Tensor, tolerance: float,
                   judged: Tensor | None = None, scene_cut_below: float = 0.0) -> Tensor:
    """The occlusion mask raised towards 1 where the warped previous frame disagrees with the hallucinated image
    by more than ``tolerance`` (in -1..1 units): 1 - (1 - m) * exp(-d^2 / tolerance^2), d^2 their squared
    difference averaged over channels and an AGREEMENT_RADIUS neighbourhood; only where ``judged`` (B, 1, H, W)
    is 1, if given (elsewhere the mask is left as it is). A frame whose agreement, averaged over where it is
    judged, is below ``scene_cut_below`` is a scene cut: its mask becomes 1 everywhere (no history is valid,
    not even where nothing is judged). The agreement carries no gradient: it judges the warp, and G must not
    learn to draw h apart from the warp to move it."""
    with torch.no_grad():
        difference = (hallucinated.float() - warped_previous.float()).square().mean(1, keepdim=True)
        size = 2 * AGREEMENT_RADIUS + 1
        difference = F.avg_pool2d(difference, size, 1, AGREEMENT_RADIUS, count_include_pad=False)
        agreement = torch.exp(-difference / tolerance**2)
        kept: Tensor | float = 1.0
        if scene_cut_below > 0:  # the mean agreement where h judges; below it, a cut rejects the whole history
            weight = torch.ones_like(agreement) if judged is None else judged.float()
            mean = (agreement * weight).sum((1, 2, 3), keepdim=True) / weight.sum((1, 2, 3), keepdim=True).clamp_min(1)
            kept = (mean >= scene_cut_below).float()
        if judged is not None:
            agreement = torch.maximum(agreement, 1 - judged.float())
        agreement = (agreement * kept).to(occlusion_mask.dtype)
    return 1 - (1 - occlusion_mask) * agreement


def near_structure(inputs: Tensor, radius: int) -> Tensor:
    """(B, C, H, W) input maps of one frame -> (B, 1, H, W), 1 within ``radius`` pixels of where any channel
    differs from its 3x3 neighbours' mean (edges of an edge map, label and instance boundaries), else 0."""
    with torch.no_grad():
        x = inputs.float()
        changes = (x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).abs().amax(1, keepdim=True) > 1e-6
        return F.max_pool2d(changes.float(), 2 * radius + 1, 1, radius)


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
                         *resnet_blocks(ngf * 2 ** n_downsampling, n_blocks, norm))


def _decoder(ngf: int, n_downsampling: int, n_blocks: int, norm: NormKind) -> nn.Sequential:
    return nn.Sequential(*resnet_blocks(ngf * 2 ** n_downsampling, n_blocks, norm),
                         *upsampling(ngf, n_downsampling, norm))


def foreground_width(ngf: int, n_downsampling: int) -> int:
    """Channels of a level's foreground branch: NVIDIA/vid2vid's lighter path, half the level's
    with more than two downsamplings."""
    return ngf // 2 if n_downsampling > 2 else ngf


def pyramid(x: Tensor, levels: int, *, flow: bool = False) -> list[Tensor]:
    """x and its downsamplings (pix2pixHD's 3x3 average), coarsest first: ``levels`` tensors; a flow's
    rescaled into each level's pixels."""
    found = [x]
    for _ in range(levels - 1):
        found.insert(0, downsample2(found[0]) * (0.5 if flow else 1.0))
    return found


class HistoryGate(nn.Module):
    """A per-channel weight, starting at zero, on the previous frames' features before they join the label
    features in the image decoder (``gated_history``): G starts the clips as the single-frame generator it
    learnt first (a history that adds nothing leaves h_t as it was), and lets the history in as far as
    training finds it useful, instead of adding an untrained encoder's features to a trained decoder's input
    (model.start_as_image_generator)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, history_features: Tensor) -> Tensor:
        return self.weight * history_features


@dataclass
class FrameOutput:
    """What the generator makes for frame t (all (B, ., H, W))."""

    frame: Tensor
    """x~_t, in -1..1"""
    hallucinated: Tensor
    """h_t (with the foreground drawn in, when there is a foreground head)"""
    flow: Tensor | None
    """w_{t-1}, from frame t to frame t-1, in pixels (None for a first frame, or from a generator
    without flow heads)"""
    occlusion_mask: Tensor | None
    """m_t, the weight of h_t (None where there is no flow)"""
    levels: list[Tensor] | None = None
    """every active level's frame, coarsest first (with all_levels=True), each at its level's size"""


@dataclass
class BranchFeatures:
    """A level's decoder features (B, ngf_level, H_level, W_level), one tensor per branch."""

    image: Tensor
    flow: Tensor | None
    """None for a first frame, which has nothing to warp, or without flow heads"""
    foreground: Tensor | None


class CoarsestLevel(nn.Module):
    """Label and previous-frame encoders (summed), then the image and flow decoders;
    the foreground branch sees the labels only."""

    def __init__(self, labels_nc: int, previous_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
                 norm: NormKind, use_foreground: bool, predict_flow: bool = True, gated_history: bool = False):
        super().__init__()
        half = n_blocks - n_blocks // 2
        self.label_encoder = _encoder(labels_nc, ngf, n_downsampling, half, norm)
        self.image_encoder = _encoder(previous_nc, ngf, n_downsampling, half, norm)
        self.history_gate = HistoryGate(ngf * 2 ** n_downsampling) if gated_history else None
        self.image_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm)
        self.flow_decoder = _decoder(ngf, n_downsampling, n_blocks // 2, norm) if predict_flow else None
        self.foreground = None
        if use_foreground:
            ngf_fg = foreground_width(ngf, n_downsampling)
            self.foreground = nn.Sequential(_encoder(labels_nc, ngf_fg, n_downsampling, 0, norm),
                                            _decoder(ngf_fg, n_downsampling, n_blocks, norm))

    def forward(self, labels: Tensor, previous: Tensor | None, with_flow: bool = True) -> BranchFeatures:
        """``previous`` None: a history known to encode to zero (see SequentialGenerator.forward)."""
        features = image_features = self.label_encoder(labels)
        if previous is not None:
            history = self.image_encoder(previous)
            features = features + history
            image_features = features if self.history_gate is None else image_features + self.history_gate(history)
        flow = self.flow_decoder(features) if with_flow and self.flow_decoder is not None else None
        return BranchFeatures(self.image_decoder(image_features), flow,
                              self.foreground(labels) if self.foreground is not None else None)


class FinerLevel(nn.Module):
    """A local enhancer level: its front ends (labels, previous frames) downsample once to the
    coarser level's resolution and channels; each branch adds the coarser branch's features,
    then residual blocks and a x2 upsampling back to ngf channels. The foreground branch has
    a label front end of its own, at its own width (foreground_width)."""

    def __init__(self, labels_nc: int, previous_nc: int, ngf: int, n_blocks: int, norm: NormKind,
                 use_foreground: bool, n_downsampling: int, predict_flow: bool = True, gated_history: bool = False):
        super().__init__()
        self.label_front = nn.Sequential(*stem_and_downsampling(labels_nc, ngf, 1, norm))
        self.image_front = nn.Sequential(*stem_and_downsampling(previous_nc, ngf, 1, norm))
        self.history_gate = HistoryGate(ngf * 2) if gated_history else None
        self.image_branch = _decoder(ngf, 1, n_blocks, norm)
        self.flow_branch = _decoder(ngf, 1, n_blocks, norm) if predict_flow else None
        self.foreground_front = self.foreground_branch = None
        if use_foreground:
            ngf_fg = foreground_width(ngf, n_downsampling)
            self.foreground_front = nn.Sequential(*stem_and_downsampling(labels_nc, ngf_fg, 1, norm))
            self.foreground_branch = _decoder(ngf_fg, 1, n_blocks, norm)

    def forward(self, labels: Tensor, previous: Tensor | None, coarser: BranchFeatures) -> BranchFeatures:
        """``previous`` None: a history known to encode to zero (see SequentialGenerator.forward)."""
        features = image_features = self.label_front(labels)
        if previous is not None:
            history = self.image_front(previous)
            features = features + history
            image_features = features if self.history_gate is None else image_features + self.history_gate(history)
        foreground = None
        if self.foreground_branch is not None:
            foreground = self.foreground_branch(self.foreground_front(labels) + coarser.foreground)
        flow = None if coarser.flow is None else self.flow_branch(features + coarser.flow)
        return BranchFeatures(self.image_branch(image_features + coarser.image), flow, foreground)


class OutputHeads(nn.Module):
    """A level's 7x7 output convolutions: image, flow, occlusion mask (without ``predict_flow``, the
    image alone), and foreground image (from ``foreground_nc`` channels); flows come out in pixels
    times ``flow_scale``. ``warp_tolerance`` > 0 rejects the warped previous frame where it disagrees with h
    (:func:`reject_history`); when rendering (eval mode), with ``structure_radius`` > 0 only within that many
    pixels of the input's structure (:func:`near_structure`), and with ``scene_cut_agreement`` > 0 everywhere
    on a frame whose history agrees with h less than that on average (a scene cut)."""

    def __init__(self, ngf: int, output_nc: int, foreground_nc: int | None, flow_scale: float,
                 predict_flow: bool = True, warp_tolerance: float = 0.0, structure_radius: int = 0,
                 scene_cut_agreement: float = 0.0):
        super().__init__()
        self.flow_scale, self.warp_tolerance, self.structure_radius = flow_scale, warp_tolerance, structure_radius
        self.scene_cut_agreement = scene_cut_agreement
        self.image = nn.Sequential(*to_image(ngf, output_nc))
        self.flow = nn.Sequential(*to_image(ngf, 2, nn.Identity())) if predict_flow else None
        self.mask = nn.Sequential(*to_image(ngf, 1, nn.Sigmoid())) if predict_flow else None
        self.foreground = nn.Sequential(*to_image(foreground_nc, output_nc)) if foreground_nc else None

    def forward(self, features: BranchFeatures, previous_frame: Tensor | None, fg_mask: Tensor | None,
                base_flow: Tensor | None = None, inputs: Tensor | None = None) -> FrameOutput:
        """``base_flow``: (B, 2, H, W) in this level's pixels, which the flow head corrects (None: zero);
        ``inputs``: frame t's input maps at this level's size (needed with ``structure_radius``)."""
        hallucinated = frame = self.image(features.image)
        flow = mask = None
        if previous_frame is not None and features.flow is not None:  # else h_t is the frame (a first frame)
            flow = self.flow(features.flow) * self.flow_scale
            if base_flow is not None:
                flow = flow + base_flow.to(flow.dtype)
            mask = self.mask(features.flow)
            warped = warp(previous_frame, flow)
            if self.warp_tolerance > 0:
                judged = None
                if self.structure_radius and not self.training:
                    if inputs is None:
                        raise ValueError("this generator judges the history near the input's structure: pass inputs")
                    judged = near_structure(inputs, self.structure_radius)
                mask = reject_history(mask, warped, hallucinated, self.warp_tolerance, judged,
                                      0.0 if self.training else self.scene_cut_agreement)
            frame = compose(warped, hallucinated, mask)  # Eq. 4
        if self.foreground is not None:
            if fg_mask is None:
                raise ValueError("this generator has a foreground head: pass fg_mask")
            drawn = self.foreground(features.foreground)
            frame, hallucinated = compose(frame, drawn, fg_mask), compose(hallucinated, drawn, fg_mask)  # Eq. 5
        return FrameOutput(frame, hallucinated, flow, mask)


class SequentialGenerator(nn.Module):
    """G: labels of n_frames_G frames and the n_frames_G - 1 previous frames in, frame t out.

    Level 0 is the coarsest (ngf channels); level s has ngf / 2**s. With ``scales=k`` active,
    the input is at the resolution of level k-1 and H, W must be multiples of
    2**(n_downsampling + k - 1). ``warp_tolerance``, ``structure_radius`` (in pixels of the finest level;
    coarser levels' heads take it halved per level, at least 1) and ``scene_cut_agreement``: see the module's
    docstring (0: off, as NVIDIA's)."""

    def __init__(self, label_nc: int, output_nc: int = 3, n_frames_G: int = 3, ngf: int = 64,
                 n_downsampling: int = 3, n_blocks: int = 9, norm: NormKind = "instance",
                 use_foreground: bool = False, n_scales: int = 1, n_blocks_local: int = 3, predict_flow: bool = True,
                 gated_history: bool = False, warp_tolerance: float = 0.0, structure_radius: int = 0,
                 scene_cut_agreement: float = 0.0):
        super().__init__()
        if n_frames_G < 2:
            raise ValueError(f"n_frames_G must be at least 2 (frame t and one previous frame), got {n_frames_G}")
        if n_scales < 1 or ngf % 2 ** (n_scales - 1):
            raise ValueError(f"n_scales must be >= 1 with ngf divisible by 2**(n_scales - 1), got n_scales={n_scales}, "
                             f"ngf={ngf}")
        self.n_frames_G, self.output_nc, self.n_scales = n_frames_G, output_nc, n_scales
        self.n_downsampling, self.predict_flow = n_downsampling, predict_flow
        # An all-zero history is constant per channel after every conv, which instance norm (no affine) maps to
        # exactly 0, so its encoders add nothing to a first frame and are skipped. Computing them is not only
        # wasted work but unstable: float rounding leaves ~1e-7 after the first norm, and each later norm
        # divides by sqrt(eps), so after the residual blocks the "zeros" are O(10) features that vary with
        # weights, batch and hardware. Batch norm (NVIDIA's pose models) has a learned shift: computed there.
        self.empty_history_encodes_to_zero = norm == "instance"
        labels_nc, previous_nc = label_nc * n_frames_G, output_nc * (n_frames_G - 1)
        self.coarsest = CoarsestLevel(labels_nc, previous_nc, ngf, n_downsampling, n_blocks, norm, use_foreground,
                                      predict_flow, gated_history)
        self.finer = nn.ModuleList(FinerLevel(labels_nc, previous_nc, ngf // 2 ** s, n_blocks_local, norm,
                                              use_foreground, n_downsampling, predict_flow, gated_history)
                                   for s in range(1, n_scales))
        self.heads = nn.ModuleList(
            OutputHeads(ngf // 2 ** s, output_nc, foreground_width(ngf // 2 ** s, n_downsampling) if use_foreground
                        else None, FLOW_SCALE * 2 ** s, predict_flow, warp_tolerance,
                        structure_radius and max(1, structure_radius >> (n_scales - 1 - s)), scene_cut_agreement)
            for s in range(n_scales))

    @torch.no_grad()
    def start_as_single_frame_generator(self, mask_start: float = MASK_START) -> None:
        """After the weights' initialisation: sets every level's label stem to read the newest label map
        alone (the older maps' weights zero), the flow heads to predict zero flow and the occlusion masks to
        start at ``mask_start`` (near 1: each frame drawn anew); with ``gated_history`` the history gates start
        at zero too. G then draws each frame from its own map, as pix2pixHD does, and the older maps, the warped
        previous frame and the history come in as far as training finds them useful. Random weights instead
        would have the older maps of a moving scene draw ghosts of the frame, and flows of some 15 pixels in
        every direction."""
        stems = [self.coarsest.label_encoder[1]] + [level.label_front[1] for level in self.finer]
        for stem in stems:
            older = stem.weight.shape[1] // self.n_frames_G * (self.n_frames_G - 1)  # the maps come oldest first
            stem.weight[:, :older] = 0
        for head in self.heads:
            if head.flow is not None:
                for layer in (head.flow[1], head.mask[1]):
                    nn.init.zeros_(layer.weight)
                    nn.init.zeros_(layer.bias)
                nn.init.constant_(head.mask[1].bias, math.log(mask_start / (1 - mask_start)))

    @torch.no_grad()
    def start_from_global_generator(self, state: Mapping[str, Tensor]) -> None:
        """Copies pix2pixHD's global generator (a ``GlobalGenerator.state_dict()`` of the same ngf, n_downsampling
        and n_blocks) into the coarsest level's image path: label encoder, image decoder and image head, in
        that order of layers. Its first conv's weights go to the newest frame's label channels, zeros to the
        older frames'. Under instance norm G skips the image encoder on an empty history, so G then
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

    def forward(self, labels: Tensor, previous: Tensor | list[Tensor] | None, fg_mask: Tensor | None = None,
                scales: int | None = None, all_levels: bool = False, base_flow: Tensor | None = None) -> FrameOutput:
        """
        Args:
            labels: (B, n_frames_G * label_nc, H, W), the label maps s_{t-L} ... s_t, oldest first.
            previous: (B, (n_frames_G - 1) * output_nc, H, W), the generated x~_{t-L} ... x~_{t-1},
                oldest first, which coarser levels see downsampled; or one such tensor per active level,
                coarsest first, each at its level's size (each level's own frames); None for a first
                frame (empty history: h_t is the frame).
            fg_mask: (B, 1, H, W) foreground of frame t, with a foreground head (coarser levels see it
                averaged down: soft, as the one-hot labels they see).
            scales: levels to use, coarsest first (default all); (H, W) is the finest one's size.
            all_levels: make every active level's frame (FrameOutput.levels), as per-level histories need.
            base_flow: (B, 2, H, W) from frame t to frame t-1 in pixels of (H, W), which the flow heads
                correct (model.input_flow); coarser levels see it averaged down, in their own pixels.
        """
        scales = scales or self.n_scales
        if not 1 <= scales <= self.n_scales:
            raise ValueError(f"scales must be in 1 .. {self.n_scales}, got {scales}")
        first = previous is None
        if first and not self.empty_history_encodes_to_zero:
            previous = labels.new_zeros(labels.shape[0], self.output_nc * (self.n_frames_G - 1), *labels.shape[-2:])
        if previous is None:
            previous_pyramid: list[Tensor | None] = [None] * scales
        elif isinstance(previous, Tensor):
            previous_pyramid = pyramid(previous, scales)
        elif len(previous) == scales:
            previous_pyramid = list(previous)
        else:
            raise ValueError(f"previous holds {len(previous)} levels' frames, but {scales} levels are active")
        label_pyramid = pyramid(labels, scales)
        masks = pyramid(fg_mask, scales) if fg_mask is not None else [None] * scales
        base_flows: list[Tensor | None] = [None] * scales
        if base_flow is not None and not first:
            base_flows = pyramid(base_flow, scales, flow=True)
        features = self.coarsest(label_pyramid[0], previous_pyramid[0], with_flow=self.predict_flow and not first)
        frames = []
        for level in range(scales):
            if level:
                features = self.finer[level - 1](label_pyramid[level], previous_pyramid[level], features)
            if all_levels or level == scales - 1:
                previous_frame = None if first else previous_pyramid[level][:, -self.output_nc:]
                inputs = label_pyramid[level][:, -(labels.shape[1] // self.n_frames_G):]  # frame t's maps
                out = self.heads[level](features, previous_frame, masks[level], base_flows[level], inputs)
                frames.append(out.frame)
        out.levels = frames if all_levels else None
        return out
