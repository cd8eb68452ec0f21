"""Frame sequences for vid2vid: clips of consecutive frames with their inputs.

Layout (NVIDIA/vid2vid's): ``ROOT/<phase>_B/<sequence>`` holds the frames, as a
folder of images or as a video file (anything PyAV decodes, ``<sequence>.mp4``
...); ``ROOT/<phase>_A/<sequence>`` the inputs, one per frame, of the kind
``data.input`` names; optional ``ROOT/<phase>_inst/<sequence>/`` instance maps
(16-bit, Cityscapes ids) and ``<phase>_flow/<sequence>/`` ``.flo`` files, file i
holding the flow from frame i+1 to frame i (``scripts/compute_flow.py
--dataset`` writes them; the demo dataset ships its exact ground truth).

Each item is one clip of one sequence: its start and the resize/crop/flip are
drawn from (seed, epoch, index) and are the same for every frame of the clip
(an index past the end draws another clip of sequence index % len: the
trainer's further passes in an epoch of ``train.iters_per_epoch`` iterations)
(flows are resized, cropped and flipped with them). Its length follows the
progressive schedule (:class:`ClipSchedule`) through ``set_epoch``; without a
schedule an item is a whole sequence (evaluation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from flownet.flow_utils import read_flo
from vid2vid.data.edges import canny_edges
from vid2vid.data.face import face_channels, face_crop_box, face_input, read_landmarks
from vid2vid.data.frames import VideoFile
from vid2vid.data.images import IMAGE_SUFFIXES, DatasetError, read_image, to_tensor
from vid2vid.data.labels import check_label_range, ids_tensor
from vid2vid.data.pose import read_densepose_iuv, read_openpose, render_pose
from vid2vid.data.transforms import Geometry, Preprocess, PreprocessConfig
from vid2vid.errors import see

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
LABEL_SUFFIXES = {"openpose": (".json",), "face": (".txt",)}
"""the input files of the inputs that are not pictures"""

InputKind = Literal["labels", "images", "canny", "openpose", "densepose", "face"]


@dataclass(frozen=True)
class SequenceDataConfig(PreprocessConfig):
    """The ``data:`` section of vid2vid configs."""

    root: str | None = None
    """dataset folder; None builds the small demo dataset in the run's output folder"""
    input: InputKind = "labels"
    """labels: <phase>_A holds label ids (one-hot over model.label_nc classes); images: pictures used as
    they are (edge maps, drawn poses: 3 channels); canny: kornia's Canny edges of the frames themselves
    (no <phase>_A needed; 1 channel); openpose: OpenPose JSON files (in <phase>_A, or <phase>_openpose as
    NVIDIA's pose datasets name it), drawn as NVIDIA's pose models take them (3 channels); densepose: DensePose
    IUV images alone (in <phase>_A, or <phase>_densepose), as NVIDIA's --densepose_only pose models take them
    (3 channels: V, U, and the part index scaled to -1 .. 1); face: 68 facial
    landmarks per frame (text files in <phase>_A, or <phase>_keypoints as NVIDIA's face dataset names them),
    frames cut to the face, drawn as NVIDIA's edge2face models take them (15 channels in 0 .. 1, 1 without
    face_distance_maps; see vid2vid.data.face); the face's parts are the instance maps"""
    densepose: bool = False
    """openpose: DensePose IUV images from <phase>_densepose/<seq>/ too, before the pose maps (3 more channels:
    V, U, and the part index scaled to -1 .. 1, as NVIDIA's pose models take them)"""
    openpose_basic: bool = False
    """openpose: draw the body's limbs only, no head, hands or face (NVIDIA's --basic_point_only)"""
    face_distance_maps: bool = True
    """face: the 14 distance maps after the edges (false: the edges alone, 1 channel; NVIDIA's --no_dist_map)"""
    face_background_edges: bool = True
    """face: the Canny edges of the frame outside the face join its lines (false: NVIDIA's --no_canny_edge)"""
    instance_tracks: bool = False
    """the instance ids name one object in every frame (tracks, as the generated demo's); false: they are per
    frame (Cityscapes'), and the appearance memory (model.appearance_memory) and the colour drift link them
    into tracks along the flow first (vid2vid/data/tracks.py)"""
    preprocess: Preprocess = "scale_width"
    load_size: int = 512
    flow_dir: str | None = None
    """folder of per-sequence .flo files for model.flow_source=files (default ROOT/<phase>_flow)"""
    max_sequences: int | None = None
    canny_low: float = 0.1
    canny_high: float = 0.2

    def input_channels(self, label_nc: int) -> int:
        """Channels of one frame's input before one-hot encoding is counted: label_nc for labels."""
        pose = 6 if self.densepose else 3
        return {"labels": label_nc, "images": 3, "canny": 1, "openpose": pose, "densepose": 3,
                "face": face_channels(self.face_distance_maps)}[self.input]


