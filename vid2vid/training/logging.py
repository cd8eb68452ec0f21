"""What a training run shows: a progress bar with the losses and it/s,
``losses.jsonl`` (every iteration, the record resume and tests read),
TensorBoard scalars and images when tensorboard is installed, and an HTML page
of input/output/target samples per epoch, as the pix2pix code has."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from vid2vid.data.frames import write_video


def to_uint8_image(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in -1..1 -> one (H, B*W, 3) uint8 row; 1-channel images in grey."""
    images = images.detach().float().cpu()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    images = images[:, :3]
    row = torch.cat(list(images), dim=2)
    return ((row.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


class RunLogger:
    """Logs of one run under ``output``; a logger with ``enabled=False`` (ranks other than 0) does nothing."""

    def __init__(self, output: Path, *, enabled: bool = True, progress: bool = True):
        self.output = output
        self.enabled = enabled
        self.progress = progress
        self._bar = None
        self._file = None
        self._tensorboard = None

    def start(self, total: int, initial: int) -> None:
        if not self.enabled:
            return
        self.output.mkdir(parents=True, exist_ok=True)
        self._file = open(self.output / "losses.jsonl", "a")
        self._bar = tqdm(total=total, initial=initial, disable=not self.progress, dynamic_ncols=True)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            SummaryWriter = None
        if SummaryWriter is not None:
            self._tensorboard = SummaryWriter(str(self.output / "tensorboard"))

    def truncate(self, iteration: int) -> None:
        """Drops the loss records after ``iteration`` (those of a run resumed from there)."""
        path = self.output / "losses.jsonl"
        if not self.enabled or not path.exists():
            return
        with open(path) as f:
            kept = [line for line in f if line.strip() and json.loads(line)["iteration"] <= iteration]
        path.write_text("".join(kept))

    def losses(self, iteration: int, epoch: int, values: dict[str, float], *, write_scalars: bool) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps({"iteration": iteration, "epoch": epoch, **values}) + "\n")
        self._file.flush()
        self._bar.update(1)
        self._bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
        if write_scalars and self._tensorboard is not None:
            for name, value in values.items():
                self._tensorboard.add_scalar(f"loss/{name}", value, iteration)

    def samples(self, epoch: int, visuals: dict[str, torch.Tensor]) -> None:
        """Saves web/images/epoch<N>_<name>.png and rewrites web/index.html, newest epoch first.
        Clips (B, T, C, H, W) show the first clip's frames in a row, and all of them play in
        web/videos/epoch<N>.mp4, one row of the batch per visual, stacked."""
        if not self.enabled:
            return
        images = self.output / "web" / "images"
        images.mkdir(parents=True, exist_ok=True)
        clips = [batch for batch in visuals.values() if batch.dim() == 5]
        if clips:
            (self.output / "web" / "videos").mkdir(exist_ok=True)
            frames = (np.concatenate([to_uint8_image(clip[:, t]) for clip in clips], 0) for t in range(clips[0].shape[1]))
            write_video(self.output / "web" / "videos" / f"epoch{epoch:04d}.mp4", frames, fps=5)
        for name, batch in visuals.items():
            picture = to_uint8_image(batch[0] if batch.dim() == 5 else batch)
            Image.fromarray(picture).save(images / f"epoch{epoch:04d}_{name}.png")
            if self._tensorboard is not None:
                self._tensorboard.add_image(f"samples/{name}", picture, epoch, dataformats="HWC")
        write_html_index(self.output / "web" / "index.html", f"Training samples: {self.output.name}",
                         _epoch_rows(images))

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if self._file is not None:
            self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def _epoch_rows(images: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    by_epoch: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(images.glob("epoch*_*.png")):
        epoch, name = path.stem.split("_", 1)
        by_epoch.setdefault(epoch, []).append((name, f"images/{path.name}"))
    return [(f"epoch {int(e[5:])}", row) for e, row in sorted(by_epoch.items(), reverse=True)]


def save_picture_row(folder: Path, stem: str, pictures: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    """Saves each picture (B, C, H, W in -1..1) as folder/<stem>_<caption>.png; returns the
    (caption, path relative to folder's parent) pairs of one row of :func:`write_html_index`."""
    row = []
    for caption, picture in pictures.items():
        file = f"{stem}_{caption}.png"
        Image.fromarray(np.ascontiguousarray(to_uint8_image(picture))).save(folder / file)
        row.append((caption, f"{folder.name}/{file}"))
    return row


def write_html_index(path: Path, title: str, rows: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """A page of image rows: each row a heading and (caption, relative image path) pairs."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, images in rows:
        parts.append(f"<h3>{html.escape(heading)}</h3><table><tr>")
        for caption, src in images:
            parts.append(f"<td style='text-align:center'><img src='{html.escape(src)}' style='max-width:512px'>"
                         f"<br>{html.escape(caption)}</td>")
        parts.append("</tr></table>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
