"""Pose inputs: OpenPose keypoints (JSON) rendered to limb maps, and DensePose
IUV images passed through beside them when present."""

from __future__ import annotations

import colorsys
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Limbs as keypoint pairs. BODY_25: OpenPose's default model; COCO: its 18-point model.
BODY_25_LIMBS = ((1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11), (8, 12),
                 (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18), (14, 19), (19, 20), (14, 21),
                 (11, 22), (22, 23), (11, 24))
COCO_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
              (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
# 21 hand keypoints: the wrist, then four joints per finger
HAND_LIMBS = tuple((0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4))


def limb_colors(count: int) -> list[tuple[int, int, int]]:
    """Evenly spaced saturated hues, one per limb, so that left and right stay apart."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / count, 1.0, 1.0)) for i in range(count)]


def read_openpose(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """The people of an OpenPose JSON file: for each, its keypoint arrays (N, 3) of (x, y, confidence)
    by kind (``pose``, ``hand_left``, ``hand_right``, ``face``)."""
    try:
        with open(path) as f:
            data = json.load(f)
        people = []
        for person in data["people"]:
            entry = {}
            for kind in ("pose", "hand_left", "hand_right", "face"):
                values = person.get(f"{kind}_keypoints_2d") or []
                if len(values) % 3:
                    raise ValueError(f"{kind}_keypoints_2d has {len(values)} values, not a multiple of 3")
                entry[kind] = np.asarray(values, dtype=np.float64).reshape(-1, 3)
            people.append(entry)
        return people
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read OpenPose keypoints {path}: {type(e).__name__}: {e}") from None


def _draw_limbs(draw: ImageDraw.ImageDraw, points: np.ndarray, limbs, colors, threshold: float, width: int) -> None:
    for (a, b), color in zip(limbs, colors):
        if a < len(points) and b < len(points) and points[a, 2] > threshold and points[b, 2] > threshold:
            draw.line([tuple(points[a, :2]), tuple(points[b, :2])], fill=color, width=width)


def render_pose(people: list[dict[str, np.ndarray]], size: tuple[int, int], *, threshold: float = 0.05,
                width: int = 3) -> np.ndarray:
    """Limb maps (H, W, 3) uint8 of the people's bodies (BODY_25 or COCO, by keypoint count),
    hands, and face keypoints (dots); keypoints below the confidence threshold are skipped."""
    height, width_px = size
    canvas = Image.new("RGB", (width_px, height), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for person in people:
        body = person.get("pose", np.zeros((0, 3)))
        if len(body):
            limbs = BODY_25_LIMBS if len(body) >= 25 else COCO_LIMBS
            _draw_limbs(draw, body, limbs, limb_colors(len(limbs)), threshold, width)
        for kind in ("hand_left", "hand_right"):
            hand = person.get(kind, np.zeros((0, 3)))
            _draw_limbs(draw, hand, HAND_LIMBS, limb_colors(len(HAND_LIMBS)), threshold, max(1, width // 2))
        for x, y, c in person.get("face", np.zeros((0, 3))):
            if c > threshold:
                draw.point((x, y), fill=(255, 255, 255))
    return np.asarray(canvas).copy()


def read_densepose_iuv(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A DensePose IUV image (H, W, 3) uint8 (part index I in 0..24, then U, V), checked against size (H, W)."""
    try:
        with Image.open(path) as image:
            iuv = np.asarray(image.convert("RGB")).copy()
    except OSError as e:
        raise ValueError(f"cannot read DensePose IUV image {path}: {e}") from None
    if iuv.shape[:2] != tuple(size):
        raise ValueError(f"{path} is {iuv.shape[1]}x{iuv.shape[0]}, the pose map {size[1]}x{size[0]}")
    if iuv[..., 0].max() > 24:
        raise ValueError(f"{path}: channel I holds part {iuv[..., 0].max()}, DensePose has parts 0 .. 24")
    return iuv


def pose_input(keypoints: str | os.PathLike, size: tuple[int, int], iuv: str | os.PathLike | None = None
               ) -> np.ndarray:
    """The pose input of one frame: the rendered limb map (H, W, 3), and, when a DensePose IUV
    image is given and exists, the IUV channels after it (H, W, 6)."""
    limbs = render_pose(read_openpose(keypoints), size)
    if iuv is None or not Path(iuv).exists():
        return limbs
    return np.concatenate((limbs, read_densepose_iuv(iuv, size)), axis=2)
