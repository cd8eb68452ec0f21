"""Flow warping, FlowNetC correlation and channel norm, with compiled CPU/CUDA,
CuPy and pure-PyTorch backends (see :mod:`vid2vid.ops.backends`)."""

from vid2vid.ops.backends import BackendUnavailableError, backend_info, format_backend_info
from vid2vid.ops.functional import channel_norm, correlation, warp
from vid2vid.ops.modules import ChannelNorm, Correlation, Resample2d

__all__ = [
    "warp",
    "correlation",
    "channel_norm",
    "Resample2d",
    "Correlation",
    "ChannelNorm",
    "backend_info",
    "format_backend_info",
    "BackendUnavailableError",
]
