"""Plans a training run for a GPU without one: a training iteration on the meta device.

Meta tensors have shapes and dtypes but no data, so an iteration on them runs
every op's shape logic and nothing else, in seconds, at any size. It proves
the step code device-agnostic (a tensor made on the CPU by accident, or a host
sync such as ``.item()``, fails on meta) and measures what the iteration needs:

* **peak memory**: the persistent state (parameters, buffers, gradients,
  optimizer state, the batch) plus every storage an op creates, counted from
  its creation until it is freed. The count happens below autograd
  (``TorchDispatchMode``), so what autograd saves for the backward counts for
  as long as it is held. Not counted: the workspaces that cuDNN and cuBLAS take
  from the allocator and the allocator's rounding and fragmentation.
* **FLOPs** of every op (torch's flop-counter formulas: convolutions and matrix
  products) and the **bytes** it reads and writes, which give a roofline lower
  bound of the iteration time on a named GPU: per op, the longer of its FLOPs at
  the GPU's peak rate and its bytes at the GPU's memory bandwidth.

Mixed precision: torch has no autocast for meta tensors; :class:`MetaAutocast`
casts the inputs of the ops that CUDA's autocast runs in lower precision
(convolutions and matrix products).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map
from torch.utils.flop_counter import flop_registry
from torch.utils.weak import WeakIdKeyDictionary

from vid2vid.config import ConfigError
from vid2vid.training.distributed import DistContext
from vid2vid.training.trainer import StepContext, TrainConfig, TrainingTask

META = torch.device("meta")
GiB = 2**30


@dataclass(frozen=True)
class GPU:
    """Dense peak rates (no sparsity) in FLOP/s, memory bandwidth in bytes/s, memory in bytes."""

    name: str
    fp32: float
    tf32: float  # convolutions in float32 run as TF32 (torch's default allow_tf32 for cuDNN); V100 has none
    half: float  # bf16/fp16 tensor cores with float32 accumulation (V100: fp16 only)
    bandwidth: float
    memory: float


GPUS = {gpu.name.lower(): gpu for gpu in (
    GPU("V100", 15.7e12, 15.7e12, 125e12, 900e9, 32 * GiB),
    GPU("A100", 19.5e12, 156e12, 312e12, 2039e9, 80 * GiB),
    GPU("RTX 4090", 82.6e12, 82.6e12, 165.2e12, 1008e9, 24 * GiB),
    GPU("H100", 67e12, 494.7e12, 989.4e12, 3350e9, 80 * GiB),
)}


def find_gpu(name: str) -> GPU:
    """The GPU of the table by name (case and spaces ignored), or a ValueError naming the choices."""
    key = name.lower().replace(" ", "")
    for gpu_key, gpu in GPUS.items():
        if gpu_key.replace(" ", "") == key:
            return gpu
    raise ConfigError(f"unknown GPU {name!r}; known: {', '.join(g.name for g in GPUS.values())}")


# ------------------------------------------------------------------ autocast


# The functions of CUDA autocast's lower-precision list that the models here reach.
_LOWER_PRECISION = [(F, "conv1d"), (F, "conv2d"), (F, "conv3d"), (F, "conv_transpose1d"), (F, "conv_transpose2d"),
                    (F, "conv_transpose3d"), (F, "linear"), (torch, "matmul"), (torch, "mm"), (torch, "bmm"),
                    (torch, "addmm"), (torch, "baddbmm")]


class MetaAutocast:
    """CUDA autocast's lower-precision casts, for meta tensors (torch has none for them).

    While active, and wherever the CPU's autocast is enabled (StepContext.autocast enables it for
    meta tensors, which it does not change by itself), the floating-point meta inputs of
    convolutions, linear layers and matrix products go to the autocast dtype; every other op runs
    as called. Riding on the CPU's autocast state means that torch.utils.checkpoint restores it
    when it recomputes in the backward, as it does for real autocast.

    The casts must happen above autograd, as autocast's do, so that what the backward saves is the
    lower-precision copy, and they must reach the recomputations of checkpoints in the backward,
    where no torch-function mode is active (and below autograd a dispatch mode is too late:
    F.conv2d checks its dtypes first). So the functions themselves are wrapped while active.
    """

    def __enter__(self) -> MetaAutocast:
        self._saved = [(owner, name, getattr(owner, name)) for owner, name in _LOWER_PRECISION]
        for owner, name, original in self._saved:
            setattr(owner, name, _casting(original))
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in self._saved:
            setattr(owner, name, original)


def _casting(function: Callable[..., Any]) -> Callable[..., Any]:
    def cast(x: Any) -> Any:
        dtype = torch.get_autocast_dtype("cpu")
        if isinstance(x, Tensor) and x.device.type == "meta" and x.is_floating_point() and x.dtype != dtype:
            return x.to(dtype)
        return x

    def call(*args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            args, kwargs = tree_map(cast, (args, kwargs))
        return function(*args, **kwargs)

    return call


# ---------------------------------------------------------------- accounting


def _storage_bytes(tensors: Iterable[Tensor]) -> int:
    """Bytes of the distinct storages behind tensors."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[id(storage)] = storage.nbytes()
    return sum(seen.values())


