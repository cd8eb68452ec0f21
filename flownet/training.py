"""Training a FlowNet2 variant on generated pairs (:mod:`flownet.synthetic`),
for users without the published weights.

Checkpoints are written in the format of NVIDIA/flownet2-pytorch, so that
:func:`flownet.load_checkpoint` and the reference code read them like the
published files: ``<out>/<Model>_checkpoint.pth.tar`` (the latest step, with the
optimizer state for resuming) and ``<out>/<Model>_model_best.pth.tar`` (the
lowest validation EPE so far). ``<out>/log.csv`` holds the learning curve.

Every random draw is a function of the seed and the step (the data of step s
are pairs ``s * batch_size ...``, its augmentation has its own generator), so
a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from flownet.augment import photometric_augment
from flownet.checkpoint import load_checkpoint, read_checkpoint
from flownet.evaluation import synthetic_epe
from flownet.losses import flow_loss
from flownet.models import MODELS
from flownet.networks import balance_cost_volumes
from flownet.synthetic import SyntheticFlowDataset, seeded_generator
from vid2vid import serialization
from vid2vid.config import ConfigError
from vid2vid.training.checkpoint import atomic_save
from vid2vid.training.run_lock import run_lock
from vid2vid.training.trainer import adam

_AUGMENT_STREAM = 2  # keeps augmentation draws apart from the data splits' streams


@dataclass(frozen=True)
class FlowTrainingConfig:
    """What a training run is; stored in its checkpoints."""

    model: str = "FlowNet2S"
    height: int = 128
    width: int = 128
    batch_size: int = 8
    steps: int = 2000
    lr: float = 1e-4
    augment: bool = True
    train_pairs: int | None = None
    """distinct training pairs, cycled (a fixed set like FlyingChairs); None: fresh pairs at every step"""
    val_pairs: int = 64
    eval_every: int = 250
    seed: int = 0

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.height % 64 or self.width % 64 or self.height < 64 or self.width < 64:
            raise ValueError(f"height and width must be positive multiples of 64, got {self.height}x{self.width}")
        for name in ("batch_size", "steps", "val_pairs", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.train_pairs is not None and self.train_pairs < 1:
            raise ValueError(f"train_pairs must be at least 1 or None, got {self.train_pairs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def same_run(self, other: FlowTrainingConfig) -> bool:
        """Whether other continues this run: all equal but the number of steps and the evaluation interval."""
        mine, theirs = dataclasses.asdict(self), dataclasses.asdict(other)
        return all(mine[k] == theirs[k] for k in mine if k not in ("steps", "eval_every"))


def checkpoint_paths(out_dir: str | os.PathLike, model: str) -> tuple[Path, Path]:
    """(latest, best) checkpoint paths of a run, named as flownet2-pytorch names them."""
    out = Path(out_dir)
    return out / f"{model}_checkpoint.pth.tar", out / f"{model}_model_best.pth.tar"


_LOG_FIELDS = ("step", "train_loss", "val_epe", "seconds")


def _rewrite_log(path: Path, last_step: int) -> None:
    """Keeps the log rows up to last_step (those of a resumed checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [row for row in csv.DictReader(f) if int(row["step"]) <= last_step]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, _LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, _LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, pairs: Tensor, flow: Tensor) -> Tensor:
    """One optimisation step on a batch: pairs (B, 3, 2, H, W) in 0..255, flow (B, 2, H, W) in
    pixels. Returns the loss, detached; nothing in it waits for the device (it runs on meta)."""
    loss = flow_loss(model(pairs), flow, model.div_flow)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_flownet(
    config: FlowTrainingConfig,
    out_dir: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    resume: bool = False,
    init: str | os.PathLike | None = None,
    workers: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Trains ``config.model`` and returns the log rows (step, train_loss, val_epe, seconds).

    Args:
        out_dir: where checkpoints and ``log.csv`` go (created).
        resume: continue from ``<out>/<Model>_checkpoint.pth.tar`` (which must
            come from the same configuration, save steps and eval_every).
        init: a checkpoint of the same variant to start from instead of random
            weights, e.g. a published one to fine-tune.
        workers: DataLoader processes generating pairs.

    Raises:
        RunLockedError: another live process trains into out_dir.
    """
    out = Path(out_dir)
    with run_lock(out):  # one writer per folder; creates it
        latest_path, best_path = checkpoint_paths(out, config.model)
        log_path = out / "log.csv"
        device = torch.device(device)

        torch.manual_seed(config.seed)
        model = MODELS[config.model]().to(device)
        optimizer = adam(model.parameters(), config.lr)
        start, best_epe, seconds = 0, float("inf"), 0.0
        if resume and latest_path.exists():
            saved = serialization.load(latest_path, device)
            serialization.require_keys(saved, ["config", "state_dict", "optimizer", "epoch", "best_EPE", "seconds"],
                                       latest_path, "a checkpoint of flownet.training")
            previous = FlowTrainingConfig(**saved["config"])
            if not config.same_run(previous):
                raise ConfigError(f"{latest_path} comes from a different run ({previous}); "
                                 f"resume needs the same settings, only steps and eval_every may change")
            model.load_state_dict(saved["state_dict"])
            optimizer.load_state_dict(saved["optimizer"])
            start, best_epe, seconds = saved["epoch"], saved["best_EPE"], saved["seconds"]
            _rewrite_log(log_path, start)
        else:
            log_path.unlink(missing_ok=True)  # a fresh run starts a fresh learning curve
            if init is not None:
                model = load_checkpoint(init, config.model).to(device)
                optimizer = adam(model.parameters(), config.lr)

        train_set = SyntheticFlowDataset(config.train_pairs or config.steps * config.batch_size, config.height,
                                         config.width, seed=config.seed, split="train")
        if start == 0 and init is None:  # fresh weights: the cost volume starts as loud as the features beside it
            first = torch.stack([train_set[i][0] for i in range(min(config.batch_size, len(train_set)))])
            balance_cost_volumes(model, first.to(device))
        val_set = SyntheticFlowDataset(config.val_pairs, config.height, config.width, seed=config.seed, split="val")
        # the pairs of step s are s * batch_size ..., so a resumed run draws what the uninterrupted one would
        order = [i % len(train_set) for i in range(start * config.batch_size, config.steps * config.batch_size)]
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=order, num_workers=workers)

        def save(step: int, path: Path, with_optimizer: bool) -> None:
            state = {"arch": config.model, "epoch": step, "state_dict": model.state_dict(), "best_EPE": best_epe,
                     "config": dataclasses.asdict(config), "seconds": seconds}
            if with_optimizer:
                state["optimizer"] = optimizer.state_dict()
            atomic_save(state, path)  # an interrupted save never leaves a truncated checkpoint behind

        history: list[dict] = []
        losses: list[float] = []
        model.train()
        bar = tqdm(loader, initial=start, total=config.steps, desc=config.model, disable=not progress)
        tick = time.perf_counter()
        for step, (pairs, flow) in enumerate(bar, start + 1):
            if config.augment:
                pairs = photometric_augment(pairs, seeded_generator(config.seed, _AUGMENT_STREAM, step))
            losses.append(training_step(model, optimizer, pairs.to(device), flow.to(device)).item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if step % config.eval_every and step != config.steps:
                continue
            seconds += time.perf_counter() - tick
            val_epe = synthetic_epe(model, val_set, config.batch_size)
            row = {"step": step, "train_loss": sum(losses) / len(losses), "val_epe": val_epe, "seconds": round(seconds, 1)}
            losses.clear()
            if val_epe < best_epe:
                best_epe = val_epe
                save(step, best_path, with_optimizer=False)
            save(step, latest_path, with_optimizer=True)
            _append_log(log_path, row)
            history.append(row)
            bar.write(f"step {step}: train loss {row['train_loss']:.4f}, validation EPE {val_epe:.3f} px")
            tick = time.perf_counter()
        return history


def read_training_config(path: str | os.PathLike) -> FlowTrainingConfig | None:
    """The configuration stored in a checkpoint written by :func:`train_flownet`, None for other checkpoints."""
    config = read_checkpoint(path).get("config")
    return FlowTrainingConfig(**config) if isinstance(config, dict) else None
