"""FlowNet 2.0 on vid2vid.ops: the networks, the stacks and checkpoint loading.

    model = flownet.load_checkpoint("FlowNet2_checkpoint.pth.tar").eval()
    flow = model(frames)   # frames (B, 3, 2, H, W), 0..255, H and W multiples of 64 -> (B, 2, H, W) pixels
    flow = flownet.estimate(model, frame_a, frame_b)   # any H x W, (B, 3, H, W) each
"""

from flownet.checkpoint import CheckpointError, guess_variant, load_checkpoint, read_checkpoint, read_state_dict
from flownet.estimate import CompiledFlowNet, estimate
from flownet.flow_utils import FlowFileError, endpoint_error, flow_to_color, read_flo, warping_error, write_flo
from flownet.models import MODELS, FlowNet2, FlowNet2C, FlowNet2CS, FlowNet2CSS, FlowNet2S, FlowNet2SD, normalize_pair
from flownet.networks import FlowNetC, FlowNetFusion, FlowNetS, FlowNetSD

__all__ = [
    "FlowNet2",
    "FlowNet2C",
    "FlowNet2S",
    "FlowNet2SD",
    "FlowNet2CS",
    "FlowNet2CSS",
    "FlowNetC",
    "FlowNetS",
    "FlowNetSD",
    "FlowNetFusion",
    "MODELS",
    "normalize_pair",
    "load_checkpoint",
    "read_checkpoint",
    "read_state_dict",
    "guess_variant",
    "CheckpointError",
    "estimate",
    "CompiledFlowNet",
    "read_flo",
    "write_flo",
    "flow_to_color",
    "endpoint_error",
    "warping_error",
    "FlowFileError",
]
