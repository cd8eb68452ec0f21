#!/usr/bin/env python
"""The whole GPU check, within a hard deadline (8 minutes by default), for whoever has a GPU: the build,
what its toolchain is, the CUDA operator tests, the operator benchmark, FlowNet2's pairs per second, the
memory and time plans against measured iterations (with the kernels that take the most time), every
trainer for 20 iterations on the GPU, and last two of the plans again with channels-last networks and batches.

    bash scripts/gpu_check.sh [OUTPUT] [--deadline SECONDS]      # default OUTPUT: runs/gpu_check

Each step has its own time limit and runs only if the time it usually takes is still left before the
deadline; a step that no longer fits is skipped and named, one that overruns its limit is stopped. Each
step's output is in OUTPUT/<step>.log, its outcome and figures one JSON line of OUTPUT/results.jsonl
(written as it ends, so a run cut short keeps what it has), and the end prints one summary table and the
figures. Needs torch with CUDA, the CUDA toolkit and this package's requirements (docs/installation.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # it runs before the package is installed: its first step builds it
from vid2vid.cli import command  # noqa: E402  (pure Python: nothing of the build is needed)

DEADLINE = 480.0
"""seconds: the whole check"""


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    expected: float
    """seconds it usually takes: it is skipped when less than this is left"""
    limit: float
    """its own time limit (seconds); it is stopped beyond"""
    figures: Callable[[str], dict] = lambda log: {}
    """the numbers its log holds, for the summary and results.jsonl"""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    step: str
    status: str
    """ok, failed, timed out or skipped"""
    seconds: float
    log: str
    figures: dict
    note: str = ""


def run_steps(steps: list[Step], out: Path, deadline: float = DEADLINE,
              clock: Callable[[], float] = time.monotonic) -> list[Outcome]:
    """Runs the steps in order within ``deadline`` seconds; each outcome also goes to out/results.jsonl."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)
    start, outcomes = clock(), []
    for step in steps:
        log = out / f"{step.name}.log"
        left = deadline - (clock() - start)
        if left < step.expected:
            outcome = Outcome(step.name, "skipped", 0.0, str(log), {},
                              f"usually takes {step.expected:.0f} s, {max(left, 0):.0f} s were left")
        else:
            outcome = _run(step, log, min(step.limit, left), clock)
        outcomes.append(outcome)
        with results.open("a") as f:
            f.write(json.dumps(asdict(outcome)) + "\n")
    return outcomes


def _run(step: Step, log: Path, timeout: float, clock: Callable[[], float]) -> Outcome:
    """One step, its output to log, stopped with everything it started after ``timeout`` seconds."""
    began = clock()
    with log.open("w") as output:
        try:
            process = subprocess.Popen(step.argv, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env={**os.environ, **step.env}, start_new_session=True)
        except OSError as e:  # e.g. no nvidia-smi: the step failed, the check goes on
            output.write(f"{e}\n")
            return Outcome(step.name, "failed", clock() - began, str(log), {}, f"cannot start: {e.strerror}")
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = None
    seconds = clock() - began
    text = log.read_text(errors="replace")
    try:
        figures = step.figures(text)
    except Exception as e:  # a log it cannot read is a finding, not the end of the check
        figures = {"unreadable": f"{type(e).__name__}: {e}"}
    if code is None:
        return Outcome(step.name, "timed out", seconds, str(log), figures, f"stopped after its {timeout:.0f} s")
    return Outcome(step.name, "ok" if code == 0 else "failed", seconds, str(log), figures,
                   "" if code == 0 else f"exit status {code}")


