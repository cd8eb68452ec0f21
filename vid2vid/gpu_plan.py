"""What ``scripts/plan_gpu.py`` plans: a config's model built on the meta device, a batch of the
shapes its dataset makes, and the frame size its preprocessing gives; then the iteration plan
(vid2vid.training.planning) and the largest batch, or frames per chunk, that fits a GPU."""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vid2vid.config import ConfigError, load_config
from vid2vid.data.demo import build_label_demo_dataset, build_video_demo_dataset
from vid2vid.models.pix2pix import Pix2Pix, Pix2PixConfig
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig
from vid2vid.models.template import Template, TemplateConfig
from vid2vid.models.unpaired import UnpairedConfig, build_unpaired
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig
from vid2vid.training.planning import META, GPU, IterationPlan, largest_fitting, plan_iteration, run_iteration
from vid2vid.training.trainer import batch_to_device, use_device_settings, use_memory_format


def _float(*shape: int) -> Tensor:
    return torch.zeros(*shape, device=META)


def _ids(*shape: int) -> Tensor:
    return torch.zeros(*shape, dtype=torch.int64, device=META)


def _pix2pix_batch(config: Pix2PixConfig, batch: int, h: int, w: int) -> dict[str, Tensor]:
    return {"A": _float(batch, config.model.input_nc, h, w), "B": _float(batch, config.model.output_nc, h, w)}


def _unpaired_batch(config: UnpairedConfig, batch: int, h: int, w: int) -> dict[str, Tensor]:
    """A and B images; with model.lambda_temporal, A's previous frame and the flow to it (from .flo files)."""
    images = {"A": _float(batch, 3, h, w), "B": _float(batch, 3, h, w)}
    if config.model.lambda_temporal:
        images["A_prev"] = _float(batch, 3, h, w)
        if config.model.flow_source == "files":
            images["A_flow"] = _float(batch, 2, h, w)
    return images


def _pix2pixhd_batch(config: Pix2PixHDConfig, batch: int, h: int, w: int) -> dict[str, Tensor]:
    m = config.model
    out = {"label": _ids(batch, 1, h, w) if m.label_nc else _float(batch, 3, h, w),
           "instance": _ids(batch, 1, h, w), "image": _float(batch, 3, h, w)}
    if m.extra_nc:
        out["extra"] = _float(batch, m.extra_nc, h, w)
    return out


def _flow_on_the_gpu(config: Vid2VidConfig) -> Vid2VidConfig:
    """DIS flow runs on the CPU, beside the GPU: for the GPU, its flows are as if read from files."""
    if config.model.flow_source != "dis":
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, flow_source="files"))


def _input_flow_beside_the_gpu(current: Tensor, previous: Tensor) -> Tensor:
    """model.input_flow's DIS flow of the inputs runs on the CPU beside the GPU too: for the GPU, a flow tensor
    of its shape (B, 2, H, W) that arrives with the batch."""
    return current.new_zeros(current.shape[0], 2, *current.shape[-2:])


def _vid2vid_on_the_gpu(config: Vid2VidConfig, device: torch.device) -> Vid2Vid:
    task = Vid2Vid(_flow_on_the_gpu(config), device)
    if task.generator.input_flow is not None:
        task.generator.input_flow = _input_flow_beside_the_gpu
    return task


def _vid2vid_batch(config: Vid2VidConfig, batch: int, h: int, w: int) -> dict[str, Tensor]:
    """A clip of the longest length the schedule reaches (vid2vid.data.sequences.SequenceDataset's items)."""
    frames = config.schedule.n_frames_total
    label = _ids(batch, frames, 1, h, w) if config.data.input == "labels" else \
        _float(batch, frames, config.data.input_channels(config.model.label_nc), h, w)
    out = {"label": label, "instance": _ids(batch, frames, 1, h, w), "image": _float(batch, frames, 3, h, w)}
    if _flow_on_the_gpu(config).model.flow_source == "files":
        out["flow"] = _float(batch, frames - 1, 2, h, w)
    return out


@dataclass(frozen=True)
class Family:
    """One trainer's model: its config type, how to build its task and a batch, and its demo's frame side."""

    name: str
    config_cls: type
    build: Callable[[Any, torch.device], Any]
    batch: Callable[[Any, int, int, int], dict[str, Tensor]]
    demo_side: Callable[[Any], int]
    last_epoch: Callable[[Any], int] = lambda config: config.train.epochs + config.train.epochs_decay - 1


def _default_size(builder: Callable[..., Any]) -> int:
    return inspect.signature(builder).parameters["size"].default


