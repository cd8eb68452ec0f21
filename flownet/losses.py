"""Training losses of the FlowNet2 family.

The single networks (FlowNet2C, FlowNet2S, FlowNet2SD) are trained on all
their scales at once with the multi-scale endpoint error of FlowNet
(Dosovitskiy et al. 2015, Sec. 3): the target is average-pooled to each
prediction's resolution and divided by ``div_flow``, the unit the networks
predict in. The weights are those of NVIDIA/flownet2-pytorch (``0.32 / 2**k``
for flow2 ... flow6), which favour the finest scale because every scale's
error is a mean over its pixels. The stacks return one full-resolution flow in
pixels and are trained on its endpoint error.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from flownet.flow_utils import endpoint_error

MULTISCALE_WEIGHTS = (0.32, 0.16, 0.08, 0.04, 0.02)
"""Weights of flow2 (1/4 resolution) ... flow6 (1/64)."""


def multiscale_epe(flows: Sequence[Tensor], target: Tensor, div_flow: float,
                   weights: Sequence[float] = MULTISCALE_WEIGHTS) -> Tensor:
    """Weighted sum of the endpoint errors of multi-scale flow predictions.

    Args:
        flows: finest first, flow2 (B, 2, H/4, W/4) ... in units of pixels / div_flow.
        target: (B, 2, H, W) ground-truth flow in pixels.
        div_flow: the model's flow scale (20 for the FlowNet2 family).
        weights: one per prediction.
    """
    if len(flows) != len(weights):
        raise ValueError(f"{len(flows)} flow predictions but {len(weights)} loss weights")
    scaled = target / div_flow
    loss = target.new_zeros(())
    for flow, weight in zip(flows, weights):
        factor = target.shape[-1] // flow.shape[-1]
        if target.shape[-2] != flow.shape[-2] * factor or target.shape[-1] != flow.shape[-1] * factor:
            raise ValueError(f"prediction {tuple(flow.shape)} is not an integer downscale of the target "
                             f"{tuple(target.shape)}")
        loss = loss + weight * endpoint_error(flow, F.avg_pool2d(scaled, factor))
    return loss


def flow_loss(output: Tensor | Sequence[Tensor], target: Tensor, div_flow: float) -> Tensor:
    """The training loss of a FlowNet2 model's training-mode output: multi-scale
    EPE for the single networks' tuples, EPE in pixels for the stacks' flow."""
    if isinstance(output, Tensor):
        return endpoint_error(output, target)
    return multiscale_epe(output, target, div_flow)
