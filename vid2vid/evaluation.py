"""Scoring generated videos against the real ones: PSNR and SSIM per frame (kornia),
and the temporal warping error (Wang et al. 2018 and Lai et al. 2018): how much each
generated frame differs from the previous generated frame warped by the real
frames' flow, over the pixels that flow explains (not occluded: the real frames
agree under it). A video that flickers scores high even where each frame looks right.

Over long videos two more (``score_videos(..., long_range=True)``), for the slow drift that neighbouring
frames cannot show: the long-range warping error (frame t against the first frame warped along the chained
flow, on the pixels that flow trusts) and, for sequences with instance maps, the per-object colour drift
(:func:`colour_drift`: how far each object's median CIELAB colour moves from its colour on its first frame,
CIEDE2000) and the excess drift, the generated video's drift less the real video's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import kornia
import torch
from torch import Tensor

from vid2vid.data.images import DatasetError
from vid2vid.data.tracks import OBJECT_MIN_PIXELS, eroded_mask, link_tracks, object_ids
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig
from vid2vid.models.temporal import flow_confidence, flows_to_first
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig
from vid2vid.ops import warp
from vid2vid.rendering import FrameByFrame


@dataclass
class VideoScores:
    """Means over every frame (PSNR, SSIM) and every frame pair (warping error) of the sequences scored."""

    psnr: float
    """dB, images in 0..1"""
    ssim: float
    warping_error: float
    """mean absolute difference in RGB levels (0..255) over the pixels the real flow explains"""
    motion_ratio: float
    """the frames' raw frame-to-frame change (mean |x_t - x_{t-1}|) over the real video's: 1 moves as much as the
    real video; far below 1, a video that barely moves (its warping error is then low for the wrong reason)"""
    frames: int
    long_range_warping_error: float = float("nan")
    """mean |x_t - warp(x_0, w_{t->0})| in RGB levels over the pixels the chained real flow trusts (with
    long_range; NaN otherwise)"""
    colour_drift: float = float("nan")
    """CIEDE2000, the mean over the objects of all sequences of :func:`colour_drift` (with long_range, for
    sequences with instance maps; NaN otherwise)"""
    excess_drift: float = float("nan")
    """CIEDE2000, colour_drift less the real video's on the same objects: the drift the generator adds"""


def object_colours(frames: Tensor, instances: Tensor, min_pixels: int = OBJECT_MIN_PIXELS
                   ) -> dict[int, dict[int, Tensor]]:
    """{object id: {frame index: its median CIELAB colour (3,)}} for frames (T, 3, H, W) in -1..1 and instance
    maps (T, 1, H, W). Objects are the ids of 1000 and above (Cityscapes: class * 1000 + number; smaller ids
    are whole classes of stuff); each is read on the frames where its mask, eroded by one pixel (so that the
    anti-aliased, warped and blurred outline's mixed colours do not count), keeps ``min_pixels`` pixels."""
    lab = kornia.color.rgb_to_lab((frames.float().clamp(-1, 1) + 1) / 2)
    colours: dict[int, dict[int, Tensor]] = {}
    for object_id in object_ids(instances):
        eroded = eroded_mask(instances, object_id)
        seen = {}
        for t in torch.flatten(torch.nonzero(eroded.flatten(1).sum(1) >= min_pixels)).tolist():
            seen[t] = lab[t][:, eroded[t, 0]].median(1).values
        if seen:
            colours[object_id] = seen
    return colours


def colour_drift(frames: Tensor, instances: Tensor, min_pixels: int = OBJECT_MIN_PIXELS) -> dict[int, float]:
    """Each object's colour drift (CIEDE2000): the median, over the frames after its first where it is read
    (:func:`object_colours`), of the distance of its median CIELAB colour to its colour on that first frame.
    An object that keeps its look scores about 0 however often it leaves and comes back; one that slowly
    changes colour scores about half its total change. Objects read on one frame only have none."""
    from skimage.color import deltaE_ciede2000  # scikit-image: the CIEDE2000 of the field, not ours

    drift = {}
    for object_id, seen in object_colours(frames, instances, min_pixels).items():
        if len(seen) > 1:
            first, *later = seen.values()
            distances = deltaE_ciede2000(first.numpy()[None], torch.stack(later).numpy())
            drift[object_id] = float(torch.from_numpy(distances).median())
    return drift


