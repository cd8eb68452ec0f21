"""vid2vid (Wang et al., "Video-to-Video Synthesis", NeurIPS 2018): the model,
its losses and its progressive training, as a :class:`vid2vid.training.TrainingTask`.

- G: :class:`vid2vid.models.sequential.SequentialGenerator`, run frame after frame
  over a clip (:class:`ClipGenerator`), each frame conditioned on the last
  n_frames_G label maps and the n_frames_G - 1 frames it made before.
- D_I: pix2pixHD's multiscale discriminator on (label map, frame) pairs.
- D_V: one multiscale discriminator per temporal scale on n_frames_D frames
  skipping 1, n_frames_D, n_frames_D^2 ... frames, with the reference flow between them.
- Losses (NVIDIA/vid2vid's defaults): LSGAN and feature matching for both
  discriminators, VGG, and where the reference flow is confident: flow L1, the
  real previous frame warped by the predicted flow against the real frame, the
  generated previous frame warped by the reference flow against the generated
  frame, and the occlusion mask's weight (warping is preferred where it works).
- Progressive training: optionally single first frames before any clip
  (``schedule.image_epochs``, then G's learning rate warmed up over
  ``schedule.clip_warmup`` clip iterations), spatial levels coarse to fine (``schedule.scale_epochs``)
  and clips doubling in length every ``schedule.niter_step`` epochs; a clip is made
  in chunks of ``max_frames_per_gpu`` frames, each chunk one D and one G update,
  the history carried over detached, starting from G's own frames or from the
  clip's real ones (``model.training_history``).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vid2vid.config import ConfigError
from vid2vid.data.label_maps import instance_boundaries, one_hot_labels
from vid2vid.data.sequences import ClipSchedule, SequenceDataConfig, SequenceDataset
from vid2vid.data.tracks import link_tracks
from vid2vid.errors import UserError
from vid2vid.models.appearance import Looks, appearance_loss, first_looks
from vid2vid.models.discriminators import MultiscaleDiscriminator
from vid2vid.models.generators import FeatureEncoder, downsample2
from vid2vid.models.layers import init_weights, training_mode
from vid2vid.models.losses import GANLoss, feature_matching_loss, multiscale_gan_loss
from vid2vid.models.pix2pixhd import LabelModelConfig, Pix2PixHD, Pix2PixHDConfig, colorize_labels
from vid2vid.models.sequential import FrameOutput, SequentialGenerator, foreground_mask, pyramid
from vid2vid.models.temporal import (
    CONFIDENCE_THRESHOLD,
    chain_flows,
    estimate_backward_flows,
    flow_confidence,
    flow_estimator,
    masked_l1,
    temporal_skips,
    video_clips,
    window_starts,
)
from vid2vid.models.vgg import vgg_loss_or_none
from vid2vid.ops import warp
from vid2vid.training import DistContext, StepContext, TrainConfig, adam, unwrap

FlowSource = Literal["files", "dis", "flownet", "none"]


@dataclass(frozen=True)
class Vid2VidModelConfig(LabelModelConfig):
    """The ``model:`` section: pix2pixHD's settings (label input, discriminator, image losses, feature
    encoder) and vid2vid's own; defaults are NVIDIA/vid2vid's (Cityscapes, labels in)."""

    n_frames_G: int = 3
    """label maps per generated frame; the generator also sees the n_frames_G - 1 frames before"""
    n_downsample_G: int = 3
    n_blocks: int = 9
    n_scales_spatial: int = 1
    n_blocks_local: int = 3
    foreground_classes: tuple[int, ...] = ()
    """label ids drawn by the foreground head (Cityscapes: 24 .. 33, people and vehicles); () for none"""
    predict_flow: bool = True
    """G predicts the flow to the previous frame and an occlusion mask, and blends the warped previous frame
    in (Eq. 4); false: no flow heads, every frame is the hallucinated image (NVIDIA/vid2vid's --no_flow; the
    flow, warp and mask losses of G's flow drop out, the generated frames' warp loss stays)"""
    start_as_image_generator: bool = False
    """G starts the clips as the single-frame generator it learnt first (schedule.image_epochs), and the flow
    and mask only add steadiness: single frames are made from their own label windows (the maps of the frame
    and the n_frames_G - 1 before it, as rendering makes them), the previous frames' features reach the image
    decoder through per-channel gates that start at zero, the flow heads start at zero flow and the occlusion
    masks near 1 (each frame drawn anew). False: NVIDIA/vid2vid's generator and training, where single frames
    see their own map repeated and the untrained history encoder's features join the trained decoder's input
    when the clips start (converted NVIDIA models need false)"""
    mask_start: float = 0.95
    """with start_as_image_generator: the occlusion masks' value when the clips start, the share of each frame
    drawn anew (the rest is the warped previous frame). Near 1 with flow heads that start at zero flow; lower
    with input_flow, whose warp follows the scene from the start"""
    warp_tolerance: float = 0.0
    """how far (in -1..1 units, over 5x5 neighbourhoods) the warped previous frame may differ from the
    hallucinated image and still be kept: where it differs by more (motion the warp missed, disocclusions,
    new content) the frame is drawn anew whatever the occlusion mask says, as temporal anti-aliasing rejects
    its history; where they agree the mask holds, and a low mask_start then smooths the flicker along the
    flow. 0: off (NVIDIA/vid2vid's composition)"""
    structure_radius: int = 0
    """with warp_tolerance: the hallucinated image judges the history only within this many pixels (of the
    finest level) of the structure of the frame's input: edges of an edge map, label and instance boundaries.
    Farther from it the inputs show nothing that could have moved or appeared, so where h disagrees with the
    warped previous frame there, h has invented it (a shadow drawn into a flat wall) and the history is kept as
    the occlusion mask says. Set it above the warp's errors in pixels. Rendering only: training composes as
    without it, so that h learns from the whole frame. 0: h judges everywhere"""
    scene_cut_agreement: float = 0.0
    """with warp_tolerance, when rendering: a frame whose warped previous frame agrees with the hallucinated
    image less than this on average (exp(-d^2 / warp_tolerance^2) over where h judges) is a scene cut, and is
    drawn from h alone, nothing of the previous shot kept (not even where structure_radius would keep it).
    Within a shot the agreement stays near 0.9 or above; 0: off"""
    input_flow: bool = False
    """the flow heads correct the motion of the inputs instead of predicting the whole flow: OpenCV's DIS flow
    from frame t's input map to frame t-1's (the maps as pictures: edge or pose pictures as they are, label
    maps in the colours of the label palette), at full resolution and started from the flow of the maps
    blurred (which follows a shaking camera on thin edge lines), computed when training and rendering. The
    warp then follows the scene from the first clip iteration, where flow heads learning from zero take far
    longer than a short training has (on the development clips, the edges' own flow warps the real previous
    frame to 34-40 dB against 17-36 for zero flow). Needs OpenCV (pip install opencv-python-headless)"""
    n_frames_D: int = 3
    n_scales_temporal: int = 3
    lambda_F: float = 10.0
    """flow loss"""
    lambda_T: float = 10.0
    """warp losses (real frames by the predicted flow, generated frames by the reference flow)"""
    lambda_mask: float = 1.0
    """occlusion-mask weight loss"""
    lambda_appearance: float = 0.0
    """with instance maps: each object's colour distribution in the frames made, tied to its first look in
    the clip's real frames (vid2vid.models.appearance.appearance_loss), by its track (per-frame ids are
    linked along the reference flow, unless data.instance_tracks); 0: off"""
    flow_source: FlowSource = "files"
    """reference flow: files (.flo per frame pair: the dataset's <phase>_flow or data.flow_dir), dis
    (OpenCV's DIS flow of the real frames, on the CPU, no weights), flownet (FlowNet2 on the real frames,
    model.flownet_checkpoint), none (flow losses off)"""
    flownet_checkpoint: str | None = None
    confidence_threshold: float = CONFIDENCE_THRESHOLD
    first_frame: Literal["generator", "pix2pixhd"] = "generator"
    """how a sequence starts: G makes its first frame from an empty history, or the pix2pixHD run
    model.first_frame_run makes its first n_frames_G - 1 frames, G's full history (NVIDIA/vid2vid's
    --use_single_G; needs training_history=real)"""
    first_frame_run: str | None = None
    init_from_pix2pixhd: str | None = None
    """a pix2pixHD run (netG global, the same inputs, ngf, n_downsample and n_blocks) whose generator starts
    this G's image path: G draws first frames as that run does from the first iteration, and training
    spends its time on the history and the flow (NVIDIA/vid2vid starts from pretrained weights too)"""
    training_history: Literal["generated", "real"] = "generated"
    """what a training clip's history starts as: generated (G makes frame 0 from an empty history, as at
    render time, and every later frame from the frames it made) or real (the clip's first n_frames_G - 1
    real frames, as NVIDIA/vid2vid trains: G learns to warp sharp frames; with first_frame=generator, each
    clip's frame 0 is also made from an empty history, in an update of its own, the first_* losses)"""
    history_padding: Literal["repeat", "zeros"] = "repeat"
    """how a history shorter than n_frames_G - 1 frames is filled: by repeating its oldest frame, or with
    black frames (NVIDIA/vid2vid's --no_first_img). With zeros, G makes its first frame from the first
    n_frames_G label maps, as NVIDIA does; the frames before it (which NVIDIA does not make) are made as
    first frames from the maps so far (the first one repeated before them), and are not kept as history"""
    history_per_level: bool = False
    """with n_scales_spatial > 1: each spatial level keeps the frames it made as its own history, as
    NVIDIA/vid2vid does (its converted models need it); False: coarser levels see the finest frames
    downsampled. Histories that start a clip (real or first frames) are downsampled either way"""
    gradient_checkpointing: bool = False
    """recompute each frame's activations in backward instead of storing them (high resolutions)"""
    appearance_memory: bool = False
    """when rendering: each object keeps the mean colour of its first look (vid2vid/models/appearance.py),
    by its instance id (model.use_instance; per-frame ids are linked into tracks along G's flow unless
    data.instance_tracks); without instance maps there are no objects and it does nothing"""
    warm_start: int = 0
    """when rendering: a sequence's first frame is made as the last of a still scene, its input shown this
    many more times before it, each made frame kept as history. A first frame made from an empty history is
    the odd one out: every later frame blends the warped frames before it, which smooths what G draws anew,
    and the first is all G's speckle; on the long demo an object's colour on its first frame stood about 2
    CIEDE2000 from all its later looks, and the first frame is what the appearance memory keeps. Costs
    warm_start more passes of G per sequence. 0: off"""

    def __post_init__(self):
        super().__post_init__()
        if self.n_frames_D < 2 or self.n_scales_temporal < 1:
            raise ValueError(f"need n_frames_D >= 2 and n_scales_temporal >= 1, got {self.n_frames_D}, "
                             f"{self.n_scales_temporal}")
        if self.first_frame == "pix2pixhd" and not self.first_frame_run:
            raise ValueError("model.first_frame=pix2pixhd needs model.first_frame_run (a pix2pixHD run folder)")
        if self.first_frame == "pix2pixhd" and self.training_history != "real":
            raise ValueError("model.first_frame=pix2pixhd: G never makes first frames, so it trains from real ones: "
                             "set model.training_history=real")
        if not 0 < self.mask_start < 1:
            raise ValueError(f"model.mask_start must be in (0, 1), got {self.mask_start}")
        if self.warp_tolerance < 0:
            raise ValueError(f"model.warp_tolerance must be >= 0 (0: off), got {self.warp_tolerance}")
        if not 0 <= self.scene_cut_agreement < 1 or (self.scene_cut_agreement and not self.warp_tolerance):
            raise ValueError(f"model.scene_cut_agreement must be in [0, 1) and needs model.warp_tolerance > 0, got "
                             f"{self.scene_cut_agreement} with warp_tolerance {self.warp_tolerance}")
        if self.structure_radius < 0 or (self.structure_radius and not self.warp_tolerance):
            raise ValueError(f"model.structure_radius must be >= 0 and needs model.warp_tolerance > 0 (it says where "
                             f"the tolerance judges), got {self.structure_radius} with warp_tolerance "
                             f"{self.warp_tolerance}")
        if self.warm_start < 0 or (self.warm_start and (self.first_frame != "generator"
                                                        or self.history_padding != "repeat")):
            raise ValueError(f"model.warm_start must be >= 0 and needs G to make the first frame "
                             f"(first_frame=generator, history_padding=repeat), got {self.warm_start} with "
                             f"first_frame={self.first_frame}, history_padding={self.history_padding}")
        if self.flow_source == "flownet" and not self.flownet_checkpoint:
            raise ValueError("model.flow_source=flownet needs model.flownet_checkpoint (a FlowNet2 checkpoint; "
                             "see scripts/compute_flow.py --help for where to get one)")


@dataclass(frozen=True)
class Vid2VidScheduleConfig:
    """The ``schedule:`` section: progressive training in space and time."""

    n_frames_total: int = 30
    """frames per training clip once the clips have grown"""
    n_frames_start: int = 4
    """frames per clip in the first epochs"""
    niter_step: int = 5
    """epochs between doublings of the clip length"""
    max_frames_per_gpu: int = 1
    """frames made per forward/backward; longer clips go in chunks, the history detached between them"""
    scale_epochs: int = 0
    """epochs at each spatial level before the next finer one joins (0: all levels from the start)"""
    image_epochs: int = 0
    """epochs at the start in which G learns the image alone, as pix2pixHD does: single frames, each made as
    a sequence's first frame is (from an empty history) and judged by the image losses (D_I, feature matching,
    VGG, L1); the clips (n_frames_start, doubling every niter_step epochs), the history, the flow and the
    video discriminators start after them"""
    clip_warmup: int = 0
    """iterations at the start of the clips (after image_epochs) over which G's learning rate rises linearly
    from 1/clip_warmup of the scheduled rate to all of it (0: none). The weights that only clips use (older
    label maps, history encoder and gates, flow and mask heads) start with empty Adam moments, so each of
    their first steps moves them by the full rate; without a warm-up the first clip iterations shake the
    single-frame generator learnt before them (on a face clip its first-frame L1 rose 0.33 -> 4 within 6
    iterations)"""

    def __post_init__(self):
        if self.clip_warmup < 0:
            raise ValueError(f"schedule.clip_warmup must be >= 0, got {self.clip_warmup}")

    @property
    def clips(self) -> ClipSchedule:
        return ClipSchedule(self.n_frames_start, self.n_frames_total, self.niter_step, self.image_epochs)

    def active_scales(self, epoch: int, n_scales: int) -> int:
        """Spatial levels trained in this epoch."""
        if not self.scale_epochs:
            return n_scales
        return min(n_scales, 1 + epoch // self.scale_epochs)


@dataclass(frozen=True)
class Vid2VidConfig:
    model: Vid2VidModelConfig = field(default_factory=Vid2VidModelConfig)
    data: SequenceDataConfig = field(default_factory=SequenceDataConfig)
    schedule: Vid2VidScheduleConfig = field(default_factory=Vid2VidScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if (self.model.foreground_classes or self.model.use_features) and self.data.input != "labels":
            raise ValueError("model.foreground_classes and model.use_features need label maps (data.input=labels)")
        if self.model.training_history == "real" and self.schedule.n_frames_start < self.model.n_frames_G:
            raise ValueError(f"model.training_history=real starts each clip from n_frames_G - 1 real frames: "
                             f"schedule.n_frames_start must be at least n_frames_G ({self.model.n_frames_G}), got "
                             f"{self.schedule.n_frames_start}")
        if self.schedule.max_frames_per_gpu < 1:
            raise ValueError(f"schedule.max_frames_per_gpu must be >= 1, got {self.schedule.max_frames_per_gpu}")
        if self.model.lambda_appearance and not (self.model.use_instance and (
                self.data.instance_tracks or self.model.flow_source != "none")):
            raise ValueError("model.lambda_appearance ties objects to their first look: it needs instance maps "
                             "(model.use_instance) whose ids are tracks (data.instance_tracks) or a reference flow "
                             "to link them along (model.flow_source)")

    @property
    def input_channels(self) -> int:
        """Channels of one frame's encoded input: one-hot classes (or the picture), plus the boundary map."""
        m = self.model
        return self.data.input_channels(m.label_nc) + int(m.use_instance) + (m.feat_num if m.use_features else 0)

    @property
    def label_channels(self) -> int:
        """Channels of the input the image discriminator is conditioned on (the features left out)."""
        return self.data.input_channels(self.model.label_nc) + int(self.model.use_instance)


class ClipGenerator(nn.Module):
    """G run over consecutive frames in one ``forward`` (what DDP wraps), each frame made from
    its label window and the frames made before it, those detached (as NVIDIA/vid2vid does);
    with ``history_per_level``, each spatial level's history is the frames it made itself."""

    def __init__(self, generator: SequentialGenerator, checkpointing: bool = False, history_per_level: bool = False,
                 history_padding: Literal["repeat", "zeros"] = "repeat",
                 input_flow: Callable[[Tensor, Tensor], Tensor] | None = None):
        """``input_flow``: (frame t's input, frame t-1's input), each (B, C, H, W) as G takes them -> the
        flow (B, 2, H, W) from t to t-1 that G's flow heads correct (model.input_flow); None: they predict
        the whole flow."""
        super().__init__()
        self.generator, self.checkpointing, self.history_per_level = generator, checkpointing, history_per_level
        self.history_padding, self.input_flow = history_padding, input_flow

    def _frame(self, labels: Tensor, previous: Tensor | list[Tensor] | None, fg_mask: Tensor | None, scales: int,
               all_levels: bool, base_flow: Tensor | None) -> FrameOutput:
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(self.generator, labels, previous, fg_mask, scales, all_levels, base_flow,
                              use_reentrant=False)
        return self.generator(labels, previous, fg_mask, scales, all_levels, base_flow)

    def forward(self, labels: Tensor, history: Tensor | list[Tensor] | None, fg_masks: Tensor | None = None,
                scales: int | None = None) -> dict[str, Any]:
        """
        Args:
            labels: (B, L + n, C, H, W): the L = n_frames_G - 1 label maps before the n frames
                to make, then theirs (at a sequence's start, repeats of its first map).
            history: (B, h, 3, H, W), the h <= L frames made before (None at a sequence's start:
                the first frame is made from its labels alone); with history_per_level, also one
                such tensor per active level, coarsest first, at its size (``levels`` of a call before).
            fg_masks: (B, n, 1, H, W) foreground masks, for a generator with a foreground head.

        Returns:
            ``frame`` and ``hallucinated`` (B, n, 3, H, W); ``flow`` (B, n', 2, H, W) and ``mask``
            (B, n', 1, H, W) of the last n' frames, those that had a previous frame (n' = n or n - 1);
            with history_per_level, ``levels``: every level's last L frames, as ``history`` takes them.
        """
        scales = scales or self.generator.n_scales
        per_level = self.history_per_level and scales > 1
        history_length = self.generator.n_frames_G - 1
        count = labels.shape[1] - history_length
        made: list[list[Tensor]] = []  # per frame: its levels' frames (coarsest first), or the frame alone
        if isinstance(history, list):
            made = [list(frames) for frames in zip(*(h.detach().unbind(1) for h in history))]
        elif history is not None:
            made = [pyramid(f, scales) if per_level else [f] for f in history.detach().unbind(1)]
        base_flows = [None] * count
        if self.input_flow is not None:
            with torch.no_grad():  # one batch for all the frames' flows
                inputs = labels[:, history_length - 1:]
                base_flows = self.input_flow(inputs[:, 1:].flatten(0, 1), inputs[:, :-1].flatten(0, 1)).unflatten(
                    0, (labels.shape[0], count)).unbind(1)
        outputs = []
        for i in range(count):
            previous = None
            if made:
                recent = made[-history_length:]
                pad = recent[0] if self.history_padding == "repeat" else [torch.zeros_like(f) for f in recent[0]]
                recent = [pad] * (history_length - len(recent)) + recent
                levels = [torch.cat([frame[level] for frame in recent], 1) for level in range(len(recent[0]))]
                previous = levels if per_level else levels[0]
            out = self._frame(labels[:, i:i + history_length + 1].flatten(1, 2), previous,
                              None if fg_masks is None else fg_masks[:, i], scales, per_level, base_flows[i])
            outputs.append(out)
            made.append([f.detach() for f in out.levels] if per_level else [out.frame.detach()])
        result: dict[str, Any] = {"frame": torch.stack([o.frame for o in outputs], 1),
                                  "hallucinated": torch.stack([o.hallucinated for o in outputs], 1)}
        if per_level:
            kept = made[-history_length:]
            result["levels"] = [torch.stack([frame[level] for frame in kept], 1) for level in range(scales)]
        warped = [o for o in outputs if o.flow is not None]
        if warped:
            result["flow"] = torch.stack([o.flow for o in warped], 1)
            result["mask"] = torch.stack([o.occlusion_mask for o in warped], 1)
        return result


def _flat(fn, x: Tensor) -> Tensor:
    """fn applied to a (B, T, ...) tensor as a (B*T, ...) batch."""
    return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def input_flow_estimator(label_nc: int, channels: int) -> Callable[[Tensor, Tensor], Tensor]:
    """model.input_flow: (frame t's input, frame t-1's), each (B, C, H, W) as G takes them, -> OpenCV's DIS flow
    (B, 2, H, W) from t to t-1, at full resolution and started from the flow of the blurred maps (flownet.dis).
    The first ``channels`` channels are the input proper (one-hot labels with ``label_nc``, else a picture in
    -1..1; instance boundaries and features after them are left out), seen as a picture: labels in the
    palette's colours, a picture of other than 3 channels as its mean, in grey.

    Raises:
        ValueError: OpenCV is missing.
    """
    from flownet.dis import dis_flow, require_dis

    try:
        require_dis()
    except UserError as e:
        raise ValueError(f"model.input_flow: {e}") from None

    def picture(x: Tensor) -> Tensor:
        x = x[:, :channels].float()
        if label_nc:
            x = colorize_labels(x.argmax(1, keepdim=True), label_nc)
        elif channels != 3:
            x = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
        return (x + 1) * 127.5

    # full resolution, from the flow of the maps blurred: on the development clips the warp of the real previous
    # frame by the edges' flow went from 32.1-39.8 dB to 34.0-40.1 (the face clip's shakes were lost on 12% of
    # its frames, now 1%; docs/vid2vid.md)
    return lambda current, previous: dis_flow(picture(current), picture(previous), finest_scale=0,
                                              start_blur=2.0)


def shrink(x: Tensor, times: int, *, flow: bool = False) -> Tensor:
    """(B, T, C, H, W) at 1 / 2**times of the size (pix2pixHD's 3x3 average); flows rescaled to the new pixels."""
    for _ in range(times):
        x = _flat(downsample2, x) * (0.5 if flow else 1.0)
    return x


class Vid2Vid:
    """The vid2vid networks and their training step (a :class:`vid2vid.training.TrainingTask`)."""

    def __init__(self, config: Vid2VidConfig, device: torch.device = torch.device("cpu"), *, with_losses: bool = True):
        self.config = config
        c = config.model
        self.n_scales = c.n_scales_spatial
        generator = SequentialGenerator(config.input_channels, c.output_nc, c.n_frames_G, c.ngf, c.n_downsample_G,
                                        c.n_blocks, c.norm, bool(c.foreground_classes), c.n_scales_spatial,
                                        c.n_blocks_local, c.predict_flow, c.start_as_image_generator,
                                        c.warp_tolerance, c.structure_radius, c.scene_cut_agreement)
        init_weights(generator)
        if c.start_as_image_generator:
            generator.start_as_single_frame_generator(c.mask_start)
        input_flow = input_flow_estimator(c.label_nc, config.data.input_channels(c.label_nc)) if c.input_flow else None
        self.generator = ClipGenerator(generator, c.gradient_checkpointing, c.history_per_level, c.history_padding,
                                       input_flow).to(device)
        self.image_discriminator = init_weights(
            MultiscaleDiscriminator(config.label_channels + c.output_nc, c.ndf, c.n_layers_D, c.norm, c.num_D)
        ).to(device)
        flow_channels = 0 if c.flow_source == "none" else 2 * (c.n_frames_D - 1)
        self.encoder = init_weights(FeatureEncoder(c.output_nc, c.feat_num, c.nef, c.n_downsample_E, c.norm)).to(
            device) if c.use_features else None
        self.video_discriminators = nn.ModuleList(
            init_weights(MultiscaleDiscriminator(c.output_nc * c.n_frames_D + flow_channels, c.ndf, c.n_layers_D,
                                                 c.norm, c.num_D)) for _ in range(c.n_scales_temporal)
        ).to(device)
        self._video_runners = list(self.video_discriminators)  # DDP-wrapped by distribute()
        self.skips = temporal_skips(c.n_frames_D, c.n_scales_temporal)
        train = config.train
        betas = (train.beta1, train.beta2)
        # one Adam for all discriminators: Adam is per parameter, so this equals one optimizer each
        d_params = list(self.image_discriminator.parameters()) + list(self.video_discriminators.parameters())
        g_params = list(self.generator.parameters()) + (list(self.encoder.parameters()) if self.encoder else [])
        self._optimizers = {"G": adam(g_params, train.lr, betas),
                            "D": adam(d_params, train.lr, betas)}
        self.gan_loss = GANLoss(c.gan_mode)
        self.vgg_loss = (vgg_loss_or_none(c.vgg_weights, c.vgg_required, device)
                         if with_losses and c.lambda_vgg > 0 else None)
        # the reference flow of the real frames, when not read from files: (a, b) in 0..255 -> flow a -> b
        self.flow_estimator: Callable[[Tensor, Tensor], Tensor] | None = \
            flow_estimator(c.flow_source, c.flownet_checkpoint, device) if with_losses else None
        if with_losses and c.flow_source == "none":
            warnings.warn("model.flow_source=none: the flow, warp and mask losses are off and the video "
                          "discriminators see frames without flow", stacklevel=2)
        if with_losses and c.init_from_pix2pixhd:
            self._start_from_pix2pixhd(c.init_from_pix2pixhd)

    def _start_from_pix2pixhd(self, run: str) -> None:
        """model.init_from_pix2pixhd: the run's global generator copied into G's image path."""
        from vid2vid.inference import load_run

        model, config, folder = load_run(run, Pix2PixHDConfig, Pix2PixHD.for_inference,
                                         next(self.generator.parameters()).device)
        if config.model.netG != "global":
            raise ValueError(f"model.init_from_pix2pixhd: {folder} has netG {config.model.netG}; only a global "
                             f"generator maps onto vid2vid's coarsest level")
        try:
            self.sequential_generator.start_from_global_generator(unwrap(model.generator).state_dict())
        except ValueError as e:
            raise ValueError(f"model.init_from_pix2pixhd: {folder}: {e}") from None

    @classmethod
    def for_inference(cls, config: Vid2VidConfig, device: torch.device) -> Vid2Vid:
        """The networks of a config, without the training losses (no VGG or FlowNet weights needed)."""
        return cls(config, device, with_losses=False)

    @functools.cached_property
    def first_frame_generator(self) -> Pix2PixHD | None:
        """The pix2pixHD run that makes first frames (model.first_frame=pix2pixhd), loaded when first needed."""
        c = self.config.model
        if c.first_frame != "pix2pixhd":
            return None
        from vid2vid.inference import load_run

        device = next(self.generator.parameters()).device
        model, config, run = load_run(c.first_frame_run, Pix2PixHDConfig, Pix2PixHD.for_inference, device)
        theirs, kind = config.model, self.config.data.input
        # NVIDIA's label2city single-image generators take the labels without the instance edges; edge2face's
        # take the face maps and the features of the nearest training face (the real frame encoded)
        same_labels = (kind == "labels" and theirs.label_nc == c.label_nc and not theirs.use_features
                       and (c.use_instance or not theirs.use_instance))
        same_faces = (kind == "face" and not theirs.label_nc and theirs.input_nc == self.config.data.input_channels(0)
                      and not theirs.use_instance and theirs.feature_bank[0] > 0)
        if theirs.extra_nc or not (same_labels or same_faces):
            raise ConfigError(f"the first-frame pix2pixHD run {run} must take this model's inputs: the same label "
                              f"maps (label_nc {c.label_nc}, instance maps only if this model has them: use_instance "
                              f"{c.use_instance}) without a feature encoder, or for face inputs the face maps and a "
                              f"feature bank; and no extra inputs")
        return model

    def first_frames(self, batch: dict[str, Tensor], count: int) -> Tensor:
        """(B, count, 3, H, W): the first ``count`` frames of a clip, each by the first-frame pix2pixHD run
        (which encodes the real frames, ``image``, where it takes features)."""
        keys = [k for k in ("label", "instance", "image") if k in batch]
        return torch.stack([self.first_frame_generator.synthesize({k: batch[k][:, t] for k in keys})
                            for t in range(count)], 1)

    @property
    def sequential_generator(self) -> SequentialGenerator:
        return unwrap(self.generator).generator

    @property
    def multiple(self) -> int:
        """What the frames' H and W must be multiples of."""
        return max(self.sequential_generator.multiple(), unwrap(self.encoder).multiple if self.encoder else 1)

    # ------------------------------------------------------------------ inputs

    def encode_labels(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T, C, H, W) the condition of a clip: one-hot labels (or the pictures) and instance boundaries."""
        label = batch["label"]
        x = _flat(lambda ids: one_hot_labels(ids, self.config.model.label_nc), label) \
            if self.config.data.input == "labels" else label
        if self.config.model.use_instance:
            x = torch.cat((x, _flat(instance_boundaries, batch["instance"])), 2)
        return x

    def instance_features(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, T, feat_num, H, W): the encoder's per-instance features of the clip's real frames;
        ``batch["features"]``, when given (e.g. sampled cluster centres), instead."""
        if "features" in batch:
            return batch["features"]
        return self.encoder(batch["image"].flatten(0, 1), batch["instance"].flatten(0, 1)).unflatten(
            0, batch["image"].shape[:2])

    def foreground_masks(self, batch: dict[str, Tensor]) -> Tensor | None:
        classes = self.config.model.foreground_classes
        return _flat(lambda ids: foreground_mask(ids, classes), batch["label"]) if classes else None

    @torch.no_grad()
    def reference_flows(self, batch: dict[str, Tensor], images: Tensor, times: int = 0) -> tuple[Tensor, Tensor] | None:
        """The flows (B, T-1, 2, H, W) from each frame to the one before and their confidence (B, T-1, 1, H, W)
        for the real frames ``images``, the batch's shrunk ``times`` times; None without a flow source."""
        source = self.config.model.flow_source
        if source == "none" or images.shape[1] < 2:
            return None
        batch_size, length = images.shape[:2]
        if source == "files":
            flows = shrink(batch["flow"], times, flow=True)
        else:
            flows = estimate_backward_flows(self.flow_estimator, images)
        confidence = flow_confidence(images[:, 1:].flatten(0, 1), images[:, :-1].flatten(0, 1), flows.flatten(0, 1),
                                     self.config.model.confidence_threshold)
        return flows, confidence.unflatten(0, (batch_size, length - 1))

    # ------------------------------------------------------------ TrainingTask

    def networks(self) -> dict[str, nn.Module]:
        nets = {"G": self.generator, "D": self.image_discriminator, "D_T": self.video_discriminators}
        if self.encoder is not None:
            nets["E"] = self.encoder
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def distribute(self, dist: DistContext) -> None:
        self.generator = dist.wrap(self.generator, find_unused_parameters=True)  # inactive levels, first frames
        self.image_discriminator = dist.wrap(self.image_discriminator)
        self._video_runners = [dist.wrap(d) for d in self.video_discriminators]
        if self.encoder is not None:
            self.encoder = dist.wrap(self.encoder)

    def generator_inputs(self, batch: dict[str, Tensor], scales: int | None = None) -> tuple[Tensor, Tensor]:
        """The generator's input (B, T, C, H', W'): the condition and, with the encoder, the instance
        features; and the condition alone (what the image discriminator sees), at the resolution of
        ``scales`` levels (default all)."""
        times = self.n_scales - (scales or self.n_scales)
        condition = shrink(self.encode_labels(batch), times)
        return self._with_features(condition, batch, times), condition

    def _with_features(self, condition: Tensor, batch: dict[str, Tensor], times: int) -> Tensor:
        """The condition (B, T, C, H', W') and, with the encoder, the instance features of the batch's frames."""
        if self.encoder is None:
            return condition
        return torch.cat((condition, shrink(self.instance_features(batch), times)), 2)

    def _frame_windows(self, batch: dict[str, Tensor], condition: Tensor, begin: int, end: int, times: int) -> Tensor:
        """The generator's inputs for making frames begin .. end - 1 from the clip's condition (B, T, C, H', W'):
        theirs and the n_frames_G - 1 before (the clip's first repeated at its start),
        (B, n_frames_G - 1 + end - begin, C', H', W')."""
        index = torch.arange(begin - self.config.model.n_frames_G + 1, end).clamp(min=0)
        frames = {k: batch[k][:, index] for k in ("image", "instance", "features") if k in batch}
        return self._with_features(condition[:, index], frames, times)

    def train_step(self, batch: dict[str, Any], ctx: StepContext) -> dict[str, Tensor]:
        schedule = self.config.schedule
        scales = schedule.active_scales(ctx.epoch, self.n_scales)
        self.generator.train()
        if ctx.epoch < schedule.image_epochs:
            return self._first_frames_step(batch, ctx, scales)
        age = ctx.iterations_since(schedule.image_epochs)
        warmup = min(1.0, (age + 1) / schedule.clip_warmup) if schedule.clip_warmup else 1.0
        with ctx.scaled_lr("G", warmup):
            return self._clip_step(batch, ctx, scales)

    def _clip_step(self, batch: dict[str, Any], ctx: StepContext, scales: int) -> dict[str, Tensor]:
        """One iteration on clips: frames made in chunks of max_frames_per_gpu from the history, each chunk a
        D and G update; with real training history, first frames also trained alone (_first_frames_step)."""
        times = self.n_scales - scales
        with torch.no_grad():
            condition = shrink(self.encode_labels(batch), times)
            fg = self.foreground_masks(batch)
            fg = None if fg is None else shrink(fg, times)
            images = shrink(batch["image"], times)
            reference = self.reference_flows(batch, images, times)
            tracks = self._object_ids(batch, times)
            if tracks is not None:
                tracks = self._clip_tracks(tracks, None if reference is None else reference[0])
            looks = None if tracks is None else first_looks(images, tracks)
            # the video discriminators' flows over each frame skip, chained once for the clip
            chained = None if reference is None else {
                skip: chain_flows(reference[0], skip) for skip in self.skips if skip < images.shape[1]}
        length, chunk = images.shape[1], self.config.schedule.max_frames_per_gpu
        history_length = self.config.model.n_frames_G - 1
        made: list[Tensor] = []  # every frame made so far, detached
        totals: dict[str, Tensor] = {}
        if self.config.model.training_history == "real":
            made.extend(images[:, :history_length].unbind(1))
            if self.config.model.first_frame == "generator":  # G still makes first frames at render time
                first = {k: batch[k][:, :1] for k in ("image", "label", "instance", "features") if k in batch}
                totals = {f"first_{name}": value for name, value in self._first_frames_step(first, ctx, scales).items()}
        chunks = range(len(made), length, chunk)
        for begin in chunks:
            end = min(begin + chunk, length)
            history = torch.stack(made[-history_length:], 1) if made else None
            with ctx.autocast():
                # the encoder runs per chunk: its graph goes with the chunk's backward
                out = self.generator(self._frame_windows(batch, condition, begin, end, times), history,
                                     None if fg is None else fg[:, begin:end], scales)
            sequence_fake = torch.cat([torch.stack(made, 1), out["frame"]], 1) if made else out["frame"]
            losses = self._update(ctx, condition[:, begin:end], images[:, :end], sequence_fake, out, reference,
                                  chained, scales, None if tracks is None else (tracks[:, begin:end], looks))
            for name, value in losses.items():
                totals[name] = totals.get(name, 0) + value / len(chunks)
            made.extend(out["frame"].detach().unbind(1))
        return totals

    def _first_frames_step(self, batch: dict[str, Any], ctx: StepContext, scales: int) -> dict[str, Tensor]:
        """One D and G update on first frames (schedule.image_epochs; clips' frame 0 with real training history):
        the batch's frames made as a sequence's first frame is (its own label map n_frames_G times, an empty
        history), as one batch, and judged by the image losses."""
        times = self.n_scales - scales
        as_frames = lambda x: x.flatten(0, 1)[:, None]  # noqa: E731  (B, T, ...) -> (B*T, 1, ...)
        with torch.no_grad():
            condition = shrink(self.encode_labels(batch), times)
            fg = self.foreground_masks(batch)
            fg = None if fg is None else as_frames(shrink(fg, times))
        with ctx.autocast():
            inputs = as_frames(self._with_features(condition, batch, times))
            if self.config.model.start_as_image_generator:  # the frame's own map, the older ones read as nothing
                older = inputs.new_zeros(inputs.shape[0], self.config.model.n_frames_G - 1, *inputs.shape[2:])
                inputs = torch.cat((older, inputs), 1)
            else:  # the frame's label map n_frames_G times
                inputs = inputs.expand(-1, self.config.model.n_frames_G, -1, -1, -1)
            out = self.generator(inputs, None, fg, scales)
        images = as_frames(shrink(batch["image"], times))
        tracks = self._object_ids(batch, times)
        tracks = None if tracks is None else as_frames(tracks)  # each frame alone: its own first look
        return self._update(ctx, as_frames(condition), images, out["frame"], out, None, None, scales,
                            None if tracks is None else (tracks, first_looks(images, tracks)))

    def _object_ids(self, batch: dict[str, Any], times: int) -> Tensor | None:
        """(B, T, 1, H', W') the batch's instance ids at the frames' scale (nearest), for
        model.lambda_appearance; None where that loss is off."""
        if not self.config.model.lambda_appearance:
            return None
        step = 2 ** times
        return batch["instance"][..., ::step, ::step]

    def _clip_tracks(self, ids: Tensor, flows: Tensor | None) -> Tensor:
        """(B, T, 1, H, W) the track ids of a clip's instance ids: themselves where they are tracks
        (data.instance_tracks) or the clip has one frame (flows None), else linked along the reference flows
        (B, T-1, 2, H, W)."""
        if self.config.data.instance_tracks or flows is None:
            return ids
        return torch.stack([link_tracks(sample[:, 0], flow.float().cpu()).to(ids.device)
                            for sample, flow in zip(ids.cpu(), flows)])[:, :, None]

    def _update(self, ctx: StepContext, condition: Tensor, images: Tensor, sequence_fake: Tensor,
                out: dict[str, Tensor], reference: tuple[Tensor, Tensor] | None, chained: dict[int, Tensor] | None,
                scales: int, appearance: tuple[Tensor, Looks] | None = None) -> dict[str, Tensor]:
        """One D and one G update for a chunk: its n frames are the last of ``images`` and ``sequence_fake``
        (B, end, 3, H, W), which hold the clip's frames up to the chunk's end (the earlier fakes detached);
        ``chained[skip]`` holds the clip's reference flows over each skip (from :func:`chain_flows`);
        ``appearance``, with model.lambda_appearance, the chunk's track ids and the clip's first looks."""
        c = self.config.model
        end, fake = images.shape[1], out["frame"]
        begin = end - fake.shape[1]
        pairs_real = torch.cat((condition, images[:, begin:]), 2).flatten(0, 1)
        pairs_fake = torch.cat((condition, fake), 2).flatten(0, 1)
        # the video discriminators judge every window of n_frames_D frames that ends in this chunk
        temporal = []
        for runner, discriminator, skip in zip(self._video_runners, self.video_discriminators, self.skips):
            starts = window_starts(end, c.n_frames_D, skip, last_from=begin)
            if starts:
                flows = None if chained is None else chained[skip][:, :end - skip]  # those up to frame end - 1
                temporal.append((runner, discriminator,
                                 lambda frames, s=skip, f=flows, st=starts: video_clips(frames, f, c.n_frames_D, s, st)))

        with ctx.autocast():
            pred_real = self.image_discriminator(pairs_real)
            loss_d = {"D_real": multiscale_gan_loss(self.gan_loss, pred_real, True),
                      "D_fake": multiscale_gan_loss(self.gan_loss, self.image_discriminator(pairs_fake.detach()), False)}
            preds_video_real = []
            for runner, _, clips in temporal:
                preds_video_real.append(runner(clips(images)))
                loss_d["D_T_real"] = loss_d.get("D_T_real", 0) + multiscale_gan_loss(
                    self.gan_loss, preds_video_real[-1], True)
                loss_d["D_T_fake"] = loss_d.get("D_T_fake", 0) + multiscale_gan_loss(
                    self.gan_loss, runner(clips(sequence_fake.detach())), False)
        ctx.step(0.5 * sum(loss_d.values()), "D", "discriminator")

        critics = [unwrap(self.image_discriminator), self.video_discriminators]
        for critic in critics:
            critic.requires_grad_(False)
        try:
            with ctx.autocast():
                pred = critics[0](pairs_fake)
                losses = {"G_GAN": multiscale_gan_loss(self.gan_loss, pred, True, for_discriminator=False),
                          "G_FM": feature_matching_loss(pred, pred_real, c.lambda_feat)}
                for (_, discriminator, clips), pred_video_real in zip(temporal, preds_video_real):
                    pred_video = discriminator(clips(sequence_fake))
                    losses["G_T_GAN"] = losses.get("G_T_GAN", 0) + multiscale_gan_loss(
                        self.gan_loss, pred_video, True, for_discriminator=False)
                    losses["G_T_FM"] = losses.get("G_T_FM", 0) + feature_matching_loss(
                        pred_video, pred_video_real, c.lambda_feat)
                if self.vgg_loss is not None:
                    losses["G_VGG"] = self.vgg_loss(fake.flatten(0, 1), images[:, begin:].flatten(0, 1)) * c.lambda_vgg
                if c.lambda_l1 > 0:
                    losses["G_L1"] = (fake.float() - images[:, begin:].float()).abs().mean() * c.lambda_l1
                if appearance is not None:
                    losses["G_appearance"] = appearance_loss(fake, *appearance) * c.lambda_appearance
                if reference is not None:
                    losses.update(self._flow_losses(images, sequence_fake, out, reference, scales))
            ctx.step(sum(losses.values()), "G", "generator")
        finally:
            for critic in critics:
                critic.requires_grad_(True)
        return {name: value.detach() for name, value in {**losses, **loss_d}.items()}

    def _flow_losses(self, images: Tensor, sequence_fake: Tensor, out: dict[str, Tensor],
                     reference: tuple[Tensor, Tensor], scales: int) -> dict[str, Tensor]:
        """The losses of the chunk's frames that follow a frame (G warped their previous frame, when it
        predicts flow), where the reference flow is trusted; none for a chunk of a clip's first frame alone."""
        c = self.config.model
        end = images.shape[1]
        first = max(end - out["frame"].shape[1], 1)  # the clip index of the chunk's first such frame
        if first == end:
            return {}
        pick = lambda x, offset: x[:, first - offset:end - offset].flatten(0, 1)  # noqa: E731
        flows, confidence = pick(reference[0], 1), pick(reference[1], 1)
        fake, fake_previous = pick(sequence_fake, 0), pick(sequence_fake, 1)
        g_warp = masked_l1(fake, warp(fake_previous.detach(), flows), confidence) * c.lambda_T
        if "flow" not in out:  # a generator without flow heads
            return {"G_warp": g_warp}
        flow, mask = out["flow"].flatten(0, 1), out["mask"].flatten(0, 1)  # made for exactly these frames
        real, real_previous = pick(images, 0), pick(images, 1)
        return {
            # flows in pixels of the coarsest level, as NVIDIA/vid2vid divides by 2**(n_scales - 1)
            "F_flow": masked_l1(flow, flows, confidence) * c.lambda_F / 2 ** (scales - 1),
            "F_warp": masked_l1(warp(real_previous, flow), real, confidence) * c.lambda_T,
            "G_warp": g_warp,
            "F_mask": masked_l1(mask, torch.zeros_like(mask), confidence) * c.lambda_mask,
        }

    def visuals(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The clip's inputs, the frames made from them and the real ones, (B, T, 3, H, W) each."""
        frames = self.synthesize(batch)
        labels = batch["label"]
        if self.config.data.input == "labels":
            labels = _flat(lambda ids: colorize_labels(ids, self.config.model.label_nc), labels)
        return {"input": labels.float(), "output": frames, "target": batch["image"]}

    # --------------------------------------------------------------- inference

    @torch.no_grad()
    def synthesize(self, batch: dict[str, Tensor]) -> Tensor:
        """The frames (B, T, 3, H, W) G makes, with all its levels, for a clip from its first frame on."""
        clip_generator = unwrap(self.generator)
        with training_mode(clip_generator):
            length, fg = batch["label"].shape[1], self.foreground_masks(batch)
            first = None
            if self.first_frame_generator is not None:
                first = self.first_frames(batch, min(length, self.config.model.n_frames_G - 1))
            begin = 0 if first is None else first.shape[1]
            if begin == length:
                return first
            windows = self._frame_windows(batch, self.encode_labels(batch), begin, length, 0)
            frames = clip_generator(windows, first, None if fg is None else fg[:, begin:])["frame"]
            return frames if first is None else torch.cat((first, frames), 1)


def sequence_dataset(config: Vid2VidConfig, root, phase: str, **options) -> SequenceDataset:
    """The SequenceDataset of a config's data at root, with the model's label, instance and flow settings."""
    settings = {"label_nc": config.model.label_nc, "use_instance": config.model.use_instance,
                "schedule": config.schedule.clips, "with_flow": config.model.flow_source == "files",
                "seed": config.train.seed, **options}
    return SequenceDataset(root, phase, config.data, **settings)