class _Accountant(TorchDispatchMode):
    """Counts the bytes of the storages that ops create while they live, their peak, and
    each op's FLOPs and bytes moved; the phase (forward, backward, optimizer) of each."""

    def __init__(self, known: Iterable[Tensor], gpus: Iterable[GPU]):
        super().__init__()
        self._storages: WeakIdKeyDictionary = WeakIdKeyDictionary()
        for t in known:  # already counted as persistent state: views of them are no new memory
            self._storages[t.untyped_storage()] = 0
        self.live = 0
        self.peak = 0
        self.live_by_phase: Counter[str] = Counter()
        self.peak_by_phase: dict[str, int] = {}
        self.flops: Counter[str] = Counter()  # by precision: fp32, tf32, half
        self.bytes_moved = 0
        self.seconds = {gpu.name: 0.0 for gpu in gpus}
        self._gpus = list(gpus)
        self.in_optimizer = False

    @property
    def phase(self) -> str:
        if self.in_optimizer:
            return "optimizer"
        return "backward" if torch._C._current_graph_task_id() != -1 else "forward"

    def _free(self, nbytes: int, phase: str) -> None:
        self.live -= nbytes
        self.live_by_phase[phase] -= nbytes

    def _track(self, t: Tensor) -> None:
        storage = t.untyped_storage()
        if storage in self._storages:
            return
        nbytes, phase = storage.nbytes(), self.phase
        self._storages[storage] = nbytes
        weakref.finalize(storage, self._free, nbytes, phase)
        self.live += nbytes
        self.live_by_phase[phase] += nbytes
        if self.live > self.peak:
            self.peak = self.live
            self.peak_by_phase = dict(self.live_by_phase)

    def _cost(self, func, args, kwargs, out) -> None:
        if func.is_view:
            return
        tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, Tensor)]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        flops, precision = 0, "fp32"
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            flops = formula(*args, **kwargs, out_val=out)
            if any(t.dtype in (torch.float16, torch.bfloat16) for t in tensors):
                precision = "half"
            elif "conv" in func._overloadpacket.__name__:
                precision = "tf32"
            self.flops[precision] += flops
        self.bytes_moved += nbytes
        for gpu in self._gpus:
            self.seconds[gpu.name] += max(flops / getattr(gpu, precision), nbytes / gpu.bandwidth)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, Tensor):
                self._track(t)
        self._cost(func, args, kwargs, out)
        return out


# ----------------------------------------------------------------- iteration


@dataclass
class IterationPlan:
    """What one training iteration needs on one GPU."""

    parameters: dict[str, int]                 # parameters of each network
    persistent: dict[str, int]                 # bytes: parameters, gradients, optimizer, batch
    transient_at_peak: dict[str, int]          # bytes the iteration had created, live at the peak, by phase
    flops: dict[str, int]                      # by precision: fp32, tf32, half
    bytes_moved: int
    roofline_seconds: dict[str, float]         # lower bound of the iteration time, by GPU name
    extra: dict[str, int] = field(default_factory=dict)  # e.g. DDP's gradient buckets

    @property
    def peak_bytes(self) -> int:
        return sum(self.persistent.values()) + sum(self.transient_at_peak.values()) + sum(self.extra.values())

    @property
    def total_flops(self) -> int:
        return sum(self.flops.values())


def _modules_of(task: Any) -> list[nn.Module]:
    """Every network the task holds: those it trains and the frozen ones (VGG, FlowNet2)."""
    found = list(task.networks().values())
    found += [v for v in vars(task).values() if isinstance(v, nn.Module)]
    return found


def _optimizer_state(optimizers: Iterable[torch.optim.Optimizer]) -> list[Tensor]:
    return [v for opt in optimizers for state in opt.state.values() for v in state.values()
            if isinstance(v, Tensor)]


def run_iteration(task: TrainingTask, batch: Any, config: TrainConfig, *, epoch: int = 0) -> dict[str, Tensor]:
    """One ``train_step`` of task on its batch, as the trainer runs it but with no checks that
    read the device: on the meta device this is the test that the step is device-agnostic."""
    ctx = StepContext(config, DistContext(device=_device_of(task)), task.optimizers())
    ctx.epoch = epoch
    return task.train_step(batch, ctx)


def _device_of(task: TrainingTask) -> torch.device:
    return next(p.device for net in task.networks().values() for p in net.parameters())