def long_range_warping_error(frames: Tensor, real: Tensor, flows: Tensor) -> tuple[float, float]:
    """(sum of |x_t - warp(x_0, w_{t->0})| in RGB levels over trusted pixels, their count) for frames and real
    frames (T, 3, H, W) in -1..1 and the real flows (T-1, 2, H, W) between neighbours, chained to the first
    frame (:func:`flows_to_first`); trusted are the pixels whose chained source lies inside the frame and where
    the real first frame warps onto the real frame t (visible all along, the chain right)."""
    to_first = flows_to_first(flows.float())
    height, width = to_first.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    source_x, source_y = xs + to_first[:, 0], ys + to_first[:, 1]
    inside = ((source_x >= 0) & (source_x <= width - 1) & (source_y >= 0) & (source_y <= height - 1))[:, None]
    first = lambda x: x[:1].expand(len(to_first), -1, -1, -1)  # noqa: E731
    trusted = flow_confidence(real[1:], first(real), to_first) * inside
    error = (frames[1:] - warp(first(frames), to_first)).abs().mean(1, keepdim=True) * 127.5 * trusted
    return float(error.sum()), float(trusted.sum())


def temporal_warping_error(frames: Tensor, real: Tensor, flows: Tensor) -> tuple[float, float]:
    """(sum of |x_t - warp(x_{t-1}, w_t)| in RGB levels over trusted pixels, their count) for frames and
    real frames (T, 3, H, W) in -1..1 and the real flows (T-1, 2, H, W) from each frame to the one before."""
    error, trusted = _warping_errors(frames, real, flows)
    return float(error.sum()), float(trusted.sum())


def _warping_errors(frames: Tensor, real: Tensor, flows: Tensor) -> tuple[Tensor, Tensor]:
    """(T-1, 1, H, W) |x_t - warp(x_{t-1}, w_t)| in RGB levels on the pixels the real flow trusts (0 elsewhere),
    and that trust (0 or 1)."""
    trusted = flow_confidence(real[1:], real[:-1], flows)
    return (frames[1:] - warp(frames[:-1], flows)).abs().mean(1, keepdim=True) * 127.5 * trusted, trusted


def sharpness(frames: Tensor) -> Tensor:
    """(T,) the variance of each frame's Laplacian (grey levels, frames (T, 3, H, W) in -1..1): detail, and
    noise; compared with the real frames' it tells a blurred frame (well below) from a speckled one (above)."""
    grey = ((frames.float() + 1) * 127.5).mean(1, keepdim=True)
    return kornia.filters.laplacian(grey, 3).flatten(1).var(1)


def per_frame_scores(frames: Tensor, real: Tensor, flows: Tensor) -> dict[str, list[float]]:
    """Each frame's PSNR (dB), SSIM, warping error against the frame before (RGB levels over the pixels the
    real flow trusts; NaN for frame 0) and sharpness over the real frame's (:func:`sharpness`), for frames
    and real frames (T, 3, H, W) in -1..1 and the real flows (T-1, 2, H, W)."""
    frames, real = frames.float().clamp(-1, 1), real.float()
    as_01 = lambda x: (x + 1) / 2  # noqa: E731
    mse = ((as_01(frames) - as_01(real)) ** 2).flatten(1).mean(1)
    error, trusted = _warping_errors(frames, real, flows.float())
    warping = error.flatten(1).sum(1) / trusted.flatten(1).sum(1).clamp_min(1)
    return {"psnr": (-10 * torch.log10(mse)).tolist(),
            "ssim": kornia.metrics.ssim(as_01(frames), as_01(real), 11).flatten(1).mean(1).tolist(),
            "warping error": [float("nan")] + warping.tolist(),
            "sharpness": (sharpness(frames) / sharpness(real).clamp_min(1e-6)).tolist()}


