"""The CUDA kernels of csrc/ run on the CPU: the emulator (emulator.h) built at test time
from the very ``*_kernel.cuh`` sources that nvcc and NVRTC compile (a g++ build of
harness.cpp, cached by the content of every source it reads), and a stand-in for CuPy
whose RawModule/RawKernel send the CuPy backend's launches to it, so that the backend's
own launch code (grids, arguments, dtypes) runs too."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSRC = HERE.parent.parent / "csrc"
CACHE = Path(tempfile.gettempdir()) / "vid2vid-cuda-emulator"


def _sources(csrc: Path) -> list[Path]:
    return sorted(HERE.glob("*.h")) + [HERE / "harness.cpp"] + sorted(csrc.glob("**/*.cuh"))


def build(csrc: Path = CSRC) -> Path:
    """The emulator library for the kernels under csrc, built unless the cache has it."""
    digest = hashlib.sha256()
    for path in _sources(csrc):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    library = CACHE / f"emulator-{digest.hexdigest()[:16]}.so"
    if not library.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = library.with_suffix(f".{os.getpid()}.tmp")
        command = ["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-DV2V_CUDA_EMULATION", f"-I{HERE}",
                   f"-I{csrc}", str(HERE / "harness.cpp"), "-o", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"building the CUDA emulator failed:\n{result.stderr[-4000:]}")
        os.replace(partial, library)
    return library


class EmulationError(RuntimeError):
    """A kernel failed under emulation (a deadlock, a bad launch, an unsupported shuffle)."""


class Emulator:
    """Runs the kernels of one emulator build: ``launch("vid2vid::warp_forward_kernel<float>", ...)``."""

    def __init__(self, library: Path):
        self._lib = ctypes.CDLL(str(library))
        self._lib.v2v_emulate.restype = ctypes.c_int
        self._lib.v2v_emulate.argtypes = [ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_longlong), ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        self._lib.v2v_atomic_adds.restype = ctypes.c_longlong
        self.launches: list[tuple[str, int, int]] = []

    @property
    def atomic_adds(self) -> int:
        """atomicAdds the last launch made."""
        return self._lib.v2v_atomic_adds()

    def launch(self, name: str, blocks: int, threads: int, args: list[int]) -> None:
        # pointers may arrive as numpy uint64: c_longlong keeps their 64 bits, as signed
        values = (ctypes.c_longlong * len(args))(*[ctypes.c_longlong(int(a)).value for a in args])
        error = ctypes.create_string_buffer(1024)
        self.launches.append((name, blocks, threads))
        if self._lib.v2v_emulate(name.encode(), blocks, threads, values, len(args), error, len(error)):
            raise EmulationError(f"{name}: {error.value.decode()}")


def fake_cupy(emulator: Emulator) -> types.ModuleType:
    """What the CuPy backend uses of CuPy, with kernels that run on the emulator."""

    class RawKernel:
        def __init__(self, name: str):
            self.name = name

        def __call__(self, grid: tuple[int], block: tuple[int], args: tuple) -> None:
            assert len(grid) == 1 and len(block) == 1, "the kernels are launched 1-D"
            emulator.launch(self.name, grid[0], block[0], [int(a) for a in args])

    class RawModule:
        def __init__(self, code: str, options: tuple[str, ...], name_expressions: list[str]):
            self.code, self.options, self.name_expressions = code, options, name_expressions

        def compile(self) -> None:
            pass

        def get_function(self, name: str) -> RawKernel:
            assert name in self.name_expressions, name
            return RawKernel(name)

    class _Context:
        def __init__(self, *args):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    cupy = types.ModuleType("cupy")
    cupy.RawModule = RawModule
    cupy.cuda = types.SimpleNamespace(Device=_Context, ExternalStream=_Context)
    return cupy


def load_cupy_backend(emulator: Emulator) -> types.ModuleType:
    """A fresh copy of vid2vid.ops.cupy_backend that imports the stand-in CuPy: its kernels run
    on the emulator, on CPU tensors (their addresses are the kernels' pointers)."""
    spec = importlib.util.find_spec("vid2vid.ops.cupy_backend")
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = fake_cupy(emulator)
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = saved
    return module
