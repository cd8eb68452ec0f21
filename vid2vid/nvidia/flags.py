"""The original test scripts' command-line flags, read as NVIDIA's option parsers read them.

Users paste the line from e.g. NVIDIA/vid2vid ``scripts/street/test_2048.sh``; the flags
that shape the networks and the inputs are read with the original's defaults, the rest
(``--name``, ``--dataroot``, ``--gpu_ids`` ...) are listed as ignored.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vid2vid.config import ConfigError

# (flag, type, pix2pixHD default, vid2vid default); type bool: a store_true switch.
# From NVIDIA/pix2pixHD options/base_options.py and NVIDIA/vid2vid options/base_options.py.
_FLAGS: list[tuple[str, type, Any, Any]] = [
    ("netG", str, "global", "composite"),
    ("ngf", int, 64, 128),
    ("label_nc", int, 35, 0),
    ("input_nc", int, 3, 3),
    ("output_nc", int, 3, 3),
    ("norm", str, "instance", "batch"),
    ("n_downsample_global", int, 4, None),
    ("n_blocks_global", int, 9, None),
    ("n_local_enhancers", int, 1, 1),
    ("n_blocks_local", int, 3, 3),
    ("no_instance", bool, False, None),
    ("use_instance", bool, None, False),
    ("instance_feat", bool, False, None),
    ("label_feat", bool, False, None),
    ("feat_num", int, 3, 3),
    ("nef", int, 16, 32),
    ("n_downsample_E", int, 4, 3),
    ("resize_or_crop", str, "scale_width", "scaleWidth"),
    ("loadSize", int, 1024, 512),
    ("fineSize", int, 512, 512),
    ("which_epoch", str, "latest", "latest"),
    # vid2vid only
    ("n_downsample_G", int, None, 3),
    ("n_blocks", int, None, 9),
    ("n_scales_spatial", int, None, 1),
    ("n_frames_G", int, None, 3),
    ("fg", bool, None, False),
    ("fg_labels", str, None, "26"),
    ("use_single_G", bool, None, False),
    ("no_first_img", bool, None, False),
    ("no_flow", bool, None, False),
    ("openpose_only", bool, None, False),
    ("densepose_only", bool, None, False),
    ("basic_point_only", bool, None, False),
    ("add_face_disc", bool, None, False),
    ("no_canny_edge", bool, None, False),
    ("no_dist_map", bool, None, False),
    ("dataset_mode", str, None, "temporal"),
]


@dataclass(frozen=True)
class OriginalFlags:
    """The flags of one original project (``project``: "pix2pixhd" or "vid2vid"): every known
    flag's value (given or the original's default), which were given, and what was ignored."""

    project: str
    values: dict[str, Any]
    given: frozenset[str]
    ignored: tuple[str, ...]

    def resolve(self, name: str, inferred: dict[str, Any]) -> Any:
        """A flag's value: as given, else as ``inferred`` from the weights, else the original's default."""
        return self.values[name] if name in self.given or name not in inferred else inferred[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def parse_flags(project: str, argv: Sequence[str]) -> OriginalFlags:
    """Reads the flags of NVIDIA's pix2pixHD (``project="pix2pixhd"``) or vid2vid test scripts.

    Raises:
        ConfigError: a known flag without its value or with a value of the wrong type.
    """
    column = {"pix2pixhd": 2, "vid2vid": 3}[project]
    # no abbreviations: vid2vid's --n_blocks is not pix2pixHD's --n_blocks_global
    parser = argparse.ArgumentParser(prog=f"{project} flags", add_help=False, allow_abbrev=False,
                                     exit_on_error=False)
    defaults = {}
    for row in _FLAGS:
        name, kind, default = row[0], row[1], row[column]
        if default is None:
            continue  # not a flag of this project
        if kind is bool:
            parser.add_argument(f"--{name}", action="store_true", default=None)
        else:
            parser.add_argument(f"--{name}", type=kind, default=None)
        defaults[name] = default
    try:
        known, ignored = parser.parse_known_args(list(argv))
    except argparse.ArgumentError as e:
        raise ConfigError(f"the original's flags: {e}") from None
    given = {name for name, value in vars(known).items() if value is not None}
    values = {name: getattr(known, name) if name in given else default for name, default in defaults.items()}
    return OriginalFlags(project, values, frozenset(given), tuple(ignored))
