"""Pose inputs as NVIDIA/vid2vid's pose models take them: OpenPose keypoints (JSON) drawn
as coloured limbs, hands and face lines, and DensePose IUV images beside them.

The drawing follows NVIDIA's ``data/keypoint2img.py`` stroke for stroke, so that their
trained pose2body models (and ours) see the maps they were trained on: every segment is a
least-squares line through its two keypoints sampled one point per pixel along its longer
axis, stamped with a square pen (half-open, 2*pen pixels wide) and round end caps; a stamp
that lands on drawn pixels averages its colour with them; the people's maps add up (uint8).
"""

from __future__ import annotations

import functools
import json
import os
import warnings

import numpy as np
from PIL import Image
from scipy.optimize import curve_fit

from vid2vid.data.images import DatasetError

# BODY_25 (OpenPose's default model) limbs and their colours; the head's first.
HEAD_LIMBS = ((17, 15), (15, 0), (0, 16), (16, 18))
HEAD_COLORS = ((153, 0, 153), (153, 0, 102), (102, 0, 153), (51, 0, 153))
BODY_LIMBS = ((0, 1), (1, 8),                                                    # neck, spine
              (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),                    # right, left arm
              (8, 9), (9, 10), (10, 11), (11, 24), (11, 22), (22, 23),           # right leg, foot
              (8, 12), (12, 13), (13, 14), (14, 21), (14, 19), (19, 20))         # left leg, foot
BODY_COLORS = ((153, 0, 51), (153, 0, 0),
               (153, 51, 0), (153, 102, 0), (153, 153, 0), (102, 153, 0), (51, 153, 0), (0, 153, 0),
               (0, 153, 51), (0, 153, 102)) + ((0, 153, 153),) * 4 + ((0, 102, 153), (0, 51, 153)) + ((0, 0, 153),) * 4
# 21 hand keypoints: the wrist (0), then four joints per finger; one colour per finger
FINGERS = tuple((0, *range(4 * f + 1, 4 * f + 5)) for f in range(5))
FINGER_COLORS = ((204, 0, 0), (163, 204, 0), (0, 204, 82), (0, 82, 204), (163, 0, 204))
# 70 face keypoints: eyebrows, nose, eyes, mouth as polylines (the jaw line is not drawn);
# a polyline is drawn only when all its points are confident
FACE_GROUPS = ((tuple(range(17, 22)),), (tuple(range(22, 27)),),
               (tuple(range(27, 31)), tuple(range(31, 36))),
               ((36, 37, 38, 39), (39, 40, 41, 36)), ((42, 43, 44, 45), (45, 46, 47, 42)),
               (tuple(range(48, 55)), (54, 55, 56, 57, 58, 59, 48)))
WHITE = (255, 255, 255)
# minimum confidences (OpenPose's scores): body and hand keypoints, face keypoints
THRESHOLD, FACE_THRESHOLD = 0.01, 0.1
# COCO's 18 keypoints in BODY_25's numbering (BODY_25 adds the mid hip, 8, and the feet, 19 .. 24)
COCO_TO_BODY_25 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
KEYPOINT_COUNTS = {"pose": 25, "hand_left": 21, "hand_right": 21, "face": 70}


def _as_body_25(points: np.ndarray) -> np.ndarray:
    """COCO's 18 body keypoints (x, y, confidence) renumbered as BODY_25's; the mid hip is the hips' mean."""
    body = np.zeros((25, 3))
    body[list(COCO_TO_BODY_25)] = points
    hips = body[[9, 12]]
    if (hips[:, 2] > 0).all():
        body[8] = (*hips[:, :2].mean(0), hips[:, 2].min())
    return body


