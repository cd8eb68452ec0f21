"""The command line every training script shares:

    python scripts/train_X.py [--config FILE] [--output DIR] [--max-iters N] [--resume] [section.key=value ...]
    torchrun --nproc_per_node=N scripts/train_X.py ...

A script names its config class, its built-in default config file and how to
build its task and dataset; :func:`train_main` does the rest: loading and
validating the config, locking the run folder against a second trainer,
refusing to overwrite another run, writing the resolved
config next to the checkpoints, joining the process group, seeding, resuming
and reporting the user's errors (config, data, checkpoints, the run folder, a
diverging loss) as one clear line, while any other error keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch.utils.data import Dataset

from vid2vid.config import ConfigError, load_config, save_config
from vid2vid.errors import UserError, see
from vid2vid.inference import find_checkpoint, restore
from vid2vid.training.distributed import DistContext, init_distributed, shutdown_distributed
from vid2vid.training.run_lock import run_lock
from vid2vid.training.trainer import Trainer, TrainingTask, seed_everything

C = TypeVar("C")
Builder = Callable[[Any, DistContext, Path], tuple[TrainingTask, Dataset]]
Finisher = Callable[[Any, TrainingTask, Path], str]


def training_parser(description: str, default_config: Path, default_output: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=default_config,
                        help=f"YAML config (default: {default_config.name})")
    parser.add_argument("--output", type=Path, default=Path(default_output),
                        help="run folder: config.yaml, checkpoints/, losses.jsonl, web/ (default %(default)s)")
    parser.add_argument("--max-iters", type=int, help="stop after this many iterations in all (train.max_iters)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/latest.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="config overrides")
    return parser


def dataset_root(root: str | None, output: Path, dist: DistContext, build_demo: Callable[[Path], Any]) -> Path:
    """The configured dataset folder, or the demo dataset that rank 0 builds in OUTPUT/demo_data
    (the other ranks wait for it) when the config names none."""
    if root is not None:
        return Path(root)
    demo = output / "demo_data"
    if dist.is_main:
        build_demo(demo)
    dist.barrier()
    return demo


def _same_run(saved: Any, config: Any) -> bool:
    """Whether config continues the saved run: equal but for how long and how it runs."""
    free = {"max_iters", "epochs", "epochs_decay", "checkpoint_every", "keep_checkpoints", "log_every", "workers",
            "device"}
    mine, theirs = dataclasses.asdict(config), dataclasses.asdict(saved)
    mine["train"] = {k: v for k, v in mine["train"].items() if k not in free}
    theirs["train"] = {k: v for k, v in theirs["train"].items() if k not in free}
    return mine == theirs


def train_main(argv: Sequence[str] | None, config_cls: type[C], parser: argparse.ArgumentParser,
               build: Builder, extra_overrides: Callable[[argparse.Namespace], list[str]] = lambda args: [],
               finish: Finisher | None = None) -> int:
    """Runs a training script; returns its exit status (0, or 1 with the error printed).
    extra_overrides turns a script's own flags into config overrides; finish(config, task, output),
    run by rank 0 after training, does what else the script leaves behind and says what in a line."""
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + ([f"train.max_iters={args.max_iters}"] if args.max_iters is not None else [])
    overrides += extra_overrides(args)
    dist = None
    lock = contextlib.ExitStack()
    try:
        config = load_config(config_cls, args.config, overrides)
        dist = init_distributed(config.train.device)
        output: Path = args.output
        if dist.is_main:  # before anything reads or writes the folder
            lock.enter_context(run_lock(output))
        resolved = output / "config.yaml"
        latest = output / "checkpoints" / "latest.pt"
        if args.resume and latest.exists() and resolved.exists():
            saved = load_config(config_cls, resolved)
            if not _same_run(saved, config):
                raise ConfigError(f"{output} holds a run with another config ({resolved}); --resume continues a run "
                                  f"with the same model, data and optimiser settings")
        elif latest.exists() and not args.resume:
            raise ConfigError(f"{output} already holds a run; pass --resume to continue it or choose another --output")
        if dist.is_main:
            output.mkdir(parents=True, exist_ok=True)
            save_config(config, resolved)
        dist.barrier()
        seed_everything(config.train.seed + dist.rank)
        try:
            task, dataset = build(config, dist, output)
        except UserError:
            raise
        except ValueError as e:  # settings the networks or the data cannot take: the config's fault
            raise ConfigError(str(e)) from e
        if config.train.init_from and not (args.resume and latest.exists()):
            restore(task, find_checkpoint(config.train.init_from)[0], dist.device)
        trainer = Trainer(task, dataset, config.train, output, dist, progress=not args.quiet and dist.is_main)
        resumed = args.resume and trainer.resume()
        try:
            iteration = trainer.fit()
        except torch.OutOfMemoryError as e:  # a setting too large for the GPU: the user's to fix
            raise UserError(f"{str(e).splitlines()[0]} Plan the memory of this config with scripts/plan_gpu.py "
                            f"--config {resolved} --gpu-memory GIB, and lower what it names" + see("out-of-memory")) from e
        stop_signal = trainer.stop_signal
        trainer.generator_to_average()  # what the script renders last is what every render uses
        finished = finish(config, task, output) if finish is not None and dist.is_main else None
    except UserError as e:  # the user's to fix: one line; anything else is a bug and keeps its traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        task = trainer = None  # the DDP modules go before the process group does (see shutdown_distributed)
        if dist is not None:
            shutdown_distributed()
        lock.close()
    if dist.is_main:
        how = "resumed and " if resumed else ""
        why = {None: "", "max_minutes": f" (the budget of train.max_minutes={config.train.max_minutes})"}.get(
            stop_signal, f" (on {stop_signal}; continue with --resume)")
        print(f"{how}stopped at iteration {iteration}{why}; checkpoints in {output / 'checkpoints'}, "
              f"samples in {output / 'web' / 'index.html'}")
        if finished:
            print(finished)
    return 0


__all__ = ["training_parser", "train_main", "dataset_root"]
