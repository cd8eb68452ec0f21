#!/usr/bin/env python
"""Render a folder of images with a trained pix2pix generator.

    python scripts/test_pix2pix.py --run runs/pix2pix_demo --input runs/pix2pix_demo/demo_data/test \\
        --side-by-side --output results/demo

--run is a training run folder (its config.yaml and checkpoints/latest.pt) or a
checkpoint file inside one. Images of any size work: they are padded to what the
generator takes and cropped back. Writes OUTPUT/images/*.png and OUTPUT/index.html.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vid2vid.cli import command
from vid2vid.inference import load_run, render_folder
from vid2vid.models.pix2pix import Pix2Pix, Pix2PixConfig
from vid2vid.training.distributed import resolve_device


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="training run folder or checkpoint file")
    parser.add_argument("--input", required=True, help="folder of input images")
    parser.add_argument("--output", default="results/pix2pix", help="output folder (default %(default)s)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="inputs are A|B pairs: translate the half the run's data.direction takes as input "
                             "and show the other as target")
    parser.add_argument("--eval-mode", action="store_true",
                        help="batch norm statistics and no dropout (pix2pix keeps training mode at test time)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    model, config, _ = load_run(args.run, Pix2PixConfig, lambda c, d: Pix2Pix(c.model, c.train, d), device)
    count = render_folder(lambda x: model.translate(x, eval_mode=args.eval_mode), args.input, args.output,
                          side_by_side=args.side_by_side, swap=config.data.direction == "BtoA", device=device)
    print(f"rendered {count} images to {Path(args.output) / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
