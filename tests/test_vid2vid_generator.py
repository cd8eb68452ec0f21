"""vid2vid's sequential generator: the composition of Eq. 4 and the foreground of Eq. 5,
shapes at every spatial level, first frames, flow units."""

import math

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
    settings = dict(label_nc=4, n_frames_G=3, ngf=8, n_downsampling=2, n_blocks=2, n_blocks_local=1)
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
    assert g.heads[0].flow[1].weight.grad is not None and g.coarsest.image_encoder[1].weight.grad is not None


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_an_empty_history_adds_nothing_under_instance_norm(norm):
    # under instance norm a zero history encodes to exactly zero, so first frames must not depend on the
    # history encoders' weights (computed, float rounding grew through the norms into O(10) features);
    # batch norm's learned shift makes the zero history count, as in NVIDIA's pose models
    torch.manual_seed(0)
    g = tiny(n_scales=2, norm=norm)
    labels = torch.randn(2, 12, 32, 32)
    before = g(labels, None).frame
    with torch.no_grad():
        for encoder in (g.coarsest.image_encoder, g.finer[0].image_front):
            for p in encoder.parameters():
                p.add_(torch.randn_like(p))
    after = g(labels, None).frame
    assert torch.equal(before, after) == (norm == "instance")


@pytest.mark.parametrize("n_scales", [2, 3])
def test_every_spatial_level_makes_frames_at_its_resolution(n_scales):
    torch.manual_seed(0)
    g = tiny(n_scales=n_scales)
    assert g.multiple() == 4 * 2 ** (n_scales - 1) and g.multiple(1) == 4
    for scales in range(1, n_scales + 1):
        size = 16 * 2 ** (scales - 1)
        out = g(torch.randn(1, 12, size, size), torch.rand(1, 6, size, size), scales=scales)
        assert out.frame.shape == (1, 3, size, size) and out.flow.shape == (1, 2, size, size)
        # the finest active level's heads make the frame; finer ones are not used
        out.frame.mean().backward()
        used = [p.grad is not None for p in (h.image[1].weight for h in g.heads)]
        assert used == [s == scales - 1 for s in range(n_scales)]
        g.zero_grad(set_to_none=True)
    with pytest.raises(ValueError, match="scales must be in 1"):
        g(torch.randn(1, 12, 16, 16), None, scales=n_scales + 1)


def test_flow_is_in_pixels():
    g = tiny()
    with torch.no_grad():
        g.heads[0].flow[1].weight.zero_()
        g.heads[0].flow[1].bias.copy_(torch.tensor([0.1, -0.05]))
    out = g(torch.randn(1, 12, 16, 16), torch.zeros(1, 6, 16, 16))
    torch.testing.assert_close(out.flow[0, :, 5, 5], torch.tensor([0.1, -0.05]) * FLOW_SCALE)


@pytest.mark.parametrize("n_scales", [1, 2])
def test_the_foreground_is_always_drawn_never_warped(n_scales):
    """Eq. 5 as NVIDIA/vid2vid computes it: x = m_F h_F + (1 - m_F) ((1 - m) warp + m h_B)."""
    torch.manual_seed(0)
    g = tiny(use_foreground=True, n_scales=n_scales)
    labels = torch.randint(0, 4, (1, 1, 16, 16))
    mask = foreground_mask(labels, (2, 3))
    assert torch.equal(mask, ((labels == 2) | (labels == 3)).float())
    one_hot, previous = torch.randn(1, 12, 16, 16), torch.rand(1, 6, 16, 16)
    out = g(one_hot, previous, mask)
    none = g(one_hot, previous, torch.zeros_like(mask))
    every = g(one_hot, previous, torch.ones_like(mask))
    torch.testing.assert_close(out.hallucinated, mask * every.hallucinated + (1 - mask) * none.hallucinated)
    assert not torch.allclose(every.hallucinated, none.hallucinated)
    # the flow path is the same whatever the foreground
    torch.testing.assert_close(out.flow, none.flow)
    background = compose(warp(previous[:, -3:], out.flow), none.hallucinated, out.occlusion_mask)
    torch.testing.assert_close(out.frame, compose(background, every.hallucinated, mask))
    torch.testing.assert_close(every.frame, every.hallucinated)  # all foreground: nothing warped
    with pytest.raises(ValueError, match="pass fg_mask"):
        g(one_hot, None)
    with pytest.raises(ValueError, match="n_frames_G must be at least 2"):
        tiny(n_frames_G=1)


