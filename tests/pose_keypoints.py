"""Synthetic OpenPose keypoint files (BODY_25 bodies, hands, faces) and DensePose IUV images:
people in plausible postures with float coordinates, some keypoints unconfident, some at
the frame's edge or beyond, for the pose tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

# a standing person in BODY_25 order, around the mid hip, in units of ~1 pixel at scale 1
BODY = np.array([(0, -90), (0, -70), (-20, -70), (-28, -40), (-30, -12), (20, -70), (28, -40), (30, -12), (0, 0),
                 (-10, 0), (-12, 40), (-12, 80), (10, 0), (12, 40), (12, 80), (-4, -94), (4, -94), (-9, -91),
                 (9, -91), (18, 88), (22, 86), (10, 84), (-18, 88), (-22, 86), (-10, 84)], dtype=float)


def _hand(wrist: np.ndarray, direction: float, rng) -> np.ndarray:
    points = [wrist]
    for finger in range(5):
        angle = direction + (finger - 2) * 0.35
        for joint in range(1, 5):
            points.append(wrist + 3.2 * joint * np.array([np.cos(angle), np.sin(angle)]) + rng.normal(0, 0.4, 2))
    return np.array(points)


def _face(nose: np.ndarray, rng) -> np.ndarray:
    t = np.linspace(0, 1, 70)
    ring = np.stack([9 * np.cos(2 * np.pi * t * 3.1), 7 * np.sin(2 * np.pi * t * 2.3)], 1)
    return nose + ring + rng.normal(0, 0.5, (70, 2))


def person(center: tuple[float, float], scale: float, rng, drop: float = 0.1) -> dict[str, list[float]]:
    """One person's OpenPose entry: keypoints jittered around the template, each unconfident
    (below OpenPose's thresholds) with probability ``drop``."""
    body = np.asarray(center) + scale * (BODY + rng.normal(0, 3, BODY.shape))
    parts = {"pose": body, "hand_left": _hand(body[7], 1.4, rng), "hand_right": _hand(body[4], 1.8, rng),
             "face": _face(body[0], rng)}
    entry = {}
    for kind, points in parts.items():
        confidence = rng.uniform(0.15, 1.0, len(points))
        confidence[rng.random(len(points)) < drop] = rng.uniform(0, 0.09)
        rounded = np.round(points, 3)  # OpenPose writes 3 decimals
        entry[f"{kind}_keypoints_2d"] = [float(v) for p, c in zip(rounded, confidence) for v in (*p, round(c, 3))]
    return entry


def keypoint_file(path: Path, people: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    return path


def densepose_image(path: Path, size: tuple[int, int], rng) -> Path:
    """An IUV image of size (W, H) as DensePose writes it: RGB = V, U, part index (0 .. 24) in blocks."""
    w, h = size
    parts = np.kron(rng.integers(0, 25, (h // 16, w // 16)), np.ones((16, 16), dtype=np.int64))
    u, v = rng.integers(0, 256, (2, h, w))
    Image.fromarray(np.stack([v, u, parts], -1).astype(np.uint8)).save(path)
    return path