FAMILIES = {family.name: family for family in (
    Family("pix2pix", Pix2PixConfig, lambda c, device: Pix2Pix(c.model, c.train, device), _pix2pix_batch,
           lambda c: c.data.crop_size),  # the pix2pix demo is made at crop_size (scripts/train_pix2pix.py)
    Family("pix2pixhd", Pix2PixHDConfig, lambda c, device: Pix2PixHD(c.model, c.train, device), _pix2pixhd_batch,
           lambda c: _default_size(build_label_demo_dataset)),
    Family("vid2vid", Vid2VidConfig, _vid2vid_on_the_gpu, _vid2vid_batch,
           lambda c: _default_size(build_video_demo_dataset)),
    *(Family(name, UnpairedConfig, lambda c, device: build_unpaired(c, device), _unpaired_batch,
             lambda c: c.data.crop_size)  # A and B images, the demo made at crop_size
      for name in ("cyclegan", "cut", "fastcut", "ssal")),
    Family("template", TemplateConfig, lambda c, device: Template(c.model, c.train, device), _pix2pix_batch,
           lambda c: c.data.crop_size),  # the pix2pix data and demo
)}


def family_of(path: Path, name: str | None = None) -> Family:
    """The family that ``name`` gives, else the one the config file's name starts with
    (``pix2pixhd_*``, ``pix2pix_*``, ``vid2vid_*``)."""
    if name is not None:
        if name not in FAMILIES:
            raise ConfigError(f"unknown model {name!r}; known: {', '.join(FAMILIES)}")
        return FAMILIES[name]
    stem = Path(path).name
    for key in sorted(FAMILIES, key=len, reverse=True):
        if stem.startswith(key):
            return FAMILIES[key]
    raise ConfigError(f"cannot tell the model of config {str(path)!r} from its name; pass --model "
                     f"({', '.join(FAMILIES)})")


def load_family_config(path: Path, overrides: list[str] = (), model: str | None = None) -> tuple[Family, Any]:
    """The family of the config at path (see family_of) and the config, with overrides."""
    family = family_of(path, model)
    return family, load_config(family.config_cls, path, list(overrides))


def real_batch(family: Family, config: Any, h: int, w: int, device: torch.device | str) -> dict[str, Tensor]:
    """A batch of the shapes the plan uses (family.batch), with data on device: pictures drawn in
    -1..1, zero ids. What a real iteration is measured on."""
    shapes = family.batch(config, config.train.batch_size, h, w)
    return {k: (torch.randn(v.shape, device=device).clamp_(-1, 1) if v.is_floating_point()
                else torch.zeros(v.shape, dtype=v.dtype, device=device)) for k, v in shapes.items()}


def frame_size(family: Family, config: Any, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) of the frames the iteration sees: ``size`` if given, else what the
    preprocessing makes (scale_width: Cityscapes' 2:1 frames are assumed), else the built-in
    demo's size when the config trains on the demo (data.root null)."""
    if size is not None:
        return size
    d = config.data
    if d.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        return d.crop_size, d.crop_size
    if d.preprocess == "scale_width":
        return d.load_size // 2, d.load_size
    if d.root is None:
        side = family.demo_side(config)
        return side, side
    raise ConfigError(f"data.preprocess=none keeps the size of the files in {d.root}: give it with --size HxW")


@dataclass
class GPUPlan:
    family: str
    size: tuple[int, int]
    plan: IterationPlan
    fits: tuple[str, int, int] | None  # (what: "batch_size" or "max_frames_per_gpu", largest that fits, configured)


def build_on_meta(family: Family, config: Any) -> Any:
    """The family's task for config, its parameters made on the meta device from the start."""
    with META:
        return family.build(config, META)


def plan_config(path: Path, overrides: list[str] = (), *, model: str | None = None, gpus: int = 1,
                size: tuple[int, int] | None = None, gpu: GPU | None = None) -> GPUPlan:
    """Plans one training iteration of the config at path (with overrides) per GPU, and, given a
    GPU, the largest batch (vid2vid: frames per chunk) whose iteration fits its memory."""
    family, config = load_family_config(path, overrides, model)
    h, w = frame_size(family, config, size)
    epoch = family.last_epoch(config)  # the last epoch: every level of a progressive model is active

    def measure(cfg: Any) -> IterationPlan:
        task = build_on_meta(family, cfg)
        return plan_iteration(task, lambda: family.batch(cfg, cfg.train.batch_size, h, w), cfg.train, epoch=epoch,
                              world_size=gpus)

    plan = measure(config)
    fits = None
    if gpu is not None:
        if family.name == "vid2vid":
            key, upper, current = "max_frames_per_gpu", config.schedule.n_frames_total, config.schedule.max_frames_per_gpu

            def vary(n: int) -> Any:
                return dataclasses.replace(config, schedule=dataclasses.replace(config.schedule, max_frames_per_gpu=n))
        else:
            key, upper, current = "batch_size", 256, config.train.batch_size

            def vary(n: int) -> Any:
                return dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=n))
        fits = (key, largest_fitting(lambda n: measure(vary(n)).peak_bytes, gpu.memory, upper), current)
    return GPUPlan(family.name, (h, w), plan, fits)


