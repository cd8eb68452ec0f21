"""Distributed data parallel under torchrun: one process per device, gloo on
the CPU and nccl on GPUs, and all file writes on rank 0.

``torchrun --nproc_per_node=N scripts/train_*.py ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous variables; multi-node runs use torchrun's usual
``--nnodes``/``--rdzv_endpoint``. Without them everything runs in one process.
"""

from __future__ import annotations

import collections
import gc
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """module in DistributedDataParallel when distributed, else unchanged. ``find_unused_parameters``
        for modules whose forward may leave some parameters out (vid2vid's inactive levels)."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids,
                                                   find_unused_parameters=find_unused_parameters)

    def _on_every_rank(self, flag: torch.Tensor, op: dist.ReduceOp) -> bool:
        """A (1,) int32 flag combined over the ranks by op (MIN: all, MAX: any), read on the host."""
        if self.distributed:
            collective(dist.all_reduce, flag, op=op)
        return bool(flag.item())

    def all_finite(self, value: torch.Tensor) -> bool:
        """Whether value is finite on every rank (all ranks must take the same branch). Waits for the device."""
        return self._on_every_rank(torch.isfinite(value.detach()).all().to(torch.int32).reshape(1), dist.ReduceOp.MIN)

    def any_rank(self, value: bool) -> bool:
        """Whether value is true on some rank (all ranks must take the same branch). Alone, it is value
        itself: no tensor, no wait for the device."""
        if not self.distributed:
            return value
        return self._on_every_rank(torch.tensor([int(value)], dtype=torch.int32, device=self.device),
                                   dist.ReduceOp.MAX)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_distributed(device: str = "auto") -> DistContext:
    """Joins the process group torchrun describes, or returns the single-process context."""
    base = resolve_device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(0, 1, base)
    rank = int(os.environ["RANK"])
    if base.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return DistContext(rank, world_size, base)


# The handles of the last collectives, kept here so that gloo's worker threads never free their
# tensors themselves: dropping a tensor Python has seen takes the GIL, and a worker thread still
# waiting for it when the interpreter exits aborts the process ("terminate called without an active
# exception"; torch keeps the group's threads alive after destroy_process_group once DDP was built).
# Older handles are long finished: they go, in this thread, as new ones come.
_RECENT_WORK: collections.deque = collections.deque(maxlen=8)


def collective(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """``operation(*args, **kwargs)`` (a torch.distributed collective: all_reduce, all_gather,
    broadcast ...), waited for; its handle kept (see _RECENT_WORK). Use it for every collective on
    tensors Python holds."""
    work = operation(*args, **kwargs, async_op=True)
    work.wait()
    _RECENT_WORK.append(work)


def shutdown_distributed() -> None:
    """Leaves the process group. Call it once the DDP-wrapped modules are no longer referenced."""
    if dist.is_initialized():
        dist.barrier()
        gc.collect()  # DDP modules in reference cycles: freed now, while the group can still be torn down
        dist.destroy_process_group()
        _RECENT_WORK.clear()  # every collective is done: freed here, with the GIL
