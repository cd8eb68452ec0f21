"""The FlowNet 2.0 stacks, as in NVIDIA/flownet2-pytorch ``models.py``:
FlowNet2C, FlowNet2S, FlowNet2SD (single networks), FlowNet2CS, FlowNet2CSS
and FlowNet2 (stacked with warping, Ilg et al. 2017, Fig. 2).

Every model takes a frame pair ``x`` of shape (B, 3, 2, H, W) with RGB values
in 0..rgb_max and H, W multiples of 64. It subtracts each pair's per-channel
mean, divides by rgb_max, and in eval mode returns the flow from frame 0 to
frame 1 in pixels, (B, 2, H, W), channel 0 horizontal. In training mode the
single networks return their multi-scale flows (flow2 ... flow6, in units of
pixels / div_flow at their own scale); the stacks return their final flow.
The upsampling modes are the reference's (bilinear for the C and S flows,
nearest for the second S and SD flows inside FlowNet2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flownet.layers import init_weights
from flownet.networks import FlowNetC, FlowNetFusion, FlowNetS, FlowNetSD
from vid2vid.ops import channel_norm, warp


def normalize_pair(inputs: Tensor, rgb_max: float) -> Tensor:
    """(B, 3, 2, H, W) in 0..rgb_max -> (B, 6, H, W): both frames minus the
    pair's per-channel mean, divided by rgb_max, frame 0 first."""
    if inputs.dim() != 5 or inputs.shape[1] != 3 or inputs.shape[2] != 2:
        raise ValueError(f"expected a frame pair of shape (B, 3, 2, H, W), got {tuple(inputs.shape)}")
    if inputs.shape[-2] % 64 or inputs.shape[-1] % 64:
        raise ValueError(
            f"H and W must be multiples of 64, got {tuple(inputs.shape[-2:])}; flownet.estimate() pads any size"
        )
    rgb_mean = inputs.mean(dim=(2, 3, 4), keepdim=True)
    x = (inputs - rgb_mean) / rgb_max
    return torch.cat((x[:, :, 0], x[:, :, 1]), 1)


def _upsample(flow: Tensor, mode: str) -> Tensor:
    # nn.Upsample(scale_factor=4, mode=...) of the reference, on current PyTorch
    return F.interpolate(flow, scale_factor=4, mode=mode)


class _OnFramePair:
    """Runs a single network on a normalised frame pair; in eval mode returns
    its finest flow upsampled to the input size, in pixels."""

    rgb_max: float
    div_flow: float

    def forward(self, inputs: Tensor):
        flows = super().forward(normalize_pair(inputs, self.rgb_max))
        return flows if self.training else _upsample(flows[0] * self.div_flow, "bilinear")


class FlowNet2C(_OnFramePair, FlowNetC):
    """FlowNetC on a frame pair."""

    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(batchNorm=batchNorm, div_flow=div_flow)
        self.rgb_max = rgb_max


class FlowNet2S(_OnFramePair, FlowNetS):
    """FlowNetS on a frame pair (6 input channels)."""

    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(input_channels=6, batchNorm=batchNorm)
        self.rgb_max = rgb_max
        self.div_flow = div_flow


class FlowNet2SD(_OnFramePair, FlowNetSD):
    """FlowNetSD on a frame pair."""

    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(batchNorm=batchNorm)
        self.rgb_max = rgb_max
        self.div_flow = div_flow


class _Stack(nn.Module):
    """FlowNetC followed by ``n_refinements`` FlowNetS, each fed with both
    frames, the second frame warped by the current flow, that flow and the
    brightness error of the warp (12 channels)."""

    def __init__(self, rgb_max: float, batchNorm: bool, div_flow: float, n_refinements: int):
        super().__init__()
        self.batchNorm = batchNorm
        self.div_flow = div_flow
        self.rgb_max = rgb_max
        self.flownetc = FlowNetC(batchNorm=batchNorm)
        self.flownets_1 = FlowNetS(batchNorm=batchNorm)
        if n_refinements == 2:
            self.flownets_2 = FlowNetS(batchNorm=batchNorm)

    def _refine(self, net: FlowNetS, x: Tensor, flow: Tensor) -> Tensor:
        """One FlowNetS step on x (B, 6, H, W) given the current flow in pixels; its flow at 1/4, / div_flow."""
        warped = warp(x[:, 3:], flow)
        error = channel_norm(x[:, :3] - warped)
        return net(torch.cat((x, warped, flow / self.div_flow, error), 1))[0]

    def _flownet_css(self, x: Tensor, last_mode: str) -> Tensor:
        """The flow of the C (S (S)) part in pixels at full resolution; the last S upsampled with last_mode."""
        flow = _upsample(self.flownetc(x)[0] * self.div_flow, "bilinear")
        flow_s = self._refine(self.flownets_1, x, flow)
        if not hasattr(self, "flownets_2"):
            return _upsample(flow_s * self.div_flow, "bilinear")
        flow = _upsample(flow_s * self.div_flow, "bilinear")
        return _upsample(self._refine(self.flownets_2, x, flow) * self.div_flow, last_mode)


class FlowNet2CS(_Stack):
    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(rgb_max, batchNorm, div_flow, n_refinements=1)
        init_weights(self)

    def forward(self, inputs: Tensor) -> Tensor:
        return self._flownet_css(normalize_pair(inputs, self.rgb_max), "bilinear")


class FlowNet2CSS(_Stack):
    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(rgb_max, batchNorm, div_flow, n_refinements=2)
        init_weights(self)

    def forward(self, inputs: Tensor) -> Tensor:
        return self._flownet_css(normalize_pair(inputs, self.rgb_max), "nearest")


class FlowNet2(_Stack):
    """The full FlowNet 2.0: FlowNet2-CSS for large displacements, FlowNet2-SD
    for small ones, and FlowNetFusion merging them at full resolution."""

    def __init__(self, rgb_max: float = 255.0, batchNorm: bool = False, div_flow: float = 20.0):
        super().__init__(rgb_max, batchNorm, div_flow, n_refinements=2)
        self.flownets_d = FlowNetSD(batchNorm=batchNorm)
        self.flownetfusion = FlowNetFusion(batchNorm=batchNorm)
        init_weights(self)

    def forward(self, inputs: Tensor) -> Tensor:
        x = normalize_pair(inputs, self.rgb_max)
        frame0, frame1 = x[:, :3], x[:, 3:]
        flow_css = self._flownet_css(x, "nearest")
        # The reference divides the SD flow by div_flow here (where the others
        # multiply); the published weights were trained with it, so keep it.
        flow_sd = _upsample(self.flownets_d(x)[0] / self.div_flow, "nearest")
        fusion_input = torch.cat(
            (
                frame0,
                flow_sd,
                flow_css,
                channel_norm(flow_sd),
                channel_norm(flow_css),
                channel_norm(frame0 - warp(frame1, flow_sd)),
                channel_norm(frame0 - warp(frame1, flow_css)),
            ),
            1,
        )
        return self.flownetfusion(fusion_input)


MODELS = {
    cls.__name__: cls for cls in (FlowNet2, FlowNet2C, FlowNet2S, FlowNet2SD, FlowNet2CS, FlowNet2CSS)
}
