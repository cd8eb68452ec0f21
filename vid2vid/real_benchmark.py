"""vid2vid against frame-by-frame pix2pixHD on real clips, the same time budget for each model
(``scripts/benchmark_real.py``): one clip's dataset, the two trainings, the renders of its test tail,
their scores, the per-frame curves, and the tables of several clips and their mean.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats
import torch

from flownet.dis import dis_flow
from vid2vid import serialization
from vid2vid.config import load_config
from vid2vid.data.frames import iter_frames, read_image, video_frame_rate, write_image, write_video
from vid2vid.data.prepare import VideoPreparation, frame_stride, prepare_video_dataset
from vid2vid.errors import UserError
from vid2vid.evaluation import (VideoScores, composition_diagnosis, per_frame_scores, pix2pixhd_frames,
                                score_videos, scores_table, vid2vid_frames)
from vid2vid.inference import load_run
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig
from vid2vid.models.temporal import estimate_backward_flows
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.training.checkpoint import LATEST

ROOT = Path(__file__).resolve().parent.parent
IMAGE_EPOCHS_PER_MINUTE = 3
"""vid2vid's single-frame epochs (of 50 iterations) per minute of budget: about half of it on 2 CPU cores"""
MODELS = {"vid2vid": ("scripts/train_vid2vid.py", "configs/vid2vid_edges.yaml"),
          "pix2pixhd": ("scripts/train_pix2pixhd.py", "configs/pix2pixhd_edges.yaml")}
METHODS = {"vid2vid": "vid2vid", "pix2pixhd": "pix2pixHD (frame by frame)"}
"""the runs' names -> the methods' names in the tables"""
REAL = "real video"
PICTURES = ("input", "vid2vid", "pix2pixhd", "real")
"""what each clip's folder holds the test frames of, as pictures (OUTPUT/<clip>/<name>/frames/NNNNN.png)"""


@dataclass(frozen=True)
class Budget:
    """What every clip of one benchmark gets."""

    minutes: float = 9.0
    """training time per model"""
    size: tuple[int, int] = (144, 176)
    """(H, W) of the frames"""
    test_frames: int = 24
    """the last this many frames are the test tail"""
    train_frames: int | None = None
    """the this many frames before the tail are trained on (None: all of them)"""
    fps: float | None = None
    """subsample the clip to this frame rate (None: every frame)"""
    overrides: dict[str, list[str]] = field(default_factory=dict)
    """run name ("vid2vid", "pix2pixhd") -> its config overrides"""


@dataclass
class ClipResult:
    name: str
    scores: dict[str, VideoScores]
    curves: dict[str, dict[str, list[float]]]
    """method -> measure -> one value per test frame (per_frame_scores)"""
    iterations: dict[str, int]
    note: str


def clip_frames(video: Path, budget: Budget) -> list[np.ndarray]:
    """The clip's frames as the benchmark uses them: subsampled to ``budget.fps``, the last ``train_frames
    + test_frames``; refuses, in one line with the counts, a clip too short for them."""
    stride = frame_stride(video_frame_rate(video), budget.fps)
    frames = [frame for i, frame in enumerate(iter_frames(video)) if i % stride == 0]
    minimum = max(load_config(Vid2VidConfig, ROOT / MODELS["vid2vid"][1],
                              budget.overrides.get("vid2vid", [])).schedule.n_frames_total, 2)
    wanted = budget.train_frames or minimum
    if len(frames) < wanted + budget.test_frames:
        raise UserError(f"{video} has {len(frames)} frames{f' at {budget.fps:g} frames/s' if budget.fps else ''}: "
                        f"too few for {budget.test_frames} test frames and {wanted} training frames"
                        + ("" if budget.train_frames else " (vid2vid's longest training clip)"))
    return frames[-(budget.train_frames + budget.test_frames):] if budget.train_frames else frames