def read_openpose(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """The people of an OpenPose JSON file: for each, its keypoint arrays (x, y, confidence) by kind:
    ``pose`` (25, 3) (COCO's 18 are renumbered as BODY_25's), ``hand_left``/``hand_right`` (21, 3),
    ``face`` (70, 3); kinds the file lacks are zeros (not drawn)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        people = []
        for person in data["people"]:
            entry = {}
            for kind, count in KEYPOINT_COUNTS.items():
                values = np.asarray(person.get(f"{kind}_keypoints_2d") or np.zeros(3 * count), dtype=np.float64)
                points = values.reshape(-1, 3) if values.size % 3 == 0 else None
                if kind == "pose" and points is not None and len(points) == 18:
                    points = _as_body_25(points)
                if points is None or len(points) != count:
                    raise ValueError(f"{kind}_keypoints_2d has {values.size} values, not {3 * count}"
                                     + (" (BODY_25) or 54 (COCO)" if kind == "pose" else ""))
                entry[kind] = points
            people.append(entry)
        return people
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"cannot read OpenPose keypoints {path}: {type(e).__name__}: {e}") from None


def _line(t: np.ndarray, a: float, b: float) -> np.ndarray:
    return a * t + b


def _parabola(t: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * t ** 2 + b * t + c  # as the original writes it: (a * t) * t rounds differently


def fitted_curve(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer points (xs, ys) of the curve through 2 or 3 keypoints as keypoint2img's interpPoints
    draws it: a least-squares line (a parabola for 3 points) sampled one point per pixel along the
    axis on which consecutive keypoints lie farther apart, its end excluded (NVIDIA's old numpy
    truncated the float count); None for a parabola bent more than x**2 (the original leaves those
    undrawn)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.abs(np.diff(x)).max() < np.abs(np.diff(y)).max():
        curve = fitted_curve(y, x)
        return None if curve is None else (curve[1], curve[0])
    count = int(abs(x[-1] - x[0]))
    if count == 0:
        return np.zeros(0, int), np.zeros(0, int)
    model = _line if len(x) < 3 else _parabola
    # scipy's fit, not the exact line: truncating to pixels, the two differ where a point falls
    # within rounding of a pixel border, and the models were trained on the fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params, _ = curve_fit(model, x, y)
    if len(x) >= 3 and abs(params[0]) > 1:
        return None
    if x[0] > x[-1]:
        x = x[::-1]
    t = np.linspace(x[0], x[-1], count)
    return t.astype(int), model(t, *params).astype(int)


def _stamp(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray, offsets, color) -> None:
    """The pen at every offset in turn: each stamp paints where all its pixels are black, and
    otherwise averages its colour into all of them."""
    h, w = canvas.shape[:2]
    for dy, dx in offsets:
        yy, xx = np.minimum(np.maximum(ys + dy, 0), h - 1), np.minimum(np.maximum(xs + dx, 0), w - 1)  # np.clip: slower
        pixels = canvas[yy, xx]
        canvas[yy, xx] = ((pixels + np.asarray(color, float)) / 2).astype(np.uint8) if pixels.any() else color


@functools.cache  # two widths, drawn with for every segment of every frame
def _pen(width: int) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """A pen's offsets along a stroke (a square, half-open) and at its two ends (a disc twice as wide)."""
    square = tuple((i, j) for i in range(-width, width) for j in range(-width, width))
    disc = tuple((i, j) for i in range(-2 * width, 2 * width) for j in range(-2 * width, 2 * width)
                 if i * i + j * j < 4 * width * width)
    return square, disc


def _draw(canvas: np.ndarray, points: np.ndarray, pairs, color, width: int) -> None:
    """Segments between keypoint pairs; a pair with a keypoint at x = 0 (missing) is skipped."""
    square, disc = _pen(width)
    for a, b in pairs:
        if points[a, 0] == 0 or points[b, 0] == 0:
            continue
        xs, ys = fitted_curve(points[[a, b], 0], points[[a, b], 1])
        if xs.size:
            _stamp(canvas, xs, ys, square, color)
            _stamp(canvas, xs[[0, -1]], ys[[0, -1]], disc, color)


def _confident(points: np.ndarray, groups, threshold: float) -> np.ndarray:
    """(N, 2) positions, zero where a keypoint is not confident: only whole groups of confident
    keypoints are kept."""
    kept = np.zeros((len(points), 2))
    for group in groups:
        group = list(group)
        if (points[group, 2] > threshold).all():
            kept[group] = points[group, :2]
    return kept


def _pairs(polyline) -> list[tuple[int, int]]:
    return list(zip(polyline[:-1], polyline[1:]))


def draw_person(person: dict[str, np.ndarray], size: tuple[int, int], basic_only: bool = False) -> np.ndarray:
    """One person's map (H, W, 3) uint8 for size (H, W): body limbs (pen 3), and unless basic_only,
    the head's limbs, fingers (pen 1) and face lines (pen 1, white)."""
    canvas = np.zeros((*size, 3), np.uint8)
    body = person["pose"]
    body = np.where((body[:, 2:] > THRESHOLD), body[:, :2], 0.0)
    limbs = BODY_LIMBS if basic_only else HEAD_LIMBS + BODY_LIMBS
    colors = BODY_COLORS if basic_only else HEAD_COLORS + BODY_COLORS
    for limb, color in zip(limbs, colors):
        _draw(canvas, body, [limb], color, 3)
    if basic_only:
        return canvas
    for kind in ("hand_left", "hand_right"):
        hand = _confident(person[kind], FINGERS, THRESHOLD)
        for finger, color in zip(FINGERS, FINGER_COLORS):
            _draw(canvas, hand, _pairs(finger), color, 1)
    face = _confident(person["face"], [g for groups in FACE_GROUPS for g in groups], FACE_THRESHOLD)
    for groups in FACE_GROUPS:
        for polyline in groups:
            _draw(canvas, face, _pairs(polyline), WHITE, 1)
    return canvas


def render_pose(people: list[dict[str, np.ndarray]], size: tuple[int, int], basic_only: bool = False) -> np.ndarray:
    """The pose map (H, W, 3) uint8 of all people for size (H, W): their maps summed modulo 256, as
    NVIDIA's pose models were trained on."""
    canvas = np.zeros((*size, 3), np.uint8)
    for person in people:
        canvas += draw_person(person, size, basic_only)
    return canvas


def read_densepose_iuv(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """A DensePose IUV image (H, W, 3) uint8 checked against size (H, W): in RGB order V, U, and the
    part index I (0 .. 24) last, as DensePose writes them with OpenCV (I in the blue channel)."""
    try:
        with Image.open(path) as image:
            iuv = np.asarray(image.convert("RGB")).copy()
    except OSError as e:
        raise DatasetError(f"cannot read DensePose IUV image {path}: {e}") from None
    if iuv.shape[:2] != tuple(size):
        raise DatasetError(f"{path} is {iuv.shape[1]}x{iuv.shape[0]}, the pose map {size[1]}x{size[0]}")
    if iuv[..., 2].max() > 24:
        raise DatasetError(f"{path}: the blue channel (the part index I) holds {iuv[..., 2].max()}, DensePose has "
                         f"parts 0 .. 24")
    return iuv
