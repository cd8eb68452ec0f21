"""Flow between frames of any size with a FlowNet2 model."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CompiledFlowNet(nn.Module):
    """A flow model compiled for many calls at one frame size (``torch.compile``; on a GPU in
    "reduce-overhead" mode: its kernels fused where inductor can, and each call replayed as one CUDA
    graph). FlowNet2 launches about 250 kernels a call, most of them small at batch 1, so there the
    launches and the Python between them, not the arithmetic, set the time; a graph launches them all at
    once. The first call of each batch size, precision and frame size compiles (about a minute for
    FlowNet2), so it pays on videos, not on a few pairs. A batch smaller than the largest so far (a video's
    last) is padded to it: the same graph, not another compilation. Same flow as the model's, to
    rounding (the fused kernels sum in another order)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        cuda = next(model.parameters()).device.type == "cuda"
        self.compiled = torch.compile(model, mode="reduce-overhead" if cuda else None, dynamic=False)
        self.batch = 0

    def forward(self, pair: Tensor) -> Tensor:
        count = len(pair)
        if count < self.batch:
            pair = torch.cat((pair, pair[-1:].expand(self.batch - count, *pair.shape[1:])))
        self.batch = max(self.batch, count)
        # a copy: a CUDA graph's output is overwritten by its next replay
        return self.compiled(pair)[:count].clone()


def _as_batch(frame: Tensor, name: str) -> Tensor:
    if frame.dim() == 3:
        frame = frame.unsqueeze(0)
    if frame.dim() != 4 or frame.shape[1] != 3:
        raise ValueError(f"{name} must be (B, 3, H, W) or (3, H, W) RGB, got {tuple(frame.shape)}")
    return frame.float()


@torch.no_grad()
def estimate(
    model: nn.Module,
    frame_a: Tensor,
    frame_b: Tensor,
    *,
    fit: str = "resize",
    amp: torch.dtype | None = None,
) -> Tensor:
    """The optical flow from frame_a to frame_b: ``frame_a[p] ~ frame_b[p + flow[p]]``.

    Args:
        model: any model of :mod:`flownet.models` (run in eval mode here).
        frame_a, frame_b: (B, 3, H, W) or (3, H, W) RGB in 0..255 (uint8 or float), any H x W.
        fit: how to reach the multiples of 64 the networks need: ``"resize"``
            (bilinear, the flow rescaled back) or ``"pad"`` (replicate the border, the flow cropped).
        amp: torch.float16 or torch.bfloat16 to run under autocast on a GPU; None for full precision.

    Returns:
        (B, 2, H, W) float32 flow in pixels, channel 0 horizontal.
    """
    a, b = _as_batch(frame_a, "frame_a"), _as_batch(frame_b, "frame_b")
    if a.shape != b.shape:
        raise ValueError(f"frame_a {tuple(a.shape)} and frame_b {tuple(b.shape)} differ in shape")
    if fit not in ("resize", "pad"):
        raise ValueError(f"fit must be 'resize' or 'pad', got {fit!r}")
    device = next(model.parameters()).device
    a, b = a.to(device), b.to(device)
    height, width = a.shape[-2:]
    target_h, target_w = (max(64, math.ceil(s / 64) * 64) for s in (height, width))
    flat = torch.stack((a, b), 2).flatten(1, 2)  # (B, 3 * 2, H, W), the model's (B, 3, 2, H, W) flattened
    if fit == "resize":
        flat = F.interpolate(flat, size=(target_h, target_w), mode="bilinear", align_corners=False)
    else:
        flat = F.pad(flat, (0, target_w - width, 0, target_h - height), mode="replicate")
    pair = flat.view(a.shape[0], 3, 2, target_h, target_w)

    autocast = (
        torch.autocast(device_type=device.type, dtype=amp) if amp is not None and device.type == "cuda"
        else contextlib.nullcontext()
    )
    was_training = model.training
    model.eval()
    try:
        with autocast:
            flow = model(pair).float()
    finally:
        model.train(was_training)

    if fit == "pad":
        return flow[..., :height, :width].contiguous()
    flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
    scale = torch.tensor([width / target_w, height / target_h], device=flow.device).view(1, 2, 1, 1)
    return flow * scale
