"""What vid2vid's video discriminators see (Wang et al. 2018, Sec. 3.2, "Temporal
multi-scale"): K = n_frames_D consecutive frames and the flows between them, at
temporal scales that skip 1, K, K^2 ... frames (1, 3, 9 by default), and the
reference flows and their confidence that the flow losses use.

Sequences are (B, T, C, H, W); a flow ``flows[:, i]`` (B, T-1, 2, H, W) goes
from frame i+1 to frame i (backward, the direction the generator warps in), in pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor

from vid2vid.ops import channel_norm, warp

CONFIDENCE_THRESHOLD = 0.02
"""a reference flow is trusted where the warped previous frame is this close (L2 over RGB in 0..1,
NVIDIA/vid2vid's test) to the current one"""


def temporal_skips(n_frames_D: int, n_scales_temporal: int) -> list[int]:
    """The frame skip of each temporal scale: 1, n_frames_D, n_frames_D**2 ..."""
    return [n_frames_D ** s for s in range(n_scales_temporal)]


def window_starts(length: int, n_frames_D: int, skip: int, last_from: int = 0) -> list[int]:
    """First frames of the windows (frames start, start + skip, ... start + (K-1) skip) that fit in a
    sequence of ``length`` frames and end at frame ``last_from`` or later."""
    span = (n_frames_D - 1) * skip
    return [start for start in range(max(0, last_from - span), length - span)]


def chain_flows(flows: Tensor, skip: int) -> Tensor:
    """Flows over ``skip`` frames from consecutive ones: (B, T-1, 2, H, W) -> (B, T-skip, 2, H, W),
    entry i going from frame i+skip to frame i. Composed backwards: w_{t->t-k}(p) =
    w_{t->t-1}(p) + w_{t-1->t-k}(p + w_{t->t-1}(p))."""
    if skip == 1:
        return flows
    steps = flows.shape[1]
    chained = []
    for end in range(skip, steps + 1):  # end: the index of the frame the flow starts from
        total = flows[:, end - 1]
        for k in range(2, skip + 1):
            total = total + warp(flows[:, end - k], total)
        chained.append(total)
    return torch.stack(chained, 1)


def flows_to_first(flows: Tensor) -> Tensor:
    """Each frame's flow to the first frame from consecutive ones: (T-1, 2, H, W) -> (T-1, 2, H, W), entry
    t-1 going from frame t to frame 0, composed as :func:`chain_flows` composes:
    w_{t->0}(p) = w_{t->t-1}(p) + w_{t-1->0}(p + w_{t->t-1}(p))."""
    chained = [flows[0]]
    for step in flows[1:]:
        chained.append(step + warp(chained[-1][None], step[None])[0])
    return torch.stack(chained)


def video_clips(frames: Tensor, flows: Tensor | None, n_frames_D: int, skip: int, starts: list[int]) -> Tensor:
    """The video discriminator's inputs: for each start, the K frames and (when given) the K-1 flows
    between them, divided by 20 as NVIDIA/vid2vid feeds them; (B * len(starts), K*C [+ 2(K-1)], H, W).

    Args:
        frames: (B, T, C, H, W).
        flows: (B, T-skip, 2, H, W) from :func:`chain_flows` at this skip, or None.
    """
    clips = []
    for start in starts:
        index = [start + k * skip for k in range(n_frames_D)]
        parts = [frames[:, index].flatten(1, 2)]
        if flows is not None:
            parts.append(flows[:, index[:-1]].flatten(1, 2) / 20)
        clips.append(torch.cat(parts, 1))
    return torch.cat(clips, 0)


@torch.no_grad()
def estimate_backward_flows(estimator: Callable[[Tensor, Tensor], Tensor], frames: Tensor) -> Tensor:
    """The flows (B, T-1, 2, H, W) from each frame of clips (B, T, 3, H, W) in -1..1 to the one before, by
    an estimator (frames a, b in 0..255 -> flow a -> b: flownet.estimate with a model, flownet.dis.dis_flow):
    the reference flow when none is stored."""
    as_255 = lambda x: (x.flatten(0, 1).float() + 1) * 127.5  # noqa: E731
    flows = estimator(as_255(frames[:, 1:]), as_255(frames[:, :-1]))
    return flows.unflatten(0, (frames.shape[0], frames.shape[1] - 1))


def flow_confidence(current: Tensor, previous: Tensor, flow: Tensor, threshold: float = CONFIDENCE_THRESHOLD) -> Tensor:
    """(B, 1, H, W), 1 where warping ``previous`` by ``flow`` (current -> previous) reproduces ``current``
    (images in -1..1): the pixels that are visible in both frames and where the flow is right."""
    error = channel_norm((current - warp(previous, flow)).float() / 2)
    return (error < threshold).float()


def masked_l1(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """mean |prediction - target| * mask, the mask broadcast over channels (NVIDIA/vid2vid's MaskedL1Loss)."""
    return ((prediction.float() - target.float()).abs() * mask).mean()


def flow_estimator(source: str, flownet_checkpoint: str | None, device: torch.device
                   ) -> Callable[[Tensor, Tensor], Tensor] | None:
    """The reference-flow estimator a ``model.flow_source`` names (frames a, b in 0..255 -> flow a -> b):
    FlowNet2 from its checkpoint (``flownet``) or DIS (``dis``); None for ``files`` and ``none``.

    Raises:
        ValueError: DIS without OpenCV.
    """
    if source == "flownet":
        import flownet  # loaded only when asked for

        model = flownet.load_checkpoint(flownet_checkpoint).to(device).eval().requires_grad_(False)
        return functools.partial(flownet.estimate, model)
    if source == "dis":
        from flownet.dis import dis_flow, require_dis

        try:
            require_dis()
        except ValueError as e:
            raise ValueError(f"model.flow_source=dis: {e}") from None
        return dis_flow
    return None


class TemporalConsistency:
    """Unpaired video translation without flicker (the unpaired models' ``model.lambda_temporal``):
    the output of frame t must equal the output of frame t-1 warped by the source's flow (t -> t-1),
    where that flow explains the source frames (:func:`flow_confidence`). The earlier output is a
    target (no gradient); the flow comes with the batch (``A_flow``, from .flo files) or from an
    estimator (FlowNet2)."""

    def __init__(self, weight: float, estimator: Callable[[Tensor, Tensor], Tensor] | None):
        self.weight, self.estimator = weight, estimator

    def __call__(self, make: Callable[[Tensor], Tensor], output: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """weight * masked L1 between ``output`` (made from batch ``A``) and ``make(A_prev)`` warped."""
        current, previous = batch["A"], batch["A_prev"]
        with torch.no_grad():
            if "A_flow" in batch:
                flow = batch["A_flow"]
            else:
                flow = estimate_backward_flows(self.estimator, torch.stack((previous, current), 1))[:, 0]
            earlier = make(previous)
            trusted = flow_confidence(current, previous, flow)
        return masked_l1(output, warp(earlier.float(), flow.float()), trusted) * self.weight


def temporal_consistency(config: object, device: torch.device) -> TemporalConsistency | None:
    """The unpaired models' temporal term from their config (``lambda_temporal``, ``flow_source``,
    ``flownet_checkpoint``); None when lambda_temporal is 0."""
    if not config.lambda_temporal:
        return None
    return TemporalConsistency(config.lambda_temporal, flow_estimator(config.flow_source, config.flownet_checkpoint,
                                                                      device))
