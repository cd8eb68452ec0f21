#!/usr/bin/env python
"""Translate images or a video with a trained unpaired model (CycleGAN, CUT, FastCUT, SSAL-GAN).

    python scripts/translate.py --checkpoint runs/unpaired_demo --input runs/unpaired_demo/demo_data/testA \\
        --output results/summer2winter
    python scripts/translate.py --checkpoint runs/horse2zebra --input clip.mp4 --output results/clip
    python scripts/translate.py --checkpoint runs/horse2zebra --input zebra.png --direction BtoA --output results/z
    python scripts/translate.py --checkpoint runs/ssal --input photo.png --reference winter/ --output results/w
    python scripts/translate.py --checkpoint runs/ssal --input photo.png --n-samples 4 --seed 1 --output results/r

Images of any size work: they are padded to what the generator takes and cropped back. A folder
or an image gives OUTPUT/images/<name>_input.png, _output.png and OUTPUT/index.html; a video gives
OUTPUT/frames/NNNNN.png and OUTPUT/video.mp4. --direction BtoA uses CycleGAN's second generator.
SSAL-GAN takes its style from --reference (an image, or a folder: one output per reference image,
side by side), or K random styles (--n-samples K, --seed); a video is made in one style throughout
(the first reference, or the first random style).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image

from vid2vid.cli import command
from vid2vid.config import ConfigError
from vid2vid.data.frames import iter_frames, write_image, write_video
from vid2vid.data.images import DatasetError, list_images, read_rgb, to_tensor
from vid2vid.data.sequences import VIDEO_SUFFIXES
from vid2vid.inference import load_run, render_folder
from vid2vid.models.unpaired import UnpairedConfig, build_unpaired
from vid2vid.training.distributed import resolve_device
from vid2vid.training.logging import to_uint8_image


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--input", required=True, help="an image, a folder of images, or a video")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB")
    parser.add_argument("--reference", help="an image or folder of the target domain whose style to take (ssal)")
    parser.add_argument("--n-samples", type=int, default=1, help="outputs per input with random styles (ssal)")
    parser.add_argument("--seed", type=int, default=0, help="of the random styles")
    parser.add_argument("--fps", type=float, default=10, help="of the output video")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, config, _ = load_run(args.checkpoint, UnpairedConfig, build_unpaired, device)
    name = config.model.name
    styles = None
    if hasattr(model, "styles_of"):
        styles = style_codes(model, args, device)
    elif args.reference or args.n_samples != 1:
        raise ConfigError(f"model.name={name} has no style encoder: it makes one output per input, so --reference "
                          f"and --n-samples do not apply to it")
    if args.direction not in model.directions:
        raise ConfigError(f"model.name={name} learns {' and '.join(model.directions)} only, not --direction "
                          f"{args.direction}")
    source = Path(args.input)
    if not source.exists():
        raise DatasetError(f"{source} does not exist")
    is_video = source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES
    if styles is None:
        translate = lambda x: model.translate(x.to(device), args.direction).cpu()  # noqa: E731
    else:  # the samples side by side (a video: the first style throughout)
        translate = lambda x: torch.cat([model.translate(x.to(device), style=s[None]).cpu()  # noqa: E731
                                         for s in (styles[:1] if is_video else styles)], dim=3)
    if is_video:
        output = Path(args.output)
        (output / "frames").mkdir(parents=True, exist_ok=True)
        count = 0

        def frames():
            nonlocal count
            for index, frame in enumerate(iter_frames(source)):
                made = to_uint8_image(translate(to_tensor(Image.fromarray(frame)).unsqueeze(0)))
                write_image(output / "frames" / f"{index:05d}.png", made)
                count += 1
                yield made

        write_video(output / "video.mp4", frames(), fps=args.fps)
        print(f"translated {count} frames to {output / 'video.mp4'}")
        return 0
    count = render_folder(translate, source, args.output, device=torch.device("cpu"))
    print(f"translated {count} images to {Path(args.output) / 'index.html'}")
    return 0


def style_codes(model, args: argparse.Namespace, device: torch.device) -> torch.Tensor | None:
    """The style codes to translate with: of the reference images, or ``n_samples`` random ones; None
    for the model's mean style."""
    if args.reference:
        reference = Path(args.reference)
        files = [reference] if reference.is_file() else list_images(reference)
        if not files:
            raise DatasetError(f"{reference} holds no images")
        return torch.cat([model.styles_of(to_tensor(read_rgb(path)).unsqueeze(0).to(device)) for path in files])
    if args.n_samples > 1:
        return model.random_styles(args.n_samples, torch.Generator().manual_seed(args.seed))
    return None


if __name__ == "__main__":
    sys.exit(main())
