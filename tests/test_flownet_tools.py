"""Flow utilities, flownet.estimate, frame I/O and scripts/compute_flow.py."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import flownet
from vid2vid.data.frames import FrameReadError, iter_frames, write_image, write_video
from vid2vid.ops import warp

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------- .flo I/O


def test_flo_round_trip(tmp_path):
    flow = np.random.randn(7, 9, 2).astype(np.float32)
    flownet.write_flo(tmp_path / "a.flo", flow)
    np.testing.assert_array_equal(flownet.read_flo(tmp_path / "a.flo"), flow)
    flownet.write_flo(tmp_path / "b.flo", torch.from_numpy(flow).permute(2, 0, 1))
    np.testing.assert_array_equal(flownet.read_flo(tmp_path / "b.flo"), flow)
    # header: magic, width, height
    header = (tmp_path / "a.flo").read_bytes()[:12]
    assert np.frombuffer(header[:4], "<f4")[0] == np.float32(202021.25)
    assert tuple(np.frombuffer(header[4:], "<i4")) == (9, 7)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:8], "too short"),
        (lambda b: b"XXXX" + b[4:], "bad magic number"),
        (lambda b: b[:-4], "truncated"),
        (lambda b: b[:4] + np.array([-3, 7], "<i4").tobytes() + b[12:], "implausible size"),
    ],
)
def test_bad_flo_files(tmp_path, mutate, message):
    flownet.write_flo(tmp_path / "a.flo", np.zeros((7, 9, 2), np.float32))
    bad = tmp_path / "bad.flo"
    bad.write_bytes(mutate((tmp_path / "a.flo").read_bytes()))
    with pytest.raises(flownet.FlowFileError, match=message) as e:
        flownet.read_flo(bad)
    assert "bad.flo" in str(e.value)


# ------------------------------------------------------------ colour, EPE, warping


def test_flow_to_color_follows_the_middlebury_wheel():
    flow = np.zeros((1, 5, 2), np.float32)
    flow[0, 1] = (1, 0)  # right: red
    flow[0, 2] = (-1, 0)  # left: cyan-ish
    flow[0, 3] = (0, 1)  # down: orange-yellow
    flow[0, 4] = (np.nan, 0)  # unknown: black
    colours = flownet.flow_to_color(flow, max_flow=1)
    assert tuple(colours[0, 0]) == (255, 255, 255)  # no motion: white
    r, g, b = colours[0, 1]
    assert r == 255 and g < 20 and b < 20
    r, g, b = colours[0, 2]
    assert r < 20 and g > 200 and b == 255
    r, g, b = colours[0, 3]
    assert r == 255 and 200 < g < 255 and b == 0
    assert tuple(colours[0, 4]) == (0, 0, 0)


def test_endpoint_error():
    flow = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 0, 0], target[0, 1, 0, 0] = 3, 4  # one pixel off by 5
    assert flownet.endpoint_error(flow, target).item() == pytest.approx(5 / 4)
    valid = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    valid[0, 0, 0, 0] = True
    assert flownet.endpoint_error(flow, target, valid).item() == pytest.approx(5)


def test_warping_error_is_zero_for_the_true_flow():
    frame_b = torch.rand(1, 3, 20, 24)
    flow = torch.zeros(1, 2, 20, 24)
    flow[:, 0], flow[:, 1] = 2.5, -1.0
    frame_a = warp(frame_b, flow)
    assert flownet.warping_error(frame_a, frame_b, flow).item() < 1e-6
    assert flownet.warping_error(frame_a, frame_b, torch.zeros_like(flow)).item() > 0.05


# ------------------------------------------------------------------------ estimate


class ConstantFlow(nn.Module):
    """Returns a flow of (u, v) pixels at its input's resolution, remembering the input shape."""

    def __init__(self, u, v):
        super().__init__()
        self.flow = nn.Parameter(torch.tensor([u, v]).view(1, 2, 1, 1))

    def forward(self, x):
        self.seen = tuple(x.shape)
        return self.flow.expand(x.shape[0], 2, *x.shape[-2:])


def test_estimate_resize_rescales_the_flow():
    model = ConstantFlow(64.0, 32.0)
    a = torch.rand(2, 3, 50, 70) * 255
    flow = flownet.estimate(model, a, a)
    assert model.seen == (2, 3, 2, 64, 128)
    assert flow.shape == (2, 2, 50, 70)
    torch.testing.assert_close(flow[:, 0], torch.full((2, 50, 70), 64.0 * 70 / 128))
    torch.testing.assert_close(flow[:, 1], torch.full((2, 50, 70), 32.0 * 50 / 64))


