"""vid2vid._C itself: where the built file is, and the check, once per build, that an error raised
inside it reaches Python as an exception.

Why the check: a C++ exception thrown in the extension (a ``TORCH_CHECK`` on a bad argument, an
out-of-memory in an allocation) travels through torch's dispatcher to pybind11, which turns it into
a ``RuntimeError``. With some toolchains (seen once: a second GCC installed beside the system's one)
the exception never arrives and the process dies with SIGSEGV, so one bad input would end a user's
training run. The first import of each build therefore runs one failing op in a subprocess; where
that subprocess dies, the compiled backend is refused with :class:`ErrorsDoNotReachPython` (an
ImportError) and :mod:`vid2vid.ops.backends` falls back to CuPy or the reference with one warning.
The answer is kept beside the build (in the user's cache where that folder is read-only), keyed by
the file's size and time and by torch's version, so later imports cost one ``stat``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from vid2vid.errors import see

# For tests only: the check's subprocess kills itself with SIGSEGV where the op would raise, as the
# broken toolchain did. A planted check neither reads nor writes the cache.
PLANT_CRASH = "VID2VID_PLANT_ERROR_CHECK_CRASH"
CHECK_TIMEOUT_S = 300
SYSTEM_COMPILER_FIX = "CXX=/usr/bin/g++ CC=/usr/bin/gcc pip install --no-build-isolation -e ."

# The check's subprocess: torch, then the built file under its own name, then one op that must raise.
# It needs nothing of this package but the file, so it checks a build before it is installed too.
_CHILD = r"""
import importlib.util, os, signal, sys
import torch
path = sys.argv[1]
try:
    spec = importlib.util.spec_from_file_location("vid2vid._C", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    print("built-by:", torch.ops.vid2vid_C.build_info(), flush=True)
except Exception as e:
    print(f"load-failed: {type(e).__name__}: {e}", flush=True)
    sys.exit(2)
if os.environ.get(sys.argv[2]):
    os.kill(os.getpid(), signal.SIGSEGV)
try:
    torch.ops.vid2vid_C.warp_forward(torch.zeros(1), torch.zeros(1))
except RuntimeError as e:
    print("raised: RuntimeError", flush=True)
    sys.exit(0)
except BaseException as e:
    print(f"raised: {type(e).__name__}: {e}", flush=True)
    sys.exit(3)
print("raised: nothing", flush=True)
sys.exit(4)
"""


class ErrorsDoNotReachPython(ImportError):
    """vid2vid._C was built so that an error raised inside it kills the process."""


@dataclass(frozen=True)
class ErrorCheck:
    """What the check's subprocess saw.

    ``ok``: a failing op raised RuntimeError. ``final``: the answer holds for this build (a check
    that timed out, or could not load the file, says nothing about it). ``built_by``: the compiler
    and C++ library the extension reports.
    """

    ok: bool
    detail: str
    built_by: str = ""
    final: bool = True


def extension_file() -> Path:
    """The built vid2vid._C file; ImportError where there is none."""
    try:
        spec = importlib.util.find_spec("vid2vid._C")
    except (ImportError, ValueError) as e:
        raise ImportError(f"No module named 'vid2vid._C' ({e})") from None
    if spec is None or not spec.origin:
        raise ImportError("No module named 'vid2vid._C'")
    return Path(spec.origin)


def run_error_check(path: Path) -> ErrorCheck:
    """Runs one op with a bad argument from the extension at ``path`` in a subprocess."""
    try:
        child = subprocess.run([sys.executable, "-c", _CHILD, str(path), PLANT_CRASH], capture_output=True,
                               text=True, timeout=CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return ErrorCheck(False, f"did not finish within {CHECK_TIMEOUT_S} s", final=False)
    said = dict(line.split(": ", 1) for line in child.stdout.splitlines() if ": " in line)
    built_by = said.get("built-by", "")
    if child.returncode == 0:
        return ErrorCheck(True, "raised RuntimeError", built_by)
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        return ErrorCheck(False, f"killed the process with {name} instead of raising RuntimeError", built_by)
    if "load-failed" in said:  # the import in this process will say why, with its own advice
        return ErrorCheck(False, f"could not load the file ({said['load-failed']})", final=False)
    if "raised" in said:
        return ErrorCheck(False, f"raised {said['raised']} instead of RuntimeError", built_by)
    last = child.stderr.strip().splitlines()[-1:] or ["no output"]
    return ErrorCheck(False, f"ended with status {child.returncode} ({last[0]})", built_by, final=False)


def _user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vid2vid" / "extension-checks"


def _cache_files(path: Path) -> list[Path]:
    """Where the answer for ``path`` is kept, first choice first."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return [path.with_name(path.name + ".error-check.json"), _user_cache_dir() / f"{digest}.json"]


def _cache_key(path: Path) -> dict:
    stat = path.stat()
    return {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "torch": torch.__version__}


def _read_cached(file: Path, key: dict) -> ErrorCheck | None:
    try:
        stored = json.loads(file.read_text())
        return ErrorCheck(**stored["check"]) if stored["key"] == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cached(files: list[Path], key: dict, check: ErrorCheck) -> None:
    text = json.dumps({"key": key, "check": asdict(check)}, indent=1)
    for file in files:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f"{file.name}.{os.getpid()}.tmp")
            partial.write_text(text)
            os.replace(partial, file)  # whole or absent, for processes importing at the same time
            return
        except OSError:
            continue


def checked_errors(path: Path) -> ErrorCheck:
    """The check of the build at ``path``: from the cache where this build was checked before."""
    planted = bool(os.environ.get(PLANT_CRASH))
    key = _cache_key(path)
    files = _cache_files(path)
    if not planted:
        for file in files:
            if (cached := _read_cached(file, key)) is not None:
                return cached
    check = run_error_check(path)
    if check.final and not planted:
        _write_cached(files, key, check)
    return check


def failure_message(check: ErrorCheck) -> str:
    """Why the compiled backend is not used, and how to rebuild it so that it can be."""
    built_by = f" (built by {check.built_by})" if check.built_by else ""
    return (f"an error raised inside vid2vid._C{built_by} does not reach Python as an exception: in a check, "
            f"an op given a bad argument {check.detail}, so any bad input or out-of-memory in a compiled op "
            f"would end the program. Rebuild it with the system's compiler: {SYSTEM_COMPILER_FIX}"
            + see("compiled-ops-crash-python"))


def require_errors_reach_python() -> None:
    """Returns where vid2vid._C reports errors as exceptions; raises ErrorsDoNotReachPython where it
    would crash, and ImportError where it is not built."""
    check = checked_errors(extension_file())
    if check.ok:
        return
    if check.final:
        raise ErrorsDoNotReachPython(failure_message(check))
    warnings.warn(f"vid2vid.ops: could not check that errors raised in vid2vid._C reach Python: the check "
                  f"{check.detail}; using it anyway", RuntimeWarning, stacklevel=2)


def launch_config(kernel: str, sizes: list[int], max_blocks: int | None = None) -> tuple[int, int]:
    """(blocks, threads) of a kernel's launch ("warp", "channel_norm", "correlation_forward",
    "correlation_backward"), from the function its CUDA launcher calls; ``max_blocks`` caps
    grid-stride loops (default: the launcher's cap).

    The CuPy backend launches with these even where the compiled kernels are refused: this op only
    computes numbers and never raises for the kernels named here.
    """
    import vid2vid._C  # noqa: F401  (registers torch.ops.vid2vid_C)

    blocks, threads = torch.ops.vid2vid_C.launch_config(kernel, sizes, max_blocks)
    return blocks, threads
