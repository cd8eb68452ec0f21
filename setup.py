"""Builds the vid2vid package and its compiled operators, vid2vid._C.

The C++ CPU kernels are always built. The CUDA kernels are built when the
installed torch has CUDA and a CUDA toolkit (nvcc and its headers) is found.
Environment variables:

  VID2VID_CPU_ONLY=1      build the CPU kernels only, even where CUDA could be built
  VID2VID_REQUIRE_CUDA=1  fail, instead of building CPU-only, when CUDA cannot be built
  CUDA_HOME               the CUDA toolkit's folder, where it cannot be found from nvcc
  TORCH_CUDA_ARCH_LIST    the GPU architectures to build for (default: DEFAULT_CUDA_ARCHS below)

torch must already be installed, and the install must see it:
``pip install --no-build-isolation -e .`` (an isolated build environment would
download a torch of its own, several GB for a CUDA build).

The C++ standard is the one the installed torch asks for: torch's BuildExtension
adds its own ``-std=`` (C++17 up to torch 2.12, C++20 from 2.13) to both the host
compiler and nvcc whenever the extension names none, so none is named here.
"""

import glob
import os
import shutil
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(ROOT, "csrc")
sys.path.insert(0, ROOT)
from cuda_toolkit import find_cuda_toolkit  # noqa: E402  (beside this file; tested by tests/test_cuda_toolkit.py)

# A100 (8.0), RTX 30 series (8.6), RTX 40 series and L4/L40 (8.9), H100/H200 (9.0),
# plus PTX of 9.0 that the driver compiles for newer GPUs (Blackwell and later).
DEFAULT_CUDA_ARCHS = "8.0;8.6;8.9;9.0+PTX"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# torch's cpp_extension reads CUDA_HOME once, when imported: find the toolkit first.
CUDA_TOOLKIT, CUDA_TOOLKIT_PROBLEM = find_cuda_toolkit()
if CUDA_TOOLKIT:
    os.environ["CUDA_HOME"] = CUDA_TOOLKIT

try:
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension
except ImportError:  # pragma: no cover - the message is the point
    sys.exit(
        "vid2vid: torch is not importable in this build environment. Install torch first "
        "(on a CPU machine: pip install torch==2.13.0), then install vid2vid with "
        "pip install --no-build-isolation -e ."
    )


CUDA_HELP = " (see docs/troubleshooting.md#cuda-not-found)"


def cuda_build_problem() -> "str | None":
    """Why the CUDA kernels cannot be built here, or None if they can."""
    if env_flag("VID2VID_CPU_ONLY"):
        return "VID2VID_CPU_ONLY is set"
    if torch.version.cuda is None:
        return f"the installed torch {torch.__version__} has no CUDA"
    return CUDA_TOOLKIT_PROBLEM or None


def extension():
    sources = [os.path.join("csrc", "bindings.cpp")] + sorted(glob.glob(os.path.join("csrc", "*", "*.cpp")))
    cxx_flags = ["-O3", "-fopenmp"]
    problem = cuda_build_problem()
    if problem is None:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
        print(f"vid2vid: building CPU and CUDA kernels (CUDA toolkit {CUDA_TOOLKIT}, "
              f"architectures {os.environ['TORCH_CUDA_ARCH_LIST']})")
        return CUDAExtension(
            "vid2vid._C",
            sources + sorted(glob.glob(os.path.join("csrc", "*", "*.cu"))),
            include_dirs=[CSRC],
            define_macros=[("WITH_CUDA", None)],
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
            extra_link_args=["-fopenmp"],
        )
    help_ = CUDA_HELP if problem == CUDA_TOOLKIT_PROBLEM else ""  # torch has CUDA, the toolkit is not found
    if env_flag("VID2VID_REQUIRE_CUDA") and not env_flag("VID2VID_CPU_ONLY"):
        sys.exit(f"vid2vid: VID2VID_REQUIRE_CUDA is set but the CUDA kernels cannot be built: {problem}{help_}")
    print(f"vid2vid: building CPU kernels only ({problem}){help_}")
    return CppExtension(
        "vid2vid._C",
        sources,
        include_dirs=[CSRC],
        extra_compile_args={"cxx": cxx_flags},
        extra_link_args=["-fopenmp"],
    )


class BuildExtChecked(BuildExtension.with_options(use_ninja=True)):
    """Builds vid2vid._C, then checks once that an error raised inside it reaches Python as an
    exception (vid2vid/ops/extension.py; the first import checks again and refuses a build that fails)."""

    def run(self):
        super().run()
        from pathlib import Path

        from vid2vid.ops.extension import failure_message, run_error_check

        for ext in self.extensions:
            check = run_error_check(Path(self.get_ext_fullpath(ext.name)))
            if check.ok:
                print(f"vid2vid: checked: errors raised in {ext.name} reach Python as exceptions ({check.built_by})")
            elif not check.final:
                print(f"vid2vid: could not check that errors raised in {ext.name} reach Python: it {check.detail}")
            else:
                print(f"vid2vid: WARNING: {failure_message(check)}. Until then the operators use CuPy or the "
                      "pure-PyTorch reference", file=sys.stderr)


class BuildPyWithKernels(build_py):
    """Ships the device-code headers inside the package, for the CuPy backend."""

    def run(self):
        super().run()
        for header in glob.glob(os.path.join(CSRC, "**", "*.cuh"), recursive=True):
            target = os.path.join(self.build_lib, "vid2vid", "_kernels", os.path.relpath(header, CSRC))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(header, target)


setup(
    name="vid2vid",
    version="0.1.0",
    description="Video-to-video synthesis in PyTorch: vid2vid, pix2pixHD, pix2pix, FlowNet2 and fast flow ops",
    license="MIT",
    packages=find_packages(include=["vid2vid", "vid2vid.*", "flownet", "flownet.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.4", "numpy>=2", "scipy", "av", "pillow", "tqdm", "pyyaml", "kornia", "scikit-image"],
    extras_require={"cupy": ["cupy-cuda13x"], "tensorboard": ["tensorboard"], "safetensors": ["safetensors"],
                    "dis": ["opencv-python-headless"], "face": ["opencv-python-headless"],
                    "fid": ["torchmetrics"],
                    "bench": ["opencv-python-headless", "matplotlib", "scikit-video"],
                    "test": ["pytest", "pytest-xdist", "safetensors", "opencv-python-headless", "torchmetrics",
                             "matplotlib"]},
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtChecked, "build_py": BuildPyWithKernels},
    zip_safe=False,
)