def test_estimate_pad_keeps_pixels_and_accepts_uint8_frames():
    model = ConstantFlow(3.0, -2.0)
    a = torch.randint(0, 255, (3, 65, 64), dtype=torch.uint8)
    flow = flownet.estimate(model, a, a, fit="pad")
    assert model.seen == (1, 3, 2, 128, 64)
    assert flow.shape == (1, 2, 65, 64)
    assert (flow[:, 0] == 3).all() and (flow[:, 1] == -2).all()


def test_estimate_bad_input():
    model = ConstantFlow(0.0, 0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        flownet.estimate(model, torch.rand(3, 8, 8), torch.rand(3, 8, 9))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        flownet.estimate(model, torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="fit must be"):
        flownet.estimate(model, torch.rand(3, 8, 8), torch.rand(3, 8, 8), fit="crop")


def test_estimate_runs_a_real_model_in_eval_mode_and_restores_training():
    model = flownet.FlowNet2S().train()
    a = torch.rand(1, 3, 40, 60) * 255
    flow = flownet.estimate(model, a, a)
    assert flow.shape == (1, 2, 40, 60) and model.training


# ---------------------------------------------------------------------- frame I/O


def _frames(n=3, h=64, w=64):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w + 2 * n, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 2 * i : 2 * i + w]) for i in range(n)]


def test_iter_frames_reads_folders_and_videos(tmp_path):
    frames = _frames()
    for i, f in enumerate(frames):
        write_image(tmp_path / f"{i:05d}.png", f)
    read = list(iter_frames(tmp_path))
    assert len(read) == 3 and all(np.array_equal(a, b) for a, b in zip(read, frames))
    write_video(tmp_path / "v.mp4", frames)
    decoded = list(iter_frames(tmp_path / "v.mp4"))
    assert len(decoded) == 3 and decoded[0].shape == (64, 64, 3)


