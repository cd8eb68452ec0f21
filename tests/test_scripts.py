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


def test_benchmark_real_trains_both_models_renders_and_scores(tmp_path):
    import numpy as np
    from PIL import Image

    from vid2vid.data.demo import demo_video
    from vid2vid.data.frames import write_video

    frames = demo_video(0, 1, 14, 48)["image"]  # moving textured shapes: any clip will do for the mechanics
    write_video(tmp_path / "clip.mp4", list(frames))
    out = tmp_path / "bench"
    result = run("scripts/benchmark_real.py", str(tmp_path / "clip.mp4"), "--minutes", "0.001", "--size", "32x48",
                 "--test-frames", "4", "--output", str(out),
                 "--vid2vid", "model.ngf=8", "model.ndf=8", "model.n_blocks=1", "model.num_D=1",
                 "--pix2pixhd", "model.ngf=8", "model.ndf=8", "model.n_blocks_global=1", "model.num_D=1")
    assert result.returncode == 0, result.stdout + result.stderr
    table = (out / "results.md").read_text()
    assert "| method | PSNR (dB) | SSIM | warping error | motion ratio | iterations |" in table
    for row in ("| vid2vid |", "| pix2pixHD (frame by frame) |", "| real video | inf | 1.000 |"):
        assert row in table and row in result.stdout
    for name in ("real", "input", "vid2vid", "pix2pixhd"):
        assert len(list((out / name / "frames").glob("*.png"))) == 4
    assert (out / "side_by_side.mp4").stat().st_size > 0
    assert np.asarray(Image.open(out / "real" / "frames" / "00000.png")).shape == (32, 48, 3)


def test_every_size_option_is_height_by_width():
    # one order everywhere: every script's --size goes through vid2vid.cli.image_size ("HxW")
    import re

    from vid2vid.cli import image_size

    assert image_size("32x48") == (32, 48) and image_size("64") == (64, 64)
    scripts = sorted((ROOT / "scripts").glob("*.py"))
    with_size = [p for p in scripts if '"--size"' in p.read_text()]
    assert len(with_size) >= 6
    for path in with_size:
        for line in re.findall(r'add_argument\("--size".*', path.read_text()):
            assert "type=image_size" in line and "WxH" not in line, f"{path.name}: {line}"


def test_user_errors_are_one_line_and_bugs_keep_their_traceback(capsys, monkeypatch, tmp_path):
    import importlib.util

    import pytest

    from vid2vid.cli import command
    from vid2vid.data.images import DatasetError

    @command
    def fails(argv):
        raise DatasetError("frames/00001.png is truncated")

    assert fails([]) == 1 and capsys.readouterr().err == "error: frames/00001.png is truncated\n"

    # a real script: a bug inside it (here a plain ValueError deep in rendering) is not swallowed
    spec = importlib.util.spec_from_file_location("render_vid2vid", ROOT / "scripts" / "render_vid2vid.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def broken(*args, **kwargs):
        raise ValueError("an internal shape mismatch")

    monkeypatch.setattr(script, "load_run", broken)
    argv = ["--checkpoint", str(tmp_path), "--input", str(tmp_path), "--output", str(tmp_path / "out")]
    with pytest.raises(ValueError, match="internal shape mismatch"):
        script.main(argv)
    monkeypatch.setattr(script, "load_run", lambda *a, **k: (_ for _ in ()).throw(DatasetError("no run in x")))
    assert script.main(argv) == 1 and capsys.readouterr().err == "error: no run in x\n"


def test_every_script_has_the_error_boundary():
    # each script's main goes through vid2vid.cli.command (or the training launcher), none catches
    # ValueError itself: that would hide the tracebacks of bugs
    for path in sorted((ROOT / "scripts").glob("*.py")):
        text = path.read_text()
        if "def main(" not in text:
            continue
        assert "@command\ndef main(" in text or "train_main(" in text, path.name
        assert "except ValueError" not in text and "except (ValueError" not in text, path.name
