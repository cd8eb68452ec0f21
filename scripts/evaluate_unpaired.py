#!/usr/bin/env python
"""Score unpaired translation models on a test set: structure kept, colour fidelity, colourfulness,
diversity and speed, one row per model, beside the untranslated input as a baseline.

    python scripts/evaluate_unpaired.py --checkpoint runs/cyclegan runs/cut --data datasets/summer2winter

--data is CycleGAN's layout: testA/ holds the sources, testB/ the target domain's images, whose
pooled colours are the reference of models without one; reference-guided models (ssal) translate
each source with the first --n-references testB images, each output judged against its own
reference. Measures (vid2vid/unpaired_evaluation.py): self-similarity distance to the source (lower
keeps more structure), edge F1 against the source, with the demo's ground truth (testA_structure/)
the F1 of the output's edges against the true shape boundaries, Hellinger distance of log-chroma
histograms and RGB moment distance to the reference (lower is closer), Hasler-Suesstrunk
colourfulness, mean pairwise L1 between the samples of one input, and seconds per image. FID and
KID are not measured yet.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from vid2vid.cli import command
from vid2vid.data.images import list_images, read_image, read_rgb, to_tensor
from vid2vid.errors import UserError
from vid2vid.inference import load_run
from vid2vid.models.unpaired import UnpairedConfig, build_unpaired
from vid2vid.training.distributed import resolve_device
from vid2vid.unpaired_evaluation import colourfulness, score_unpaired

HEADER = ("| method | self-similarity ↓ | edge F1 ↑ | boundary F1 ↑ | histogram ↓ | moments ↓ | colourfulness | "
          "diversity | s / image |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def read_folder(folder: Path, limit: int | None) -> list[torch.Tensor]:
    files = list_images(folder)[:limit]
    if not files:
        raise UserError(f"{folder} holds no images")
    return [to_tensor(read_rgb(path)).unsqueeze(0) for path in files]


def read_structures(folder: Path, limit: int | None) -> list[torch.Tensor] | None:
    """The true region ids of the sources (the demo's testA_structure/), if the dataset has them."""
    if not folder.is_dir():
        return None
    return [torch.from_numpy(np.array(read_image(path, mode=None), dtype=np.int64))[None, None]
            for path in list_images(folder)[:limit]]


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", nargs="+", required=True, help="training run folders or checkpoint files")
    parser.add_argument("--data", required=True, help="dataset folder with testA/ and testB/")
    parser.add_argument("--max-images", type=int, help="score at most this many test images")
    parser.add_argument("--n-references", type=int, default=4,
                        help="reference-guided models: translate each image with this many testB references "
                             "(default 4): their colour distances to their references, and their diversity")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    sources = read_folder(Path(args.data) / "testA", args.max_images)
    references = read_folder(Path(args.data) / "testB", args.max_images)
    shape = references[0].shape
    reference = torch.cat([r for r in references if r.shape == shape])  # pooled: one size is enough
    structures = read_structures(Path(args.data) / "testA_structure", args.max_images)
    rows = {"input (unchanged)": score_unpaired(lambda x: [(x, None)], sources, reference, structures)}
    guides = torch.cat(references[: args.n_references]) if len({r.shape for r in references}) == 1 else reference
    for run in args.checkpoint:
        model, config, folder = load_run(run, UnpairedConfig, build_unpaired, device)
        if hasattr(model, "styles_of"):  # reference-guided: one sample per reference, each judged by it
            styles = model.styles_of(guides.to(device))

            def make(x, m=model, styles=styles):
                return [(m.translate(x.to(device), style=s[None]).cpu(), g[None]) for s, g in zip(styles, guides)]
        else:
            def make(x, m=model):
                return [(m.translate(x.to(device)).cpu(), None)]
        rows[f"{config.model.name} ({folder.name})"] = score_unpaired(make, sources, reference, structures)
    print(f"{len(sources)} test images of {Path(args.data) / 'testA'}; reference: {len(reference)} images of "
          f"testB (colourfulness {float(colourfulness(reference).mean()):.1f})\n")
    print(HEADER)
    for name, s in rows.items():
        recall = "" if s.boundary_f1 is None else f"{s.boundary_f1:.3f}"
        print(f"| {name} | {s.self_similarity:.3f} | {s.edge_f1:.3f} | {recall} | {s.histogram:.3f} | "
              f"{s.moments:.3f} | {s.colourfulness:.1f} | {s.diversity:.3f} | {s.seconds:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
