"""Training iterations on the meta device (every shipped config, FlowNet training), the GPU
memory planner against a measured CPU peak, and scripts/plan_gpu.py."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import flownet
from flownet.training import training_step
from scripts import plan_gpu
from vid2vid.config import load_config
from vid2vid.gpu_plan import build_on_meta, family_of, plan_config
from vid2vid.training import TrainConfig
from vid2vid.training.planning import META, GiB, MetaAutocast, find_gpu, largest_fitting, run_iteration

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the planner's models warn about missing VGG weights etc.
        yield


# On meta an iteration costs its number of ops, not their size: short clips keep it quick.
SHORT_CLIPS = ["schedule.n_frames_start=3", "schedule.n_frames_total=3"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_trains_an_iteration_on_the_meta_device(config):
    # 256x256 frames (pix2pix's U-Net needs as much); every level of a progressive model active
    # (the last epoch); mixed precision, checkpointing and the rest as configured.
    family = family_of(config)
    cfg = load_config(family.config_cls, config, SHORT_CLIPS if family.name == "vid2vid" else [])
    task = build_on_meta(family, cfg)
    with MetaAutocast():
        losses = run_iteration(task, family.batch(cfg, cfg.train.batch_size, 256, 256), cfg.train,
                               epoch=family.last_epoch(cfg))
    assert losses and all(v.device == META and v.shape == () for v in losses.values())
    assert all(p.grad is None or p.grad.device == META for net in task.networks().values() for p in net.parameters())


@pytest.mark.parametrize("config", ["pix2pix_demo", "pix2pixhd_demo", "vid2vid_demo"])
def test_a_plan_counts_memory_flops_and_time(config):
    plan = plan_config(ROOT / "configs" / f"{config}.yaml", size=(256, 256)).plan
    assert all(count > 0 for count in plan.parameters.values())
    assert plan.peak_bytes > sum(plan.persistent.values()) > 0
    assert plan.total_flops > 0 and plan.roofline_seconds["H100"] > 0


@pytest.mark.parametrize("name", ["FlowNet2S", "FlowNet2"])
def test_flownet_training_step_runs_on_the_meta_device(name):
    model = flownet.MODELS[name]().to(META)
    optimizer = torch.optim.Adam(model.parameters())
    loss = training_step(model, optimizer, torch.zeros(2, 3, 2, 64, 64, device=META),
                         torch.zeros(2, 2, 64, 64, device=META))
    assert loss.device == META and loss.shape == ()


class _CarelessTask:
    """A step that makes a tensor on the CPU by accident: the meta device must catch it."""

    def __init__(self):
        self.net = nn.Linear(4, 4).to(META)
        self.opt = torch.optim.Adam(self.net.parameters())

    def networks(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def train_step(self, batch, ctx):
        loss = (self.net(batch) + torch.ones(4)).square().mean()  # torch.ones(4): on the CPU
        ctx.step(loss, "net")
        return {"loss": loss.detach()}


def test_a_tensor_made_on_the_cpu_inside_a_step_fails_on_meta():
    with pytest.raises((RuntimeError, NotImplementedError)):
        run_iteration(_CarelessTask(), torch.zeros(2, 4, device=META), TrainConfig())


def test_bf16_with_checkpointing_plans_in_half_precision_and_needs_less():
    config = ROOT / "configs" / "vid2vid_demo.yaml"
    half = plan_config(config, ["train.amp=bf16", "model.gradient_checkpointing=true", *SHORT_CLIPS],
                       size=(256, 256)).plan
    full = plan_config(config, ["train.amp=none", "model.gradient_checkpointing=true", *SHORT_CLIPS],
                       size=(256, 256)).plan
    assert set(half.flops) == {"half"} and "half" not in full.flops
    assert half.peak_bytes < full.peak_bytes
    auto = plan_config(config, ["model.gradient_checkpointing=true", *SHORT_CLIPS], size=(256, 256)).plan
    assert auto.peak_bytes == half.peak_bytes  # train.amp=auto, the default, plans bf16


def test_meta_autocast_casts_convolutions_only_where_autocast_is_on():
    conv = nn.Conv2d(3, 4, 3).to(META)
    x = torch.zeros(1, 3, 8, 8, device=META)
    original = torch.nn.functional.conv2d
    with MetaAutocast():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            inside = conv(x)
        outside = conv(x)
    assert inside.dtype == torch.bfloat16 and outside.dtype == torch.float32
    assert torch.nn.functional.conv2d is original and conv(x).dtype == torch.float32  # unwrapped again


def test_the_meta_peak_agrees_with_a_measured_cpu_peak():
    # pix2pixHD at 256x256 without VGG (the CPU run has no VGG weights): about 400 MiB, most of it
    # activations. The CPU figure is the growth of the peak resident set of a fresh process.
    config, size, overrides = ROOT / "configs" / "pix2pixhd_demo.yaml", (256, 256), ["model.lambda_vgg=0",
                                                                                      "train.amp=none"]
    planned = plan_config(config, overrides, size=size).plan.peak_bytes
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "cpu_peak_worker.py"), str(config), *map(str, size),
                             *overrides], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    measured = int(result.stdout.strip().splitlines()[-1])
    assert abs(planned - measured) <= 0.15 * measured, (planned, measured)


def test_largest_fitting_takes_the_peak_as_affine_and_checks_it():
    peak = lambda n: 10 + 3 * n  # noqa: E731
    assert largest_fitting(peak, 31, 100) == 7
    assert largest_fitting(peak, 12, 100) == 0
    assert largest_fitting(peak, 1000, 5) == 5
    convex = lambda n: 10 + n * n  # noqa: E731  (more than affine: the estimate is checked and lowered)
    assert largest_fitting(convex, 110, 100) == 10


def test_plan_gpu_prints_the_plan_and_ends_with_the_peak(capsys):
    assert plan_gpu.main(["--config", str(ROOT / "configs" / "pix2pix_demo.yaml"), "--gpu", "rtx4090",
                          "--gpu-memory", "1", "--size", "128x128"]) == 0
    out = capsys.readouterr().out
    assert "RTX 4090" in out and "largest batch_size that fits 1 GiB:" in out and "parameters:" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("peak ") and last.endswith(" GiB per GPU")


@pytest.mark.parametrize("args, message", [
    (["--config", "configs/none.yaml"], "no config file 'configs/none.yaml'"),
    (["--config", str(ROOT / "configs" / "pix2pix_demo.yaml"), "--gpu", "T4"], "unknown GPU 'T4'"),
    (["--config", str(ROOT / "configs" / "pix2pix_demo.yaml"), "train.bogus=1"], "unknown config key train.bogus"),
    (["--config", str(ROOT / "README.md")], "cannot tell the model"),
])
def test_plan_gpu_bad_input_is_one_clear_line(capsys, args, message):
    assert plan_gpu.main(args) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_find_gpu_ignores_case_and_spaces():
    assert find_gpu("rtx 4090").name == "RTX 4090" and find_gpu("h100").memory == 80 * GiB


def test_a_profiled_iteration_names_its_longest_kernels():
    # on the CPU the "kernels" are torch's ops, by their own time; on a GPU, plan_gpu.py --measure --profile
    from vid2vid.gpu_plan import profile_iteration

    profiled = profile_iteration(ROOT / "configs" / "pix2pixhd_demo.yaml", ["model.lambda_vgg=0", "model.ngf=8"],
                                 size=(64, 64), device="cpu")
    seconds = [k.seconds for k in profiled.kernels]
    assert seconds == sorted(seconds, reverse=True) and all(s > 0 for s in seconds)
    assert any("conv" in k.name for k in profiled.kernels[:15]) and all(k.calls >= 1 for k in profiled.kernels)
    assert 0 <= profiled.outside_kernels < 1 and sum(seconds) <= 1.5 * profiled.seconds
    table = profiled.table(top=5)
    assert len(table) == 7 and table[-1].startswith("outside kernels: ")
    result = subprocess.run([sys.executable, "scripts/plan_gpu.py", "--config", "configs/pix2pix_demo.yaml",
                             "--profile"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "add --measure" in result.stderr
