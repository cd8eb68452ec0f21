"""Reading the checkpoint files people share, without running code from them.

A pickle can call any function it names, so ``torch.load(weights_only=False)``
of a crafted file runs the file's code. Every checkpoint this library reads
goes through :func:`load` instead: ``torch.load(weights_only=True)``, which
builds tensors and plain Python values only, plus the few extra types that a
known format holds, allowed by name for that format alone (below). Anything
else, and any malformed file, is a :class:`CheckpointError` whose message is one
line naming the file and what was wrong.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from vid2vid.errors import UserError


class CheckpointError(UserError):
    """A checkpoint file that is refused, malformed, or does not fit what reads it."""


def _numpy(name: str, obj: Any) -> list[tuple[Any, str]]:
    """obj under the names numpy 1.x (numpy.core) and 2.x (numpy._core) pickle it by."""
    return [(obj, f"numpy.core.multiarray.{name}"), (obj, f"numpy._core.multiarray.{name}")]


# The published FlowNet2 checkpoints (NVIDIA/flownet2-pytorch) store best_EPE
# as a numpy float64 scalar: a numpy scalar, built from a dtype.
NUMPY_SCALARS: list[Any] = [*_numpy("scalar", np._core.multiarray.scalar), np.dtype, np.dtypes.Float64DType,
                            np.dtypes.Float32DType]

# Runs of this library written before 2026-11 hold numpy's random state, a
# uint32 array (checkpoints now store it as a tensor).
NUMPY_RNG_ARRAYS: list[Any] = [*_numpy("_reconstruct", np._core.multiarray._reconstruct), np.ndarray, np.dtype,
                               np.dtypes.UInt32DType]

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error:\s*(.*?)(?:\n\s*\n|$)", re.S)


def _first_sentence(text: str) -> str:
    """The first sentence of a (long, multi-line) error message, on one line."""
    return re.split(r"(?<=\.) ", " ".join(text.split()), maxsplit=1)[0]


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", allow: Iterable[Any] = ()) -> Any:
    """The contents of a ``torch.save`` file, loaded with ``weights_only=True``.

    Args:
        path: the file (zip or legacy serialization).
        map_location: where tensors go.
        allow: the extra globals this format may hold (e.g. :data:`NUMPY_SCALARS`), as for
            ``torch.serialization.safe_globals``.

    Raises:
        CheckpointError: the file is missing, empty, truncated, not a PyTorch file, or its
            pickle names anything beyond tensors, plain values and ``allow``.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise CheckpointError(f"checkpoint {name} does not exist")
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(name, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's restricted unpickler: a function or class it does not allow, or bytes it cannot parse
        if found := _GLOBAL.search(str(e)):
            raise CheckpointError(f"refused to load {name}: its pickle calls {found.group(1)} (only tensors and "
                                  f"plain values are loaded, so that no file can run code)") from None
        reason = found.group(1) if (found := _UNPICKLER.search(str(e))) else str(e)
        raise CheckpointError(f"{name} is not a readable PyTorch checkpoint "
                              f"({_first_sentence(reason) or 'unpickling failed'})") from None
    except EOFError:
        raise CheckpointError(f"{name} is not a readable PyTorch checkpoint (empty or truncated)") from None
    except Exception as e:  # noqa: BLE001 - a malformed file can fail anywhere inside torch.load
        raise CheckpointError(f"{name} is not a readable PyTorch checkpoint ({type(e).__name__}: "
                              f"{_first_sentence(str(e))})") from None


def _safetensors() -> Any:
    """The optional safetensors package."""
    try:
        import safetensors
        import safetensors.torch
    except ImportError:
        raise CheckpointError("reading or writing .safetensors files needs the safetensors package "
                              "(pip install safetensors)") from None
    return safetensors


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str]) -> None:
    """Writes tensors (each copied, so that none share memory) and string metadata to a .safetensors file."""
    _safetensors().torch.save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                                   os.fspath(path), metadata=metadata)


def load_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu"
                     ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file: a format of bare tensors that holds no code at all."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise CheckpointError(f"weights file {name} does not exist")
    safetensors = _safetensors()
    try:
        with safetensors.safe_open(name, framework="pt", device=str(device)) as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # noqa: BLE001 - SafetensorError, OSError, ... for a malformed file
        raise CheckpointError(f"{name} is not a readable safetensors file ({_first_sentence(str(e))})") from None


def require_keys(state: Any, keys: Iterable[str], path: str | os.PathLike, what: str) -> None:
    """Raises CheckpointError unless state is a dict holding every one of keys."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{os.fspath(path)} holds a {type(state).__name__}, not {what}")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"{os.fspath(path)} is not {what}: it has no {', '.join(map(repr, missing))}")


__all__ = ["CheckpointError", "load", "require_keys", "save_safetensors", "load_safetensors", "NUMPY_SCALARS",
           "NUMPY_RNG_ARRAYS"]
