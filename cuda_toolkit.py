"""Finds the CUDA toolkit that setup.py builds the CUDA kernels with.

torch's own guess, when CUDA_HOME is unset, is the parent of the folder that
holds the first nvcc on PATH. Where that nvcc is a wrapper script elsewhere (as
on machines whose /usr/local/bin/nvcc execs /usr/local/cuda-13.0/bin/nvcc),
that folder has no CUDA headers and the build fails with ``cuda_runtime.h: No
such file or directory``. This module asks nvcc itself where its toolkit is.

It uses the standard library only: setup.py imports it before torch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess


def is_cuda_toolkit(folder: str | None) -> bool:
    """Whether folder holds bin/nvcc and include/cuda_runtime.h."""
    return bool(folder) and os.path.isfile(os.path.join(folder, "bin", "nvcc")) and os.path.isfile(
        os.path.join(folder, "include", "cuda_runtime.h"))


def toolkit_of_nvcc(nvcc: str) -> str | None:
    """The toolkit folder of the nvcc that runs when `nvcc` is called, or None.

    nvcc's dry run prints its toolkit as ``#$ TOP=...``, which also sees through
    wrapper scripts (os.path.realpath only sees through symbolic links).
    """
    try:
        result = subprocess.run([nvcc, "--dryrun", "-E", "-x", "cu", os.devnull, "-o", os.devnull],
                                capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"^#\$ TOP=(.+)$", result.stdout + result.stderr, re.MULTILINE)
    return os.path.normpath(match.group(1).strip().strip('"')) if match else None


def find_cuda_toolkit() -> tuple[str | None, str]:
    """(the CUDA toolkit's folder, "") or (None, one line saying what to set).

    CUDA_HOME, or CUDA_PATH, when set (a folder that is no toolkit is an error,
    not silently replaced). Otherwise the first toolkit among: torch's guess
    from the nvcc on PATH, the same through symbolic links, the toolkit that
    this nvcc reports, and /usr/local/cuda.
    """
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        folder = os.environ.get(variable)
        if folder:
            if is_cuda_toolkit(folder):
                return folder, ""
            return None, (f"{variable}={folder} has no bin/nvcc and include/cuda_runtime.h; "
                          "set it to the CUDA toolkit's folder")
    nvcc = shutil.which("nvcc")
    candidates = []
    if nvcc:
        candidates += [os.path.dirname(os.path.dirname(nvcc)), os.path.dirname(os.path.dirname(os.path.realpath(nvcc))),
                       toolkit_of_nvcc(nvcc)]
    candidates.append("/usr/local/cuda")
    for folder in candidates:
        if is_cuda_toolkit(folder):
            return folder, ""
    if nvcc:
        return None, (f"the nvcc on PATH ({nvcc}) belongs to no toolkit with include/cuda_runtime.h; "
                      "set CUDA_HOME to the CUDA toolkit's folder")
    return None, "nvcc was not found; install the CUDA toolkit, or set CUDA_HOME to its folder"
