"""Run by the tests under torchrun (2 processes, gloo): trains the tiny pix2pix
(or vid2vid) a few iterations with DDP and reports, from rank 0, whether every
rank holds the same parameters afterwards and whether they moved at all."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from test_pix2pix import tiny_config
from vid2vid.data.aligned import AlignedDataset
from vid2vid.models.pix2pix import Pix2Pix
from vid2vid.training import Trainer, init_distributed, seed_everything, shutdown_distributed, unwrap
from vid2vid.training.distributed import collective


def flat_parameters(task) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for net in task.networks().values() for p in unwrap(net).parameters()])


def build(kind: str, root: str):
    """(config, task, dataset) of the tiny model of a kind."""
    if kind in ("cut", "ssal"):  # the PatchNCE head must be in DDP from the start (CUT's issue #2)
        from vid2vid.config import load_config
        from vid2vid.data.unpaired import UnpairedDataset
        from vid2vid.models.unpaired import UnpairedConfig, build_unpaired

        config = load_config(UnpairedConfig, Path(__file__).parent.parent / "configs" / f"{kind}_demo.yaml",
                             ["model.ngf=8", "model.ndf=8", "model.num_patches=16", "data.load_size=36",
                              "data.crop_size=32", f"data.root={root}", "train.max_iters=2", "train.batch_size=2"])
        task = build_unpaired(config)
        return config, task, UnpairedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple)
    if kind == "pix2pix":
        config = tiny_config(root, max_iters=4)
        task = Pix2Pix(config.model, config.train)
        return config, task, AlignedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple)
    from test_vid2vid import config as vid2vid_config
    from vid2vid.models.vid2vid import Vid2Vid, sequence_dataset

    config = vid2vid_config("train.max_iters=2", "train.batch_size=1", "model.n_scales_spatial=2",
                            "model.foreground_classes=[4,5]")
    task = Vid2Vid(config)
    return config, task, sequence_dataset(config, root, "train", multiple=task.multiple)


def main(kind: str, root: str, output: str) -> None:
    context = init_distributed("cpu")
    seed_everything(context.rank)  # different initial weights: DDP must broadcast rank 0's
    config, task, data = build(kind, root)
    trainer = Trainer(task, data, config.train, output, context, progress=False)
    initial = flat_parameters(task)
    collective(dist.broadcast, initial, src=0)
    trainer.fit()
    final = flat_parameters(task)
    gathered = [torch.empty_like(final) for _ in range(context.world_size)]
    collective(dist.all_gather, gathered, final)
    if context.is_main:
        report = {
            "world_size": context.world_size,
            "identical": all(torch.equal(gathered[0], g) for g in gathered[1:]),
            "changed": not torch.equal(initial, final),
        }
        (Path(output) / "ddp_report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
    shutdown_distributed()  # once main's DDP modules are gone (see shutdown_distributed)
