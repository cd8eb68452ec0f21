"""The single networks of FlowNet 2.0 (Ilg et al. 2017): FlowNetC, FlowNetS,
FlowNetSD and FlowNetFusion, on concatenated frame pairs (B, 6, H, W).

Layer names and shapes follow NVIDIA/flownet2-pytorch exactly, so the
published checkpoints load with ``strict=True``. In training mode each
network returns its flows at every scale, finest first (flow2 at 1/4 of the
input, ..., flow6 at 1/64); in eval mode the tuple ``(flow2,)``. Flows are
in units of ``pixels / div_flow`` (the stacks in :mod:`flownet.models`
rescale them).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flownet.layers import conv, deconv, i_conv, init_weights, predict_flow, upsample_flow
from vid2vid.ops import Correlation


class _FlowNetBase(nn.Module):
    """What FlowNetC, FlowNetS and FlowNetSD share: the encoder from 1/8 to
    1/64 and the expanding part (Dosovitskiy et al. 2015, Fig. 3), from the
    1/64 features up to a 1/4 flow, each level concatenating the encoder's
    skip features, the deconvolved features and the upsampled coarser flow.
    FlowNetSD adds an "inter" convolution before each prediction. The layers
    are attributes of the network itself, as in the checkpoints."""

    LEVELS = (5, 4, 3, 2)
    SKIP_CHANNELS = {5: 512, 4: 512, 3: 256, 2: 128}
    DECONV_CHANNELS = {5: 512, 4: 256, 3: 128, 2: 64}

    def _build_deep_encoder(self, batch_norm: bool) -> None:
        self.conv4 = conv(batch_norm, 256, 512, stride=2)
        self.conv4_1 = conv(batch_norm, 512, 512)
        self.conv5 = conv(batch_norm, 512, 512, stride=2)
        self.conv5_1 = conv(batch_norm, 512, 512)
        self.conv6 = conv(batch_norm, 512, 1024, stride=2)
        self.conv6_1 = conv(batch_norm, 1024, 1024)

    def _build_refinement(self, batch_norm: bool, inter_conv: bool, upsample_bias: bool) -> None:
        self.predict_flow6 = predict_flow(1024)
        in_planes = 1024
        for level in self.LEVELS:
            setattr(self, f"deconv{level}", deconv(in_planes, self.DECONV_CHANNELS[level]))
            concat = self.SKIP_CHANNELS[level] + self.DECONV_CHANNELS[level] + 2
            if inter_conv:
                setattr(self, f"inter_conv{level}", i_conv(batch_norm, concat, self.DECONV_CHANNELS[level]))
                setattr(self, f"predict_flow{level}", predict_flow(self.DECONV_CHANNELS[level]))
            else:
                setattr(self, f"predict_flow{level}", predict_flow(concat))
            in_planes = concat
        for level in self.LEVELS:
            setattr(self, f"upsampled_flow{level + 1}_to_{level}", upsample_flow(upsample_bias))

    def _encode_and_refine(self, conv3: Tensor, conv2: Tensor) -> tuple[Tensor, ...]:
        """From the 1/8 features conv3 (and the 1/4 skip features conv2) to the flows."""
        conv4 = self.conv4_1(self.conv4(conv3))
        conv5 = self.conv5_1(self.conv5(conv4))
        features = self.conv6_1(self.conv6(conv5))
        skips = (conv5, conv4, conv3, conv2)
        flows = [self.predict_flow6(features)]
        for level, skip in zip(self.LEVELS, skips):
            upsampled = getattr(self, f"upsampled_flow{level + 1}_to_{level}")(flows[-1])
            features = torch.cat((skip, getattr(self, f"deconv{level}")(features), upsampled), 1)
            inter = getattr(self, f"inter_conv{level}", None)
            flows.append(getattr(self, f"predict_flow{level}")(inter(features) if inter is not None else features))
        flows.reverse()
        return tuple(flows) if self.training else (flows[0],)


class FlowNetS(_FlowNetBase):
    """FlowNetSimple: the two frames (and, inside FlowNet2, the warped frame,
    flow and error) stacked as input channels."""

    def __init__(self, input_channels: int = 12, batchNorm: bool = True):
        super().__init__()
        self.batchNorm = batchNorm
        self.conv1 = conv(batchNorm, input_channels, 64, kernel_size=7, stride=2)
        self.conv2 = conv(batchNorm, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(batchNorm, 128, 256, kernel_size=5, stride=2)
        self.conv3_1 = conv(batchNorm, 256, 256)
        self._build_deep_encoder(batchNorm)
        self._build_refinement(batchNorm, inter_conv=False, upsample_bias=False)
        init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        conv2 = self.conv2(self.conv1(x))
        conv3 = self.conv3_1(self.conv3(conv2))
        return self._encode_and_refine(conv3, conv2)


class FlowNetC(_FlowNetBase):
    """FlowNetCorr: a shared encoder on each frame, then the correlation of
    their 1/8 features over 21 x 21 displacements (stride 2)."""

    def __init__(self, batchNorm: bool = True, div_flow: float = 20.0):
        super().__init__()
        self.batchNorm = batchNorm
        self.div_flow = div_flow
        self.conv1 = conv(batchNorm, 3, 64, kernel_size=7, stride=2)
        self.conv2 = conv(batchNorm, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(batchNorm, 128, 256, kernel_size=5, stride=2)
        self.conv_redir = conv(batchNorm, 256, 32, kernel_size=1, stride=1)
        self.corr = Correlation(pad_size=20, kernel_size=1, max_displacement=20, stride1=1, stride2=2)
        self.corr_activation = nn.LeakyReLU(0.1, inplace=True)
        self.conv3_1 = conv(batchNorm, 32 + 441, 256)
        self._build_deep_encoder(batchNorm)
        self._build_refinement(batchNorm, inter_conv=False, upsample_bias=True)
        init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        conv2a = self.conv2(self.conv1(x[:, :3]))
        conv3a = self.conv3(conv2a)
        conv3b = self.conv3(self.conv2(self.conv1(x[:, 3:])))
        cost_volume = self.corr_activation(self.corr(conv3a, conv3b))  # (B, 441, H/8, W/8)
        conv3 = self.conv3_1(torch.cat((self.conv_redir(conv3a), cost_volume), 1))
        return self._encode_and_refine(conv3, conv2a)


@torch.no_grad()
def balance_cost_volumes(model: nn.Module, inputs: Tensor) -> list[float]:
    """Scales, in every FlowNetC of ``model``, the weights by which ``conv3_1`` reads the cost volume so that
    on ``inputs`` (what ``model`` takes) the cost volume adds as much to ``conv3_1``'s output as the
    redirected features of the first frame do. Returns the factors, one per FlowNetC.

    The correlation averages products of features over 256 channels: freshly initialised, its 441 channels
    are some 30 times weaker than the 32 of ``conv_redir``, and a network that starts that way predicts from
    the first frame alone, which has no motion in it, so it sits at the zero-flow error for hundreds of
    steps (from scratch on generated pairs, ``scripts/train_flownet.py``). Called once, on fresh weights;
    loaded checkpoints are never touched."""
    nets = [m for m in model.modules() if isinstance(m, FlowNetC)]
    if not nets:  # no correlation (FlowNet2S, FlowNet2SD): nothing to balance, no forward pass to pay for
        return []
    seen: dict[FlowNetC, Tensor] = {}
    hooks = [net.conv3_1.register_forward_pre_hook(lambda module, args, net=net: seen.setdefault(net, args[0]))
             for net in nets]
    try:
        model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    factors = []
    for net in nets:
        layer, features = net.conv3_1[0], seen[net]
        redirected = net.conv_redir[0].out_channels  # conv3_1 reads (redirected features, cost volume)
        part = lambda channels: nn.functional.conv2d(features[:, channels], layer.weight[:, channels],  # noqa: E731
                                                     padding=layer.padding)
        factor = float(part(slice(None, redirected)).std() / part(slice(redirected, None)).std().clamp_min(1e-12))
        layer.weight[:, redirected:] *= factor
        factors.append(factor)
    return factors


class FlowNetSD(_FlowNetBase):
    """FlowNet-SD: FlowNetS with an extra stride-1 first layer, 3 x 3 kernels
    and inter convolutions, for small displacements."""

    def __init__(self, batchNorm: bool = True):
        super().__init__()
        self.batchNorm = batchNorm
        self.conv0 = conv(batchNorm, 6, 64)
        self.conv1 = conv(batchNorm, 64, 64, stride=2)
        self.conv1_1 = conv(batchNorm, 64, 128)
        self.conv2 = conv(batchNorm, 128, 128, stride=2)
        self.conv2_1 = conv(batchNorm, 128, 128)
        self.conv3 = conv(batchNorm, 128, 256, stride=2)
        self.conv3_1 = conv(batchNorm, 256, 256)
        self._build_deep_encoder(batchNorm)
        self._build_refinement(batchNorm, inter_conv=True, upsample_bias=True)
        init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        conv1 = self.conv1_1(self.conv1(self.conv0(x)))
        conv2 = self.conv2_1(self.conv2(conv1))
        conv3 = self.conv3_1(self.conv3(conv2))
        return self._encode_and_refine(conv3, conv2)


class FlowNetFusion(nn.Module):
    """The fusion network of FlowNet2: from the first frame, the large- and
    small-displacement flows, their magnitudes and warping errors (11
    channels) to the final flow at full resolution."""

    def __init__(self, batchNorm: bool = True):
        super().__init__()
        self.batchNorm = batchNorm
        self.conv0 = conv(batchNorm, 11, 64)
        self.conv1 = conv(batchNorm, 64, 64, stride=2)
        self.conv1_1 = conv(batchNorm, 64, 128)
        self.conv2 = conv(batchNorm, 128, 128, stride=2)
        self.conv2_1 = conv(batchNorm, 128, 128)
        self.deconv1 = deconv(128, 32)
        self.deconv0 = deconv(162, 16)
        self.inter_conv1 = i_conv(batchNorm, 162, 32)
        self.inter_conv0 = i_conv(batchNorm, 82, 16)
        self.predict_flow2 = predict_flow(128)
        self.predict_flow1 = predict_flow(32)
        self.predict_flow0 = predict_flow(16)
        self.upsampled_flow2_to_1 = upsample_flow(bias=True)
        self.upsampled_flow1_to_0 = upsample_flow(bias=True)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        conv0 = self.conv0(x)
        conv1 = self.conv1_1(self.conv1(conv0))
        conv2 = self.conv2_1(self.conv2(conv1))
        flow2 = self.predict_flow2(conv2)
        concat1 = torch.cat((conv1, self.deconv1(conv2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(concat0))