@pytest.mark.parametrize("n_scales", [1, 2])
def test_gated_history_starts_as_the_single_frame_generator_and_learns_to_let_the_history_in(n_scales):
    # model.start_as_image_generator: when the clips start, h_t is what the single-frame training made of the
    # newest label map whatever the history, the flow is zero and each frame 95% drawn anew
    from vid2vid.models.layers import init_weights
    from vid2vid.models.sequential import MASK_START

    torch.manual_seed(0)
    g = init_weights(tiny(n_scales=n_scales, gated_history=True))
    g.start_as_single_frame_generator()
    labels, previous = torch.randn(2, 12, 32, 32), torch.rand(2, 6, 32, 32) * 2 - 1
    out, alone = g(labels, previous), g(labels, None)
    torch.testing.assert_close(out.hallucinated, alone.frame)
    other_past = torch.cat((torch.randn(2, 8, 32, 32), labels[:, 8:]), 1)  # the older maps are read as nothing
    torch.testing.assert_close(g(other_past, None).frame, alone.frame)
    assert torch.equal(out.flow, torch.zeros_like(out.flow))
    torch.testing.assert_close(out.occlusion_mask, torch.full_like(out.occlusion_mask, MASK_START))
    torch.testing.assert_close(out.frame, MASK_START * alone.frame + (1 - MASK_START) * previous[:, -3:])

    optimizer = torch.optim.Adam(g.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        g(labels, previous).frame.sub(previous[:, -3:]).abs().mean().backward()  # the history is worth using
        optimizer.step()
    gates = [g.coarsest.history_gate] + [level.history_gate for level in g.finer]
    assert all(gate.weight.abs().sum() > 0 for gate in gates)
    assert (g(labels, previous).hallucinated - g(labels, None).frame).abs().max() > 1e-3


def test_the_warp_tolerance_keeps_the_history_where_it_agrees_with_h_and_rejects_it_where_not():
    # model.warp_tolerance: the mask holds where the warped previous frame agrees with h; where it differs by
    # far more than the tolerance (here a square the warp got wrong), the frame is h alone
    from vid2vid.models.layers import init_weights
    from vid2vid.models.sequential import AGREEMENT_RADIUS

    torch.manual_seed(0)
    g = init_weights(tiny(gated_history=True, warp_tolerance=0.3))
    g.start_as_single_frame_generator(mask_start=0.1)
    labels = torch.randn(1, 12, 32, 32)
    h = g(labels, None).frame.detach()  # zero flow, gates at zero: h whatever the history
    previous = h + 0.01  # agrees with h but for flicker ...
    previous[..., 8:20, 8:20] = -h[..., 8:20, 8:20].sign()  # ... except a square that is wrong
    previous = previous.requires_grad_()
    out = g(labels, torch.cat((torch.zeros_like(h), previous), 1))
    r = AGREEMENT_RADIUS
    inside = (..., slice(8 + r, 20 - r), slice(8 + r, 20 - r))  # every neighbourhood wholly in the square
    reaches = (..., slice(8 - r - 1, 20 + r + 1), slice(8 - r - 1, 20 + r + 1))  # any neighbourhood touching it
    far = out.occlusion_mask.clone()
    far[reaches] = float("nan")
    torch.testing.assert_close(out.occlusion_mask[inside], torch.ones_like(out.occlusion_mask[inside]),
                               atol=1e-3, rtol=0)
    kept = 1 - 0.9 * math.exp(-0.01**2 / 0.3**2)  # flicker of 0.01 barely moves the mask from 0.1
    torch.testing.assert_close(far[~far.isnan()], torch.full_like(far[~far.isnan()], kept), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.frame[inside], h[inside], atol=1e-3, rtol=0)
    # the agreement carries no gradient: the frame's gradient to the history is (1 - m') alone
    out.frame.sum().backward()
    torch.testing.assert_close(previous.grad.sum(1, keepdim=True) / 3, 1 - out.occlusion_mask.detach())
    assert tiny(warp_tolerance=0.0).heads[0].warp_tolerance == 0  # off unless asked (NVIDIA's composition)


def test_the_structure_radius_keeps_the_history_where_the_inputs_show_nothing_that_could_have_moved():
    # model.structure_radius: h judges the history only near the structure of frame t's input (here a square in
    # an otherwise flat map); far from it h's disagreement is its own invention, and the learnt mask holds
    from vid2vid.models.layers import init_weights
    from vid2vid.models.sequential import near_structure

    labels = torch.zeros(1, 12, 32, 32)
    labels[:, 8:, 14:18, 14:18] = 1  # frame t's maps (the newest 4 channels): a square, flat elsewhere
    near = near_structure(labels[:, 8:], 2)
    expected = torch.zeros(1, 1, 32, 32)
    expected[..., 11:21, 11:21] = 1  # the square's edge pixels and their neighbours (13 .. 18), 2 pixels more
    assert torch.equal(near, expected)

    torch.manual_seed(0)
    g = init_weights(tiny(gated_history=True, warp_tolerance=0.3, structure_radius=2))
    g.start_as_single_frame_generator(mask_start=0.1)
    h = g(labels, None).frame.detach()
    previous = -h.sign()  # disagrees with h everywhere
    assert g(labels, torch.cat((torch.zeros_like(h), previous), 1)).occlusion_mask.min() > 0.99  # training: h judges
    mask = g.eval()(labels, torch.cat((torch.zeros_like(h), previous), 1)).occlusion_mask  # rendering
    torch.testing.assert_close(mask[..., 13:19, 13:19], torch.ones(1, 1, 6, 6), atol=1e-3, rtol=0)  # rejected
    torch.testing.assert_close(mask[near == 0], torch.full_like(mask[near == 0], 0.1), atol=1e-5, rtol=0)  # kept
    levels = tiny(n_scales=3, warp_tolerance=0.3, structure_radius=8, n_frames_G=3)
    assert [head.structure_radius for head in levels.heads] == [2, 4, 8]  # in each level's own pixels
    with pytest.raises(ValueError, match="pass inputs"):
        g.heads[0](g.coarsest(labels, torch.cat((torch.zeros_like(h), previous), 1), with_flow=True), previous, None)


def test_a_scene_cut_drops_the_whole_history_when_rendering():
    # model.scene_cut_agreement: a history that disagrees with h over most of where h judges belongs to another
    # shot; rendering then draws the frame from h alone, flat regions included, and a history that mostly
    # agrees (a square the warp got wrong) is judged pixel by pixel as before
    from vid2vid.models.layers import init_weights

    labels = torch.zeros(1, 12, 32, 32)
    labels[:, 8:, 4:28, 4:28] = torch.rand(4, 24, 24)  # structure nearly everywhere, flat along the border
    torch.manual_seed(0)
    g = init_weights(tiny(gated_history=True, warp_tolerance=0.3, structure_radius=1, scene_cut_agreement=0.5))
    g.start_as_single_frame_generator(mask_start=0.1)
    h = g(labels, None).frame.detach()
    history = lambda previous: torch.cat((torch.zeros_like(h), previous), 1)  # noqa: E731
    another_shot = -h.sign()
    mask = g.eval()(labels, history(another_shot)).occlusion_mask
    torch.testing.assert_close(mask, torch.ones_like(mask), atol=1e-3, rtol=0)  # the flat border too
    without = init_weights(tiny(gated_history=True, warp_tolerance=0.3, structure_radius=1)).eval()
    without.load_state_dict(g.state_dict())
    border = without(labels, history(another_shot)).occlusion_mask[..., :2, :]
    torch.testing.assert_close(border, torch.full_like(border, 0.1), atol=1e-5, rtol=0)  # kept without the cut
    wrong_square = h.clone()
    wrong_square[..., 10:16, 10:16] = -h[..., 10:16, 10:16].sign()
    torch.testing.assert_close(g(labels, history(wrong_square)).occlusion_mask,
                               without(labels, history(wrong_square)).occlusion_mask)


def test_the_flow_heads_correct_a_base_flow_at_every_level():
    # model.input_flow: zero-initialised flow heads warp by the inputs' own motion, each level in its pixels
    from vid2vid.models.layers import init_weights
    from vid2vid.models.sequential import MASK_START, pyramid

    torch.manual_seed(0)
    g = init_weights(tiny(n_scales=2, gated_history=True))
    g.start_as_single_frame_generator()
    labels, previous = torch.randn(1, 12, 32, 32), torch.rand(1, 6, 32, 32) * 2 - 1
    base = torch.randn(1, 2, 32, 32) * 3
    out, still = g(labels, previous, all_levels=True, base_flow=base), g(labels, previous, all_levels=True)
    assert torch.equal(out.flow, base)
    coarse_base, coarse_previous = pyramid(base, 2)[0] / 2, pyramid(previous, 2)[0][:, -3:]
    moved = (1 - MASK_START) * (warp(coarse_previous, coarse_base) - coarse_previous)
    torch.testing.assert_close(out.levels[0] - still.levels[0], moved)
    assert g(labels, None, base_flow=base).flow is None  # a first frame has nothing to warp
    with torch.no_grad():
        g.heads[1].flow[1].bias.fill_(0.01)
    torch.testing.assert_close(g(labels, previous, base_flow=base).flow, base + 0.01 * g.heads[1].flow_scale)


def test_without_gated_history_the_layout_is_nvidias():
    keys = set(tiny(n_scales=2).state_dict())
    assert not any("history_gate" in k for k in keys)
    assert {k for k in tiny(n_scales=2, gated_history=True).state_dict() if "history_gate" in k} == {
        "coarsest.history_gate.weight", "finer.0.history_gate.weight"}
