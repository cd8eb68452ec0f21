"""Face inputs as NVIDIA/vid2vid's edge2face models take them (its ``data/face_dataset.py``).

Each frame has 68 facial landmarks (dlib's numbering) in a text file of ``x,y`` rows. The
jaw line is mirrored above the eyes to close the face, and each of 14 polylines (face
outline, eyebrows, nose, eyes, lips) is drawn as 3-point parabolas (or lines) one pixel
wide. The input of a frame is 15 maps in 0..1: all the lines plus the Canny edges of the
real frame outside the face (its background and hair), then one L1 distance map per polyline.
Models trained with NVIDIA's ``--no_dist_map`` take the first map alone (1 channel), and with
``--no_canny_edge`` the lines without the background's edges.
A part-label map (0 background, 1 face, 2 eyebrows, 3 nose, 4 eyes, 5 lips, 6 mouth inside)
goes along: the first-frame generator averages its features over those parts.

Frames are cut to a square around the face first (2.5 face widths, placed as NVIDIA places
it) and then preprocessed as any frame. The drawing needs OpenCV (polygon fill, distance
transform) and scikit-image (the Canny detector the models were trained with):
``pip install 'vid2vid[face]'``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from vid2vid.data.images import DatasetError
from vid2vid.data.pose import fitted_curve
from vid2vid.data.transforms import Geometry

FACE_OUTLINE = (*range(0, 17), *range(68, 83), 0)  # the jaw, then the mirrored upper half (68 .. 82)
# (part label, polylines); each polyline has its own distance map, in this order
PARTS = (
    (1, (FACE_OUTLINE,)),
    (2, (tuple(range(17, 22)),)),
    (2, (tuple(range(22, 27)),)),
    (3, ((28, 31), tuple(range(31, 36)), (35, 28))),
    (4, ((36, 37, 38, 39), (39, 40, 41, 36))),
    (4, ((42, 43, 44, 45), (45, 46, 47, 42))),
    (5, (tuple(range(48, 55)), (54, 55, 56, 57, 58, 59, 48))),
    (6, (tuple(range(60, 65)), (64, 65, 66, 67, 60))),
)
FACE_CHANNELS = 1 + sum(len(polylines) for _, polylines in PARTS)  # 15


def face_channels(distance_maps: bool = True) -> int:
    """Channels of a frame's face input: the edges, and the 14 distance maps unless left out."""
    return FACE_CHANNELS if distance_maps else 1


def _libraries():
    try:
        import cv2
        from skimage import feature
    except ImportError as e:
        raise DatasetError(f"face inputs need OpenCV and scikit-image ({e.name} is missing): "
                           f"pip install 'vid2vid[face]'") from None
    return cv2, feature


def read_landmarks(path: str | os.PathLike) -> np.ndarray:
    """A frame's 68 landmarks (68, 2) float from a text file of ``x,y`` rows (``x y`` rows read too)."""
    try:
        text = Path(path).read_text()
        points = np.loadtxt(io.StringIO(text), delimiter="," if "," in text else None, ndmin=2)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read face landmarks {path}: {e}") from None
    if points.shape != (68, 2):
        raise DatasetError(f"{path} holds {points.shape[0]} rows of {points.shape[1]} numbers; face landmarks "
                           f"are 68 rows of x,y")
    return points


def read_video_landmarks(path: str | os.PathLike) -> np.ndarray:
    """A video's landmarks (frames, 68, 2): an ``.npy`` array, or a folder of per-frame text files
    (as NVIDIA's face dataset keeps them, read by :func:`read_landmarks`)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DatasetError(f"{path} holds no .txt landmark files")
        return np.stack([read_landmarks(f) for f in files])
    try:
        landmarks = np.load(path)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read face landmarks {path}: {e}") from None
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise DatasetError(f"{path}: expected (frames, 68, 2) landmarks, got shape {landmarks.shape}")
    return landmarks


def write_landmarks(path: str | os.PathLike, landmarks: np.ndarray) -> None:
    """One frame's landmarks (68, 2) as a text file of ``x,y`` rows, as :func:`read_landmarks` reads them."""
    np.savetxt(path, landmarks, fmt="%.2f", delimiter=",")


