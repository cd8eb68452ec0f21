"""scripts/gpu_check.py without a GPU: the deadline, the time limits, skipping, the summary and
results.jsonl, and reading each step's log."""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = sys.modules["gpu_check"] = importlib.util.module_from_spec(spec)  # (dataclasses look it up)
spec.loader.exec_module(gpu_check)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_steps_run_within_the_deadline_and_each_within_its_limit(tmp_path):
    Step = gpu_check.Step
    steps = [
        Step("ok", python("print('12 passed, 1 skipped in 3.2s')"), 0, 30, gpu_check.test_counts),
        Step("fails", python("import sys; print('1 failed, 2 passed'); sys.exit(3)"), 0, 30, gpu_check.test_counts),
        # a child that outlives its parent's limit is stopped with it
        Step("overruns", python("import subprocess, sys; subprocess.run([sys.executable, '-c', "
                                "'import time; time.sleep(60)'])"), 0, 1.5),
        Step("too long for what is left", python("print('never')"), 1000, 1000),
        Step("unreadable log", python("print('x')"), 0, 30, lambda log: 1 / 0),
        Step("no such program", ["/nonexistent/nvidia-smi"], 0, 30),
    ]
    start = time.monotonic()
    outcomes = gpu_check.run_steps(steps, tmp_path, deadline=60)
    assert time.monotonic() - start < 30
    assert [o.status for o in outcomes] == ["ok", "failed", "timed out", "skipped", "ok", "failed"]
    assert outcomes[5].note.startswith("cannot start")
    assert outcomes[0].figures == {"passed": 12, "skipped": 1}
    assert outcomes[1].figures == {"failed": 1, "passed": 2} and outcomes[1].note == "exit status 3"
    assert "usually takes 1000 s" in outcomes[3].note and not (tmp_path / "too long for what is left.log").exists()
    assert "ZeroDivisionError" in outcomes[4].figures["unreadable"]
    assert (tmp_path / "ok.log").read_text().startswith("12 passed")
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [s.name for s in steps] and records[2]["status"] == "timed out"
    table = gpu_check.summary(outcomes)
    assert "| too long for what is left | skipped | 0 | usually takes 1000 s" in table
    assert "| fails | failed |" in table and "exit status 3; passed 2; failed 1" in table


def test_a_deadline_already_spent_skips_every_step_and_names_it(tmp_path):
    result = subprocess.run([sys.executable, "scripts/gpu_check.py", str(tmp_path), "--deadline", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    names = [r["step"] for r in records]
    assert {r["status"] for r in records} == {"skipped"}
    assert names[:6] == ["gpu", "build", "toolchain", "tests", "operators", "flownet2"]
    assert {"train vid2vid", "train CycleGAN", "train CUT", "train SSAL-GAN", "train FlowNet2", "flownet2 compiled",
            "plan vid2vid_cityscapes_2048x1024", "plan vid2vid_cityscapes_512x256 channels-last",
            "plan pix2pixhd_cityscapes_1024x512 channels-last"} <= set(names)
    for name in names:
        assert f"| {name} | skipped |" in result.stdout


def test_every_step_names_files_that_exist():
    for step in gpu_check.steps(Path("/tmp/out")):
        for word in step.argv:
            if word.startswith(("scripts/", "configs/", "tests/")):
                assert (ROOT / word).exists(), (step.name, word)


def test_the_logs_are_read_into_figures():
    bench = """cuda: backends compiled, cupy, reference
operator     size                  pass     implementation          ms  vs baseline
warp         8x64x256x512          fwd      268 MB moved, 0.2 GFLOP, H100 roofline bound 80.1 us
                                            baseline             0.570        1.00x
                                            compiled             0.562        1.01x
correlation  8x256x56x128 d=441    fwd+bwd  59 MB moved, 10.5 GFLOP, H100 roofline bound 156.5 us
                                            compiled            82.400        2.90x
correlation  8x256x56x128 d=441 bf16  fwd      29 MB moved, 14.5 GFLOP, H100 roofline bound 216.0 us
                                            compiled             7.230        5.02x
"""
    rows = gpu_check.benchmark_rows(bench)["rows"]
    assert rows[1] == {"operator": "warp", "size": "8x64x256x512", "pass": "fwd", "implementation": "compiled",
                       "ms": 0.562, "vs_baseline": 1.01}
    assert rows[2]["operator"] == "correlation" and rows[2]["size"] == "8x256x56x128 d=441"
    assert rows[3]["size"] == "8x256x56x128 d=441 bf16" and rows[3]["pass"] == "fwd" and rows[3]["ms"] == 7.23
    plan = ("measured on NVIDIA H200: peak 12.52 GiB allocated (plan 14.07 GiB, +12.4%), 1098.0 ms per iteration "
            "(roofline bound on H100: 327.0 ms)")
    assert gpu_check.measured_plan(plan) == {"peak GiB": 12.52, "planned GiB": 14.07, "ms/iteration": 1098.0,
                                             "roofline ms": 327.0, "share of roofline": "30%"}
    assert gpu_check.measured_plan("plan_gpu: --measure needs a CUDA GPU") == {}


def test_flownet2_pairs_per_second_are_measured_and_read(tmp_path):
    result = subprocess.run([sys.executable, "scripts/bench_flownet.py", "--device", "cpu", "--size", "64x64",
                             "--batches", "1", "2", "--dtypes", "fp32", "--seconds", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = gpu_check.pairs_per_second(result.stdout)
    assert set(figures) == {f"batch {b} fp32 {f}" for b in (1, 2) for f in ("nchw", "channels_last")}
    assert all(rate > 0 for rate in figures.values())
