"""Rendering a label, edge or pose sequence with a trained vid2vid model, one frame
at a time: only the last n_frames_G inputs and frames are held, so memory stays
flat however long the sequence, and frames stream to PNG files and an mp4."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from vid2vid.data.frames import iter_frames, write_image, write_video
from vid2vid.data.images import IMAGE_SUFFIXES, DatasetError, to_tensor
from vid2vid.data.label_maps import remap_labels
from vid2vid.data.labels import ids_tensor
from vid2vid.data.face import face_crop_box, face_input, read_landmarks
from vid2vid.data.sequences import LABEL_SUFFIXES, as_picture, frame_input, list_files, read_instance_ids
from vid2vid.data.tracks import TrackLinker
from vid2vid.models.appearance import AppearanceMemory
from vid2vid.models.feature_clusters import sample_feature_map
from vid2vid.models.pix2pixhd import colorize_labels
from vid2vid.models.vid2vid import Vid2Vid
from vid2vid.training.distributed import unwrap
from vid2vid.training.logging import to_uint8_image


LINK_WIDTH = 256
"""per-frame instance ids are linked into tracks on maps subsampled to at most this width: tens of
milliseconds a frame on a CPU core, whatever the frame size"""


class FrameByFrame:
    """Makes a sequence frame after frame: the first from its input alone (or the first n_frames_G - 1
    by the first-frame pix2pixHD run), each next one from the last n_frames_G inputs and the frames
    made before it (each level's own, with model.history_per_level)."""

    def __init__(self, model: Vid2Vid):
        self.model = model
        self.clip_generator = unwrap(model.generator).eval()
        self.history_length = model.config.model.n_frames_G - 1
        self.memory = AppearanceMemory() if model.config.model.appearance_memory else None
        # per-frame instance ids become tracks along G's own flow, as the frames come
        self.linker = (TrackLinker(max_width=LINK_WIDTH) if self.memory is not None
                       and not model.config.data.instance_tracks else None)
        self.reset()

    def reset(self) -> None:
        """Start a new sequence."""
        self.inputs: list[Tensor] = []
        self.frames: list[Tensor] = []
        self.levels: list[Tensor] | None = None  # with history_per_level: each level's frames, coarsest first
        if self.memory is not None:
            self.memory.reset()
        if self.linker is not None:
            self.linker.reset()

    @torch.no_grad()
    def __call__(self, item: Mapping[str, Tensor]) -> Tensor:
        """item: one frame's ``label`` (1, 1 or C, H, W), ``instance`` (1, 1, H, W), and ``image`` (1, 3, H, W)
        or ``features`` (1, feat_num, H, W) for a model with the feature encoder -> the frame (1, 3, H, W)."""
        if not self.inputs:  # a sequence starts: with model.warm_start, from a still scene of its first input
            for _ in range(self.model.config.model.warm_start):
                self._next_frame(item, anchored=False)
        return self._next_frame(item, anchored=True)

    def _next_frame(self, item: Mapping[str, Tensor], anchored: bool) -> Tensor:
        """The next frame, kept as history; anchored to the appearance memory (if any) unless not anchored."""
        batch = {k: v[:, None] for k, v in item.items()}
        inputs = self.model.generator_inputs(batch)[0]
        self.inputs = (self.inputs + [inputs])[-(self.history_length + 1):]
        window = torch.cat([self.inputs[0]] * (self.history_length + 1 - len(self.inputs)) + self.inputs, 1)
        self.window, self.output = window, None  # what this frame was made from and G's outputs, for diagnosis
        if len(self.frames) < self.history_length and self.model.first_frame_generator is not None:
            frame = self.model.first_frames(batch, 1)[:, 0]
        elif self.model.config.model.history_padding == "zeros" and len(self.inputs) <= self.history_length:
            # before G's first frame, which takes the first n_frames_G maps: made alone, not kept as history
            return self.clip_generator(window, None, self.model.foreground_masks(batch))["frame"][:, 0]
        else:
            history = self.levels or (torch.stack(self.frames, 1) if self.frames else None)
            out = self.clip_generator(window, history, self.model.foreground_masks(batch))
            frame, self.levels, self.output = out["frame"][:, 0], out.get("levels"), out
        if anchored and self.memory is not None:  # before it becomes history: the next frames warp the first look
            frame = self.memory(frame, self._tracks(item["instance"]))
        self.frames = (self.frames + [frame])[-self.history_length:]
        return frame

    def _tracks(self, instances: Tensor) -> Tensor:
        """This frame's track ids (1, 1, H, W): its instance ids, linked along G's flow (zero where G drew
        the frame without one) unless they are tracks already (data.instance_tracks)."""
        if self.linker is None:
            return instances
        flow = self.output["flow"][0, -1].float().cpu() if self.output and "flow" in self.output else None
        return self.linker(instances[0, 0].cpu(), flow).to(instances.device)[None, None]


def _items(source: Path, suffixes: tuple[str, ...]) -> Iterator[Path | np.ndarray]:
    """A folder's files in name order, or a video's decoded frames, one at a time."""
    if source.is_dir():
        yield from list_files(source, suffixes)
    elif source.exists():
        yield from iter_frames(source)
    else:
        raise DatasetError(f"{source} does not exist")


def render_sequence(model: Vid2Vid, source: str | os.PathLike, output: str | os.PathLike, *,
                    instances: str | os.PathLike | None = None, densepose: str | os.PathLike | None = None,
                    ground_truth: str | os.PathLike | None = None,
                    remap: Mapping[int, int] | None = None, style: int | None = None,
                    clusters: Mapping[int, np.ndarray] | None = None, size: tuple[int, int] | None = None,
                    side_by_side: bool = False, fps: float = 10, max_frames: int | None = None,
                    progress: bool = True, reset_memory_every: int | None = None) -> int:
    """Renders a sequence to OUTPUT/frames/NNNNN.png and OUTPUT/video.mp4; returns the frame count.

    Args:
        source: the inputs the model was trained on (config ``data.input``): a folder of label-id
            PNGs (labels), of pictures or a video (images), of frames or a video (canny: the edges
            are computed from them), of OpenPose JSON files (openpose), of DensePose IUV images
            (densepose), of landmark text files (face).
        instances: a folder of instance maps (labels); without it the label map serves (class boundaries).
        densepose: a folder of DensePose IUV images (openpose with data.densepose).
        ground_truth: the real frames (folder or video), shown beside the output and, for a model
            with the feature encoder and no ``style``, encoded for the instance features; face models
            need them (the edges of their background, the first frames' features).
        remap: label id -> label id, applied before rendering (semantic manipulation).
        style: with the feature encoder, every instance takes cluster ``style`` of its class from ``clusters``.
        size: (width, height) of the frames the poses were taken from (openpose without ground truth
            or DensePose images, whose sizes serve otherwise).
        side_by_side: each written frame is input | output [| ground truth].
        reset_memory_every: with model.appearance_memory, forget every object's first look each this many
            frames (None: keep it for the whole sequence; the memory's size does not grow with its length).
    """
    config, data = model.config, model.config.data
    kind = data.input
    if remap and kind != "labels":
        raise DatasetError(f"--remap edits label maps, but this model takes data.input={kind}")
    needs_features = model.encoder is not None
    if needs_features and style is None and ground_truth is None:
        raise DatasetError("this model has the feature encoder: pass a style (cluster index, with the clusters "
                           "of scripts/encode_features.py) or the ground-truth frames to encode")
    if style is not None and (not needs_features or clusters is None):
        raise DatasetError("a style needs a model with the feature encoder (model.use_features) and its clusters")
    if config.model.appearance_memory and config.model.use_instance and kind == "labels" and instances is None:
        raise DatasetError("this model keeps each object's first look by its instance id (model.appearance_memory):"
                           " pass the instance maps (--instances, e.g. DATASET/test_inst/<seq>)")
    if kind == "face" and ground_truth is None:
        raise DatasetError("face models need the real frames (--ground-truth): the edges of their background and "
                           "the first frames' features come from them")
    suffixes = LABEL_SUFFIXES.get(kind, IMAGE_SUFFIXES)
    sources = [_items(Path(source), suffixes)]
    sources.append(_items(Path(instances), IMAGE_SUFFIXES) if instances else itertools.repeat(None))
    sources.append(_items(Path(ground_truth), IMAGE_SUFFIXES) if ground_truth else itertools.repeat(None))
    sources.append(_items(Path(densepose), IMAGE_SUFFIXES) if densepose else itertools.repeat(None))
    device = next(model.generator.parameters()).device
    render = FrameByFrame(model)
    output = Path(output)
    (output / "frames").mkdir(parents=True, exist_ok=True)
    geometry = box = None
    count = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal geometry, box, count
        for index, (item, instance, real, iuv) in enumerate(tqdm(zip(*sources), desc="render", unit="frame",
                                                            disable=not progress)):
            if max_frames is not None and index >= max_frames:
                break
            if reset_memory_every and index and index % reset_memory_every == 0 and render.memory is not None:
                render.memory.reset()
            real = None if real is None else as_picture(real)
            if kind == "labels":
                picture, frame_size = None, _label_file_size(item)
            elif kind == "openpose":
                frame_size = real.size if real is not None else size or (iuv is not None and _image_size(iuv))
                if not frame_size:
                    raise DatasetError("OpenPose input needs the frame size: pass --size HxW, --ground-truth or "
                                       "--densepose")
                picture = Image.new("RGB", tuple(frame_size))  # the poses are drawn at the frame's size
            elif kind == "densepose":  # IUV images are the frames' size
                if not isinstance(item, Path):
                    raise DatasetError("DensePose input must be IUV image files, not a video (lossy codecs change "
                                       "the part indices)")
                frame_size = _image_size(item)
                picture = Image.new("RGB", frame_size)
            elif kind == "face":  # the frames cut to the square around the first frame's face
                landmarks = read_landmarks(item)
                box = box or face_crop_box(landmarks, real.size)
                picture = real.crop(box)
                frame_size = picture.size
            else:
                picture = as_picture(item)
                frame_size = picture.size
            if geometry is None:
                geometry = data.preprocessing.draw(tuple(frame_size), np.random.default_rng(0), train=False)
                data.preprocessing.check(tuple(frame_size), model.multiple, Path(source))
            # pictures are used as they are: hand the one read above, not its file to decode again
            if kind == "face":  # the maps, and the face's parts as the instances
                label, instance_map = (t[None] for t in face_input(landmarks, real, box, geometry,
                                                                   data.face_distance_maps,
                                                                   data.face_background_edges))
            else:
                label = frame_input(data, picture if kind == "images" else item, picture, geometry, iuv)[None]
                if remap:
                    label = remap_labels(label, remap)
                    if int(label.max()) >= config.model.label_nc:
                        raise DatasetError(f"the remapped labels reach {int(label.max())}, beyond model.label_nc "
                                           f"{config.model.label_nc}")
                if instance is not None:
                    of = f"the input {item}" if isinstance(item, Path) else "the input frame"
                    instance_map = ids_tensor(read_instance_ids(instance, frame_size, of), geometry)[None]
                else:
                    instance_map = label if kind == "labels" else torch.zeros(1, 1, *label.shape[-2:],
                                                                              dtype=torch.long)
            item_tensors = {"label": label.to(device), "instance": instance_map.to(device)}
            target = None
            if real is not None:
                target = to_tensor(geometry.apply(picture if kind == "face" else real))[None]
            if kind == "face":
                item_tensors["image"] = target.to(device)  # the first-frame generator encodes it
            if needs_features:
                if style is not None:
                    item_tensors["features"] = sample_feature_map(
                        item_tensors["label"], item_tensors["instance"], clusters, config.model.feat_num,
                        torch.Generator(), index=style)
                else:
                    item_tensors["image"] = target.to(device)
            made = render(item_tensors).cpu()
            picture_row = [made]
            if side_by_side:
                picture_row = [_shown_input(label, kind, config.model.label_nc), made] + (
                    [target] if target is not None else [])
            image = to_uint8_image(torch.cat(picture_row, 0))
            write_image(output / "frames" / f"{index:05d}.png", image)
            count += 1
            yield image

    write_video(output / "video.mp4", frames(), fps=fps)
    if count == 0:
        raise DatasetError(f"{source} gave no frames")
    if render.memory is not None and render.memory.forgotten:
        print(f"the appearance memory forgot {render.memory.forgotten} objects unseen the longest (it holds "
              f"{render.memory.capacity})")
    return count


def _shown_input(label: Tensor, kind: str, label_nc: int) -> Tensor:
    """A frame's input as a picture (1, 3, H, W) in -1..1: labels coloured, a face's lines, a pose's drawing
    (the last 3 channels, after DensePose's), an edge map in grey."""
    if kind == "labels":
        return colorize_labels(label, label_nc)
    if kind == "face":
        label = label[:, :1] * 2 - 1  # the maps are in 0 .. 1
    return label.float()[:, -3:].expand(-1, 3, -1, -1)


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, from its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from None


def _label_file_size(item: Path | np.ndarray) -> tuple[int, int]:
    """(width, height) of a label-id file, from its header; a clear error when a labels model is given pictures."""
    if not isinstance(item, Path):
        raise DatasetError("this model takes label maps (data.input=labels): --input must be a folder of label-id "
                           "PNGs, not a video")
    try:
        with Image.open(item) as image:  # the header only: the ids are decoded once, by frame_input
            mode, size = image.mode, image.size
    except OSError as e:
        raise DatasetError(f"cannot read label map {item}: {e}") from None
    if mode in ("RGB", "RGBA"):
        raise DatasetError(f"this model takes label maps (data.input=labels), but {item} is a colour picture; "
                           f"convert colour-coded labels to ids (vid2vid.data.label_maps.colors_to_ids)")
    return size
