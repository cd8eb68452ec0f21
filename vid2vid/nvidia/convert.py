"""A checkpoint folder of NVIDIA's pix2pixHD or vid2vid, with its test flags, into a run folder.

The run holds ``config.yaml`` and ``checkpoints/latest.pt`` (the networks alone, as
``scripts/export_weights.py`` keeps them): ``scripts/test_pix2pixhd.py --run RUN`` and
``scripts/render_vid2vid.py --checkpoint RUN`` render it, and a training script with
``train.init_from=RUN`` fine-tunes it. The weights keep NVIDIA's licence (CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from vid2vid.config import ConfigError, save_config
from vid2vid.data.images import DatasetError
from vid2vid.inference import INFERENCE_NETWORKS
from vid2vid.nvidia.flags import parse_flags
from vid2vid.nvidia.pix2pixhd import RESIZE_OR_CROP, convert_edge2face_first_frames, convert_pix2pixhd
from vid2vid.nvidia.vid2vid import convert_vid2vid
from vid2vid.training import unwrap
from vid2vid.training.checkpoint import LATEST, atomic_save


def _networks_file(folder: Path, epoch: str, name: str) -> Path | None:
    path = folder / f"{epoch}_net_{name}.pth"
    return path if path.is_file() else None


def convert_checkpoint(folder: str | os.PathLike, output: str | os.PathLike, original_flags: Sequence[str],
                       first_frame_generator: str | os.PathLike | None = None,
                       encoder: str | os.PathLike | None = None) -> str:
    """Converts NVIDIA's checkpoint ``folder`` (``latest_net_G.pth`` of pix2pixHD, or
    ``latest_net_G0.pth`` ... of vid2vid) into the run folder ``output``; returns a summary line.

    Args:
        original_flags: the original test script's flags (``--netG local --ngf 32 ...``).
        first_frame_generator: vid2vid's single-image generator (``--use_single_G``); for edge2face,
            its ``latest_net_E.pth`` and ``features.npy`` are read from beside it.
        encoder: pix2pixHD's feature encoder (default: ``latest_net_E.pth`` beside G), or edge2face's
            first-frame encoder.

    Raises:
        DatasetError: no generator in ``folder``; CheckpointError: unreadable or ill-fitting
        weights; ConfigError: flags this project cannot express.
    """
    folder, output = Path(folder), Path(output)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder; pass the folder that holds latest_net_G*.pth")
    probe = parse_flags("pix2pixhd", original_flags)
    epoch = probe.which_epoch
    if _networks_file(folder, epoch, "G0") is not None:
        return _convert_vid2vid(folder, output, original_flags, first_frame_generator, encoder)
    generator_file = _networks_file(folder, epoch, "G")
    if generator_file is None:
        found = sorted(p.name for p in folder.glob("*_net_*.pth"))
        raise DatasetError(f"{folder} has no {epoch}_net_G.pth (pix2pixHD) or {epoch}_net_G0.pth (vid2vid)"
                           + (f"; it has {', '.join(found)} (pass --which_epoch)" if found else ""))
    if first_frame_generator is not None:
        raise ConfigError(f"--first-frame-generator is for vid2vid checkpoints; {folder} holds pix2pixHD's "
                          f"{generator_file.name}")
    encoder_file = Path(encoder) if encoder else _networks_file(folder, epoch, "E")
    config, model = convert_pix2pixhd(generator_file, encoder_file, probe)
    _write_run(output, config, model.networks())
    return (f"pix2pixHD {config.model.netG} generator ({_count(model.generator):,} parameters) from "
            f"{generator_file}"
            + (f" and encoder from {encoder_file}" if model.encoder is not None else "")
            + (f"; ignored flags: {' '.join(probe.ignored)}" if probe.ignored else ""))


def _convert_vid2vid(folder: Path, output: Path, original_flags: Sequence[str],
                     first_frame_generator: str | os.PathLike | None, encoder: str | os.PathLike | None) -> str:
    """G0, G1 ... of ``folder`` (and the single-image generator, into OUTPUT/first_frame/) into a run."""
    flags = parse_flags("vid2vid", original_flags)
    files = []
    while (path := _networks_file(folder, flags.which_epoch, f"G{len(files)}")) is not None:
        files.append(path)
    first_run = None
    face = flags.dataset_mode == "face"
    if flags.use_single_G:
        if first_frame_generator is None:
            expected = ("checkpoints/edge2face_single/latest_net_G.pth, with latest_net_E.pth and features.npy "
                        "beside it" if face else
                        f"checkpoints/label2city_single/latest_net_G_{flags.loadSize}.pth for --loadSize "
                        f"{flags.loadSize}")
            raise DatasetError(f"--use_single_G: pass --first-frame-generator with the single-image generator "
                               f"(NVIDIA's {expected})")
        first_frame_generator = Path(first_frame_generator)
        if face and flags.no_dist_map:
            raise ConfigError("--use_single_G --no_dist_map: NVIDIA's edge2face first-frame generator takes the 15 "
                              "face maps, which a --no_dist_map model does not draw (the original cannot run it "
                              "either); convert with --no_first_img, as such a model is tested")
        if face:  # NVIDIA's load_single_G for 'face' datasets: G, E and the training faces' features
            single_config, single = convert_edge2face_first_frames(
                first_frame_generator, Path(encoder) if encoder else first_frame_generator.parent / "latest_net_E.pth",
                first_frame_generator.parent / "features.npy", flags.loadSize)
        else:  # NVIDIA's Vid2VidModelG.load_single_G: the one-hot labels without the edge channel
            first_flags = ["--label_nc", str(flags.label_nc), "--no_instance", "--loadSize", str(flags.loadSize),
                           "--resize_or_crop", RESIZE_OR_CROP.get(flags.resize_or_crop, flags.resize_or_crop)]
            single_config, single = convert_pix2pixhd(first_frame_generator, None,
                                                      parse_flags("pix2pixhd", first_flags))
        first_run = output / "first_frame"
        _write_run(first_run, single_config, single.networks())
    elif first_frame_generator is not None:
        raise ConfigError("--first-frame-generator is for models tested with --use_single_G; add that flag")
    config, model = convert_vid2vid(files, flags, first_run)
    _write_run(output, config, model.networks())
    return (f"vid2vid generator of {len(files)} scales ({_count(model.sequential_generator):,} parameters) from "
            f"{', '.join(p.name for p in files)}"
            + (f", first frames from {first_frame_generator}" if first_run else "")
            + (f"; ignored flags: {' '.join(flags.ignored)}" if flags.ignored else ""))


def _count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def _write_run(output: Path, config: object, networks: dict[str, nn.Module]) -> None:
    """config.yaml and checkpoints/latest.pt holding the inference networks (G, and E with features)."""
    (output / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_config(config, output / "config.yaml")
    atomic_save({"networks": {name: unwrap(net).state_dict() for name, net in networks.items()
                              if name in INFERENCE_NETWORKS}}, output / "checkpoints" / LATEST)
