"""Argument types shared by the command-line scripts in ``scripts/``."""

from __future__ import annotations

import argparse


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