def prepare_clip(video: Path, data: Path, budget: Budget) -> str:
    """Writes the clip's edges -> frames dataset into ``data`` (the test tail as test_*); returns what it is.
    The frames it uses are kept in DATA/source/<clip>/."""
    frames = clip_frames(video, budget)
    height, width = frames[0].shape[:2]
    if (height, width) != budget.size:  # resized whole, never cropped: all that was filmed stays in the frame
        print(f"{video.name}: its {height}x{width} frames are resized to {budget.size[0]}x{budget.size[1]}")
    source = data / "source" / video.stem
    source.mkdir(parents=True)
    for t, frame in enumerate(frames):
        write_image(source / f"{t:05d}.png", frame)
    prepared = prepare_video_dataset([source], data, VideoPreparation(
        size=budget.size, fit="stretch", sequence_length=10**9, test_tail=budget.test_frames, edges="canny"))
    return f"{prepared[0].frames} training frames, the last {prepared[-1].frames} for testing"


def train(name: str, data: Path, run: Path, budget: Budget) -> int:
    """Trains one model for the budget; returns the iterations it reached."""
    script, config = MODELS[name]
    overrides = budget.overrides.get(name, [])
    if name == "vid2vid":  # the image phase takes a share of the budget; the user's overrides come after
        overrides = [f"schedule.image_epochs={round(IMAGE_EPOCHS_PER_MINUTE * budget.minutes)}", *overrides]
    # epochs of 50 iterations: schedules in epochs stay meaningful on one short clip; no decay (the
    # budget, not an epoch count, ends the run)
    argv = [sys.executable, str(ROOT / script), "--config", str(ROOT / config), "--output", str(run), "--quiet",
            f"data.root={data}", f"train.max_minutes={budget.minutes}", "train.iters_per_epoch=50",
            "train.epochs=100000", "train.epochs_decay=0", "train.checkpoint_every=500", *overrides]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:  # its own one-line message, or the traceback of a bug
        raise UserError(f"training {name} failed:\n{result.stderr.strip()}")
    iterations = serialization.load(run / "checkpoints" / LATEST)["iteration"]
    print(f"{name}: {iterations} iterations in {(time.monotonic() - started) / 60:.1f} min")
    return iterations


def as_uint8(frames: torch.Tensor) -> list[np.ndarray]:
    """(T, C, H, W) in -1..1 -> T (H, W, 3) uint8 pictures."""
    pictures = ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    if pictures.shape[1] == 1:
        pictures = pictures.expand(-1, 3, -1, -1)
    return list(pictures.permute(0, 2, 3, 1).numpy())


