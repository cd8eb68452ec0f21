"""vid2vid's sequential generator (issue 6, first part): the composition of Eq. 4,
shapes, first frames, flow units, the foreground head."""

import pytest
import torch

from vid2vid.models.sequential import FLOW_SCALE, SequentialGenerator, compose, foreground_mask
from vid2vid.ops import warp


def test_composition_on_hand_made_tensors():
    warped = torch.full((1, 3, 2, 2), 0.25)
    hallucinated = torch.full((1, 3, 2, 2), -0.75)
    mask = torch.tensor([[[[0.0, 1.0], [0.5, 0.0]]]])
    out = compose(warped, hallucinated, mask)
    assert torch.equal(out[:, :, 0, 0], warped[:, :, 0, 0])  # m = 0: the warped previous frame
    assert torch.equal(out[:, :, 0, 1], hallucinated[:, :, 0, 1])  # m = 1: the hallucinated image
    assert torch.allclose(out[:, :, 1, 0], torch.full((1, 3), -0.25))


def tiny(**changes):
    settings = dict(label_nc=4, n_frames_G=3, ngf=4, n_downsampling=2, n_blocks=2)
    return SequentialGenerator(**{**settings, **changes})


def test_shapes_and_the_first_frame():
    torch.manual_seed(0)
    g = tiny()
    labels, previous = torch.randn(2, 12, 16, 24), torch.rand(2, 6, 16, 24) * 2 - 1
    out = g(labels, previous)
    assert out.frame.shape == out.hallucinated.shape == (2, 3, 16, 24)
    assert out.flow.shape == (2, 2, 16, 24) and out.occlusion_mask.shape == (2, 1, 16, 24)
    assert 0 <= out.occlusion_mask.min() and out.occlusion_mask.max() <= 1
    expected = compose(warp(previous[:, -3:], out.flow), out.hallucinated, out.occlusion_mask)
    torch.testing.assert_close(out.frame, expected)
    first = g(labels, None)
    assert first.flow is None and first.occlusion_mask is None and torch.equal(first.frame, first.hallucinated)
    out.frame.mean().backward()
    assert g.flow_head[1].weight.grad is not None and g.image_encoder[1].weight.grad is not None


def test_flow_is_in_pixels():
    g = tiny()
    with torch.no_grad():
        g.flow_head[1].weight.zero_()
        g.flow_head[1].bias.copy_(torch.tensor([0.1, -0.05]))
    out = g(torch.randn(1, 12, 16, 16), torch.zeros(1, 6, 16, 16))
    torch.testing.assert_close(out.flow[0, :, 5, 5], torch.tensor([0.1, -0.05]) * FLOW_SCALE)


def test_foreground_head_replaces_the_foreground():
    torch.manual_seed(0)
    g = tiny(use_foreground=True)
    labels = torch.randint(0, 4, (1, 1, 16, 16))
    mask = foreground_mask(labels, (2, 3))
    assert torch.equal(mask, ((labels == 2) | (labels == 3)).float())
    one_hot = torch.randn(1, 12, 16, 16)
    out = g(one_hot, torch.zeros(1, 6, 16, 16), mask)
    drawn = g.foreground(one_hot)
    torch.testing.assert_close(out.frame * mask, drawn * mask)
    # elsewhere the frame is the flow-composed one: what the generator makes with no foreground at all
    without = g(one_hot, torch.zeros(1, 6, 16, 16), torch.zeros_like(mask))
    torch.testing.assert_close(out.frame * (1 - mask), without.frame * (1 - mask))
    with pytest.raises(ValueError, match="pass fg_mask"):
        g(one_hot, None)
    with pytest.raises(ValueError, match="n_frames_G must be at least 2"):
        tiny(n_frames_G=1)
