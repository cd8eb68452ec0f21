"""The training loop shared by pix2pix, pix2pixHD and vid2vid.

The trainer owns everything but the maths: seeding, the data order, the
learning-rate schedule, mixed precision, distributed data parallel,
checkpoints and resume, non-finite losses, and logging. A model plugs in as a
:class:`TrainingTask`: its networks and optimizers, and a ``train_step`` that
computes its losses and hands each one to :meth:`StepContext.step`.

Resuming is exact: the data order of every epoch is a function of the seed and
the epoch, random augmentations a function of (seed, epoch, index) (datasets
with a ``set_epoch`` method, which also read an index past their end as another
draw of item index % len: each pass of an epoch of ``iters_per_epoch`` that
cycles the data gets its own crops and clips), and the checkpoint holds the
generators' states, so a resumed run computes the same losses as the
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from vid2vid import serialization
from vid2vid.training.checkpoint import CheckpointFolder, rng_state, set_rng_state
from vid2vid.errors import UserError
from vid2vid.training.distributed import DistContext, unwrap
from vid2vid.training.ema import AVERAGE_NAME, WeightAverage
from vid2vid.training.logging import RunLogger


@dataclass(frozen=True)
class TrainConfig:
    """The ``train:`` section of every training config."""

    seed: int = 0
    batch_size: int = 1
    epochs: int = 100
    """epochs at the initial learning rate"""
    epochs_decay: int = 100
    """epochs over which the learning rate then falls linearly to zero (pix2pix's schedule)"""
    max_iters: int | None = None
    """stop after this many iterations in all (None: run all epochs)"""
    iters_per_epoch: int | None = None
    """iterations an epoch lasts, the data cycled (reshuffled each pass) or cut short to fill it; None: one pass
    over the data. Everything counted in epochs (the schedules, samples, the learning-rate decay) then counts
    these: on a short clip, whose one pass is a few iterations, schedules can stay readable"""
    max_minutes: float | None = None
    """stop after this many minutes of training in this process (a wall-clock budget; None: no limit)"""
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_halflife: float = 0
    """iterations over which a step's weight in the moving average of G's weights halves (0: no average);
    with one, rendering and exported weights use the average (``G_ema`` in checkpoints), not the last G"""
    init_from: str | None = None
    """a run folder, checkpoint or weights file (e.g. a converted NVIDIA model) whose networks start this run:
    fine-tuning, with fresh optimisers; a resumed run continues from its own checkpoint instead"""
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 10
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"
    """mixed precision of the forward passes: auto is bf16 on a CUDA GPU that has it (Ampere and newer: the
    tensor cores' bf16 rate, half the activation memory) and fp32 elsewhere (CPUs, older GPUs), and plans
    (plan_gpu.py, the meta device) take it as bf16; none is fp32 everywhere; fp16 scales the losses"""
    channels_last: bool = False
    """every network's weights and every 4-D batch tensor channels-last (NHWC), so that each convolution
    takes and gives NHWC activations (``use_memory_format``): the tensor cores' own layout, where NCHW makes
    cuDNN transpose around its NHWC kernels; on a CPU it changes the numerics' order, not the results"""
    cudnn_benchmark: bool = True
    """on a GPU, cuDNN times its algorithms for each new input shape and keeps the fastest (as NVIDIA's
    vid2vid does): one slower iteration per shape (vid2vid's clip lengths and scales change a few times a
    run); false: its heuristics, and the same algorithms from run to run"""
    workers: int = 2
    device: str = "auto"

    def __post_init__(self):
        for name in ("batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError(f"need epochs + epochs_decay >= 1, got {self.epochs} + {self.epochs_decay}")
        if self.max_iters is not None and self.max_iters < 0:
            raise ValueError(f"max_iters must be >= 0, got {self.max_iters}")
        if self.iters_per_epoch is not None and self.iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be at least 1, got {self.iters_per_epoch}")
        if self.ema_halflife < 0:
            raise ValueError(f"ema_halflife must be >= 0, got {self.ema_halflife}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


def use_device_settings(config: TrainConfig, device: torch.device) -> None:
    """The process-wide settings a run on ``device`` takes from its config: on a GPU, cuDNN's algorithm
    timing (train.cudnn_benchmark); a CPU run changes nothing."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""the autocast dtypes that train.amp and the scripts' --amp name"""


def adam(parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam over ``parameters``; where they all live on a GPU, the fused implementation: one kernel updates
    every tensor, where the default (foreach) makes several passes over parameters, gradients and moments,
    each reading and writing them again. Fused has no CPU or meta-device advantage worth a change of
    numerics, so those keep the default."""
    parameters = list(parameters)
    fused = bool(parameters) and all(p.device.type == "cuda" for p in parameters)
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=fused or None)


def resolved_amp(amp: str, device: torch.device) -> str:
    """train.amp as it applies on ``device``: "auto" is "bf16" on a CUDA GPU that has bf16 and on the meta
    device (a plan is for such a GPU), "none" elsewhere; the other values are what they say."""
    if amp != "auto":
        return amp
    if device.type == "meta" or (device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)):
        return "bf16"
    return "none"


class NonFiniteLossError(UserError):
    """A loss became NaN or infinite; the run stops before it can damage the weights or checkpoints."""


class TrainingTask(Protocol):
    """What a model provides to the trainer."""

    def networks(self) -> Mapping[str, nn.Module]:
        """Every network whose state belongs in the checkpoint, by name."""

    def optimizers(self) -> Mapping[str, torch.optim.Optimizer]:
        """Every optimizer, by the name train_step passes to StepContext.step."""

    def distribute(self, dist: DistContext) -> None:
        """Wrap the trained networks for data parallelism (``dist.wrap``)."""

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One iteration: compute the losses, ``ctx.step(loss, optimizer_name)`` each; returns them,
        detached, for logging. Device-agnostic: no ``.item()`` and no tensor made off ``ctx.device``
        (tests run it on the meta device)."""

    def visuals(self, batch: Any) -> dict[str, torch.Tensor]:
        """Images (B, C, H, W) in -1..1 to show in the logs, e.g. input, output and target."""


def linear_decay(epochs: int, epochs_decay: int):
    """The learning-rate factor of pix2pix: 1 for ``epochs`` epochs, then linearly down over ``epochs_decay``."""
    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return factor


class StepContext:
    """What a train_step uses: the device, autocast, and one call per loss that
    scales it for fp16, back-propagates it and steps its optimizer.

    Nothing in a step waits for the device: the losses stay tensors, and whether
    they are finite is read once per iteration, after the step
    (:meth:`check_finite`), so a step runs unchanged on the ``meta`` device.
    """

    def __init__(self, config: TrainConfig, dist: DistContext, optimizers: Mapping[str, torch.optim.Optimizer],
                 batches_per_epoch: int | None = None):
        self.config = config
        self.dist = dist
        self.device = dist.device
        self.iteration = 0
        self.epoch = 0
        """the trainer's epoch, for tasks whose training changes with it (pix2pixHD's phases)"""
        self.batch_in_epoch = 0
        """batches run before this one in the current epoch"""
        self.batches_per_epoch = batches_per_epoch or config.iters_per_epoch or 1
        """the trainer's epoch length (outside a trainer: iters_per_epoch, else 1)"""
        self._optimizers = optimizers
        amp = resolved_amp(config.amp, self.device)
        self._amp_dtype = AMP_DTYPES.get(amp)
        fp16 = amp == "fp16"
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=fp16) for name in optimizers}
        self._stepped: list[tuple[str, torch.Tensor]] = []

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the forward passes, as the config asks."""
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        # meta tensors have no autocast: the CPU's state stands for it (vid2vid.training.planning.MetaAutocast)
        device_type = "cpu" if self.device.type == "meta" else self.device.type
        return torch.autocast(device_type=device_type, dtype=self._amp_dtype)

    def iterations_since(self, epoch: int) -> int:
        """Iterations run before this one since the start of ``epoch`` (negative before it): a phase's age,
        which a resumed run recomputes exactly."""
        return (self.epoch - epoch) * self.batches_per_epoch + self.batch_in_epoch

    @contextlib.contextmanager
    def scaled_lr(self, optimizer: str, factor: float) -> Iterator[None]:
        """The named optimizer's learning rates times ``factor`` inside the block (a warm-up on top of the
        trainer's schedule, which owns the rates: they are restored on leaving, so checkpoints hold them)."""
        groups = self._optimizers[optimizer].param_groups
        scheduled = [group["lr"] for group in groups]
        for group, lr in zip(groups, scheduled):
            group["lr"] = lr * factor
        try:
            yield
        finally:
            for group, lr in zip(groups, scheduled):
                group["lr"] = lr

    def step(self, loss: torch.Tensor, optimizer: str, name: str = "loss") -> None:
        """Back-propagates loss and steps the named optimizer (after zeroing its gradients)."""
        self._stepped.append((name, loss.detach()))
        opt = self._optimizers[optimizer]
        scaler = self.scalers[optimizer]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def check_finite(self) -> None:
        """Reads, once per iteration and after it, whether every loss stepped in it was finite (on
        every rank), and forgets them.

        Raises:
            NonFiniteLossError: one was NaN or infinite; the trainer then stops before it saves.
        """
        stepped, self._stepped = self._stepped, []
        if not stepped or self.device.type == "meta":
            return
        values = torch.stack([loss.float().reshape(()) for _, loss in stepped])
        if self.dist.all_finite(values):
            return
        bad = [f"{name} loss became {value}" for (name, _), value in zip(stepped, values.tolist())
               if not math.isfinite(value)] or ["loss became non-finite on another rank"]
        raise NonFiniteLossError(
            f"the {bad[0]} at iteration {self.iteration + 1}; stopping before anything "
            f"is saved. The last checkpoint is intact: lower train.lr or try train.amp=none, then --resume"
        )


def seed_everything(seed: int) -> None:
    """Seeds Python, numpy and torch; call it before building the networks."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def use_memory_format(task: TrainingTask, config: TrainConfig) -> None:
    """train.channels_last: every network of the task keeps its weights channels-last (its 4-D ones; a
    convolution with NHWC weights makes NHWC outputs, so the activations follow). Before the networks are
    wrapped for data parallelism and before G's average copies G; the parameters stay the same objects, so
    optimizers made before keep them."""
    if config.channels_last:
        for network in task.networks().values():
            network.to(memory_format=torch.channels_last)


def batch_to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """A batch (a tensor, or mappings and sequences of them) on ``device``; with ``channels_last`` its 4-D
    tensors channels-last, as train.channels_last asks."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, Mapping):
        return {k: batch_to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(batch_to_device(v, device, channels_last) for v in batch)
    return batch


class Trainer:
    """Runs a TrainingTask over a dataset, writing checkpoints and logs under ``output``.

    Layout of ``output``: ``config.yaml`` (the resolved config, written by the
    script), ``checkpoints/iter_<N>.pt`` and ``checkpoints/latest.pt``,
    ``losses.jsonl`` (one line per iteration), ``web/index.html`` (samples per
    epoch) and ``tensorboard/`` when tensorboard is installed.
    """

    def __init__(self, task: TrainingTask, dataset: Dataset, config: TrainConfig, output: str | Path,
                 dist: DistContext | None = None, *, progress: bool = True):
        self.task = task
        self.dataset = dataset
        self.config = config
        self.output = Path(output)
        self.dist = dist or DistContext()
        use_device_settings(config, self.dist.device)
        use_memory_format(task, config)
        self.checkpoints = CheckpointFolder(self.output / "checkpoints", config.keep_checkpoints)
        self.schedulers = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(config.epochs, config.epochs_decay))
            for name, opt in task.optimizers().items()
        }
        self.ctx = StepContext(config, self.dist, task.optimizers(), self.batches_per_epoch)
        self.average = WeightAverage(unwrap(task.networks()["G"]), config.ema_halflife) \
            if config.ema_halflife else None
        self.logger = RunLogger(self.output, enabled=self.dist.is_main, progress=progress)
        self.epoch = 0
        self.batch_in_epoch = 0
        self.stop_signal: str | None = None
        """why fit stopped early: "SIGINT", "SIGTERM" or "max_minutes"; None when it ran its course"""

    @property
    def total_epochs(self) -> int:
        return self.config.epochs + self.config.epochs_decay

    # ------------------------------------------------------------------ state

    def _networks(self) -> dict[str, nn.Module]:
        """The task's networks, unwrapped, and G's average when there is one."""
        networks = {k: unwrap(m) for k, m in self.task.networks().items()}
        if self.average is not None:
            networks[AVERAGE_NAME] = self.average.network
        return networks

    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.ctx.iteration,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "networks": {k: m.state_dict() for k, m in self._networks().items()},
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.ctx.scalers.items()},
            "rng": rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, m in self._networks().items():
            m.load_state_dict(state["networks"][k])
        for k, o in self.task.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        for k, s in self.ctx.scalers.items():
            s.load_state_dict(state["scalers"][k])
        self.ctx.iteration = state["iteration"]
        self.epoch, self.batch_in_epoch = state["epoch"], state["batch_in_epoch"]
        set_rng_state(state["rng"])

    def save(self) -> None:
        if self.dist.is_main:
            self.checkpoints.save(self.state_dict(), self.ctx.iteration)
        self.dist.barrier()

    def resume(self) -> bool:
        """Loads checkpoints/latest.pt if there is one; whether it did."""
        state = self.checkpoints.load_latest(map_location=self.dist.device)
        if state is None:
            return False
        path = self.checkpoints.latest
        serialization.require_keys(state, self.state_dict().keys(), path, "a checkpoint of this trainer")
        try:
            self.load_state_dict(state)
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            first = " ".join(str(e).split())[:300]
            raise serialization.CheckpointError(f"{path} does not fit this run ({type(e).__name__}: {first})") \
                from None
        self.logger.truncate(self.ctx.iteration)
        return True

    # ------------------------------------------------------------------- loop

    def _epoch_indices(self) -> list[int]:
        """This rank's sample indices of the current epoch: one shuffled pass over its shard, or with
        iters_per_epoch as many passes (each shuffled anew) as fill it. A function of seed and epoch."""
        sampler = DistributedSampler(self.dataset, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                     shuffle=True, seed=self.config.seed)
        per_epoch = self.config.iters_per_epoch
        if per_epoch is None:
            sampler.set_epoch(self.epoch)
            return list(sampler)
        wanted = per_epoch * self.config.batch_size
        # datasets with random draws take the indices of pass r as i + r * len: new crops and clips each pass
        stride = len(self.dataset) if hasattr(self.dataset, "set_epoch") else 0
        indices: list[int] = []
        for repeat in range(math.ceil(wanted / len(sampler))):
            sampler.set_epoch(self.epoch * 1_000_003 + repeat)  # a distinct shuffle for every pass of every epoch
            indices += [i + repeat * stride for i in sampler]
        return indices[:wanted]

    def _epoch_batches(self) -> Iterator[Any]:
        """The batches of the current epoch from batch_in_epoch on, sharded over the ranks."""
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        indices = self._epoch_indices()[self.batch_in_epoch * self.config.batch_size:]
        # the loader's own generator keeps its seed draw off the global RNG that the models use
        loader = DataLoader(self.dataset, batch_size=self.config.batch_size, sampler=indices,
                            num_workers=self.config.workers, generator=torch.Generator().manual_seed(self.epoch),
                            pin_memory=self.dist.device.type == "cuda")
        for batch in loader:
            yield batch_to_device(batch, self.dist.device, self.config.channels_last)

    def _finished(self) -> bool:
        limit = self.config.max_iters
        return self.epoch >= self.total_epochs or (limit is not None and self.ctx.iteration >= limit)

    @property
    def batches_per_epoch(self) -> int:
        """Batches each rank runs in an epoch: iters_per_epoch, or one pass over its shard (DistributedSampler
        pads the data to a multiple of the ranks)."""
        if self.config.iters_per_epoch is not None:
            return self.config.iters_per_epoch
        return math.ceil(math.ceil(len(self.dataset) / self.dist.world_size) / self.config.batch_size)

    def _end_epoch(self, batch: Any) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        for scheduler in self.schedulers.values():
            scheduler.step()
        self.logger.samples(self.epoch, self.task.visuals(batch))

    def _stop_early(self, deadline: float | None) -> bool:
        """Whether to stop before the schedule ends: SIGINT/SIGTERM received or the time budget spent, on
        any rank (once per iteration, so that all ranks stop after the same one)."""
        if self.stop_signal is None and deadline is not None and time.monotonic() >= deadline:
            self.stop_signal = "max_minutes"
        stop = self.dist.any_rank(self.stop_signal is not None)
        if stop and self.stop_signal is None:
            self.stop_signal = "another rank"
        return stop

    @contextlib.contextmanager
    def _signals_stop_training(self) -> Iterator[None]:
        """SIGINT and SIGTERM end the run after the current iteration, with a checkpoint, instead of killing it
        (a second one kills it at once). Only the main thread can take signals; elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(number: int, frame: Any) -> None:
            if self.stop_signal is not None:  # the second signal: stop now
                if number == signal.SIGINT:
                    signal.default_int_handler(number, frame)  # KeyboardInterrupt, as Ctrl-C always did
                sys.exit(128 + number)
            self.stop_signal = signal.Signals(number).name

        previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def fit(self) -> int:
        """Trains until all epochs are done, max_iters is reached, max_minutes have passed or SIGINT/SIGTERM
        came (then ``stop_signal`` names why); returns the iteration reached. The last state is saved."""
        self.task.distribute(self.dist)
        total = self.batches_per_epoch * self.total_epochs
        if self.config.max_iters is not None:
            total = min(total, self.config.max_iters)
        self.logger.start(total=total, initial=self.ctx.iteration)
        deadline = None if self.config.max_minutes is None else time.monotonic() + 60 * self.config.max_minutes
        with self._signals_stop_training():
            self._loop(deadline)
        if self.ctx.iteration % self.config.checkpoint_every:
            self.save()
        self.logger.close()
        return self.ctx.iteration

    def generator_to_average(self) -> None:
        """After training: G takes its average's weights (with train.ema_halflife), as every render does."""
        if self.average is not None:
            unwrap(self.task.networks()["G"]).load_state_dict(self.average.network.state_dict())

    def _loop(self, deadline: float | None) -> None:
        """The epochs and their iterations, until the schedule ends or _stop_early says to stop."""
        while not self._finished():
            for batch in self._epoch_batches():
                self.ctx.epoch, self.ctx.batch_in_epoch = self.epoch, self.batch_in_epoch
                losses = self.task.train_step(batch, self.ctx)
                self.ctx.check_finite()
                if self.average is not None:
                    self.average.update(unwrap(self.task.networks()["G"]), self.ctx.iteration + 1)
                losses = {name: float(value) for name, value in losses.items()}  # the iteration's one host sync
                self.ctx.iteration += 1
                self.batch_in_epoch += 1
                self.logger.losses(self.ctx.iteration, self.epoch, losses,
                                   write_scalars=self.ctx.iteration % self.config.log_every == 0)
                # the epoch ends before the checkpoint, so that a resumed run never starts on an empty epoch
                if self.batch_in_epoch == self.batches_per_epoch:
                    self._end_epoch(batch)
                if self.ctx.iteration % self.config.checkpoint_every == 0:
                    self.save()
                if self._finished() or self._stop_early(deadline):
                    break
            if self.stop_signal is not None:
                return


def read_losses(output: str | Path) -> list[dict[str, float]]:
    """The per-iteration losses a run logged (``losses.jsonl``), in order."""
    with open(Path(output) / "losses.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]
