"""NVIDIA/vid2vid's generators G0 ... G{n-1} in this project's SequentialGenerator.

NVIDIA saves one network per spatial scale (``models/networks.py``): G0, a
CompositeGenerator at the coarsest scale, and G1 ... CompositeLocalGenerators, each
adding one finer scale. Their parts map onto ours level by level:

============================  ==============================================
NVIDIA (G0)                   SequentialGenerator
============================  ==============================================
model_down_seg / _img         coarsest.label_encoder / image_encoder
model_res_img + model_up_img  coarsest.image_decoder (blocks, then upsampling)
model_res_flow + _up_flow     coarsest.flow_decoder
indv_down, indv_res + _up     coarsest.foreground (encoder, decoder)
model_final_img/_flow/_w      heads[0].image / flow / mask (no flow parts with --no_flow)
indv_final                    heads[0].foreground
============================  ==============================================

and for G{s}: model_down_seg/_img -> finer[s-1].label_front/image_front, model_up_img/_flow
-> image_branch/flow_branch, indv_down/indv_up -> foreground_front/foreground_branch, the
final layers -> heads[s].
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from vid2vid.config import ConfigError
from vid2vid.data.face import face_channels
from vid2vid.data.sequences import SequenceDataConfig
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, Vid2VidModelConfig
from vid2vid.nvidia.flags import OriginalFlags
from vid2vid.nvidia.pix2pixhd import RESIZE_OR_CROP
from vid2vid.nvidia.state_dicts import (
    block_count,
    conv_weights,
    load_into,
    norm_kind,
    read_state_dict,
    rename_resnet_blocks,
)
from vid2vid.serialization import CheckpointError
from vid2vid.training import TrainConfig

_KEY = re.compile(r"^G(\d+)\.(\w+?)\.(\d+)\.(.*)$")
_HEADS = {"model_final_img": "image", "model_final_flow": "flow", "model_final_w": "mask", "indv_final": "foreground"}
_COARSEST = {"model_down_seg": "label_encoder", "model_down_img": "image_encoder", "model_res_img": "image_decoder",
             "model_res_flow": "flow_decoder", "indv_down": "foreground.0", "indv_res": "foreground.1"}
_COARSEST_UP = {"model_up_img": "image_decoder", "model_up_flow": "flow_decoder", "indv_up": "foreground.1"}
_FINER = {"model_down_seg": "label_front", "model_down_img": "image_front", "model_up_img": "image_branch",
          "model_up_flow": "flow_branch", "indv_down": "foreground_front", "indv_up": "foreground_branch"}


def generator_renamer(n_blocks: int):
    """The key map from ``G{s}.<NVIDIA key>`` to SequentialGenerator keys; the coarsest level's
    upsampling layers follow its n_blocks // 2 residual blocks (n_blocks for the foreground's)."""

    def rename(key: str) -> str:
        match = _KEY.match(key)
        if match is None:
            return key
        scale, part, index, rest = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
        if part in _HEADS:
            target = f"heads.{scale}.{_HEADS[part]}.{index}"
        elif scale == 0 and part in _COARSEST:
            target = f"coarsest.{_COARSEST[part]}.{index}"
        elif scale == 0 and part in _COARSEST_UP:
            offset = n_blocks if part == "indv_up" else n_blocks // 2
            target = f"coarsest.{_COARSEST_UP[part]}.{index + offset}"
        elif scale > 0 and part in _FINER:
            target = f"finer.{scale - 1}.{_FINER[part]}.{index}"
        else:
            return key
        return rename_resnet_blocks(f"{target}.{rest}")

    return rename