@dataclass(frozen=True)
class ClipSchedule:
    """Progressive training in time (Wang et al. 2018, Sec. 4): single frames for ``image_epochs``
    epochs, then clips of ``start`` frames that double every ``step_epochs`` epochs up to ``total``."""

    start: int
    total: int
    step_epochs: int
    image_epochs: int = 0

    def __post_init__(self):
        if not 1 <= self.start <= self.total or self.step_epochs < 1 or self.image_epochs < 0:
            raise ValueError(f"need 1 <= n_frames_start ({self.start}) <= n_frames_total ({self.total}), "
                             f"niter_step >= 1 ({self.step_epochs}) and image_epochs >= 0 ({self.image_epochs})")

    def length(self, epoch: int) -> int:
        """Frames per clip in this epoch."""
        if epoch < self.image_epochs:
            return 1
        return min(self.total, self.start * 2 ** ((epoch - self.image_epochs) // self.step_epochs))


def sequence_entries(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Sequence name -> sub-folder or file with one of the suffixes."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            found[path.name] = path
        elif path.suffix.lower() in suffixes:
            found[path.stem] = path
    return found


def list_files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """A folder's files with one of the suffixes, in name order; DatasetError if there are none."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in suffixes)
    if not files:
        raise DatasetError(f"{source} holds no {'/'.join(suffixes)} files")
    return files


class FrameSource:
    """The frames (or per-frame files) of one sequence: a folder or a video, read a clip at a time."""

    def __init__(self, path: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES):
        self.path = path
        if path.is_dir():
            self.files: list[Path] | None = list_files(path, suffixes)
            self.length = len(self.files)
        else:
            self.files = None
            self.video = VideoFile(path)
            self.length = len(self.video)

    def read(self, start: int, count: int) -> list:
        """Files (for folders) or (H, W, 3) uint8 frames (for videos) start .. start + count - 1."""
        if self.files is not None:
            return self.files[start:start + count]
        return self.video.read(start, count)


def transform_flow(flow: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A (H, W, 2) flow in pixels through the resize, crop and flip its frames went through."""
    height, width = flow.shape[:2]
    if geometry.resize is not None:
        new_w, new_h = geometry.resize
        channels = [np.asarray(Image.fromarray(flow[..., c]).resize((new_w, new_h), Image.BILINEAR)) for c in (0, 1)]
        flow = np.stack((channels[0] * new_w / width, channels[1] * new_h / height), -1)
    if geometry.crop is not None:
        left, top, right, bottom = geometry.crop
        flow = flow[top:bottom, left:right]
    if geometry.flip:
        flow = flow[:, ::-1] * np.array([-1, 1], dtype=np.float32)
    return np.ascontiguousarray(flow, dtype=np.float32)


def as_picture(item: Path | np.ndarray | Image.Image) -> Image.Image:
    """A frame from a file, a decoded video frame or an already read picture, as an RGB picture."""
    if isinstance(item, Image.Image):
        return item
    return read_image(item) if isinstance(item, Path) else Image.fromarray(item)


def read_ids(item: Path | np.ndarray) -> np.ndarray:
    """A label or instance map's ids (H, W) int64, as stored (8- or 16-bit grey or palette indices)."""
    if not isinstance(item, Path):
        raise DatasetError("label maps must be image files, not a video (lossy codecs change the ids)")
    image = read_image(item, mode=None)
    if image.mode in ("RGB", "RGBA"):
        raise DatasetError(f"{item} is an {image.mode} image; label maps hold one id per pixel "
                           f"(use data.input=images for pictures)")
    return np.asarray(image, dtype=np.int64)


def read_instance_ids(item: Path | np.ndarray, size: tuple[int, int], of: str) -> np.ndarray:
    """An instance map's ids (H, W) int64, which must be the size (width, height) of what they mark, ``of``
    (a file or frame named in the error): resized, they would mark the wrong pixels."""
    ids = read_ids(item)
    if (ids.shape[1], ids.shape[0]) != tuple(size):
        raise DatasetError(f"the instance map {item} is {ids.shape[1]}x{ids.shape[0]}, but {of} is "
                           f"{size[0]}x{size[1]}: instance maps must be the size of their labels and frames")
    return ids


def frame_input(config: SequenceDataConfig, item: Path | np.ndarray | Image.Image | None, frame: Image.Image,
                geometry: Geometry, densepose: Path | None = None) -> Tensor:
    """One frame's input, of the kind config.input names: (1, H, W) int64 ids for labels, else
    (C, H, W) in -1..1. ``item`` is the frame's file in <phase>_A (or a decoded frame of an input
    video), ``frame`` the frame itself (Canny edges are computed from it, poses drawn at its size),
    ``densepose`` the frame's DensePose IUV image (openpose with config.densepose)."""
    kind = config.input
    if kind == "labels":
        return ids_tensor(read_ids(item), geometry)
    if kind == "canny":
        edges = canny_edges(np.asarray(frame.convert("RGB")), config.canny_low, config.canny_high)
        edges = np.asarray(geometry.apply(Image.fromarray(edges), Image.NEAREST), dtype=np.uint8)
        return torch.from_numpy(edges.copy()).float()[None] / 127.5 - 1
    if kind == "openpose":
        return pose_tensor(config, item, frame.size[::-1], geometry, densepose)
    if kind == "densepose":
        return densepose_tensor(item, frame.size[::-1], geometry)
    return to_tensor(geometry.apply(as_picture(item)))


def densepose_tensor(iuv_file: Path, size: tuple[int, int], geometry: Geometry) -> Tensor:
    """A DensePose IUV image of a frame of size (H, W) as NVIDIA's pose models take it: (3, H, W) in
    -1 .. 1, nearest-resampled, the part index (0 .. 24) spread over -1 .. 1."""
    iuv = to_tensor(geometry.apply(Image.fromarray(read_densepose_iuv(iuv_file, size)), Image.NEAREST))
    iuv[2] = (iuv[2] + 1) * (255 / 24) - 1
    return iuv


def pose_tensor(config: SequenceDataConfig, keypoints: Path, size: tuple[int, int], geometry: Geometry,
                densepose: Path | None) -> Tensor:
    """One frame's pose input (3 or 6, H, W) in -1..1 from its OpenPose JSON file, drawn at size (H, W),
    and with config.densepose its DensePose IUV image first (NVIDIA's PoseDataset)."""
    maps = []
    if config.densepose:
        if densepose is None:
            raise DatasetError(f"data.densepose is set but {keypoints} has no DensePose IUV image")
        maps.append(densepose_tensor(densepose, size, geometry))
    drawn = render_pose(read_openpose(keypoints), size, config.openpose_basic)
    maps.append(to_tensor(geometry.apply(Image.fromarray(drawn), Image.NEAREST)))
    return torch.cat(maps)


class SequenceDataset(Dataset):
    """Item i: a clip of sequence i, ``{"label": (T, 1, H, W) int64 ids, or (T, C, H, W) in -1..1 for
    picture inputs; "instance": (T, 1, H, W) int64 (zeros without instance maps); "image": (T, 3, H, W)
    in -1..1; "flow": (T-1, 2, H, W) pixels, entry i from frame i+1 to i (with ``with_flow``);
    "sequence": name; "start": first frame}``."""

    def __init__(self, root: str | os.PathLike, phase: str, config: SequenceDataConfig, *, label_nc: int,
                 use_instance: bool, schedule: ClipSchedule | None, with_flow: bool = False, train: bool = True,
                 seed: int = 0, multiple: int = 1):
        self.root, self.config, self.label_nc, self.schedule = Path(root), config, label_nc, schedule
        self.use_instance, self.with_flow, self.train, self.seed, self.epoch = use_instance, with_flow, train, seed, 0
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        if config.input == "labels" and not label_nc:
            raise DatasetError("data.input=labels needs model.label_nc > 0 (the number of classes)")
        # NVIDIA's pose datasets name the frames <phase>_img and the keypoints <phase>_openpose
        frames_folder = self._folder(phase, "B", "img")
        if not frames_folder.is_dir():
            raise DatasetError(f"no frames folder {frames_folder} (one sub-folder or video per sequence)")
        sequences = sequence_entries(frames_folder, VIDEO_SUFFIXES)
        if not sequences:
            raise DatasetError(f"{frames_folder} holds no sequence folders or videos")
        names = list(sequences)[: config.max_sequences]
        columns = {"image": (frames_folder, VIDEO_SUFFIXES)}
        if config.input != "canny":
            alternative = {"openpose": "openpose", "densepose": "densepose", "face": "keypoints"}.get(config.input)
            label_folder = self._folder(phase, "A", alternative) if alternative else self.root / f"{phase}_A"
            columns["label"] = (label_folder, VIDEO_SUFFIXES if config.input == "images" else ())
        if use_instance:
            columns["instance"] = (self.root / f"{phase}_inst", ())
        if config.input == "openpose" and config.densepose:
            columns["densepose"] = (self.root / f"{phase}_densepose", ())
        if with_flow:
            flow_dir = Path(config.flow_dir) if config.flow_dir else self.root / f"{phase}_flow"
            if not flow_dir.is_dir():
                raise DatasetError(
                    f"no flow folder {flow_dir} (model.flow_source=files reads the flow of every frame pair from "
                    f"it): write it with scripts/compute_flow.py --dataset {self.root} --phase {phase} --method dis "
                    f"(or FlowNet2 weights), or prepare the dataset with scripts/prepare_video_dataset.py --flow dis; "
                    f"or set model.flow_source=dis (DIS flow while training) or model.flow_source=none" + see("flows-missing"))
            columns["flow"] = (flow_dir, ())
        self.sequences: list[dict[str, FrameSource]] = []
        for name in names:
            sources = {}
            for column, (folder, suffixes) in columns.items():
                entries = sequence_entries(folder, suffixes) if folder.is_dir() else {}
                if name not in entries:
                    raise DatasetError(f"sequence {name!r} of {frames_folder} has no counterpart in {folder}")
                file_suffixes = {"flow": (".flo",), "label": LABEL_SUFFIXES.get(config.input, IMAGE_SUFFIXES)}
                sources[column] = FrameSource(entries[name], file_suffixes.get(column, IMAGE_SUFFIXES))
            self._check(name, sources, multiple)
            self.sequences.append(sources)
        self.names = names

    def _folder(self, phase: str, name: str, alternative: str) -> Path:
        """ROOT/<phase>_<name>, or ROOT/<phase>_<alternative> when only that exists."""
        folder, other = self.root / f"{phase}_{name}", self.root / f"{phase}_{alternative}"
        return other if other.is_dir() and not folder.is_dir() else folder

    def _check(self, name: str, sources: dict[str, FrameSource], multiple: int) -> None:
        frames = sources["image"]
        if self.schedule is not None and frames.length < self.schedule.total:
            raise DatasetError(f"sequence {frames.path} has {frames.length} frames, fewer than n_frames_total "
                               f"{self.schedule.total}")
        for column, source in sources.items():
            expected = frames.length - 1 if column == "flow" else frames.length
            if source.length != expected:
                raise DatasetError(f"{source.path} has {source.length} {'flows' if column == 'flow' else 'frames'}, "
                                   f"expected {expected} for the {frames.length} frames of {frames.path}")
        first = as_picture(frames.read(0, 1)[0])
        if self.config.input == "face":  # preprocessed is the square around the face
            first = first.crop(face_crop_box(read_landmarks(sources["label"].read(0, 1)[0]), first.size))
        self.config.preprocessing.check(first.size, multiple, frames.path)
        if self.config.input == "labels":
            ids = read_ids(sources["label"].read(0, 1)[0])
            if ids.shape[::-1] != first.size:
                raise DatasetError(f"the label maps of {sources['label'].path} are {ids.shape[1]}x{ids.shape[0]}, "
                                   f"the frames {first.size[0]}x{first.size[1]}")
            check_label_range(ids, self.label_nc, sources["label"].path)

    def _face_clip(self, landmark_files: list[Path], frames: list[Image.Image], rng: np.random.Generator) -> dict:
        """A face clip's image, label and instance (the face's parts): every frame cut to the square
        around the clip's first face (NVIDIA's FaceDataset), then preprocessed."""
        landmarks = [read_landmarks(path) for path in landmark_files]
        box = face_crop_box(landmarks[0], frames[0].size)
        geometry = self.config.preprocessing.draw((box[2] - box[0], box[3] - box[1]), rng, self.train)
        c = self.config
        maps, parts = zip(*(face_input(points, frame, box, geometry, c.face_distance_maps, c.face_background_edges)
                            for points, frame in zip(landmarks, frames)))
        return {"image": torch.stack([to_tensor(geometry.apply(frame.crop(box))) for frame in frames]),
                "label": torch.stack(maps), "instance": torch.stack(parts)}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict:
        """A clip of sequence ``index % len(self)``, its start and geometry a function of (seed, epoch, index)."""
        sequence = index % len(self)
        sources = self.sequences[sequence]
        length = sources["image"].length if self.schedule is None else self.schedule.length(self.epoch)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        start = int(rng.integers(0, sources["image"].length - length + 1)) if self.train else 0
        frames = [as_picture(f) for f in sources["image"].read(start, length)]
        inputs = sources["label"].read(start, length) if "label" in sources else [None] * length
        if self.config.input == "face":
            return {**self._face_clip(inputs, frames, rng), "sequence": self.names[sequence], "start": start}
        geometry = self.config.preprocessing.draw(frames[0].size, rng, self.train)
        iuv = sources["densepose"].read(start, length) if "densepose" in sources else [None] * length
        out = {
            "image": torch.stack([to_tensor(geometry.apply(f)) for f in frames]),
            "label": torch.stack([frame_input(self.config, item, f, geometry, d)
                                  for item, f, d in zip(inputs, frames, iuv)]),
            "sequence": self.names[sequence], "start": start,
        }
        if "instance" in sources:
            out["instance"] = torch.stack([ids_tensor(read_instance_ids(p, f.size, "its frame"), geometry)
                                           for p, f in zip(sources["instance"].read(start, length), frames)])
        else:
            out["instance"] = torch.zeros(length, 1, *out["image"].shape[-2:], dtype=torch.int64)
        if "flow" in sources:
            flows = [transform_flow(read_flo(p), geometry) for p in sources["flow"].read(start, length - 1)]
            out["flow"] = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2) if flows else \
                torch.zeros(0, 2, *out["image"].shape[-2:])
        return out

