"""Checking a sequence dataset before training: every problem, with the file it is in.

Layout: ``ROOT/<phase>_A/<sequence>/`` inputs (label ids or edge/pose images),
``ROOT/<phase>_B/<sequence>/`` frames, optional ``<phase>_inst/`` instance maps
and ``<phase>_flow/`` ``.flo`` files (one per frame, or one per frame pair).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vid2vid.data.images import IMAGE_SUFFIXES, DatasetError, read_image


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class DatasetReport:
    root: Path
    phase: str
    sequences: int = 0
    frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    folders: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in sorted(self.sizes)) or "none"
        return (f"{self.root} ({self.phase}): {self.sequences} sequences, {self.frames} frames, "
                f"folders {', '.join(self.folders) or 'none'}, frame sizes {sizes}; "
                f"{len(self.problems) or 'no'} problem{'s' if len(self.problems) != 1 else ''}")


def _frames(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)


def _read(path: Path, report: DatasetReport) -> Image.Image | None:
    """The image as stored, or None with the problem recorded."""
    try:
        return read_image(path, mode=None)
    except DatasetError as e:
        report.problems.append(Problem(path, f"unreadable image ({e})"))
        return None


def _unmatched(inputs: list[Path], frames: list[Path]) -> str:
    """Which frames have no input file and which inputs no frame, by name: ': missing 00017.png'."""
    have, want = {p.stem for p in inputs}, {p.stem for p in frames}
    parts = []
    for label, names in (("missing", sorted(want - have)), ("extra", sorted(have - want))):
        if names:
            parts.append(f"{label} {', '.join(names[:5])}" + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
    return ": " + "; ".join(parts) if parts else ""


def _label_problem(out_of_range: list[tuple[Path, np.ndarray]], count: int, label_nc: int) -> Problem:
    """One problem for a sequence's label maps with ids >= label_nc, saying when they are edge maps."""
    first, values = out_of_range[0]
    more = f" (and {len(out_of_range) - 1} more of its {count} maps)" if len(out_of_range) > 1 else ""
    if all(set(np.unique(v).tolist()) <= {0, 255} for _, v in out_of_range):
        return Problem(first.parent, f"{len(out_of_range)} of {count} maps hold only 0 and 255: edge maps, not label "
                                     f"ids below label_nc {label_nc}; train on edges with data.input=images and "
                                     f"model.label_nc=0 (configs/vid2vid_edges.yaml)")
    return Problem(first, f"label {int(values.max())} >= label_nc {label_nc}{more}")


def check_sequence_dataset(root: str | os.PathLike, phase: str = "train", *, label_nc: int | None = None,
                           n_frames_total: int | None = None) -> DatasetReport:
    """Checks the dataset and returns a report listing every problem found.

    Args:
        label_nc: when given, the inputs in ``<phase>_A`` are label ids that must lie below it.
        n_frames_total: when given, every sequence needs at least this many frames.
    """
    from flownet.flow_utils import FlowFileError, read_flo  # flownet imports vid2vid.ops: load it only if needed

    root = Path(root)
    report = DatasetReport(root, phase)
    folders = {kind: root / f"{phase}_{kind}" for kind in ("A", "B", "inst", "flow")}
    for kind in ("A", "B"):
        if not folders[kind].is_dir():
            report.problems.append(Problem(folders[kind], "missing folder"))
    present = {k: f for k, f in folders.items() if f.is_dir()}
    report.folders = [f.name for f in present.values()]
    if "B" not in present:
        return report
    names = {k: sorted(p.name for p in f.iterdir() if p.is_dir()) for k, f in present.items()}
    sequences = names["B"]
    if not sequences:
        report.problems.append(Problem(present["B"], "no sequence folders"))
    for kind, found in names.items():
        for name in sorted(set(sequences) - set(found)):
            report.problems.append(Problem(present[kind] / name, f"missing: {phase}_B has this sequence"))
        for name in sorted(set(found) - set(sequences)):
            report.problems.append(Problem(present[kind] / name, f"extra sequence, not in {phase}_B"))

    for name in sequences:
        frames = _frames(present["B"] / name, IMAGE_SUFFIXES)
        report.sequences += 1
        report.frames += len(frames)
        if n_frames_total is not None and len(frames) < n_frames_total:
            report.problems.append(Problem(present["B"] / name, f"{len(frames)} frames, fewer than n_frames_total "
                                                                f"{n_frames_total}"))
        size = None
        for path in frames:
            image = _read(path, report)
            if image is None:
                continue
            size = size or image.size
            report.sizes.add(image.size)
            if image.size != size:
                report.problems.append(Problem(path, f"{image.size[0]}x{image.size[1]}, other frames of the "
                                                     f"sequence are {size[0]}x{size[1]}"))
        for kind in ("A", "inst"):
            if kind not in present or not (present[kind] / name).is_dir():
                continue
            files = _frames(present[kind] / name, IMAGE_SUFFIXES)
            if len(files) != len(frames):
                report.problems.append(Problem(present[kind] / name, f"{len(files)} frames, {phase}_B/{name} has "
                                                                     f"{len(frames)}{_unmatched(files, frames)}"))
            out_of_range: list[tuple[Path, np.ndarray]] = []
            for path in files:
                image = _read(path, report)
                if image is None:
                    continue
                if size is not None and image.size != size:
                    report.problems.append(Problem(path, f"{image.size[0]}x{image.size[1]}, the frames are "
                                                         f"{size[0]}x{size[1]}"))
                if kind == "A" and label_nc is not None:
                    if image.mode in ("RGB", "RGBA"):
                        report.problems.append(Problem(path, f"an {image.mode} image, but label_nc={label_nc} "
                                                             f"expects label ids"))
                    elif int((values := np.asarray(image)).max()) >= label_nc:
                        out_of_range.append((path, values))
            if out_of_range:
                report.problems.append(_label_problem(out_of_range, len(files), label_nc))
        if "flow" in present and (present["flow"] / name).is_dir():
            flows = _frames(present["flow"] / name, (".flo",))
            if len(flows) not in (len(frames), len(frames) - 1):
                report.problems.append(Problem(present["flow"] / name, f"{len(flows)} flow files for {len(frames)} "
                                                                       f"frames (expected {len(frames) - 1} or "
                                                                       f"{len(frames)})"))
            for path in flows:
                try:
                    flow = read_flo(path)
                except FlowFileError as e:
                    report.problems.append(Problem(path, str(e)))
                    continue
                if size is not None and (flow.shape[1], flow.shape[0]) != size:
                    report.problems.append(Problem(path, f"flow of {flow.shape[1]}x{flow.shape[0]}, the frames are "
                                                         f"{size[0]}x{size[1]}"))
    return report
