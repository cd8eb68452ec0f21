"""Rendering a folder of images with a trained image-to-image model, and
finding what a training run saved."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vid2vid.data.aligned import split_pair
from vid2vid.data.images import DatasetError, list_images, read_rgb, to_tensor
from vid2vid.training.checkpoint import LATEST
from vid2vid.training.logging import save_picture_row, write_html_index


def find_checkpoint(run_or_file: str | os.PathLike) -> tuple[Path, Path]:
    """(checkpoint file, the run's config.yaml) for a run folder or a checkpoint inside one."""
    path = Path(run_or_file)
    checkpoint = path / "checkpoints" / LATEST if path.is_dir() else path
    if not checkpoint.is_file():
        raise DatasetError(f"no checkpoint at {checkpoint}; pass a run folder (with checkpoints/{LATEST}) "
                           f"or a checkpoint file")
    config = checkpoint.parent.parent / "config.yaml"
    if not config.is_file():
        raise DatasetError(f"{config} is missing: the run's config tells how to rebuild the networks")
    return checkpoint, config


def load_networks(checkpoint: Path, device: torch.device) -> dict[str, Any]:
    """The network state dicts of a trainer checkpoint."""
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if not isinstance(state, dict) or "networks" not in state:
        raise DatasetError(f"{checkpoint} is not a checkpoint of the vid2vid trainer")
    return state["networks"]


def restore(task: Any, checkpoint: Path, device: torch.device) -> None:
    """Loads every network of a task (its ``networks()``) from a trainer checkpoint."""
    saved = load_networks(checkpoint, device)
    expected = task.networks()
    if set(saved) != set(expected):
        raise DatasetError(f"{checkpoint} holds the networks {', '.join(sorted(saved))}, but its config builds "
                           f"{', '.join(sorted(expected))}: it was saved by another model")
    for name, net in expected.items():
        try:
            net.load_state_dict(saved[name])
        except RuntimeError as e:
            first = str(e).strip().splitlines()[:3]
            raise DatasetError(f"{checkpoint}: network {name} does not fit its config ({' '.join(first)})") from None


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
    """Runs translate on every image of a folder; writes OUTPUT/images/<name>_{input,output[,target]}.png
    and OUTPUT/index.html. With side_by_side the images are A|B pairs: A is the input and B the
    target shown beside the output (swap: the other way round). Returns the number of images."""
    files = list_images(Path(inputs))
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
