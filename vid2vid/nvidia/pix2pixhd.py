"""NVIDIA/pix2pixHD's G (global or local) and E in this project's pix2pixHD.

Their layouts (NVIDIA/pix2pixHD ``models/networks.py``): GlobalGenerator is one
``model`` Sequential, which our GlobalGenerator repeats layer for layer; LocalEnhancer
keeps the global generator without its output layers as ``model`` and each enhancer n
as ``model{n}_1`` (front end) and ``model{n}_2`` (blocks, upsampling, and the output layers
at the last): our ``global_body``, ``front[n-1]``, ``back[n-1]``. Our LocalEnhancer also
has the global generator's own output layers (``global_head``) for training G1 alone;
NVIDIA's file has none, so they keep their initial weights.

NVIDIA/vid2vid's edge2face first frames come from a pix2pixHD-like single-image generator
(``Global_with_z``: ``model_downsample``, ``model_resnet``, ``model_upsample``,
``model_upsample_conv``; our FeatureInjectedGenerator's ``front``, ``blocks``, ``back``, ``head``),
its encoder E, and ``features.npy``, every training face's features (our feature bank).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vid2vid.config import ConfigError
from vid2vid.data.face import FACE_CHANNELS
from vid2vid.data.labels import LabelDataConfig
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, Pix2PixHDModelConfig
from vid2vid.nvidia.flags import OriginalFlags
from vid2vid.nvidia.state_dicts import (
    block_count,
    conv_weights,
    load_into,
    norm_kind,
    read_npy_object,
    read_state_dict,
    rename_resnet_blocks,
)
from vid2vid.serialization import CheckpointError
from vid2vid.training import TrainConfig

_ENHANCER = re.compile(r"^model(\d+)_([12])\.")
RESIZE_OR_CROP = {"scaleWidth": "scale_width", "scaleWidth_and_crop": "scale_width_and_crop", "scaleHeight": "scale_height"}
"""vid2vid's spellings of the preprocessing modes; pix2pixHD's are ours"""


def _rename_local(key: str) -> str:
    if match := _ENHANCER.match(key):
        part = "front" if match.group(2) == "1" else "back"
        return rename_resnet_blocks(f"{part}.{int(match.group(1)) - 1}.{key[match.end():]}")
    return rename_resnet_blocks("global_body." + key.removeprefix("model."))


def infer_generator(state: dict[str, Tensor]) -> dict[str, object]:
    """What pix2pixHD's G file tells of its flags: netG, ngf, n_downsample_global,
    n_blocks_global, n_local_enhancers, n_blocks_local, norm, output_nc, and ``input_channels``
    (label, instance-edge and feature channels together)."""
    enhancers = {int(m.group(1)) for key in state if (m := _ENHANCER.match(key))}
    convs = conv_weights(state, "model.")
    first_block = min((int(k.split(".")[1]) for k in state if k.startswith("model.") and ".conv_block." in k),
                      default=None)
    if not convs or first_block is None:
        return {}
    downsampling = [i for i, _ in convs if i < first_block][1:]  # the stem, then the stride-2 convs
    inferred: dict[str, object] = {
        "netG": "local" if enhancers else "global",
        "n_downsample_global": len(downsampling),
        "n_blocks_global": block_count(state, "model."),
        "norm": norm_kind(state),
    }
    stem = convs[0][1]
    if enhancers:
        n = max(enhancers)
        inferred.update(n_local_enhancers=n, n_blocks_local=block_count(state, f"model{n}_2."))
        front = conv_weights(state, f"model{n}_1.")
        if front:
            inferred.update(ngf=front[0][1].shape[0], input_channels=front[0][1].shape[1])
        back = conv_weights(state, f"model{n}_2.")
        if back:
            inferred["output_nc"] = back[-1][1].shape[0]
    else:
        inferred.update(ngf=stem.shape[0], input_channels=stem.shape[1], output_nc=convs[-1][1].shape[0])
    return inferred


def pix2pixhd_config(flags: OriginalFlags, state: dict[str, Tensor]) -> Pix2PixHDConfig:
    """This project's config for an NVIDIA pix2pixHD run: the flags given, else what the
    weights say, else the original's defaults; test-time data settings (no flip).

    Raises:
        ConfigError: flags this project cannot express.
    """
    inferred = infer_generator(state)
    value = lambda name: flags.resolve(name, inferred)  # noqa: E731
    use_features = bool(flags.instance_feat or flags.label_feat)
    if flags.label_nc == 0 and flags.input_nc != 3:
        raise ConfigError(f"--label_nc 0 --input_nc {flags.input_nc}: inputs without labels must be RGB images "
                          f"(--input_nc 3)")
    if flags.netG not in ("global", "local") and "netG" in flags.given:
        raise ConfigError(f"--netG {flags.netG}: pix2pixHD's generators are global and local")
    try:  # the flags' values checked as any config's are
        model = Pix2PixHDModelConfig(
            label_nc=flags.label_nc, use_instance=not flags.no_instance, output_nc=value("output_nc"),
            ngf=value("ngf"), norm=value("norm"), netG=value("netG"), n_downsample_global=value("n_downsample_global"),
            n_blocks_global=value("n_blocks_global"), n_local_enhancers=value("n_local_enhancers"),
            n_blocks_local=value("n_blocks_local"), use_features=use_features, feat_num=flags.feat_num, nef=flags.nef,
            n_downsample_E=flags.n_downsample_E, lambda_vgg=10.0, vgg_required=False)
        mode = RESIZE_OR_CROP.get(flags.resize_or_crop, flags.resize_or_crop)
        data = LabelDataConfig(preprocess=mode, load_size=flags.loadSize, crop_size=flags.fineSize, flip=False)
    except ValueError as e:
        raise ConfigError(f"the original's flags: {e}") from None
    return Pix2PixHDConfig(model=model, data=data, train=TrainConfig())  # NVIDIA's niter 100, niter_decay 100


def _input_hint(config: Pix2PixHDModelConfig) -> str:
    parts = [f"--label_nc {config.label_nc}" if config.label_nc else "--label_nc 0 (RGB input)"]
    parts.append("--no_instance" if not config.use_instance else "instance edges")
    if config.use_features:
        parts.append(f"--feat_num {config.feat_num}")
    parts += [f"--netG {config.netG}", f"--ngf {config.ngf}", f"--n_downsample_global {config.n_downsample_global}",
              f"--n_blocks_global {config.n_blocks_global}"]
    if config.netG == "local":
        parts += [f"--n_local_enhancers {config.n_local_enhancers}", f"--n_blocks_local {config.n_blocks_local}"]
    return ", ".join(parts)


def convert_pix2pixhd(generator_file: Path, encoder_file: Path | None, flags: OriginalFlags
                      ) -> tuple[Pix2PixHDConfig, Pix2PixHD]:
    """The config and the networks (G, and E with features) of an NVIDIA pix2pixHD checkpoint.

    Raises:
        CheckpointError: unreadable files, or weights that do not fit the flags (key and shapes named).
        ConfigError: flags this project cannot express.
    """
    state = read_state_dict(generator_file)
    if any(key.startswith(("model_down_seg.", "model_down_img.")) for key in state):
        raise CheckpointError(f"{generator_file} is a vid2vid generator (its tensors are model_down_seg.*, "
                              f"model_down_img.*), not pix2pixHD's: convert its folder's latest_net_G0.pth as vid2vid")
    if "model_downsample.1.weight" in state:
        raise CheckpointError(f"{generator_file} is edge2face's first-frame generator (Global_with_z): pass it as "
                              f"--first-frame-generator when converting the edge2face vid2vid checkpoint")
    config = pix2pixhd_config(flags, state)
    model = Pix2PixHD.for_inference(config, torch.device("cpu"))
    hint = _input_hint(config.model)
    if config.model.netG == "local":
        load_into(model.generator, state, _rename_local, generator_file, hint, keep_initial=("global_head.",))
    else:
        load_into(model.generator, state, rename_resnet_blocks, generator_file, hint)
    if model.encoder is not None:
        if encoder_file is None:
            raise ConfigError("--instance_feat/--label_feat: the feature encoder's weights (latest_net_E.pth) are "
                              "needed; pass --encoder FILE or put it in the checkpoint folder")
        load_into(model.encoder, read_state_dict(encoder_file), rename_resnet_blocks, encoder_file,
                  f"--nef {config.model.nef}, --n_downsample_E {config.model.n_downsample_E}, "
                  f"--feat_num {config.model.feat_num}")
    return config, model


_INJECTED = {"model_downsample.": "front.", "model_resnet.": "blocks.", "model_upsample.": "back.",
             "model_upsample_conv.": "head."}


def _rename_injected(key: str) -> str:
    part, rest = key.split(".", 1)
    return rename_resnet_blocks(_INJECTED.get(part + ".", part + ".") + rest)


def _feature_bank(path: Path, feat_num: int) -> Tensor:
    """features.npy ({part label: (images, feat_num + 1) array}) as a (parts, images, feat_num) tensor."""
    features = read_npy_object(path)
    if not isinstance(features, dict) or not features or not all(isinstance(v, np.ndarray) for v in features.values()):
        raise CheckpointError(f"{path} is not NVIDIA's features.npy (a dict from part labels to feature arrays)")
    parts = max(int(k) for k in features) + 1
    shapes = {int(k): v.shape for k, v in features.items()}
    images = shapes.get(parts - 1, (0,))[0]
    if sorted(shapes) != list(range(parts)) or any(len(v) != 2 or v[0] != images or v[1] < feat_num
                                                   for v in shapes.values()):
        raise CheckpointError(f"{path}: expected features of parts 0 .. {parts - 1}, each (images, >= {feat_num}) "
                              f"for the same images; found {shapes}")
    return torch.from_numpy(np.stack([features[k][:, :feat_num] for k in range(parts)]).astype(np.float32))


def convert_edge2face_first_frames(generator_file: Path, encoder_file: Path, features_file: Path, load_size: int
                                   ) -> tuple[Pix2PixHDConfig, Pix2PixHD]:
    """The pix2pixHD run that makes edge2face's first frames: NVIDIA's ``edge2face_single`` G
    (Global_with_z over the 15 face maps), E, and features.npy (structure read from the weights).

    Raises:
        CheckpointError: unreadable or ill-fitting files, each named.
    """
    state = read_state_dict(generator_file)
    stem = state.get("model_downsample.1.weight")
    if stem is None or stem.shape[1] <= FACE_CHANNELS:
        raise CheckpointError(f"{generator_file} is not edge2face's single-image generator (Global_with_z: "
                              f"model_downsample.1.weight of more than {FACE_CHANNELS} input channels)")
    encoder = read_state_dict(encoder_file)
    encoder_convs = conv_weights(encoder, "model.")
    if not encoder_convs:
        raise CheckpointError(f"{encoder_file} is not a feature encoder (its tensors are not model.*)")
    feat_num = stem.shape[1] - FACE_CHANNELS
    bank = _feature_bank(features_file, feat_num)
    n_down_E = sum(1 for _, w in encoder_convs if w.shape[-1] == 3) // 2  # as many 3x3 convs up as down
    try:
        model = Pix2PixHDModelConfig(
            label_nc=0, input_nc=FACE_CHANNELS, use_instance=False, output_nc=3, ngf=stem.shape[0], norm="instance",
            netG="global_with_features", n_downsample_global=len(conv_weights(state, "model_downsample.")) - 1,
            n_blocks_global=block_count(state, "model_resnet."), use_features=True, feat_num=feat_num,
            nef=encoder_convs[0][1].shape[0], n_downsample_E=n_down_E, feature_bank=tuple(bank.shape[:2]),
            lambda_vgg=10.0, vgg_required=False)
        data = LabelDataConfig(preprocess="scale_width", load_size=load_size, flip=False)
    except ValueError as e:
        raise ConfigError(f"the original's flags: {e}") from None
    config = Pix2PixHDConfig(model=model, data=data, train=TrainConfig())
    network = Pix2PixHD.for_inference(config, torch.device("cpu"))
    load_into(network.generator, state, _rename_injected, generator_file,
              f"{FACE_CHANNELS} face maps + {feat_num} features, ngf {model.ngf}")
    load_into(network.encoder, encoder, rename_resnet_blocks, encoder_file,
              f"--nef {model.nef}, {n_down_E} downsamplings, --feat_num {feat_num}")
    network.bank.bank.copy_(bank)
    return config, network