def face_crop_box(landmarks: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square NVIDIA cuts around a face in a frame of size (W, H):
    2.5 face widths wide, centred a quarter of the way down the landmarks, moved inside the frame."""
    min_x, max_x = landmarks[:, 0].min(), landmarks[:, 0].max()
    min_y, max_y = landmarks[:, 1].min(), landmarks[:, 1].max()
    side = (max_x - min_x) * 2.5
    half = side // 2
    xc = min(max(0, (min_x + max_x) // 2 - half) + side, size[0]) - half
    yc = min(max(0, (min_y * 3 + max_y) // 4 - half) + side, size[1]) - half
    box = (int(xc - half), int(yc - half), int(xc + half), int(yc + half))
    if box[0] < 0 or box[1] < 0 or box[2] > size[0] or box[3] > size[1]:
        raise DatasetError(f"the face is too wide for its {size[0]}x{size[1]} frame: the square of 2.5 face widths "
                           f"around it ({box}) does not fit")
    return box


def _with_upper_face(landmarks: np.ndarray) -> np.ndarray:
    """The landmarks and 15 more: the jaw's inner points mirrored, 2/3 as far, above the line
    between its ends (in whole pixels, as NVIDIA computes them)."""
    jaw = landmarks[:17].astype(np.int32)
    baseline = (jaw[0, 1] + jaw[-1, 1]) / 2
    upper = jaw[1:-1].copy()
    upper[:, 1] = baseline + (baseline - upper[:, 1]) * 2 // 3
    return np.vstack((landmarks, upper[::-1]))


def _stroke(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """keypoint2img's drawEdge on a grey map: a 2x2 pen (offsets -1 and 0), white."""
    h, w = canvas.shape
    for dy in (-1, 0):
        for dx in (-1, 0):
            canvas[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = 255


def face_maps(landmarks: np.ndarray, grey: np.ndarray, distance_maps: bool = True, background_edges: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole frame's maps: the edges (H, W) uint8 (the face's lines and, with ``background_edges``, the
    Canny edges of ``grey`` outside the face), the 14 distance maps (14, H, W) uint8 (L1 pixels / 3; none,
    (0, H, W), without ``distance_maps``), the parts (H, W) uint8."""
    cv2, feature = _libraries()
    points = _with_upper_face(landmarks)
    parts = np.zeros(grey.shape, np.uint8)
    for label, polylines in PARTS:
        outline = points[[i for polyline in polylines for i in polyline]].astype(np.int32)
        cv2.fillPoly(parts, pts=[outline], color=label)
    edges = np.zeros(grey.shape, np.uint8)
    distances = []
    for _, polylines in PARTS:
        for polyline in polylines:
            line = np.zeros(grey.shape, np.uint8)
            for start in range(0, max(1, len(polyline) - 1), 2):  # 3-point pieces sharing their ends
                piece = list(polyline[start:start + 3])
                curve = fitted_curve(points[piece, 0], points[piece, 1])
                if curve is not None and curve[0].size:
                    _stroke(edges, *curve)
                    _stroke(line, *curve)
            if distance_maps:
                distance = cv2.distanceTransform(255 - line, cv2.DIST_L1, 3)
                distances.append(np.clip(distance / 3, 0, 255).astype(np.uint8))
    if background_edges:
        background = feature.canny(grey) & (parts == 0)
        edges += background.astype(np.uint8) * 255  # uint8 addition, as the original adds them
    return edges, np.array(distances, np.uint8).reshape(-1, *grey.shape), parts


def face_input(landmarks: np.ndarray, frame: Image.Image, box: tuple[int, int, int, int], geometry: Geometry,
               distance_maps: bool = True, background_edges: bool = True) -> tuple[Tensor, Tensor]:
    """One frame's input (15, H, W) in 0..1 (1 channel without ``distance_maps``) and its parts (1, H, W)
    int64: the maps of the whole ``frame`` cut to ``box`` and preprocessed by ``geometry`` (bilinear;
    nearest for the parts)."""
    edges, distances, parts = face_maps(landmarks, np.asarray(frame.convert("L")), distance_maps, background_edges)
    left, top, right, bottom = box

    def prepared(values: np.ndarray, resample: int) -> np.ndarray:
        return np.asarray(geometry.apply(Image.fromarray(values[top:bottom, left:right]), resample))

    maps = np.stack([prepared(m, Image.BILINEAR) for m in (edges, *distances)]).astype(np.float32) / 255
    return torch.from_numpy(maps), torch.from_numpy(prepared(parts, Image.NEAREST).astype(np.int64))[None]
