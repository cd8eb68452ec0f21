"""Loading FlowNet2 checkpoints: the published ``*_checkpoint.pth.tar`` files
of NVIDIA/flownet2-pytorch (a dict with ``state_dict``), bare state dicts,
half-precision weights, and weights saved from DataParallel (``module.``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from flownet.models import MODELS
from vid2vid import serialization
from vid2vid.serialization import CheckpointError


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Everything a checkpoint file holds, loaded on the CPU: for the published
    files and those of :mod:`flownet.training` a dict with ``state_dict``, ``arch``,
    ``epoch`` and ``best_EPE``; for bare state dicts the tensors themselves."""
    path = os.fspath(path)
    # the published checkpoints store best_EPE as a numpy scalar beside the weights
    data = serialization.load(path, allow=serialization.NUMPY_SCALARS)
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path!r} holds a {type(data).__name__}, not a checkpoint dict")
    return dict(data)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, on the CPU, with any ``module.`` prefix removed."""
    data = read_checkpoint(path)
    state = data.get("state_dict", data)
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{os.fspath(path)!r} holds no state dict: expected a dict of tensors, or a dict with a 'state_dict' entry"
        )
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _layout(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def guess_variant(state: Mapping[str, torch.Tensor]) -> str | None:
    """The FlowNet2 variant whose parameter names and shapes the state dict matches, or best resembles."""
    given = {(k, tuple(v.shape)) for k, v in state.items()}
    best, best_score = None, 0.0
    for name, cls in MODELS.items():
        with torch.device("meta"):
            expected = set(_layout(cls()).items())
        score = len(given & expected) / len(given | expected)
        if score > best_score:
            best, best_score = name, score
    return best


def check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raises CheckpointError listing the first mismatches if state does not load strictly into model."""
    expected = _layout(model)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: {tuple(state[k].shape)} != {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            parts.append(f"{len(items)} {label} (first: {', '.join(items[:5])})")
    variant = guess_variant(state)
    hint = f"; it looks like a {variant} checkpoint" if variant and variant != type(model).__name__ else ""
    raise CheckpointError(f"{source} does not fit {type(model).__name__}: {'; '.join(parts)}{hint}")


def load_checkpoint(path: str | os.PathLike, model: nn.Module | str | None = None) -> nn.Module:
    """Loads a checkpoint into ``model`` (strictly) and returns the model.

    Args:
        path: a ``.pth.tar`` of NVIDIA/flownet2-pytorch or a state dict saved with ``torch.save``.
        model: a FlowNet2 model, the name of a variant (``"FlowNet2"``, ``"FlowNet2C"``, ...),
            or None to build the variant the checkpoint's parameters match.

    Raises:
        CheckpointError: the file is unreadable, holds no weights, or does not fit the model.
    """
    state = read_state_dict(path)
    if model is None:
        model = guess_variant(state) or "FlowNet2"
    if isinstance(model, str):
        if model not in MODELS:
            raise CheckpointError(f"unknown FlowNet2 variant {model!r}; one of {', '.join(MODELS)}")
        model = MODELS[model]()
    check_fits(model, state, repr(os.fspath(path)))
    model.load_state_dict(state, strict=True)
    return model
