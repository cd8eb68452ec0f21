"""Optical-flow utilities: Middlebury .flo files, the Middlebury colour
coding, endpoint error, and the photometric error of warping by a flow.

Flows are in pixels; tensors are (B, 2, H, W) or (2, H, W) with channel 0
horizontal; arrays read from / written to .flo files are (H, W, 2).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from vid2vid.errors import UserError
from vid2vid.ops import warp

FLO_MAGIC = 202021.25  # "PIEH" read as a little-endian float32


class FlowFileError(UserError):
    """A .flo file that is not one, or is truncated; the message names the file."""


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Reads a Middlebury .flo file into an (H, W, 2) float32 array."""
    data = np.fromfile(path, dtype=np.uint8)
    if data.size < 12:
        raise FlowFileError(f"{path}: {data.size} bytes, too short for a .flo header")
    magic = data[:4].view("<f4")[0]
    if magic != np.float32(FLO_MAGIC):
        raise FlowFileError(f"{path}: bad magic number {magic!r}, expected {FLO_MAGIC} (not a .flo file)")
    width, height = (int(v) for v in data[4:12].view("<i4"))
    if width <= 0 or height <= 0 or width * height > 1 << 30:
        raise FlowFileError(f"{path}: implausible size {width} x {height}")
    expected = 12 + 8 * width * height
    if data.size != expected:
        raise FlowFileError(f"{path}: {data.size} bytes, expected {expected} for {width} x {height} (truncated?)")
    return data[12:].view("<f4").reshape(height, width, 2).astype(np.float32)


def write_flo(path: str | os.PathLike, flow: np.ndarray | Tensor) -> None:
    """Writes a flow, an (H, W, 2) array or a (2, H, W) tensor, as a Middlebury .flo file."""
    if isinstance(flow, Tensor):
        if flow.dim() != 3 or flow.shape[0] != 2:
            raise ValueError(f"a flow tensor must be (2, H, W), got {tuple(flow.shape)}")
        flow = flow.detach().float().permute(1, 2, 0).cpu().numpy()
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a flow array must be (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    with open(path, "wb") as f:
        np.array([FLO_MAGIC], "<f4").tofile(f)
        np.array([width, height], "<i4").tofile(f)
        np.ascontiguousarray(flow, "<f4").tofile(f)


def _colour_wheel() -> np.ndarray:
    """The 55 hues of the Middlebury colour wheel (Baker et al. 2011), (55, 3) in 0..255:
    red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red."""
    segments = [(15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
                (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0))]
    rows = []
    for steps, start, end in segments:
        t = np.arange(steps)[:, None] / steps
        # each channel rises or falls by floor(255 t), as in the reference code
        rows.append(np.array(start) + np.sign(np.array(end) - np.array(start)) * np.floor(255 * t))
    return np.concatenate(rows)


COLOUR_WHEEL = _colour_wheel()


def flow_to_color(flow: np.ndarray | Tensor, max_flow: float | None = None) -> np.ndarray:
    """Colour-codes a flow, (H, W, 2) array or (2, H, W) tensor, as (H, W, 3) uint8:
    hue = direction, saturation = magnitude / max_flow (default: the largest
    magnitude). Unknown flow (NaN or > 1e9) is black."""
    if isinstance(flow, Tensor):
        flow = flow.detach().float().permute(1, 2, 0).cpu().numpy()
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    unknown = ~np.isfinite(u) | ~np.isfinite(v) | (np.abs(u) > 1e9) | (np.abs(v) > 1e9)
    u, v = np.where(unknown, 0, u), np.where(unknown, 0, v)
    radius = np.hypot(u, v)
    scale = max_flow if max_flow is not None else max(radius.max(), 1e-9)
    radius, u, v = radius / scale, u / scale, v / scale
    n = len(COLOUR_WHEEL)
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)  # 0..n-1 around the wheel
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n
    f = (position - k0)[..., None]
    colour = ((1 - f) * COLOUR_WHEEL[k0] + f * COLOUR_WHEEL[k1]) / 255
    # Saturation grows with the magnitude; beyond max_flow the colour darkens.
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)
    colour[unknown] = 0
    return np.floor(255 * colour).astype(np.uint8)


def endpoint_error(flow: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean Euclidean distance between two (B, 2, H, W) flows, over the pixels where valid (B, 1, H, W) is true."""
    epe = torch.linalg.vector_norm(flow - target, dim=1, keepdim=True)
    if valid is None:
        return epe.mean()
    return epe[valid.expand_as(epe)].mean()


def warping_error(frame_a: Tensor, frame_b: Tensor, flow: Tensor) -> Tensor:
    """Photometric error of a flow from frame_a to frame_b: the mean absolute
    difference between frame_a and frame_b warped back by the flow, over the
    pixels whose flow stays inside the image (B, C, H, W frames, any value range)."""
    warped = warp(frame_b, flow.to(frame_b.dtype))
    height, width = flow.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, device=flow.device), torch.arange(width, device=flow.device),
                            indexing="ij")
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    inside = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)).unsqueeze(1)
    error = (frame_a - warped).abs().mean(1, keepdim=True)
    return error[inside].mean() if inside.any() else error.new_zeros(())
