"""Compiles, with NVRTC, exactly the translation units that the CuPy backend
compiles at run time, for every kernel and element type. Needs only libnvrtc
(the nvidia-cuda-nvrtc wheel, which .ci/run installs) and the CUDA headers,
no GPU."""

import ctypes
import ctypes.util
import glob
import os
from pathlib import Path

import pytest

from vid2vid.ops.kernel_sources import KERNELS, kernel_source, kernel_source_dir, name_expressions

CUDA_INCLUDE_CANDIDATES = [
    Path(p) / "include" for p in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda") if p
]


def _load_nvrtc():
    candidates = []
    try:
        import nvidia  # namespace package of NVIDIA's CUDA wheels

        for base in nvidia.__path__:
            candidates += sorted(glob.glob(os.path.join(base, "*", "lib", "libnvrtc.so*")))
    except ImportError:
        pass
    if ctypes.util.find_library("nvrtc"):
        candidates.append(ctypes.util.find_library("nvrtc"))
    for path in candidates:
        if "builtins" in path:
            continue
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


NVRTC = _load_nvrtc()
CUDA_INCLUDE = next((p for p in CUDA_INCLUDE_CANDIDATES if (p / "cuda_fp16.h").is_file()), None)
if os.environ.get("CI") and (NVRTC is None or CUDA_INCLUDE is None):
    raise RuntimeError("CI must compile the CuPy kernel sources, but libnvrtc or the CUDA headers were not found")
pytestmark = pytest.mark.skipif(NVRTC is None or CUDA_INCLUDE is None, reason="libnvrtc or CUDA headers not found")


def _strings(values):
    return (ctypes.c_char_p * len(values))(*[v.encode() for v in values])


@pytest.mark.parametrize("header", sorted(KERNELS))
def test_cupy_translation_unit_compiles_with_nvrtc(header):
    program = ctypes.c_void_p()
    assert NVRTC.nvrtcCreateProgram(ctypes.byref(program), kernel_source(header).encode(), b"kernel.cu", 0,
                                    None, None) == 0
    expressions = name_expressions(header)
    for expression in expressions:
        assert NVRTC.nvrtcAddNameExpression(program, expression.encode()) == 0
    options = ["-std=c++17", f"-I{kernel_source_dir()}", f"-I{CUDA_INCLUDE}", "--gpu-architecture=compute_80"]
    status = NVRTC.nvrtcCompileProgram(program, len(options), _strings(options))
    log_size = ctypes.c_size_t()
    NVRTC.nvrtcGetProgramLogSize(program, ctypes.byref(log_size))
    log = ctypes.create_string_buffer(log_size.value)
    NVRTC.nvrtcGetProgramLog(program, log)
    try:
        assert status == 0, log.value.decode(errors="replace")
        for expression in expressions:
            lowered = ctypes.c_char_p()
            assert NVRTC.nvrtcGetLoweredName(program, expression.encode(), ctypes.byref(lowered)) == 0
            assert lowered.value.startswith(b"_Z"), expression
    finally:
        NVRTC.nvrtcDestroyProgram(ctypes.byref(program))
