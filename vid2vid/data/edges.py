"""Edge maps as inputs: Canny edges of frames (kornia), and face edge maps in the
style of vid2vid's edge2face: the facial landmarks drawn as curves, plus the
Canny edges of everything outside the face (hair, neck, background)."""

from __future__ import annotations

import os
from pathlib import Path

import kornia
import numpy as np
import torch
from PIL import Image, ImageDraw
from scipy.spatial import ConvexHull

from vid2vid.data.images import DatasetError

# The 68-point landmark layout (iBUG 300-W, dlib): the chains of points edge2face draws.
FACE_PARTS: tuple[tuple[int, ...], ...] = (
    tuple(range(0, 17)),                      # jaw line
    tuple(range(17, 22)), tuple(range(22, 27)),  # eyebrows
    tuple(range(27, 31)), tuple(range(31, 36)),  # nose bridge, nostrils
    (36, 37, 38, 39, 40, 41, 36), (42, 43, 44, 45, 46, 47, 42),  # eyes, closed
    tuple(range(48, 60)) + (48,),             # outer lips
    tuple(range(60, 68)) + (60,),             # inner lips
)


def canny_edges(frame: np.ndarray, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 edge map, 255 on edges (kornia's Canny)."""
    image = torch.from_numpy(np.array(frame, dtype=np.uint8)).permute(2, 0, 1).float().unsqueeze(0) / 255
    _, edges = kornia.filters.canny(image, low_threshold=low, high_threshold=high)
    return (edges[0, 0] > 0.5).numpy().astype(np.uint8) * 255


def face_edges(landmarks: np.ndarray, size: tuple[int, int], frame: np.ndarray | None = None,
               width: int = 1) -> np.ndarray:
    """An edge2face input (H, W) uint8: the landmark curves (68 (x, y) points), and, when the
    frame is given, its Canny edges outside the face (the convex hull of the landmarks).

    Args:
        landmarks: (68, 2) pixel coordinates.
        size: (H, W) of the map.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2):
        raise DatasetError(f"face edges need 68 (x, y) landmarks, got an array of shape {landmarks.shape}")
    height, width_px = size
    canvas = Image.new("L", (width_px, height), 0)
    draw = ImageDraw.Draw(canvas)
    for part in FACE_PARTS:
        draw.line([tuple(landmarks[i]) for i in part], fill=255, width=width)
    edges = np.asarray(canvas).copy()
    if frame is not None:
        if frame.shape[:2] != (height, width_px):
            raise DatasetError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the edge map {width_px}x{height}")
        face = Image.new("L", (width_px, height), 0)
        hull = landmarks[ConvexHull(landmarks).vertices]
        ImageDraw.Draw(face).polygon([tuple(p) for p in hull], fill=255)
        outside = np.asarray(face) == 0
        edges = np.maximum(edges, canny_edges(frame) * outside)
    return edges


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """Face landmarks of a video, (frames, 68, 2): an ``.npy`` array, or a folder of per-frame
    ``.txt`` files of 68 "x y" lines (the keypoint files of vid2vid's face dataset)."""
    path = Path(path)
    try:
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            if not files:
                raise DatasetError(f"{path} holds no .txt landmark files")
            landmarks = np.stack([np.loadtxt(f, delimiter=None).reshape(-1, 2) for f in files])
        else:
            landmarks = np.load(path)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read face landmarks {path}: {e}") from None
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise DatasetError(f"{path}: expected (frames, 68, 2) landmarks, got shape {landmarks.shape}")
    return landmarks