def test_iter_frames_errors_name_the_file(tmp_path):
    with pytest.raises(FrameReadError, match="does not exist"):
        list(iter_frames(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrameReadError, match="holds no frames"):
        list(iter_frames(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "00000.png").write_bytes(b"not a png")
    with pytest.raises(FrameReadError, match="00000.png"):
        list(iter_frames(tmp_path / "bad"))
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(FrameReadError, match="clip.mp4"):
        list(iter_frames(tmp_path / "clip.mp4"))


# ---------------------------------------------------------------- compute_flow.py


def _run(*args):
    return subprocess.run([sys.executable, "scripts/compute_flow.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_dis_flow_recovers_a_known_motion_of_a_texture():
    from flownet.dis import dis_flow
    from vid2vid.data.procedural import random_texture, seeded_generator

    picture = random_texture(seeded_generator(3), 96, 128)[None] * 255
    true = torch.zeros(1, 2, 96, 128)
    true[:, 0], true[:, 1] = 3.25, -1.5
    moved = warp(picture, true)  # moved[p] = picture[p + true[p]]: the flow from moved to picture
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    error = (dis_flow(moved, picture) - true)[inner].norm(dim=1)
    assert error.median() < 0.25


def test_dis_flow_from_the_blurred_pictures_follows_an_edge_map_farther_than_its_pyramid_reaches():
    import cv2

    from flownet.dis import dis_flow
    from vid2vid.data.procedural import random_texture, seeded_generator

    texture = random_texture(seeded_generator(3), 112, 144).mean(0) * 255
    edges = torch.from_numpy(cv2.Canny(texture.numpy().astype(np.uint8), 50, 150)).float().expand(1, 3, -1, -1)
    true = torch.zeros(1, 2, 112, 144)
    true[:, 0], true[:, 1] = 14.0, -9.0  # a camera shake: the whole picture moves
    moved = warp(edges.contiguous(), true)
    inner = (slice(None), slice(None), slice(20, -20), slice(24, -24))
    def error(**options):
        return (dis_flow(moved, edges, **options) - true)[inner].norm(dim=1).median()
    assert error() > 3  # from zero, DIS loses a shift this large on thin lines
    assert error(start_blur=2.0) < 0.25
    assert error(start_blur=2.0, finest_scale=0) < error(start_blur=2.0)


def test_compute_flow_without_checkpoint_says_where_weights_come_from(tmp_path):
    result = _run(str(tmp_path))
    assert result.returncode == 2
    assert "NVIDIA/flownet2-pytorch" in result.stderr and "--checkpoint" in result.stderr


def test_compute_flow_on_a_video(tmp_path):
    write_video(tmp_path / "clip.mp4", _frames(3))
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    result = _run(str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path / "s.pth.tar"), "--output",
                  str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    flows = sorted((tmp_path / "out" / "flow").glob("*.flo"))
    assert [f.name for f in flows] == ["00000.flo", "00001.flo"]
    assert flownet.read_flo(flows[0]).shape == (64, 64, 2)
    assert len(list((tmp_path / "out" / "color").glob("*.png"))) == 2
    assert len(list(iter_frames(tmp_path / "out" / "flow.mp4"))) == 2


def test_frame_pairs_go_to_the_estimator_in_batches_in_order():
    from flownet.sequence import pair_flows

    frames = [np.full((4, 6, 3), 10 * i, np.uint8) for i in range(8)]  # 7 pairs
    calls = []

    def estimator(a, b):  # "flow" = the second frame's value less the first's, per pair
        calls.append(len(a))
        return (b.float() - a.float())[:, :2]

    one_by_one = [float(f[0, 0, 0]) for f in pair_flows(estimator, frames)]
    assert one_by_one == [10.0] * 7 and calls == [1] * 7
    calls.clear()
    backward = [float(f[0, 0, 0]) for f in pair_flows(estimator, frames, batch_size=3, backward=True)]
    assert backward == [-10.0] * 7 and calls == [3, 3, 1]
    assert list(pair_flows(estimator, frames[:1], batch_size=3)) == []
    with pytest.raises(ValueError, match="batch_size"):
        list(pair_flows(estimator, frames, batch_size=0))


def test_compute_flow_in_batches_gives_the_flows_of_one_pair_at_a_time(tmp_path):
    write_video(tmp_path / "clip.mp4", _frames(4))
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    for batch in ("1", "2"):
        result = _run(str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path / "s.pth.tar"), "--output",
                      str(tmp_path / batch), "--device", "cpu", "--batch-size", batch)
        assert result.returncode == 0 and f"pairs/s, {batch} a batch" in result.stdout, result.stderr
    for name in ("00000.flo", "00001.flo", "00002.flo"):
        np.testing.assert_allclose(flownet.read_flo(tmp_path / "2" / "flow" / name),
                                   flownet.read_flo(tmp_path / "1" / "flow" / name), atol=1e-4)


def test_compute_flow_reports_a_bad_checkpoint(tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    result = _run(str(tmp_path), "--checkpoint", str(tmp_path / "bad.pth"))
    assert result.returncode == 1 and "not a readable PyTorch checkpoint" in result.stderr


def test_a_channels_last_flownet2_estimates_the_same_flow(tmp_path):
    from flownet.sequence import flownet2_estimator

    torch.manual_seed(0)
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    frames = torch.from_numpy(np.stack(_frames(2, 64, 96))).permute(0, 3, 1, 2)
    flows = {}
    for channels_last in (False, True):
        estimator = flownet2_estimator(tmp_path / "s.pth.tar", channels_last=channels_last)
        weights = next(estimator.args[0].parameters())
        assert weights.is_contiguous(memory_format=torch.channels_last) == channels_last
        flows[channels_last] = estimator(frames[:1], frames[1:])
    torch.testing.assert_close(flows[True], flows[False], atol=1e-3, rtol=1e-3)


def test_a_compiled_flownet2_estimates_the_same_flow_and_pads_a_short_last_batch(tmp_path):
    from flownet.sequence import flownet2_estimator
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    torch.save({"state_dict": flownet.FlowNet2C().state_dict()}, tmp_path / "c.pth.tar")  # the correlation too
    frames = torch.from_numpy(np.stack(_frames(4, 64, 96))).permute(0, 3, 1, 2)
    eager = flownet2_estimator(tmp_path / "c.pth.tar")(frames[:-1], frames[1:])
    compiled = flownet2_estimator(tmp_path / "c.pth.tar", compile=True)
    assert isinstance(compiled.args[0], flownet.CompiledFlowNet)
    torch.testing.assert_close(compiled(frames[:-1], frames[1:]), eager, atol=1e-3, rtol=1e-3)
    graphs = counters["stats"]["unique_graphs"]
    torch.testing.assert_close(compiled(frames[2:3], frames[3:]), eager[2:], atol=1e-3, rtol=1e-3)
    assert counters["stats"]["unique_graphs"] == graphs  # padded to the compiled batch: nothing compiled again


def test_compute_flow_compiles_on_request(tmp_path):
    write_video(tmp_path / "clip.mp4", _frames(4))
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    for extra in ([], ["--compile"]):
        result = _run(str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path / "s.pth.tar"), "--output",
                      str(tmp_path / str(extra)), "--device", "cpu", "--batch-size", "2", *extra)
        assert result.returncode == 0, result.stderr
    for name in ("00000.flo", "00001.flo", "00002.flo"):
        np.testing.assert_allclose(flownet.read_flo(tmp_path / "['--compile']" / "flow" / name),
                                   flownet.read_flo(tmp_path / "[]" / "flow" / name), atol=1e-3)
