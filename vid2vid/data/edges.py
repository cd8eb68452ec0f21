"""Edge maps as inputs: Canny edges of frames (kornia). Face inputs (landmark curves and
the Canny edges outside the face, as NVIDIA's edge2face) are in :mod:`vid2vid.data.face`."""

from __future__ import annotations


import kornia
import numpy as np
import torch

def canny_edges(frame: np.ndarray, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 edge map, 255 on edges (kornia's Canny)."""
    image = torch.from_numpy(np.array(frame, dtype=np.uint8)).permute(2, 0, 1).float().unsqueeze(0) / 255
    _, edges = kornia.filters.canny(image, low_threshold=low, high_threshold=high)
    return (edges[0, 0] > 0.5).numpy().astype(np.uint8) * 255
