"""Checkpoint files of the trainer: written atomically, the last K kept, and
``latest.pt`` always naming the newest state.

A checkpoint is one ``torch.save``d dict of tensors and plain Python values,
so that it loads with ``weights_only=True`` (:mod:`vid2vid.serialization`):
a shared run folder cannot run code. Writing goes to a temporary file in
the same folder, flushed to disk, then renamed over the target: a run killed
while writing leaves the previous checkpoint as it was, never a truncated one.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vid2vid import serialization

LATEST = "latest.pt"
_NUMBERED = re.compile(r"^iter_(\d+)\.pt$")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save to path through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rng_state() -> dict[str, Any]:
    """The state of every random generator a training step may draw from, as
    tensors and plain values (numpy's key array becomes an int64 tensor)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position,
                                                    has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what rng_state returned, or the numpy array of checkpoints written before it."""
    random.setstate(state["python"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((name, keys.astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointFolder:
    """``iter_<N>.pt`` files and ``latest.pt`` in one folder, keeping the newest ``keep`` numbered ones."""

    def __init__(self, folder: str | os.PathLike, keep: int = 3):
        self.folder = Path(folder)
        self.keep = keep

    def numbered(self) -> list[Path]:
        """The numbered checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NUMBERED.match(p.name))]
        return [p for _, p in sorted(found)]

    @property
    def latest(self) -> Path:
        return self.folder / LATEST

    def save(self, state: dict[str, Any], iteration: int) -> Path:
        """Writes iter_<iteration>.pt and latest.pt, then drops numbered files beyond ``keep``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"iter_{iteration:08d}.pt"
        atomic_save(state, path)
        atomic_save(state, self.latest)
        for old in self.numbered()[: -self.keep] if self.keep > 0 else []:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The newest state, or None when the folder has none."""
        if not self.latest.exists():
            return None
        return serialization.load(self.latest, map_location, allow=serialization.NUMPY_RNG_ARRAYS)
