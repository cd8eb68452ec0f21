"""What the command-line scripts in ``scripts/`` share: their error boundary and argument types."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from vid2vid.errors import UserError

Main = Callable[[Sequence[str] | None], int]


def command(main: Main) -> Main:
    """A script's ``main(argv) -> exit status`` with the error boundary of every script: a UserError
    (a setting, file, argument the user can fix) prints as one line and exits with status 1;
    anything else is a bug and keeps its traceback."""

    @functools.wraps(main)
    def run(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return run


def image_size(text: str) -> tuple[int, int]:
    """argparse type for an image size: ``"HxW"``, or ``"S"`` for S x S -> (H, W)."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"size must look like 128 or 128x192, got {text!r}")
    return parts[0], parts[1]