def benchmark_clip(video: Path, output: Path, budget: Budget, baseline_from: Path | None = None) -> ClipResult:
    """Prepares, trains both models, renders the test tail into OUTPUT/{real,input,vid2vid,pix2pixhd}/frames
    and OUTPUT/side_by_side.mp4, and scores it; OUTPUT/results.md holds the clip's table.

    ``baseline_from``: the same clip's folder of an earlier benchmark with the same budget, whose pix2pixHD
    run is taken instead of training one (ablations of vid2vid then share one baseline, in half the time).
    """
    data = output / "data"
    what = prepare_clip(video, data, budget)
    print(f"{video.name}: {what}, {budget.size[0]}x{budget.size[1]}")
    iterations = {}
    for name in MODELS:
        run = output / "runs" / name
        if name == "pix2pixhd" and baseline_from is not None:
            if not (baseline_from / "runs" / name / "checkpoints" / LATEST).is_file():
                raise UserError(f"{baseline_from} has no pix2pixHD run (runs/{name}) to take as the baseline")
            shutil.copytree(baseline_from / "runs" / name, run)
            iterations[name] = serialization.load(run / "checkpoints" / LATEST)["iteration"]
            print(f"{name}: taken from {baseline_from}")
        else:
            iterations[name] = train(name, data, run, budget)

    device = torch.device("cpu")
    model, config, _ = load_run(output / "runs" / "vid2vid", Vid2VidConfig, Vid2Vid.for_inference, device)
    baseline, _, _ = load_run(output / "runs" / "pix2pixhd", Pix2PixHDConfig, Pix2PixHD.for_inference, device)
    test = sequence_dataset(config, data, "test", schedule=None, train=False, multiple=model.multiple)
    sequence = {k: v for k, v in test[0].items() if torch.is_tensor(v) and v.dim() > 0}
    sequence["flow"] = estimate_backward_flows(dis_flow, sequence["image"][None])[0]
    made = {METHODS["vid2vid"]: vid2vid_frames(model)(sequence),
            METHODS["pix2pixhd"]: pix2pixhd_frames(baseline)(sequence), REAL: sequence["image"]}
    scores = score_videos({name: (lambda s, f=frames: f) for name, frames in made.items()}, [sequence])
    curves = {name: per_frame_scores(frames, sequence["image"], sequence["flow"]) for name, frames in made.items()}

    pictures = dict(zip(PICTURES, (as_uint8(sequence["label"]), as_uint8(made[METHODS["vid2vid"]]),
                                   as_uint8(made[METHODS["pix2pixhd"]]), as_uint8(sequence["image"]))))
    for name, frames in pictures.items():
        (output / name / "frames").mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(frames):
            write_image(output / name / "frames" / f"{t:05d}.png", frame)
    write_video(output / "side_by_side.mp4", (np.concatenate(row, 1) for row in zip(*pictures.values())), fps=10)

    note = (f"{video.name}: {what}, {budget.size[0]}x{budget.size[1]}, {budget.minutes:g} minutes of training per "
            f"model, {torch.get_num_threads()} CPU threads; flow for the scores: DIS of the real frames. "
            + composition_summary(composition_diagnosis(model, sequence)))
    iterations = {METHODS[name]: count for name, count in iterations.items()}
    result = ClipResult(video.stem, scores, curves, iterations, note)
    (output / "results.md").write_text(f"{note}\n\n{clip_table(result)}\n")
    return result


def composition_summary(diagnosis: dict[str, list[float]]) -> str:
    """One line on what vid2vid's frames after the first are made of (evaluation.composition_diagnosis)."""
    later = {name: float(np.nanmean(values[1:])) if len(values) > 1 else math.nan
             for name, values in diagnosis.items()}
    return (f"vid2vid's frames after the first: {later['frame']:.2f} dB, {100 * later['mask']:.0f}% drawn anew "
            f"(the occlusion mask); its hallucinated images {later['hallucinated']:.2f} dB, the warped previous "
            f"frames {later['warped']:.2f} dB; its first frame {diagnosis['frame'][0]:.2f} dB")


TREND = "PSNR trend (dB/frame)"


def psnr_trends(results: Sequence[ClipResult]) -> dict[str, str]:
    """Each method's PSNR trend along the test tails (:func:`trend`), averaged over the clips."""
    methods = [m for m in results[0].curves if m != REAL]
    return {m: f"{np.mean([trend(r.curves[m]['psnr']) for r in results]):+.3f}" for m in methods}


def clip_table(result: ClipResult) -> str:
    """The clip's scores, the PSNR trend along its test tail and the iterations trained, and vid2vid's trend
    against the baseline's (:func:`gap_trend`)."""
    table = scores_table(result.scores, {TREND: psnr_trends([result]),
                                         "iterations": {m: str(n) for m, n in result.iterations.items()}})
    return f"{table}\n\n{gap_sentence(*gap_trend(result))}"


def gap_trend(result: ClipResult) -> tuple[float, float]:
    """vid2vid's PSNR less pix2pixHD's along the test tail: the slope of its least-squares line (dB per frame;
    negative: vid2vid falls faster, or falls behind) and that slope's standard error. Two PSNR trends differ
    by a few hundredths of a dB per frame from one training to the next; this says whether a difference is
    larger than the frames' own scatter."""
    return line_fit(np.subtract(result.curves[METHODS["vid2vid"]]["psnr"], result.curves[METHODS["pix2pixhd"]]["psnr"]))


