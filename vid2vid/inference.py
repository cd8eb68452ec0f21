"""Rendering a folder of images with a trained image-to-image model, and
finding what a training run saved."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vid2vid import serialization
from vid2vid.data.aligned import split_pair
from vid2vid.data.images import DatasetError, list_images, read_rgb, to_tensor
from vid2vid.serialization import CheckpointError
from vid2vid.training.checkpoint import LATEST
from vid2vid.training.distributed import unwrap
from vid2vid.training.ema import AVERAGE_NAME
from vid2vid.training.logging import save_picture_row, write_html_index


# What rendering needs of a run: the generator and, where the config has them,
# the feature encoder and its bank of training features. An exported weights file holds these alone.
INFERENCE_NETWORKS = ("G", "E", "bank")
EXPORT_FORMAT = "vid2vid-networks"


def find_checkpoint(run_or_file: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint file, the run's config.yaml) for a run folder, a checkpoint inside
    one (RUN/checkpoints/*.pt), or a weights file beside a config.yaml
    (:func:`export_weights`)."""
    path = Path(run_or_file)
    checkpoint = path / "checkpoints" / LATEST if path.is_dir() else path
    if not checkpoint.is_file():
        raise DatasetError(f"no checkpoint at {checkpoint}; pass a run folder (with checkpoints/{LATEST}), "
                           f"a checkpoint file or a .safetensors file")
    for config in (checkpoint.parent / "config.yaml", checkpoint.parent.parent / "config.yaml"):
        if config.is_file():
            return checkpoint, config
    raise DatasetError(f"no config.yaml beside {checkpoint} or in its run folder: the run's config tells how to "
                       f"rebuild the networks")


def load_networks(checkpoint: Path, device: torch.device) -> dict[str, dict[str, Tensor]]:
    """The network state dicts, by network name, of a trainer checkpoint or an exported .safetensors file."""
    if checkpoint.suffix == ".safetensors":
        tensors, metadata = serialization.load_safetensors(checkpoint, device)
        if metadata.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{checkpoint} is not a weights file of scripts/export_weights.py "
                                  f"(its metadata has no format {EXPORT_FORMAT!r})")
        networks: dict[str, dict[str, Tensor]] = {}
        for key, tensor in tensors.items():
            name, _, parameter = key.partition(".")
            networks.setdefault(name, {})[parameter] = tensor
        return networks
    state = serialization.load(checkpoint, device)
    serialization.require_keys(state, ["networks"], checkpoint, "a checkpoint of the vid2vid trainer")
    networks = dict(state["networks"])
    if AVERAGE_NAME in networks:  # trained with train.ema_halflife: the average renders
        networks["G"] = networks.pop(AVERAGE_NAME)
    return networks


def restore(task: Any, checkpoint: Path, device: torch.device) -> None:
    """Loads a task's networks (its ``networks()``, unwrapped from DDP) from a trainer checkpoint
    or an exported weights file, which must hold every inference network the task has."""
    saved = load_networks(checkpoint, device)
    expected = {name: unwrap(network) for name, network in task.networks().items()}
    needed = {name for name in expected if name in INFERENCE_NETWORKS}
    if not needed <= set(saved) or not set(saved) <= set(expected):
        raise CheckpointError(f"{checkpoint} holds the networks {', '.join(sorted(saved))}, but its config builds "
                              f"{', '.join(sorted(expected))}: it was saved by another model")
    for name, state in saved.items():
        try:
            expected[name].load_state_dict(state)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[:3]
            raise CheckpointError(f"{checkpoint}: network {name} does not fit its config ({' '.join(first)})") \
                from None


def export_weights(run: str | os.PathLike, output: str | os.PathLike) -> list[str]:
    """Writes the inference networks of a run (or checkpoint) to a .safetensors file;
    returns their names. Rendering takes the file where a config.yaml sits beside
    it, or in the run folder's checkpoints/."""
    checkpoint, _ = find_checkpoint(run)
    saved = load_networks(checkpoint, torch.device("cpu"))
    names = [name for name in INFERENCE_NETWORKS if name in saved]
    tensors = {f"{name}.{key}": value for name in names for key, value in saved[name].items()}
    serialization.save_safetensors(tensors, output, {"format": EXPORT_FORMAT, "networks": ",".join(names),
                                                     "source": str(checkpoint)})
    return names


def load_run(run: str | os.PathLike, config_cls: type, make_task: Callable[[Any, torch.device], Any],
             device: torch.device) -> tuple[Any, Any, Path]:
    """(task with the run's trained networks, the run's config, the run folder) for a run
    folder or a checkpoint in one; make_task(config, device) builds the untrained task."""
    from vid2vid.config import load_config

    checkpoint, config_path = find_checkpoint(run)
    config = load_config(config_cls, config_path)
    task = make_task(config, device)
    restore(task, checkpoint, device)
    return task, config, config_path.parent


def render_folder(translate: Callable[[Tensor], Tensor], inputs: str | os.PathLike, output: str | os.PathLike, *,
                  side_by_side: bool = False, swap: bool = False, device: torch.device = torch.device("cpu")) -> int:
    """Runs translate on every image of a folder (or on one image file); writes
    OUTPUT/images/<name>_{input,output[,target]}.png and OUTPUT/index.html. With side_by_side the
    images are A|B pairs: A is the input and B the target shown beside the output (swap: the other
    way round). Returns the number of images."""
    files = [Path(inputs)] if Path(inputs).is_file() else list_images(Path(inputs))
    if not files:
        raise DatasetError(f"no images in {inputs}")
    images_dir = Path(output) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in files:
        image = read_rgb(path)
        target = None
        if side_by_side:
            image, target = split_pair(image, path)
            if swap:
                image, target = target, image
        x = to_tensor(image).unsqueeze(0).to(device)
        pictures = {"input": x, "output": translate(x)}
        if target is not None:
            pictures["target"] = to_tensor(target).unsqueeze(0)
        rows.append((path.name, save_picture_row(images_dir, path.stem, pictures)))
    write_html_index(Path(output) / "index.html", f"Results: {Path(inputs).name}", rows)
    return len(files)
