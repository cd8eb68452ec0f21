"""setup.py's search for the CUDA toolkit (cuda_toolkit.py), on fake toolkits:
no real nvcc is needed."""

import os
import stat
from pathlib import Path

import pytest

import cuda_toolkit


def _executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _toolkit(folder: Path) -> Path:
    """A folder that looks like a CUDA toolkit; its nvcc answers a dry run as nvcc does."""
    _executable(folder / "bin" / "nvcc", f'#!/bin/sh\necho "#$ TOP={folder}/bin/.." >&2\n')
    (folder / "include").mkdir(parents=True)
    (folder / "include" / "cuda_runtime.h").write_text("")
    return folder


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    monkeypatch.setattr(cuda_toolkit, "is_cuda_toolkit",
                        lambda folder: bool(folder) and str(folder).startswith(str(tmp_path))
                        and os.path.isfile(os.path.join(folder, "include", "cuda_runtime.h")))
    return monkeypatch


def test_a_wrapper_nvcc_outside_the_toolkit_is_followed_to_its_toolkit(clean_env, tmp_path):
    toolkit = _toolkit(tmp_path / "cuda-13.0")
    # like /usr/local/bin/nvcc: a script that execs the real one, with no CUDA headers beside it
    _executable(tmp_path / "path" / "nvcc", f'#!/bin/sh\nexec {toolkit}/bin/nvcc "$@"\n')
    assert cuda_toolkit.find_cuda_toolkit() == (str(toolkit), "")


def test_cuda_home_wins_when_it_is_a_toolkit(clean_env, tmp_path):
    toolkit = _toolkit(tmp_path / "chosen")
    clean_env.setenv("CUDA_HOME", str(toolkit))
    assert cuda_toolkit.find_cuda_toolkit() == (str(toolkit), "")


def test_a_cuda_home_that_is_no_toolkit_is_named(clean_env, tmp_path):
    clean_env.setenv("CUDA_HOME", str(tmp_path / "nothing"))
    folder, problem = cuda_toolkit.find_cuda_toolkit()
    assert folder is None and f"CUDA_HOME={tmp_path / 'nothing'}" in problem and "\n" not in problem


def test_an_nvcc_of_no_toolkit_says_to_set_cuda_home(clean_env, tmp_path):
    _executable(tmp_path / "path" / "nvcc", "#!/bin/sh\nexit 1\n")
    folder, problem = cuda_toolkit.find_cuda_toolkit()
    assert folder is None and "set CUDA_HOME" in problem


def test_no_nvcc_at_all(clean_env):
    folder, problem = cuda_toolkit.find_cuda_toolkit()
    assert folder is None and problem.startswith("nvcc was not found")
