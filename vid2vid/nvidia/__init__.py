"""NVIDIA's trained pix2pixHD and vid2vid models as runs of this project.

``convert_checkpoint`` reads the original's checkpoint folder and command-line flags and
writes a run folder (config.yaml and checkpoints/latest.pt) that the ordinary scripts
render and fine-tune. The networks are this project's own; the conversion renames
NVIDIA's tensors into them (``state_dicts``), and the config reproduces the original's
test-time behaviour.
"""

from vid2vid.nvidia.convert import convert_checkpoint

__all__ = ["convert_checkpoint"]