def merged_generators(states: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """G0 ... G{n-1}'s state dicts as one, each key prefixed with its ``G{s}.``."""
    return {f"G{s}.{key}": value for s, state in enumerate(states) for key, value in state.items()}


def infer_generators(states: list[dict[str, Tensor]]) -> dict[str, object]:
    """What G0 ... G{n-1} tell of their flags: n_scales_spatial, ngf, n_frames_G, n_downsample_G,
    n_blocks, n_blocks_local, fg, no_flow, norm and ``input_channels`` (one frame's label channels)."""
    g0 = states[0]
    seg, img = g0.get("model_down_seg.1.weight"), g0.get("model_down_img.1.weight")
    if seg is None or img is None:
        return {}
    n_frames_G = img.shape[1] // 3 + 1
    downsampling = conv_weights(g0, "model_down_seg.")[1:]  # the stem, then the stride-2 convs
    inferred: dict[str, object] = {
        "n_scales_spatial": len(states), "ngf": seg.shape[0], "n_frames_G": n_frames_G,
        "input_channels": seg.shape[1] // n_frames_G, "n_downsample_G": len(downsampling),
        "n_blocks": block_count(g0, "model_down_seg.") + block_count(g0, "model_res_img."),
        "fg": any(k.startswith("indv_") for k in g0),
        "no_flow": not any(k.startswith("model_final_flow.") for k in g0),
        "norm": norm_kind(g0),
    }
    if len(states) > 1:
        inferred["n_blocks_local"] = block_count(states[1], "model_up_img.")
    return inferred


def vid2vid_config(flags: OriginalFlags, states: list[dict[str, Tensor]], first_frame_run: Path | None) -> Vid2VidConfig:
    """This project's config for an NVIDIA vid2vid run: the flags given, else what the weights say,
    else the original's defaults; as its test.py renders (batch norm with each frame's statistics,
    each level's own history, the first-frame run's frames starting G's history, or with --no_first_img
    a history of black frames).

    Raises:
        ConfigError: flags this project cannot express yet.
    """
    inferred = infer_generators(states)
    value = lambda name: flags.resolve(name, inferred)  # noqa: E731
    data = _data_config(flags)
    norm = value("norm")
    try:  # the flags' values checked as any config's are
        foreground = tuple(int(c) for c in str(flags.fg_labels).split(",") if c.strip()) if value("fg") else ()
        model = Vid2VidModelConfig(
            label_nc=flags.label_nc, use_instance=flags.use_instance, output_nc=3, ngf=value("ngf"),
            norm="batch_frame" if norm == "batch" else norm, n_frames_G=value("n_frames_G"),
            n_downsample_G=value("n_downsample_G"), n_blocks=value("n_blocks"),
            n_scales_spatial=value("n_scales_spatial"), n_blocks_local=value("n_blocks_local"),
            foreground_classes=foreground, predict_flow=not (value("no_flow") or flags.openpose_only),
            history_per_level=True, training_history="real",
            history_padding="zeros" if flags.no_first_img else "repeat",
            first_frame="pix2pixhd" if first_frame_run is not None else "generator",
            first_frame_run=None if first_frame_run is None else str(first_frame_run.resolve()),
            ndf=64, num_D=2, n_scales_temporal=3, flow_source="files")
        config = Vid2VidConfig(model=model, data=data, train=TrainConfig())
    except ValueError as e:
        raise ConfigError(f"the original's flags: {e}") from None
    return config


def _data_config(flags: OriginalFlags) -> SequenceDataConfig:
    """The inputs as the original's dataset made them: label maps, pictures, or NVIDIA's PoseDataset
    (DensePose then OpenPose maps, or either alone; the middle half of frames scaled to --loadSize high)."""
    preprocess = RESIZE_OR_CROP.get(flags.resize_or_crop, flags.resize_or_crop)
    if flags.dataset_mode == "pose":
        alone = " --openpose_only" if flags.openpose_only else " --densepose_only" if flags.densepose_only else ""
        if flags.openpose_only and flags.densepose_only or flags.input_nc != (3 if alone else 6):
            raise ConfigError(f"--dataset_mode pose --input_nc {flags.input_nc}{alone}: NVIDIA's pose dataset makes "
                              f"6 channels (DensePose and OpenPose), or 3 with one of --openpose_only and "
                              f"--densepose_only")
        if preprocess != "scale_height":
            raise ConfigError(f"--dataset_mode pose --resize_or_crop {flags.resize_or_crop}: pose models are "
                              f"supported with --resize_or_crop scaleHeight (NVIDIA's test scripts)")
        kind, preprocess = "densepose" if flags.densepose_only else "openpose", "scale_height_and_middle_half"
    elif flags.dataset_mode == "face":
        channels = face_channels(not flags.no_dist_map)
        if flags.input_nc != channels:
            raise ConfigError(f"--dataset_mode face --input_nc {flags.input_nc}"
                              f"{' --no_dist_map' if flags.no_dist_map else ''}: NVIDIA's face dataset makes "
                              f"{channels} channels (the edges{'' if flags.no_dist_map else ' and 14 distance maps'})")
        kind = "face"
    elif flags.label_nc:
        kind = "labels"
    elif flags.input_nc == 3:
        kind = "images"
    else:
        raise ConfigError(f"--dataset_mode {flags.dataset_mode} --label_nc 0 --input_nc {flags.input_nc}: converting "
                          f"vid2vid models with inputs other than label maps, 3-channel pictures, the pose "
                          f"dataset's and the face dataset's is not supported")
    try:
        return SequenceDataConfig(input=kind, densepose=kind == "openpose" and not flags.openpose_only,
                                  openpose_basic=flags.basic_point_only,
                                  face_distance_maps=not flags.no_dist_map,
                                  face_background_edges=not flags.no_canny_edge,
                                  preprocess=preprocess, load_size=flags.loadSize, crop_size=flags.fineSize, flip=False)
    except ValueError as e:
        raise ConfigError(f"the original's flags: {e}") from None


def _hint(model: Vid2VidModelConfig, channels: int) -> str:
    return (f"{channels} input channels per frame (--label_nc {model.label_nc}"
            f"{', --use_instance' if model.use_instance else ''}), --n_frames_G {model.n_frames_G}, --ngf {model.ngf}, "
            f"--n_downsample_G {model.n_downsample_G}, --n_blocks {model.n_blocks}, --n_scales_spatial "
            f"{model.n_scales_spatial}, --n_blocks_local {model.n_blocks_local}"
            f"{', --fg' if model.foreground_classes else ''}{'' if model.predict_flow else ', --no_flow'}")


def convert_vid2vid(generator_files: list[Path], flags: OriginalFlags, first_frame_run: Path | None
                    ) -> tuple[Vid2VidConfig, Vid2Vid]:
    """The config and G of an NVIDIA vid2vid checkpoint (G0 ... G{n-1} files, coarsest first).

    Raises:
        CheckpointError: unreadable files, a pix2pixHD generator among them, or weights that do not
            fit the flags (key and shapes named); ConfigError: flags not supported.
    """
    states = []
    for path in generator_files:
        state = read_state_dict(path)
        if not any(key.startswith("model_down_seg.") for key in state):
            raise CheckpointError(f"{path} is not a vid2vid generator (it has no model_down_seg.* tensors; a "
                                  f"pix2pixHD or single-image generator is latest_net_G.pth, converted as pix2pixHD)")
        states.append(state)
    config = vid2vid_config(flags, states, first_frame_run)
    if config.model.n_scales_spatial != len(states):
        raise CheckpointError(f"--n_scales_spatial {config.model.n_scales_spatial}, but the folder has "
                              f"{len(states)} generators ({', '.join(p.name for p in generator_files)})")
    model = Vid2Vid.for_inference(config, torch.device("cpu"))
    where = generator_files[0].parent / f"{generator_files[0].name.rsplit('G0', 1)[0]}G*.pth"
    load_into(model.sequential_generator, merged_generators(states), generator_renamer(config.model.n_blocks),
              where, _hint(config.model, config.input_channels))
    return config, model
