"""Synthetic faces for the edge2face tests: 68 dlib-numbered landmarks of a plausible face
(jaw, eyebrows, nose, eyes, outer and inner lips) with sub-pixel jitter, moving a little
from frame to frame, and frames with a textured background (so that Canny finds edges there)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def _arc(cx, cy, rx, ry, start, end, n):
    angles = np.linspace(start, end, n)
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1)


def landmarks(center: tuple[float, float], scale: float, rng: np.random.Generator) -> np.ndarray:
    """(68, 2) landmarks of a face of about 60 * scale pixels wide around center."""
    cx, cy = center
    s = scale
    jaw = _arc(cx, cy - 5 * s, 30 * s, 38 * s, np.pi, 0, 17)  # ear to ear under the face (image y points down)
    brows = np.concatenate([_arc(cx - 13 * s, cy - 14 * s, 9 * s, 4 * s, np.pi, 2 * np.pi, 5),
                            _arc(cx + 13 * s, cy - 14 * s, 9 * s, 4 * s, np.pi, 2 * np.pi, 5)])
    bridge = np.stack([np.full(4, cx), np.linspace(cy - 10 * s, cy + 4 * s, 4)], 1)
    nostrils = np.stack([np.linspace(cx - 6 * s, cx + 6 * s, 5), cy + 7 * s + np.array([0, 1, 2, 1, 0]) * s], 1)
    eyes = []
    for ex in (cx - 12 * s, cx + 12 * s):
        top = _arc(ex, cy - 6 * s, 6 * s, 3 * s, np.pi, 2 * np.pi, 4)  # corner to corner over the eye
        bottom = _arc(ex, cy - 6 * s, 6 * s, 3 * s, 2 * np.pi, 3 * np.pi, 4)[1:3]  # back under it
        eyes.append(np.concatenate([top, bottom]))
    outer_top = _arc(cx, cy + 20 * s, 14 * s, 4 * s, np.pi, 2 * np.pi, 7)
    outer_bottom = _arc(cx, cy + 20 * s, 14 * s, 6 * s, 0, np.pi, 7)[1:6]
    inner_top = _arc(cx, cy + 20 * s, 9 * s, 2 * s, np.pi, 2 * np.pi, 5)
    inner_bottom = _arc(cx, cy + 20 * s, 9 * s, 3 * s, 0, np.pi, 5)[1:4]
    points = np.concatenate([jaw, brows, bridge, nostrils, *eyes, outer_top, outer_bottom, inner_top, inner_bottom])
    assert points.shape == (68, 2)
    return points + rng.normal(0, 0.3, points.shape)


def face_sequence(root: Path, phase: str, name: str, frames: int, size: tuple[int, int], seed: int = 0) -> None:
    """<phase>_keypoints/<name>/NNNNN.txt (x,y rows) and <phase>_img/<name>/NNNNN.png, NVIDIA's face layout."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / f"{phase}_keypoints" / name).mkdir(parents=True)
    (root / f"{phase}_img" / name).mkdir(parents=True)
    background = np.kron(rng.integers(0, 255, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    for t in range(frames):
        points = landmarks((w / 2 + 1.5 * t, h / 2 - t), min(w, h) / 200, rng)
        np.savetxt(root / f"{phase}_keypoints" / name / f"{t:05d}.txt", points, fmt="%.2f", delimiter=",")
        frame = np.roll(background, t, axis=1)
        Image.fromarray(frame).save(root / f"{phase}_img" / name / f"{t:05d}.png")
