"""nn.Module wrappers with FlowNet2's constructor arguments, so that FlowNet2
code reads as in NVIDIA/flownet2-pytorch."""

from __future__ import annotations

from torch import Tensor, nn

from vid2vid.ops.functional import channel_norm, correlation, warp


class Resample2d(nn.Module):
    """Warps ``input1`` by the flow ``input2``: see :func:`vid2vid.ops.warp`.

    FlowNet2 uses kernel_size=1 with bilinear sampling, the only setting supported.
    """

    def __init__(self, kernel_size: int = 1, bilinear: bool = True):
        super().__init__()
        if kernel_size != 1 or not bilinear:
            raise ValueError(
                f"Resample2d supports kernel_size=1 with bilinear=True (FlowNet2's setting), "
                f"got kernel_size={kernel_size}, bilinear={bilinear}"
            )

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return warp(input1, input2)


class Correlation(nn.Module):
    """FlowNetC's correlation: see :func:`vid2vid.ops.correlation`. Defaults are FlowNetC's."""

    def __init__(
        self,
        pad_size: int = 20,
        kernel_size: int = 1,
        max_displacement: int = 20,
        stride1: int = 1,
        stride2: int = 2,
        corr_multiply: int = 1,
    ):
        super().__init__()
        if corr_multiply != 1:
            raise ValueError(f"only corr_multiply=1 (multiplicative correlation) is supported, got {corr_multiply}")
        self.pad_size = pad_size
        self.kernel_size = kernel_size
        self.max_displacement = max_displacement
        self.stride1 = stride1
        self.stride2 = stride2

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return correlation(
            input1, input2, self.pad_size, self.kernel_size, self.max_displacement, self.stride1, self.stride2
        )

    def extra_repr(self) -> str:
        return (
            f"pad_size={self.pad_size}, kernel_size={self.kernel_size}, max_displacement={self.max_displacement}, "
            f"stride1={self.stride1}, stride2={self.stride2}"
        )


class ChannelNorm(nn.Module):
    """L2 norm over channels: see :func:`vid2vid.ops.channel_norm`."""

    def __init__(self, norm_deg: int = 2):
        super().__init__()
        if norm_deg != 2:
            raise ValueError(f"ChannelNorm supports norm_deg=2 only, got {norm_deg}")

    def forward(self, input1: Tensor) -> Tensor:
        return channel_norm(input1)