def summary(outcomes: list[Outcome]) -> str:
    """The outcomes as a markdown table: step, outcome, seconds, figures or why."""
    lines = ["| step | outcome | seconds | figures |", "| --- | --- | ---: | --- |"]
    for o in outcomes:
        shown = "; ".join(f"{k} {v}" for k, v in o.figures.items() if not isinstance(v, list))
        lines.append(f"| {o.step} | {o.status} | {o.seconds:.0f} | {'; '.join(filter(None, [o.note, shown]))} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ reading the logs


def test_counts(log: str) -> dict:
    """pytest's closing counts: passed, failed, skipped, errors."""
    found = dict((word, int(n)) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b", log))
    return {k: found[k] for k in ("passed", "failed", "skipped", "error", "errors") if k in found}


def benchmark_rows(log: str) -> dict:
    """bench_ops.py's table: one row per operator, size, pass and implementation (ms and ratio)."""
    rows, context = [], None
    for line in log.splitlines():
        head = re.match(r"^(warp|correlation|channel_norm)\s+(\S+(?: d=\d+)?(?: bf16)?)\s+(fwd\+bwd|fwd)\b", line)
        if head:
            context = head.groups()
            continue
        row = re.match(r"^\s+(\w+)\s+([\d.]+)\s+([\d.]+)x", line)
        if row and context:
            rows.append({"operator": context[0], "size": context[1], "pass": context[2],
                         "implementation": row[1], "ms": float(row[2]), "vs_baseline": float(row[3])})
    return {"rows": rows, "timed": len(rows)}


def pairs_per_second(log: str) -> dict:
    """bench_flownet.py's lines: pairs/s per batch, precision and memory format."""
    lines = re.findall(r"batch (\d+) (\w+) (\w+): ([\d.]+) pairs/s", log)
    return {f"batch {b} {d} {f}": float(r) for b, d, f, r in lines}


def measured_plan(log: str) -> dict:
    """plan_gpu.py --measure: the measured peak and time against the plan."""
    found = re.search(r"peak ([\d.]+) GiB allocated \(plan ([\d.]+) GiB.*?\), ([\d.]+) ms per iteration "
                      r"\(roofline bound on [^:]+: ([\d.]+) ms\)", log)
    if not found:
        return {}
    peak, planned, ms, bound = (float(x) for x in found.groups())
    return {"peak GiB": peak, "planned GiB": planned, "ms/iteration": ms, "roofline ms": bound,
            "share of roofline": f"{100 * bound / ms:.0f}%"}


# ------------------------------------------------------------------------------ the steps


def toolchain() -> int:
    """What a report of compiled ops that crash on errors needs (docs/troubleshooting.md): the compilers,
    what torch was built with, what the build says of itself, its error check and its libraries."""
    import glob
    import shutil

    for compiler in filter(None, [shutil.which("g++"), "/usr/bin/g++"]):
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True)
        print(f"== {compiler} (CXX={os.environ.get('CXX', 'unset')}):", version.stdout.partition("\n")[0])
    import torch

    config = torch.__config__.show()
    settings = dict(item.strip().split("=", 1) for item in config.split("Build settings:")[-1].split(", ")
                    if "=" in item)
    print("== torch", torch.__version__, "built with", config.splitlines()[1].strip("- "), "| CXX_COMPILER",
          settings.get("CXX_COMPILER"), "| _GLIBCXX_USE_CXX11_ABI", torch._C._GLIBCXX_USE_CXX11_ABI)
    print("== torch's CXX_FLAGS:", settings.get("CXX_FLAGS"))
    import vid2vid._C  # noqa: F401  the raw build, past the error check, to read what it reports of itself
    from vid2vid.ops import extension

    print("== vid2vid._C was built by", torch.ops.vid2vid_C.build_info())
    print("== error check:", extension.checked_errors(extension.extension_file()))
    for library in glob.glob(str(ROOT / "vid2vid" / "_C*.so")):
        print("== ldd", library)
        print(subprocess.run(["ldd", library], capture_output=True, text=True).stdout)
    return 0


PLANS = ["configs/vid2vid_cityscapes_512x256.yaml", "configs/pix2pixhd_cityscapes_1024x512.yaml",
         "configs/vid2vid_cityscapes_1024x512.yaml", "configs/vid2vid_cityscapes_2048x1024.yaml"]
TRAINERS = {  # 20 iterations of each on its demo, bf16 where the trainer has it
    "train pix2pix": ["scripts/train_pix2pix.py", "train.amp=bf16"],
    "train pix2pixHD": ["scripts/train_pix2pixhd.py", "train.amp=bf16"],
    "train vid2vid": ["scripts/train_vid2vid.py", "train.amp=bf16"],
    "train CycleGAN": ["scripts/train_unpaired.py", "--config", "configs/cyclegan_demo.yaml", "train.amp=bf16"],
    "train CUT": ["scripts/train_unpaired.py", "--config", "configs/cut_demo.yaml", "train.amp=bf16"],
    "train SSAL-GAN": ["scripts/train_unpaired.py", "--config", "configs/ssal_demo.yaml", "train.amp=bf16"],
}


def steps(out: Path) -> list[Step]:
    """The check, most telling first: what no longer fits the deadline is what matters least."""
    python = sys.executable
    found = [
        Step("gpu", ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"], 1, 20,
             lambda log: {"gpu": log.strip()}),
        Step("build", [python, "-m", "pip", "install", "-v", "--no-deps", "--no-build-isolation", "-e", "."], 40, 150,
             env={"VID2VID_REQUIRE_CUDA": "1"}),
        Step("toolchain", [python, __file__, "--toolchain"], 5, 30),
        Step("tests", [python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_ops_cuda.py",
                       "tests/test_ops_api.py", "tests/test_ops_numerics.py", "tests/test_nvrtc_sources.py"],
             60, 150, test_counts),
        Step("operators", [python, "scripts/bench_ops.py", "--device", "cuda"], 40, 90, benchmark_rows),
        Step("flownet2", [python, "scripts/bench_flownet.py", "--seconds", "2"], 45, 100, pairs_per_second),
    ]
    found += [Step(f"plan {Path(config).stem}", [python, "scripts/plan_gpu.py", "--config", config, "--measure",
                                                "--profile", "model.lambda_vgg=0"], 30, 90, measured_plan)
              for config in PLANS[:3]]
    for name, argv in TRAINERS.items():
        run = out / "runs" / name.split()[-1]
        found.append(Step(name, [python, *argv[:1], "--output", str(run), "--max-iters", "20", "--quiet", *argv[1:],
                                 "train.device=cuda"], 15, 60))
    found.append(Step("train FlowNet2", [python, "scripts/train_flownet.py", "--model", "FlowNet2S", "--steps", "20",
                                          "--device", "cuda", "--out", str(out / "runs" / "flownet"), "--quiet"],
                      15, 60))
    found.append(Step("flownet2 compiled", [python, "scripts/bench_flownet.py", "--formats", "compiled", "--dtypes",
                                             "bf16", "--seconds", "2"], 150, 240, pairs_per_second))
    found.append(Step(f"plan {Path(PLANS[3]).stem}", [python, "scripts/plan_gpu.py", "--config", PLANS[3],
                                                      "--measure", "model.lambda_vgg=0"], 60, 120, measured_plan))
    # the first two plans with channels-last networks and batches: whether train.channels_last earns a default
    found += [Step(f"plan {Path(config).stem} channels-last", [python, "scripts/plan_gpu.py", "--config", config,
                                                               "--measure", "model.lambda_vgg=0",
                                                               "train.channels_last=true"], 30, 90, measured_plan)
              for config in PLANS[:2]]
    return found


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", default="runs/gpu_check")
    parser.add_argument("--deadline", type=float, default=DEADLINE, help="seconds for the whole check")
    parser.add_argument("--toolchain", action="store_true", help=argparse.SUPPRESS)  # the toolchain step itself
    args = parser.parse_args(argv)
    if args.toolchain:
        return toolchain()
    out = Path(args.output).resolve()
    outcomes = run_steps(steps(out), out, args.deadline)
    print(summary(outcomes))
    for o in outcomes:  # what does not fit a table cell: the operator benchmark's table, the plans' profiles
        log = Path(o.log).read_text(errors="replace") if o.status != "skipped" else ""
        if o.step == "operators" and log:
            print(f"\n{o.step} ({o.log}):\n" + log.strip())
        elif "profile of one iteration:" in log:
            print(f"\n{o.step}, " + log[log.index("profile of one iteration:"):].strip())
    print(f"\nresults: {out / 'results.jsonl'}")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
