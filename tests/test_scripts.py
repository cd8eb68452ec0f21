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


TINY = ["--vid2vid", "model.ngf=8", "model.ndf=8", "model.n_blocks=1", "model.num_D=1",
        "--pix2pixhd", "model.ngf=8", "model.ndf=8", "model.n_blocks_global=1", "model.num_D=1"]


def _demo_clip(path, seed, frames=14, size=48):
    from vid2vid.data.demo import demo_video
    from vid2vid.data.frames import write_video

    write_video(path, list(demo_video(seed, 1, frames, size)["image"]))  # moving textured shapes
    return str(path)


def test_benchmark_real_trains_both_models_on_each_clip_renders_and_scores(tmp_path):
    import numpy as np
    from PIL import Image

    clips = [_demo_clip(tmp_path / "first.mp4", 0), _demo_clip(tmp_path / "second.mp4", 1)]
    out = tmp_path / "bench"
    result = run("scripts/benchmark_real.py", "--clips", *clips, "--minutes", "0.001", "--size", "32x40",
                 "--test-frames", "4", "--output", str(out), *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "first.mp4: its 48x48 frames are resized to 32x40" in result.stdout  # resized whole, not cropped
    for clip in ("first", "second"):
        table = (out / clip / "results.md").read_text()
        assert ("| method | PSNR (dB) | SSIM | warping error | motion ratio | PSNR trend (dB/frame) | iterations |"
                in table)
        for row in ("| vid2vid |", "| pix2pixHD (frame by frame) |", "| real video | inf | 1.000 |"):
            assert row in table
        for name in ("real", "input", "vid2vid", "pix2pixhd"):
            assert len(list((out / clip / name / "frames").glob("*.png"))) == 4
        assert (out / clip / "side_by_side.mp4").stat().st_size > 0
        assert np.asarray(Image.open(out / clip / "real" / "frames" / "00000.png")).shape == (32, 40, 3)
    summary = (out / "results.md").read_text()
    assert "### first" in summary and "### second" in summary and "### mean of 2 clips" in summary
    assert summary.count("vid2vid's PSNR less pix2pixHD's along the test tail: ") == 3  # each clip, and the mean
    assert summary in result.stdout
    assert Image.open(out / "curves.png").size[0] > 400
    sheet = np.asarray(Image.open(out / "frames.png"))  # 3 test frames of each clip: input | vid2vid | pix2pixHD | real
    assert sheet.shape == (2 * 3 * 32, 4 * 40, 3)
    real_last = np.asarray(Image.open(out / "second" / "real" / "frames" / "00003.png"))
    np.testing.assert_array_equal(sheet[-32:, -40:], real_last)

    again = run("scripts/benchmark_real.py", "--clips", clips[0], "--minutes", "0.001", "--size", "32x40",
                "--test-frames", "4", "--output", str(tmp_path / "again"), "--baseline-from", str(out), *TINY)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"pix2pixhd: taken from {out / 'first'}" in again.stdout


def test_gap_trend_is_the_slope_of_the_psnr_difference_with_its_error():
    import numpy as np

    from vid2vid.real_benchmark import METHODS, ClipResult, gap_trend

    frames = np.arange(24)
    scatter = np.resize([0.3, -0.3], 24)  # the same frames' scatter on both: no error on the difference

    def result(vid2vid: np.ndarray, pix2pixhd: np.ndarray) -> ClipResult:
        curves = {METHODS["vid2vid"]: {"psnr": list(vid2vid)}, METHODS["pix2pixhd"]: {"psnr": list(pix2pixhd)}}
        return ClipResult("clip", {}, curves, {}, "")

    # vid2vid starts 2 dB ahead and falls 0.25 dB/frame where pix2pixHD falls 0.2: it declines faster
    slope, stderr = gap_trend(result(30 - 0.25 * frames + scatter, 28 - 0.2 * frames + scatter))
    assert abs(slope + 0.05) < 1e-9 and stderr < 1e-9
    slope, stderr = gap_trend(result(30 - 0.2 * frames + scatter, 28 - 0.2 * frames))  # parallel, noisier
    assert abs(slope) < 0.02 and 0.005 < stderr < 0.02


def test_benchmark_real_refuses_a_clip_too_short_in_one_line(tmp_path):
    clip = _demo_clip(tmp_path / "short.mp4", 0, frames=10)
    result = run("scripts/benchmark_real.py", clip, "--test-frames", "4", "--train-frames", "8", "--output",
                 str(tmp_path / "bench"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: {clip} has 10 frames: too few for 4 test frames and 8 training "
                                     "frames")
    result = run("scripts/benchmark_real.py", clip, "--test-frames", "6", "--output", str(tmp_path / "bench"))
    assert result.stderr.strip().endswith("too few for 6 test frames and 8 training frames (vid2vid's longest "
                                          "training clip)")


def test_the_development_clips_are_real_pictures_moving(tmp_path):
    from vid2vid.data.development_clips import PHOTO_CLIPS, SIZE, photo_clip_frames

    for name in PHOTO_CLIPS:
        frames = photo_clip_frames(name, frames=12)
        assert len(frames) == 12 and frames[0].shape == (*SIZE, 3)
        change = [float(abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames, frames[1:])]
        assert min(change) > 0.5, (name, change)  # the camera (or an object) moves in every frame
        assert frames[0].std() > 20, name  # a photograph, not a flat field


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
