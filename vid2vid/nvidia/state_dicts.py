"""Loading NVIDIA's saved networks into this project's modules: reading the file safely,
renaming its tensors, and checking every shape against the network the flags describe."""

from __future__ import annotations

import importlib
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from vid2vid import serialization
from vid2vid.serialization import CheckpointError

Rename = Callable[[str], str]

# NVIDIA's ResnetBlock pads in layers of their own ([pad, conv, norm, relu, pad, conv, norm]);
# ours pads inside the convs ([conv, norm, relu, conv, norm]).
_BLOCK_LAYER = {"1": "0", "2": "1", "5": "3", "6": "4"}
_BLOCK = re.compile(r"\.conv_block\.(\d+)\.")
_NORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def rename_resnet_blocks(key: str) -> str:
    """``...conv_block.5.weight`` -> ``...block.3.weight``."""
    return _BLOCK.sub(lambda m: f".block.{_BLOCK_LAYER.get(m.group(1), 'x' + m.group(1))}.", key)


def conv_weights(state: dict[str, Tensor], prefix: str) -> list[tuple[int, Tensor]]:
    """(layer index, weight) of the convolutions directly in NVIDIA's Sequential ``prefix``, in order
    (those inside residual blocks are under ``<index>.conv_block.``)."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.weight$")
    found = [(int(m.group(1)), value) for key, value in state.items() if (m := pattern.match(key)) and value.dim() == 4]
    return sorted(found, key=lambda pair: pair[0])


def block_count(state: dict[str, Tensor], prefix: str) -> int:
    """Residual blocks directly in NVIDIA's Sequential ``prefix``."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.conv_block\.")
    return len({m.group(1) for key in state if (m := pattern.match(key))})


def norm_kind(state: dict[str, Tensor]) -> str:
    """"batch" when the network has affine norm layers (1-D weights), else "instance"."""
    return "batch" if any(v.dim() == 1 and k.endswith(".weight") for k, v in state.items()) else "instance"


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A saved ``state_dict`` (NVIDIA's ``torch.save(net.state_dict())``), loaded without running code.

    Raises:
        CheckpointError: missing, truncated or not a PyTorch file, or not a dict of tensors.
    """
    state = serialization.load(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a saved network (a state_dict of tensors)")
    return {key.removeprefix("module."): value for key, value in state.items()}  # saved from DataParallel


def load_into(network: nn.Module, state: dict[str, Tensor], rename: Rename, path: Path, flags_hint: str,
              keep_initial: tuple[str, ...] = ()) -> None:
    """Loads NVIDIA's tensors into ``network`` under ``rename``d keys, every shape checked.

    Old checkpoints keep running statistics of instance-norm layers (NVIDIA's loader skips
    them; they do not affect the output, see vid2vid's note in :mod:`vid2vid.nvidia.convert`):
    these are dropped with one warning. Batch norm's ``num_batches_tracked``, missing from files
    saved before PyTorch 0.4.1, starts at 0. Our tensors under the prefixes ``keep_initial``
    (layers the original does not have) keep the network's own values.

    Raises:
        CheckpointError: a tensor the network lacks, a shape that differs (the key and both
            shapes named, with the flags that set it: ``flags_hint``), or a tensor missing.
    """
    ours = network.state_dict()
    renamed: dict[str, Tensor] = {}
    dropped = []
    for key, value in state.items():
        target = rename(key)
        if target not in ours:
            if key.rsplit(".", 1)[-1] in _NORM_STATISTICS:
                dropped.append(key)
                continue
            raise CheckpointError(f"{path}: tensor {key} {tuple(value.shape)} has no place in the network the "
                                  f"flags describe ({flags_hint}); is this the right file and are these its flags?")
        if value.shape != ours[target].shape:
            raise CheckpointError(f"{path}: tensor {key} is {tuple(value.shape)}, but the flags make it "
                                  f"{tuple(ours[target].shape)} ({flags_hint})")
        renamed[target] = value
    for key, value in ours.items():
        if key not in renamed and key.endswith("num_batches_tracked"):
            renamed[key] = value.new_zeros(())
        elif key not in renamed and key.startswith(keep_initial):
            renamed[key] = value
    missing = [key for key in ours if key not in renamed]
    if missing:
        raise CheckpointError(f"{path} lacks {len(missing)} tensors of the network the flags describe "
                              f"({flags_hint}), e.g. {missing[0]} {tuple(ours[missing[0]].shape)}")
    if dropped:
        warnings.warn(f"{path}: dropped {len(dropped)} running statistics of instance-norm layers, which do not "
                      f"affect the output: {', '.join(dropped)}", stacklevel=2)
    network.load_state_dict(renamed)


# What a pickled numpy object array may name: numpy's array and scalar rebuilders under their
# NumPy 1 and NumPy 2 module names. Anything else (os.system ...) stops the reading.
_NUMPY_GLOBALS = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                  for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not a numpy array part")
        if module == "numpy":
            return getattr(np, name)
        return getattr(importlib.import_module("numpy._core.multiarray"), name)


def read_npy_object(path: Path) -> object:
    """The Python object an ``np.save(path, obj)`` file holds (NVIDIA's ``features.npy``: a dict of
    arrays), read as ``np.load(allow_pickle=True, encoding="latin1")`` would, but refusing any
    pickled reference other than numpy arrays, so that a shared file cannot run code.

    Raises:
        CheckpointError: missing, not a .npy file, not an object array, or naming anything else.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            _, _, dtype = read_header(f)
            if not dtype.hasobject:
                raise CheckpointError(f"{path} holds a {dtype} array, not a saved Python object")
            array = _NumpyOnly(f, encoding="latin1").load()
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    return array.item() if isinstance(array, np.ndarray) and array.shape == () else array
