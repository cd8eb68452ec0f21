"""The training framework: trainer, checkpoints, distributed helpers and logs."""

from vid2vid.training.checkpoint import CheckpointFolder, atomic_save
from vid2vid.training.distributed import DistContext, init_distributed, shutdown_distributed, unwrap
from vid2vid.training.trainer import (
    NonFiniteLossError,
    StepContext,
    TrainConfig,
    Trainer,
    TrainingTask,
    adam,
    linear_decay,
    read_losses,
    seed_everything,
)

__all__ = [
    "CheckpointFolder",
    "atomic_save",
    "DistContext",
    "init_distributed",
    "shutdown_distributed",
    "unwrap",
    "NonFiniteLossError",
    "StepContext",
    "TrainConfig",
    "Trainer",
    "TrainingTask",
    "adam",
    "linear_decay",
    "read_losses",
    "seed_everything",
]
