"""Optical flow without weights: OpenCV's DIS (dense inverse search, Kroeger
et al. 2016), medium preset, on the CPU; optionally at full resolution and
started from the flow of the blurred pictures (what vid2vid's model.input_flow
uses on edge maps and label pictures).

The same interface as :func:`flownet.estimate` without its model, so that every
user of flow (``compute_flow.py --method dis``, ``prepare_video_dataset.py
--flow dis``, ``model.flow_source=dis``, ``evaluate_vid2vid.py``) can take
either. Needs the optional ``opencv-python-headless``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from vid2vid.errors import UserError

MISSING_OPENCV = ("DIS optical flow needs OpenCV: pip install opencv-python-headless "
                  "(or use FlowNet2 weights, or model.flow_source=none)")


def require_dis() -> Any:
    """OpenCV's cv2, which DIS flow needs; UserError (MISSING_OPENCV) when it is not installed. Call it
    before long work that will need DIS flow, so that a missing OpenCV stops it at the start."""
    try:
        import cv2
    except ImportError:
        raise UserError(MISSING_OPENCV) from None
    return cv2


def _gray(frame: Tensor) -> np.ndarray:
    """(3, H, W) RGB 0..255 -> (H, W) uint8 luma, as cv2.cvtColor(RGB2GRAY) weighs it."""
    rgb = frame.detach().float().cpu().clamp(0, 255)
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return luma.round().to(torch.uint8).numpy()


@torch.no_grad()
def dis_flow(frame_a: Tensor, frame_b: Tensor, *, finest_scale: int = 1, start_blur: float = 0.0) -> Tensor:
    """The optical flow from frame_a to frame_b: ``frame_a[p] ~ frame_b[p + flow[p]]``.

    Args:
        frame_a, frame_b: (B, 3, H, W) or (3, H, W) RGB in 0..255 (uint8 or float).
        finest_scale: the pyramid level DIS stops at: 1 (the medium preset's: the flow is searched at half
            resolution and upsampled) or 0 (full resolution: finer motion, about 4x the time).
        start_blur: > 0: start the search from the flow between the pictures blurred by a Gaussian of this
            sigma (pixels; medium preset), not from zero. DIS searches coarse to fine from zero, and on a sparse
            picture (the thin lines of an edge map) its coarse levels see little of the lines and lose a motion
            larger than a few pixels (a shaking camera over a face); blurred, the lines become ramps that the
            coarse levels follow, and the search on the sharp pictures then starts within reach.

    Returns:
        (B, 2, H, W) float32 flow in pixels (channel 0 horizontal), on frame_a's device.
    """
    a, b = (f.unsqueeze(0) if f.dim() == 3 else f for f in (frame_a, frame_b))
    if a.dim() != 4 or a.shape[1] != 3 or a.shape != b.shape:
        raise ValueError(f"frames must be matching (B, 3, H, W) or (3, H, W) RGB, got {tuple(frame_a.shape)} "
                         f"and {tuple(frame_b.shape)}")
    cv2 = require_dis()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(finest_scale)
    coarse = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if start_blur > 0 else None
    flows = []
    for x, y in zip(a, b):
        x, y = _gray(x), _gray(y)
        start = None
        if coarse is not None:  # DIS starts from a flow it is given
            start = coarse.calc(*(cv2.GaussianBlur(z, (0, 0), start_blur) for z in (x, y)), None)
        flows.append(torch.from_numpy(dis.calc(x, y, start)).permute(2, 0, 1))
    return torch.stack(flows).to(frame_a.device)


__all__ = ["dis_flow", "require_dis", "MISSING_OPENCV"]
