"""Measures the peak memory of real CPU training iterations of a config, for
tests/test_planning.py: the growth of the process's peak resident set (VmHWM) over two
iterations of a model built after the baseline (parameters, optimizer state, batch and
everything the iterations make). Run with MALLOC_MMAP_THRESHOLD_ set low, so that freed
tensors go back to the system and the resident set follows the live bytes. (getrusage's
ru_maxrss would not do: a child process starts with its parent's.)

    python tests/cpu_peak_worker.py CONFIG HEIGHT WIDTH [section.key=value ...]

Prints the peak in bytes.
"""

import resource
import sys
import warnings
from pathlib import Path

import torch

from vid2vid.gpu_plan import load_family_config, real_batch
from vid2vid.training.planning import run_iteration


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_resident_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def reset_peak() -> None:
    """Sets the peak resident set back to the current one (Linux 4.0+; else the warm-up's stays, which is smaller)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def main() -> None:
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # one thread: no per-thread scratch buffers in the figure
    path, height, width, overrides = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    family, config = load_family_config(path, overrides)
    epoch = family.last_epoch(config)

    # warm-up at a quarter of the size: the libraries set up their state before the baseline
    task = family.build(config, torch.device("cpu"))
    run_iteration(task, real_batch(family, config, height // 4, width // 4, "cpu"), config.train, epoch=epoch)
    del task
    reset_peak()
    baseline = resident_bytes()
    task = family.build(config, torch.device("cpu"))
    batch = real_batch(family, config, height, width, "cpu")
    for _ in range(2):
        run_iteration(task, batch, config.train, epoch=epoch)
    print(peak_resident_bytes() - baseline)


if __name__ == "__main__":
    main()