def gap_sentence(slope: float, stderr: float) -> str:
    """The line under a table that gives the gap trend (a blank line before it, or markdown reads it as a row)."""
    return (f"vid2vid's PSNR less pix2pixHD's along the test tail: {slope:+.3f} ± {stderr:.3f} dB/frame "
            f"(negative: vid2vid declines faster).")


def mean_scores(results: Sequence[ClipResult]) -> dict[str, VideoScores]:
    """Each method's scores averaged over the clips, each clip counting once."""
    def mean(method: str, key: str) -> float:
        return float(np.mean([getattr(r.scores[method], key) for r in results]))

    methods = results[0].scores
    return {m: VideoScores(mean(m, "psnr"), mean(m, "ssim"), mean(m, "warping_error"), mean(m, "motion_ratio"),
                           sum(r.scores[m].frames for r in results)) for m in methods}


def plot_curves(results: Sequence[ClipResult], path: Path) -> None:
    """Per-frame PSNR, SSIM, warping error and sharpness (over the real frames') along each clip's test tail,
    one column per clip, one row per measure (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = list(next(iter(results[0].curves.values())))
    figure, axes = plt.subplots(len(measures), len(results), figsize=(3.2 * len(results), 2.2 * len(measures)),
                                squeeze=False, sharex="col")
    for column, result in enumerate(results):
        for row, measure in enumerate(measures):
            ax = axes[row][column]
            for method, curves in result.curves.items():
                values = curves[measure]
                if method == REAL and measure != "warping error":
                    continue  # the real frames' own PSNR, SSIM and sharpness ratio say nothing
                ax.plot(range(len(values)), values, label=method, linewidth=1.2)
            ax.set_title(f"{result.name}: {measure}" if row == 0 else measure, fontsize=8)
            ax.tick_params(labelsize=7)
            if row == len(measures) - 1:
                ax.set_xlabel("test frame", fontsize=7)
    axes[0][0].legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def contact_sheet(clips: Sequence[Path], path: Path, frames_per_clip: int = 3) -> None:
    """One picture to look at: for each clip's folder, ``frames_per_clip`` test frames spread along the tail
    (first, ..., last), one row each, as input | vid2vid | pix2pixHD | real."""
    rows = []
    for clip in clips:
        files = sorted((clip / PICTURES[0] / "frames").glob("*.png"))
        chosen = np.linspace(0, len(files) - 1, min(frames_per_clip, len(files))).round().astype(int)
        for t in dict.fromkeys(chosen):
            rows.append(np.concatenate([read_image(clip / name / "frames" / files[t].name) for name in PICTURES], 1))
    write_image(path, np.concatenate(rows, 0))


def summary(results: Sequence[ClipResult]) -> str:
    """Every clip's table and the mean table, as markdown."""
    parts = [f"### {r.name}\n\n{r.note}\n\n{clip_table(r)}" for r in results]
    if len(results) > 1:
        gaps = np.array([gap_trend(r) for r in results])  # the clips' slopes are independent: errors add in squares
        parts.append(f"### mean of {len(results)} clips\n\n"
                     f"{scores_table(mean_scores(results), {TREND: psnr_trends(results)})}\n\n"
                     f"{gap_sentence(gaps[:, 0].mean(), np.sqrt(np.square(gaps[:, 1]).sum()) / len(gaps))}")
    return "\n\n".join(parts) + "\n"


def trend(curve: Sequence[float]) -> float:
    """Where a per-frame curve goes along the tail: the slope of its least-squares line, per frame (negative:
    it falls); frames without a value (NaN) are left out."""
    return line_fit(curve)[0]


def line_fit(curve: Sequence[float]) -> tuple[float, float]:
    """The slope (per frame) of the least-squares line through a per-frame curve and its standard error,
    frames without a value (NaN) left out: (0, NaN) for fewer than two values, the error NaN for two."""
    values = np.asarray(curve, dtype=float)
    known = ~np.isnan(values)
    if known.sum() < 2:
        return 0.0, math.nan
    fit = scipy.stats.linregress(np.flatnonzero(known), values[known])
    return float(fit.slope), (float(fit.stderr) if known.sum() > 2 else math.nan)
