"""FlowNet2 family: the published parameter layouts, the interface, and checkpoint loading."""

import pytest
import torch

import flownet

# Parameter counts of NVIDIA/flownet2-pytorch's models: the published checkpoints' layouts.
PARAMETERS = {
    "FlowNet2": (162_518_834, 220),
    "FlowNet2C": (39_175_298, 48),
    "FlowNet2S": (38_676_506, 42),
    "FlowNet2SD": (45_371_666, 60),
    "FlowNet2CS": (77_870_620, 90),
    "FlowNet2CSS": (116_565_942, 132),
}


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_counts_match_the_published_models(name):
    with torch.device("meta"):
        model = flownet.MODELS[name]()
    count = sum(p.numel() for p in model.parameters())
    assert (count, len(model.state_dict())) == PARAMETERS[name]


def test_flownet2_parameter_names_follow_the_reference():
    with torch.device("meta"):
        keys = set(flownet.FlowNet2().state_dict())
    for key in ("flownetc.conv1.0.weight", "flownetc.conv_redir.0.bias", "flownetc.upsampled_flow6_to_5.bias",
                "flownets_1.conv1.0.weight", "flownets_2.predict_flow2.weight", "flownets_d.inter_conv5.0.weight",
                "flownets_d.conv0.0.weight", "flownetfusion.predict_flow0.bias", "flownetfusion.upsampled_flow1_to_0.bias"):
        assert key in keys, key
    # FlowNetS's learned flow upsampling has no bias in the published weights
    assert "flownets_1.upsampled_flow6_to_5.bias" not in keys


def _pair(b=1, h=64, w=128):
    return torch.rand(b, 3, 2, h, w) * 255


@pytest.mark.parametrize("name", ["FlowNet2C", "FlowNet2S", "FlowNet2SD", "FlowNet2CS"])
def test_eval_returns_full_resolution_flow(name):
    model = flownet.MODELS[name]().eval()
    with torch.no_grad():
        flow = model(_pair(2))
    assert flow.shape == (2, 2, 64, 128) and torch.isfinite(flow).all()


def test_flownet2_eval_on_a_small_pair():
    model = flownet.FlowNet2().eval()
    with torch.no_grad():
        flow = model(_pair(1, 64, 64))
    assert flow.shape == (1, 2, 64, 64) and torch.isfinite(flow).all()


@pytest.mark.parametrize("name", ["FlowNet2C", "FlowNet2S", "FlowNet2SD"])
def test_training_mode_returns_multiscale_flows(name):
    model = flownet.MODELS[name]().train()
    flows = model(_pair(1, 128, 128))
    assert [tuple(f.shape[-2:]) for f in flows] == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    sum(f.mean() for f in flows).backward()
    assert model.conv1[0].weight.grad is not None