def plan_iteration(task: TrainingTask, make_batch: Callable[[], Any], config: TrainConfig, *, epoch: int = 0,
                   gpus: Iterable[GPU] = GPUS.values(), world_size: int = 1) -> IterationPlan:
    """Measures the second of two training iterations of a task built on the meta device (the
    first creates the optimizer state, as in a running training). ``make_batch`` makes a batch
    on the meta device; ``epoch`` is the trainer's epoch (vid2vid's active levels grow with it).
    With ``world_size`` > 1, DDP's gradient buckets (one copy of the trained parameters) count too."""
    with MetaAutocast():
        run_iteration(task, make_batch(), config, epoch=epoch)
    batch = make_batch()
    networks = _modules_of(task)
    params = [p for net in networks for p in net.parameters()]
    buffers = [b for net in networks for b in net.buffers()]
    grads = [p.grad for p in params if p.grad is not None]
    optimizer_state = _optimizer_state(task.optimizers().values())
    inputs = [t for t in tree_leaves(batch) if isinstance(t, Tensor)]
    persistent = {"parameters and buffers": _storage_bytes(params + buffers), "gradients": _storage_bytes(grads),
                  "optimizer state": _storage_bytes(optimizer_state), "batch": _storage_bytes(inputs)}
    accountant = _Accountant(params + buffers + grads + optimizer_state + inputs, gpus)

    def enter_optimizer(*_):
        accountant.in_optimizer = True

    def leave_optimizer(*_):
        accountant.in_optimizer = False

    hooks = [register_optimizer_step_pre_hook(enter_optimizer),
             register_optimizer_step_post_hook(leave_optimizer)]
    try:
        with MetaAutocast(), accountant:
            run_iteration(task, batch, config, epoch=epoch)
    finally:
        for hook in hooks:
            hook.remove()
    trained = [p for net in task.networks().values() for p in net.parameters() if p.requires_grad]
    extra = {"DDP gradient buckets": _storage_bytes(trained)} if world_size > 1 else {}
    return IterationPlan(
        parameters={name: sum(p.numel() for p in net.parameters()) for name, net in task.networks().items()},
        persistent=persistent,
        transient_at_peak={k: v for k, v in accountant.peak_by_phase.items() if v},
        flops=dict(accountant.flops), bytes_moved=accountant.bytes_moved,
        roofline_seconds=dict(accountant.seconds), extra=extra)


def largest_fitting(peak_at: Callable[[int], int], memory: float, upper: int) -> int:
    """The largest n in 1..upper whose peak_at(n) fits in memory (0 if none): the estimate that
    takes the peak as affine in n from n = 1 and 2 (a batch, or frames per chunk), checked, and
    where it does not fit, a bisection below it."""
    one = peak_at(1)
    if one > memory:
        return 0
    slope = max(peak_at(2) - one, 1) if upper > 1 else 1
    high = min(upper, 1 + int((memory - one) // slope))
    if peak_at(high) <= memory:
        return high
    low = 1  # fits; high does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if peak_at(middle) <= memory else (low, middle)
    return low


def format_bytes(n: float) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB / 10 else f"{n / 2**20:.1f} MiB"


def describe(plan: IterationPlan, gpu: GPU) -> list[str]:
    """The plan as lines of text for one GPU."""
    lines = ["parameters:"]
    lines += [f"  {name:<24}{count / 1e6:>10.2f} M" for name, count in plan.parameters.items()]
    lines.append(f"peak memory {format_bytes(plan.peak_bytes)} per GPU, of which:")
    parts = {**plan.persistent, **plan.extra,
             **{f"made in the {phase} and live at the peak": n for phase, n in plan.transient_at_peak.items()}}
    for name, n in sorted(parts.items(), key=lambda kv: -kv[1]):
        if n:
            lines.append(f"  {name:<44}{format_bytes(n):>12}  {100 * n / plan.peak_bytes:5.1f}%")
    lines.append("  (not counted: cuDNN/cuBLAS workspaces, the allocator's rounding and fragmentation)")
    flops = ", ".join(f"{v / 1e12:.2f} T in {k}" for k, v in plan.flops.items() if v)
    lines.append(f"FLOPs {plan.total_flops / 1e12:.2f} T ({flops or 'none counted'}); "
                 f"{plan.bytes_moved / 1e9:.1f} GB read and written by the ops")
    seconds = plan.roofline_seconds[gpu.name]
    lines.append(f"roofline on {gpu.name} ({gpu.fp32 / 1e12:g} TFLOP/s fp32, {gpu.tf32 / 1e12:g} tf32, "
                 f"{gpu.half / 1e12:g} bf16/fp16, {gpu.bandwidth / 1e12:.2f} TB/s): at least "
                 f"{1e3 * seconds:.1f} ms per iteration")
    return lines
