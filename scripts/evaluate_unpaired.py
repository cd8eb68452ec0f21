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
colourfulness, mean pairwise L1 between the samples of one input, and seconds per image. With
--inception-weights FILE (the FID Inception network's weights, pytorch-fid's
pt_inception-2015-12-05-6726825d.pth or torch-fidelity's weights-inception-2015-12-05-6726825d.pth;
nothing is downloaded), FID and KID of each model's outputs against testB/, by torchmetrics.

When testA/ holds videos (a sub-folder of frames or a video file each) their frames are the sources,
and with the flows of testA_flow/<sequence>/ (.flo, frame t+1 -> t) a second table gives each model's
warping error (how far each output frame is from the previous one warped by the source's flow, in
RGB levels, over the pixels the flow explains; lower flickers less) and motion ratio (the outputs'
frame-to-frame change over the source's): vid2vid's evaluate_vid2vid measures, one style per video.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vid2vid.cli import command
from flownet.flow_utils import read_flo
from vid2vid.data.images import IMAGE_SUFFIXES, list_images, read_image, read_rgb, to_tensor
from vid2vid.data.sequences import VIDEO_SUFFIXES, FrameSource, as_picture, list_files, sequence_entries
from vid2vid.evaluation import score_videos
from vid2vid.errors import UserError
from vid2vid.inference import load_run
from vid2vid.models.inception import load_fid_inception
from vid2vid.models.unpaired import UnpairedConfig, build_unpaired
from vid2vid.training.distributed import resolve_device
from vid2vid.unpaired_evaluation import colourfulness, fid_kid, score_unpaired

HEADER = ("| method | self-similarity ↓ | edge F1 ↑ | boundary F1 ↑ | histogram ↓ | moments ↓ | colourfulness | "
          "diversity | s / image |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def read_folder(folder: Path, limit: int | None) -> list[torch.Tensor]:
    files = list_images(folder)[:limit]
    if not files:
        raise UserError(f"{folder} holds no images")
    return [to_tensor(read_rgb(path)).unsqueeze(0) for path in files]


def read_videos(data: Path, limit: int | None) -> list[dict[str, torch.Tensor]]:
    """testA's videos: {"image": (T, 3, H, W) in -1..1, "flow": (T-1, 2, H, W) or absent, "start": the
    index of its first frame among all the videos' frames}, at most ``limit`` frames in all."""
    videos, left, start = [], limit if limit is not None else float("inf"), 0
    for name, path in sequence_entries(data / "testA", VIDEO_SUFFIXES).items():
        if left < 2:
            break
        source = FrameSource(path, IMAGE_SUFFIXES)
        count = int(min(source.length, left))
        video = {"image": torch.stack([to_tensor(as_picture(f)) for f in source.read(0, count)]), "start": start}
        flows = data / "testA_flow" / name
        if flows.is_dir():
            video["flow"] = torch.stack([torch.from_numpy(read_flo(f)).permute(2, 0, 1)
                                         for f in list_files(flows, (".flo",))[: count - 1]])
        videos.append(video)
        left, start = left - count, start + count
    return videos


def keeping_first(make: Callable, kept: list[torch.Tensor]) -> Callable:
    """``make`` (source -> [(sample, reference or None)]) that also keeps each source's first sample in
    ``kept``, in order: what FID, KID and the video measures judge, made once."""
    def made(source: torch.Tensor) -> list:
        samples = make(source)
        kept.append(samples[0][0])
        return samples

    return made


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
    parser.add_argument("--inception-weights",
                        help="the FID Inception weights file (pt_inception-2015-12-05-6726825d.pth): FID and KID")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    inception = load_fid_inception(args.inception_weights).to(device) if args.inception_weights else None
    videos = [] if list_images(Path(args.data) / "testA") else read_videos(Path(args.data), args.max_images)
    sources = [f[None] for v in videos for f in v["image"]] or read_folder(Path(args.data) / "testA",
                                                                           args.max_images)
    references = read_folder(Path(args.data) / "testB", args.max_images)
    shape = references[0].shape
    reference = torch.cat([r for r in references if r.shape == shape])  # pooled: one size is enough
    structures = read_structures(Path(args.data) / "testA_structure", args.max_images)
    outputs: dict[str, list[torch.Tensor]] = {"input (unchanged)": []}  # each source's first sample, per method
    rows = {"input (unchanged)": score_unpaired(keeping_first(lambda x: [(x, None)], outputs["input (unchanged)"]),
                                                sources, reference, structures)}
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
        name = f"{config.model.name} ({folder.name})"
        outputs[name] = []
        rows[name] = score_unpaired(keeping_first(make, outputs[name]), sources, reference, structures)
    print(f"{len(sources)} test images of {Path(args.data) / 'testA'}; reference: {len(reference)} images of "
          f"testB (colourfulness {float(colourfulness(reference).mean()):.1f})\n")
    print(HEADER)
    for name, s in rows.items():
        recall = "" if s.boundary_f1 is None else f"{s.boundary_f1:.3f}"
        print(f"| {name} | {s.self_similarity:.3f} | {s.edge_f1:.3f} | {recall} | {s.histogram:.3f} | "
              f"{s.moments:.3f} | {s.colourfulness:.1f} | {s.diversity:.3f} | {s.seconds:.4f} |")
    if inception is None:
        print("\nFID and KID: pass --inception-weights FILE (the FID Inception weights, "
              "pt_inception-2015-12-05-6726825d.pth); nothing is downloaded")
    else:
        print(f"\nagainst the {len(references)} images of testB (one output per source; KID × 1000)\n\n"
              f"| method | FID ↓ | KID ↓ |\n| --- | ---: | ---: |")
        for name, made in outputs.items():
            fid, kid, kid_std = fid_kid([r.to(device) for r in references], [o.to(device) for o in made], inception)
            print(f"| {name} | {fid:.2f} | {1000 * kid:.2f} ± {1000 * kid_std:.2f} |")
    with_flow = [video for video in videos if "flow" in video]
    if with_flow:
        print(f"\n{len(with_flow)} videos with flows (testA_flow/); reference-guided models keep one reference "
              f"per video\n\n| method | warping error ↓ | motion ratio |\n| --- | ---: | ---: |")
        # the sources are the videos' frames in order: a video's outputs are the slice from its start
        makers = {name: lambda video, made=made: torch.cat(made[video["start"]:video["start"] + len(video["image"])])
                  for name, made in outputs.items()}
        for name, score in score_videos(makers, with_flow).items():
            print(f"| {name} | {score.warping_error:.2f} | {score.motion_ratio:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