def score_videos(makers: Mapping[str, Callable[[Mapping[str, Tensor]], Tensor]],
                 sequences: Iterable[Mapping[str, Tensor]], long_range: bool = False,
                 instance_tracks: bool = True) -> dict[str, VideoScores]:
    """Scores of each ``make(sequence) -> frames (T, 3, H, W)`` on sequences of ``image`` (T, 3, H, W) in
    -1..1 and ``flow`` (T-1, 2, H, W), the real frames and their flows; every sequence is read once. With
    ``long_range``, also the long-range warping error and, where the sequences have ``instance`` maps with
    objects, the colour drift and excess drift (needs scikit-image), by object: the ids are its tracks with
    ``instance_tracks``, else they are linked along the real flow first (:func:`link_tracks`)."""
    # PSNR * frames, SSIM * frames, warping error, trusted pixels, frame-to-frame change, and the long-range
    # warping error and its trusted pixels
    sums = {name: [0.0] * 7 for name in makers}
    drifts: dict[str, list[float]] = {name: [] for name in makers}
    excess: dict[str, list[float]] = {name: [] for name in makers}
    count, real_motion = 0, 0.0
    as_01 = lambda x: (x + 1) / 2  # noqa: E731
    motion = lambda x: float((x[1:] - x[:-1]).abs().sum()) * 127.5  # noqa: E731
    for sequence in sequences:
        real, flows = sequence["image"].float(), sequence["flow"].float()
        instances = sequence.get("instance") if long_range else None
        if instances is not None and not instance_tracks:
            instances = link_tracks(instances[:, 0].cpu(), flows.cpu())[:, None]
        real_drift = colour_drift(real, instances.cpu()) if instances is not None else {}
        for name, make in makers.items():
            frames = make(sequence).float().clamp(-1, 1)
            scores = (float(kornia.metrics.psnr(as_01(frames), as_01(real), 1.0)) * len(frames),
                      float(kornia.metrics.ssim(as_01(frames), as_01(real), 11).mean()) * len(frames),
                      *temporal_warping_error(frames, real, flows), motion(frames),
                      *(long_range_warping_error(frames, real, flows) if long_range else (0.0, 0.0)))
            sums[name] = [a + b for a, b in zip(sums[name], scores)]
            if real_drift:
                drift = colour_drift(frames.cpu(), instances.cpu())
                drifts[name] += [drift[k] for k in real_drift]
                excess[name] += [drift[k] - real_drift[k] for k in real_drift]
        count += len(real)
        real_motion += motion(real)
    if count == 0:
        raise DatasetError("no sequences to score")
    mean = lambda values: sum(values) / len(values) if values else float("nan")  # noqa: E731
    return {name: VideoScores(psnr / count, ssim / count, error / max(trusted, 1.0),
                              moved / real_motion if real_motion else float("nan"), count,
                              long_error / max(long_trusted, 1.0) if long_range else float("nan"),
                              mean(drifts[name]), mean(excess[name]))
            for name, (psnr, ssim, error, trusted, moved, long_error, long_trusted) in sums.items()}


