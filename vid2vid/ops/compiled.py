"""The compiled backend: the C++/CUDA kernels of ``vid2vid._C`` (csrc/).

Importing this module loads the extension; it raises ImportError where the
extension was not built.
"""

from __future__ import annotations

import torch

import vid2vid._C  # noqa: F401  (registers torch.ops.vid2vid_C)

_ops = torch.ops.vid2vid_C

cuda_enabled: bool = bool(_ops.cuda_enabled())

warp_forward = _ops.warp_forward
warp_backward = _ops.warp_backward
correlation_forward = _ops.correlation_forward
correlation_backward = _ops.correlation_backward
channel_norm_forward = _ops.channel_norm_forward
channel_norm_backward = _ops.channel_norm_backward
