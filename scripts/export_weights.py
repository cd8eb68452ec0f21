#!/usr/bin/env python
"""Export the weights a run renders with to a .safetensors file.

    python scripts/export_weights.py runs/pix2pixhd_demo --output runs/pix2pixhd_demo/generator.safetensors
    python scripts/test_pix2pixhd.py --run runs/pix2pixhd_demo/generator.safetensors --input ...

RUN is a training run folder (pix2pix, pix2pixHD or vid2vid) or a checkpoint
file in one. The file holds the generator and, where the run has one, the
feature encoder: bare tensors, nothing that can run code, and none of the
training state (discriminators, optimisers). Every rendering script takes it in
place of the run where a config.yaml sits beside it (or in the run folder's
checkpoints/): to share a model, share the file with the run's config.yaml.
Needs the optional safetensors package (pip install safetensors).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vid2vid.cli import command
from vid2vid.inference import export_weights


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="training run folder or checkpoint file")
    parser.add_argument("--output", required=True, type=Path, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    if args.output.suffix != ".safetensors":
        print(f"error: --output must end in .safetensors, got {args.output}", file=sys.stderr)
        return 1
    names = export_weights(args.run, args.output)
    print(f"wrote networks {', '.join(names)} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