def scores_table(scores: Mapping[str, VideoScores], extra: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The scores as a markdown table, one row per method; the long-range warping error and the colour
    drifts where any method has them; extra adds columns (column -> method -> text)."""
    optional = {"long-range warping error": "long_range_warping_error", "colour drift": "colour_drift",
                "excess drift": "excess_drift"}
    shown = [c for c, field in optional.items() if any(not math.isnan(getattr(s, field)) for s in scores.values())]
    extra = extra or {}
    columns = ["PSNR (dB)", "SSIM", "warping error", "motion ratio", *shown, *extra]
    lines = ["| method | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name, s in scores.items():
        psnr = "inf" if s.psnr == float("inf") else f"{s.psnr:.2f}"
        cells = [psnr, f"{s.ssim:.3f}", f"{s.warping_error:.2f}", f"{s.motion_ratio:.2f}"]
        cells += [f"{getattr(s, optional[c]):.2f}" for c in shown]
        cells += [extra[c].get(name, "") for c in extra]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def vid2vid_frames(model: Vid2Vid) -> Callable[[Mapping[str, Tensor]], Tensor]:
    """A sequence's frames made by vid2vid one after the other (the encoder, if any, sees the real frames)."""
    def make(sequence: Mapping[str, Tensor]) -> Tensor:
        render = FrameByFrame(model)
        keys = ("label", "instance") + (("image",) if model.encoder is not None else ())
        return torch.cat([render({k: sequence[k][t:t + 1] for k in keys}) for t in range(len(sequence["label"]))])
    return make


@torch.no_grad()
def composition_diagnosis(model: Vid2Vid, sequence: Mapping[str, Tensor]) -> dict[str, list[float]]:
    """What each frame vid2vid makes of a sequence is composed of, frame by frame: the PSNR (dB, against the
    real frame) of the frame, of its hallucinated image h, of the warped previous frame, and of h made from
    an empty history (the path that single-frame training trains), and the mean occlusion mask (the share of
    the frame drawn anew rather than warped; NaN where nothing was warped)."""
    render = FrameByFrame(model)
    keys = ("label", "instance") + (("image",) if model.encoder is not None else ())
    def psnr(made: Tensor, t: int) -> float:
        return float(kornia.metrics.psnr((made.clamp(-1, 1) + 1) / 2, (sequence["image"][t:t + 1] + 1) / 2, 1.0))

    found: dict[str, list[float]] = {k: [] for k in ("frame", "hallucinated", "warped", "empty history", "mask")}
    for t in range(len(sequence["label"])):
        previous = render.frames[-1] if render.frames else None
        frame = render({k: sequence[k][t:t + 1] for k in keys})
        alone = render.clip_generator(render.window, None, model.foreground_masks(
            {k: sequence[k][t:t + 1, None] for k in keys}))["frame"][:, 0]
        out = render.output
        warped = out is not None and "flow" in out and previous is not None
        found["frame"].append(psnr(frame, t))
        found["hallucinated"].append(psnr(out["hallucinated"][:, 0], t) if out is not None else psnr(frame, t))
        found["warped"].append(psnr(warp(previous, out["flow"][:, 0].float()), t) if warped else float("nan"))
        found["empty history"].append(psnr(alone, t))
        found["mask"].append(float(out["mask"].mean()) if warped else float("nan"))
    return found


def pix2pixhd_frames(model: Pix2PixHD) -> Callable[[Mapping[str, Tensor]], Tensor]:
    """A sequence's frames made by pix2pixHD independently, frame by frame (the baseline)."""
    def make(sequence: Mapping[str, Tensor]) -> Tensor:
        return torch.cat([model.synthesize({k: sequence[k][t:t + 1] for k in ("label", "instance", "image")})
                          for t in range(len(sequence["label"]))])
    return make


def _inputs(what: str, use_instance: bool, extra_nc: int = 0) -> str:
    extra = f", {extra_nc} extra channels" if extra_nc else ""
    return f"{what}, instance maps {'yes' if use_instance else 'no'}{extra}"


def _labels_or_pictures(label_nc: int) -> str:
    """<phase>_A as label ids (label_nc > 0) or as pictures (0), in the same words for both models."""
    return f"label ids from <phase>_A (label_nc {label_nc})" if label_nc else "pictures from <phase>_A (label_nc 0)"


def vid2vid_inputs(config: Vid2VidConfig) -> str:
    """What a vid2vid run's generator takes per frame, in the terms pix2pixhd_inputs uses."""
    m, d = config.model, config.data
    what = {"labels": _labels_or_pictures(m.label_nc), "images": _labels_or_pictures(0),
            "canny": "Canny edges computed from the frames",
            "openpose": "OpenPose poses" + (" after DensePose IUV images" if d.densepose else ""),
            "densepose": "DensePose IUV images", "face": "face landmarks drawn as edge maps"}[d.input]
    return _inputs(what, m.use_instance)


def pix2pixhd_inputs(config: Pix2PixHDConfig) -> str:
    """What a pix2pixHD run's generator takes, in the terms vid2vid_inputs uses."""
    m = config.model
    return _inputs(_labels_or_pictures(m.label_nc), m.use_instance, m.extra_nc)


def real_frames(sequence: Mapping[str, Tensor]) -> Tensor:
    """The real frames themselves: the scores' reference (infinite PSNR, SSIM 1, the video's own warping error)."""
    return sequence["image"]
