"""Which implementation runs the operators, per device type.

Automatic choice, best first:

* CPU tensors:  ``compiled`` (vid2vid._C), then ``reference`` (pure PyTorch).
* CUDA tensors: ``compiled`` (if vid2vid._C was built with CUDA), then ``cupy``
  (the same kernel sources compiled at run time), then ``reference``.
* any other device: ``reference``.

``compiled`` is refused where an error raised inside vid2vid._C would crash
the interpreter instead of raising (checked once per build,
:mod:`vid2vid.ops.extension`).

The environment variable ``VID2VID_OPS_BACKEND`` overrides the choice: a
backend name (``compiled``, ``cupy``, ``reference`` or ``auto``) for every
device it can serve (``cupy`` serves CUDA only), or per device, e.g.
``cpu=reference,cuda=cupy``. A backend chosen automatically that is missing
degrades to the next with one warning; one that is asked for explicitly and
is missing is an error.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from types import ModuleType

import torch

from vid2vid.errors import UserError, see
from vid2vid.ops.extension import ErrorsDoNotReachPython

ENV_VAR = "VID2VID_OPS_BACKEND"
BACKENDS = ("compiled", "cupy", "reference")
OPERATORS = ("warp", "correlation", "channel_norm")
_AUTO_ORDER = {"cpu": ("compiled", "reference"), "cuda": ("compiled", "cupy", "reference")}
_BUILD_HINT = "build it with: pip install --no-build-isolation -e ."


class BackendUnavailableError(UserError):
    """A backend that was asked for explicitly cannot run here."""


@dataclass(frozen=True)
class BackendChoice:
    """The backend that serves one device type, and why."""

    name: str
    reason: str
    module: ModuleType

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@functools.lru_cache(maxsize=None)
def _load(name: str) -> tuple[ModuleType | None, str]:
    """The backend module, or None and why it cannot be loaded."""
    if name == "reference":
        from vid2vid.ops import reference

        return reference, "pure PyTorch"
    if name == "compiled":
        try:
            from vid2vid.ops import compiled
        except ImportError as e:
            return None, extension_problem(e)
        return compiled, "vid2vid._C, built " + ("with CUDA" if compiled.cuda_enabled else "without CUDA")
    if name == "cupy":
        try:
            from vid2vid.ops import cupy_backend
        except ImportError as e:
            return None, f"CuPy is not usable ({e})" + see("cupy-and-cuda-versions")
        return cupy_backend, "CuPy, kernels compiled at run time from csrc/"
    raise ValueError(name)


def extension_problem(error: ImportError) -> str:
    """Why vid2vid._C does not import, and what to do."""
    if isinstance(error, ErrorsDoNotReachPython):  # built, but it would crash on the first error
        return str(error)
    if "undefined symbol" in str(error):  # built against another torch than the one running
        return (f"vid2vid._C was built against another torch ({error}); rebuild it: {_BUILD_HINT}"
                + see("undefined-symbol-after-upgrading-torch"))
    return f"the extension vid2vid._C is not built ({error}); {_BUILD_HINT}"


def _availability(name: str, device_type: str) -> tuple[ModuleType | None, str]:
    if name == "cupy" and device_type != "cuda":
        return None, "CuPy serves CUDA tensors only"
    module, why = _load(name)
    if module is None:
        return None, why
    if device_type == "cuda":
        if name == "compiled" and not module.cuda_enabled:
            return None, (f"vid2vid._C was built without CUDA; {_BUILD_HINT} where torch has CUDA and nvcc is found"
                          + see("cuda-not-found"))
        if name == "compiled" and (missing := _missing_kernel_image(module)):
            return None, missing
        if name == "cupy" and not cupy_usable():
            return None, "CuPy sees no CUDA device" + see("cupy-and-cuda-versions")
    return module, why


def _missing_kernel_image(compiled: ModuleType) -> str:
    """Why vid2vid._C cannot run on this GPU ("" if it can): built for other architectures than the
    GPU's. One tiny warp finds out, so that the operators fall back instead of failing later."""
    if not torch.cuda.is_available():
        return ""
    image = torch.zeros(1, 1, 1, 1, device="cuda")
    try:
        compiled.warp_forward(image, torch.zeros(1, 2, 1, 1, device="cuda"))
        torch.cuda.synchronize()
    except RuntimeError as e:
        if "no kernel image" not in str(e):
            raise
        major, minor = torch.cuda.get_device_capability()
        return (f"vid2vid._C has no kernels for this GPU (compute capability {major}.{minor}); rebuild it with "
                f"TORCH_CUDA_ARCH_LIST={major}.{minor}: {_BUILD_HINT}" + see("no-kernel-image-is-available"))
    return ""