def test_normalize_pair_subtracts_the_pair_mean_and_scales():
    x = _pair(2, 64, 64)
    out = flownet.normalize_pair(x, 255.0)
    assert out.shape == (2, 6, 64, 64)
    torch.testing.assert_close(out.view(2, 2, 3, 64, 64).mean(dim=(1, 3, 4)), torch.zeros(2, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[:, 3:] - out[:, :3], (x[:, :, 1] - x[:, :, 0]) / 255.0)


class Stub(torch.nn.Module):
    """Stands in for a network of a stack: records its input, returns a constant flow
    (a one-element tuple at 1/4 resolution, like the single networks, or a full-resolution tensor)."""

    def __init__(self, value, quarter=True):
        super().__init__()
        self.value, self.quarter = value, quarter

    def forward(self, x):
        self.seen = x
        b, _, h, w = x.shape
        if self.quarter:
            return (torch.full((b, 2, h // 4, w // 4), self.value),)
        return torch.full((b, 2, h, w), self.value)


def test_stacks_wire_their_networks_as_the_reference():
    from vid2vid.ops import channel_norm, warp

    x = _pair(1, 64, 64)
    normalized = flownet.normalize_pair(x, 255.0)
    frame0, frame1 = normalized[:, :3], normalized[:, 3:]

    cs = flownet.FlowNet2CS().eval()
    cs.flownetc, cs.flownets_1 = Stub(0.1), Stub(0.05)  # 0.1 * div_flow 20 = 2 px, then 1 px
    with torch.no_grad():
        flow = cs(x)
    torch.testing.assert_close(flow, torch.ones(1, 2, 64, 64))
    two_px = torch.full((1, 2, 64, 64), 2.0)
    warped = warp(frame1, two_px)
    expected = torch.cat((normalized, warped, two_px / 20, channel_norm(frame0 - warped)), 1)
    torch.testing.assert_close(cs.flownets_1.seen, expected)

    full = flownet.FlowNet2().eval()
    full.flownetc, full.flownets_1, full.flownets_2 = Stub(0.1), Stub(0.05), Stub(0.15)  # CSS ends at 3 px
    full.flownets_d = Stub(20.0)  # the reference divides SD's flow by div_flow: 1 px
    full.flownetfusion = Stub(0.5, quarter=False)
    with torch.no_grad():
        flow = full(x)
    torch.testing.assert_close(flow, torch.full((1, 2, 64, 64), 0.5))
    sd, css = torch.ones(1, 2, 64, 64), torch.full((1, 2, 64, 64), 3.0)
    torch.testing.assert_close(full.flownets_2.seen[:, 9:11], torch.ones(1, 2, 64, 64) / 20)  # S1's flow in
    expected = torch.cat((frame0, sd, css, channel_norm(sd), channel_norm(css),
                          channel_norm(frame0 - warp(frame1, sd)), channel_norm(frame0 - warp(frame1, css))), 1)
    torch.testing.assert_close(full.flownetfusion.seen, expected)


@pytest.mark.parametrize(
    "shape, message",
    [((1, 3, 64, 64), r"\(B, 3, 2, H, W\)"), ((1, 3, 2, 64, 100), "multiples of 64"), ((1, 4, 2, 64, 64), r"\(B, 3, 2")],
)
def test_bad_input_shape(shape, message):
    with pytest.raises(ValueError, match=message):
        flownet.FlowNet2S().eval()(torch.rand(shape))


# ------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def flownet2s():
    return flownet.FlowNet2S()


def _same_weights(a, b):
    return all(torch.equal(x, y.to(x.dtype)) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_load_bare_half_and_dataparallel_state_dicts(tmp_path, flownet2s):
    half = {f"module.{k}": v.half() for k, v in flownet2s.state_dict().items()}
    torch.save(half, tmp_path / "half.pth")
    loaded = flownet.load_checkpoint(tmp_path / "half.pth", "FlowNet2S")
    assert loaded.conv1[0].weight.dtype == torch.float32
    torch.testing.assert_close(loaded.conv1[0].weight, flownet2s.conv1[0].weight.half().float())


def test_wrong_variant_lists_mismatches_and_names_the_variant(tmp_path, flownet2s):
    torch.save(flownet2s.state_dict(), tmp_path / "s.pth")
    with pytest.raises(flownet.CheckpointError) as e:
        flownet.load_checkpoint(tmp_path / "s.pth", flownet.FlowNet2C())
    message = str(e.value)
    assert "does not fit FlowNet2C" in message and "missing (first: conv_redir.0.weight" in message
    assert "wrong shape (first: conv1.0.weight: (64, 6, 7, 7) != (64, 3, 7, 7)" in message
    assert "looks like a FlowNet2S checkpoint" in message


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable PyTorch checkpoint"),
        (b"this is not a checkpoint\n" * 10, "not a readable PyTorch checkpoint"),
        ("truncated", "not a readable PyTorch checkpoint"),
        ("no_tensors", "holds no state dict"),
        ("list", "holds a list, not a checkpoint dict"),
    ],
)
def test_unreadable_files_give_a_clear_error(tmp_path, flownet2s, content, message):
    path = tmp_path / "bad.pth"
    if content == "truncated":
        torch.save(flownet2s.state_dict(), path)
        path.write_bytes(path.read_bytes()[: 100_000])
    elif content == "no_tensors":
        torch.save({"epoch": 1, "note": "no weights"}, path)
    elif content == "list":
        torch.save([torch.zeros(1)], path)
    else:
        path.write_bytes(content)
    with pytest.raises(flownet.CheckpointError, match=message):
        flownet.load_checkpoint(path, "FlowNet2S")


def test_missing_file_and_unknown_variant(tmp_path, flownet2s):
    with pytest.raises(flownet.CheckpointError, match="does not exist"):
        flownet.load_checkpoint(tmp_path / "nope.pth")
    torch.save(flownet2s.state_dict(), tmp_path / "s.pth")
    with pytest.raises(flownet.CheckpointError, match="unknown FlowNet2 variant 'FlowNet3'"):
        flownet.load_checkpoint(tmp_path / "s.pth", "FlowNet3")