def _iteration(path: Path, overrides: list[str], model: str | None, size: tuple[int, int] | None,
               device: torch.device) -> Callable[[], None]:
    """One real training iteration of the config on ``device``, on random data of the shapes plan_config
    plans, as a function to call; the first (warm-up) iteration has run, and the device is idle."""
    family, config = load_family_config(path, overrides, model)
    h, w = frame_size(family, config, size)
    epoch = family.last_epoch(config)
    use_device_settings(config.train, device)  # as the trainer would, so that the time is a training run's
    task = family.build(config, device)
    use_memory_format(task, config.train)
    batch = batch_to_device(real_batch(family, config, h, w, device), device, config.train.channels_last)

    def iteration() -> None:
        run_iteration(task, batch, config.train, epoch=epoch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    iteration()
    return iteration


def measure_iteration(path: Path, overrides: list[str] = (), *, model: str | None = None,
                      size: tuple[int, int] | None = None, device: torch.device | str = "cuda") -> tuple[int, float]:
    """(peak bytes allocated, seconds) of one real training iteration of the config on a CUDA
    device, after a warm-up iteration, on random data of the shapes plan_config plans: the
    measurement that a plan is checked against (``scripts/plan_gpu.py --measure``)."""
    device = torch.device(device)
    iteration = _iteration(path, overrides, model, size, device)
    torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    iteration()
    return torch.cuda.max_memory_allocated(device), time.perf_counter() - start


@dataclass
class KernelTime:
    name: str
    seconds: float
    """all its calls in the iteration together"""
    calls: int


@dataclass
class IterationProfile:
    """Where one training iteration's time goes (``scripts/plan_gpu.py --measure --profile``)."""

    seconds: float
    """the iteration's wall-clock time"""
    kernels: list[KernelTime]
    """every kernel the GPU ran (on a CPU: every op, by its own time), the longest first"""

    @property
    def outside_kernels(self) -> float:
        """the share of the iteration in which no kernel ran: launches, host work, waits (kernels that
        overlap on several streams count each, so this is a lower bound)"""
        return max(0.0, 1 - sum(k.seconds for k in self.kernels) / self.seconds)

    def table(self, top: int = 15) -> list[str]:
        """The ``top`` longest kernels as lines of text, and the share outside kernels."""
        lines = [f"{'ms':>9} {'share':>6} {'calls':>6}  kernel"]
        for k in self.kernels[:top]:
            name = k.name if len(k.name) <= 100 else k.name[:97] + "..."
            lines.append(f"{1e3 * k.seconds:9.2f} {100 * k.seconds / self.seconds:5.1f}% {k.calls:6d}  {name}")
        lines.append(f"outside kernels: {100 * self.outside_kernels:.0f}% of {1e3 * self.seconds:.1f} ms")
        return lines


def kernel_times(events: list[Any], device_type: torch.autograd.DeviceType) -> list[KernelTime]:
    """torch.profiler's averaged events of ``device_type`` (a GPU's kernels; a CPU's ops, by their own
    time, without what the ops they call take), the longest first."""
    cuda = device_type == torch.autograd.DeviceType.CUDA
    found = [KernelTime(e.key, (e.self_device_time_total if cuda else e.self_cpu_time_total) / 1e6, e.count)
             for e in events if e.device_type == device_type]
    return sorted((k for k in found if k.seconds > 0), key=lambda k: -k.seconds)


def profile_iteration(path: Path, overrides: list[str] = (), *, model: str | None = None,
                      size: tuple[int, int] | None = None, device: torch.device | str = "cuda") -> IterationProfile:
    """One real training iteration of the config (after a warm-up one) under torch.profiler: its time and
    its kernels (on a CPU, its ops)."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(device)
    iteration = _iteration(path, overrides, model, size, device)
    cuda = device.type == "cuda"
    with profile(activities=[ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda) as profiler:
        start = time.perf_counter()
        iteration()
        seconds = time.perf_counter() - start
    kind = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    return IterationProfile(seconds, kernel_times(profiler.key_averages(), kind))


__all__ = ["FAMILIES", "ConfigError", "GPUPlan", "IterationProfile", "KernelTime", "family_of", "frame_size",
           "kernel_times", "load_family_config", "measure_iteration", "plan_config", "profile_iteration",
           "real_batch"]