def cupy_usable() -> bool:
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def requested_backend(device_type: str) -> str:
    """The backend that VID2VID_OPS_BACKEND asks for on this device type ('auto' when none)."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if not value:
        return "auto"
    if "=" not in value:
        if value not in BACKENDS + ("auto",):
            raise UserError(f"{ENV_VAR}={value!r}: expected one of {', '.join(BACKENDS + ('auto',))}")
        return "auto" if value == "cupy" and device_type != "cuda" else value
    requested = "auto"
    for item in value.split(","):
        device, _, name = (part.strip() for part in item.partition("="))
        if name not in BACKENDS + ("auto",) or not device:
            raise UserError(f"{ENV_VAR}={value!r}: expected 'device=backend' items, backend one of "
                             f"{', '.join(BACKENDS + ('auto',))}, e.g. 'cpu=reference,cuda=cupy'")
        if device == device_type:
            requested = name
    return requested


@functools.lru_cache(maxsize=None)
def _choose(device_type: str, requested: str) -> BackendChoice:
    if requested != "auto":
        module, why = _availability(requested, device_type)
        if module is None:
            raise BackendUnavailableError(
                f"{ENV_VAR} asks for the {requested!r} backend on {device_type} tensors, but it is not available: {why}"
            )
        return BackendChoice(requested, f"requested by {ENV_VAR}; {why}", module)
    skipped = []
    for name in _AUTO_ORDER.get(device_type, ("reference",)):
        module, why = _availability(name, device_type)
        if module is not None:
            if skipped:
                warnings.warn(
                    f"vid2vid.ops: {device_type} tensors use the {name} backend because "
                    + "; ".join(f"{s} is unavailable: {w}" for s, w in skipped),
                    RuntimeWarning,
                    stacklevel=3,
                )
            reason = why if not skipped else f"{why}; fallback: " + "; ".join(f"no {s}" for s, _ in skipped)
            return BackendChoice(name, reason, module)
        skipped.append((name, why))
    raise AssertionError("the reference backend is always available")


def backend_for(device: torch.device | str) -> ModuleType:
    """The backend module that runs the operators on tensors of this device."""
    device_type = torch.device(device).type
    return _choose(device_type, requested_backend(device_type)).module


def backend_info() -> dict[str, dict[str, BackendChoice | str]]:
    """For each operator, the backend used for CPU and for CUDA tensors, and why.

    Entries are :class:`BackendChoice` objects, or the error message where an
    explicitly requested backend is missing. Every operator uses the same
    backend on a given device type.
    """
    per_device: dict[str, BackendChoice | str] = {}
    for device_type in ("cpu", "cuda"):
        if device_type == "cuda" and not torch.cuda.is_available():
            per_device[device_type] = "no CUDA device (torch.cuda.is_available() is False)"
            continue
        try:
            per_device[device_type] = _choose(device_type, requested_backend(device_type))
        except UserError as e:  # a bad VID2VID_OPS_BACKEND, or a backend it names that cannot run
            per_device[device_type] = str(e)
    return {op: dict(per_device) for op in OPERATORS}


def format_backend_info() -> str:
    """backend_info() as a small table, one line per operator and device."""
    lines = []
    for op, devices in backend_info().items():
        for device_type, choice in devices.items():
            lines.append(f"{op:<13} {device_type:<5} {choice}")
    return "\n".join(lines)
