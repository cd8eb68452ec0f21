"""The user-facing scripts run end to end."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_demo_ops_recovers_the_motion():
    result = run("scripts/demo_ops.py", "--device", "cpu", "--size", "128x192")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "peak at (dy, dx) = (1, -2)" in result.stdout
    assert "OK: the operators recovered the motion." in result.stdout


def test_bench_ops_prints_a_table_for_every_cpu_backend():
    result = run("scripts/bench_ops.py", "--device", "cpu", "--quick", "--min-time", "0.01")
    assert result.returncode == 0, result.stdout + result.stderr
    for op in ("warp", "correlation", "channel_norm"):
        assert op in result.stdout
    assert result.stdout.count("compiled") >= 8 and result.stdout.count("baseline") >= 8
