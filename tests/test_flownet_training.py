"""Training FlowNet2 on generated data: the generator, augmentation, loss,
training loop, checkpoints, resume, evaluation and the two scripts."""

import argparse
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import flownet
from flownet.augment import photometric_augment
from flownet.evaluation import frame_pair_warping, synthetic_epe, zero_flow_epe
from flownet.losses import MULTISCALE_WEIGHTS, flow_loss, multiscale_epe
from flownet.networks import balance_cost_volumes
from flownet.synthetic import MotionRange, SyntheticFlowDataset, generate_pair
from vid2vid.data.procedural import Polygon, seeded_generator
from flownet.training import FlowTrainingConfig, checkpoint_paths, read_training_config, train_flownet
from vid2vid.cli import image_size
from vid2vid.data.frames import write_video
from vid2vid.ops import warp

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------- generated pairs


def test_generated_pairs_are_reproducible_and_splits_differ():
    train = SyntheticFlowDataset(3, 48, 64, seed=5)
    pair, flow = train[1]
    assert pair.shape == (3, 2, 48, 64) and flow.shape == (2, 48, 64)
    assert pair.dtype == flow.dtype == torch.float32
    assert 0 <= pair.min() and pair.max() <= 255 and pair.std() > 10
    again, again_flow = SyntheticFlowDataset(3, 48, 64, seed=5)[1]
    assert torch.equal(pair, again) and torch.equal(flow, again_flow)
    assert not torch.equal(pair, train[2][0])
    assert not torch.equal(pair, SyntheticFlowDataset(3, 48, 64, seed=5, split="val")[1][0])
    assert not torch.equal(pair, SyntheticFlowDataset(3, 48, 64, seed=6)[1][0])


def test_generated_flow_is_exact():
    # frame_a[p] == frame_b[p + flow[p]] wherever p stays visible, up to the bilinear
    # interpolation of fine texture: far closer than with the flow one pixel off
    for index in range(3):
        pair, flow = SyntheticFlowDataset(3, 96, 128, seed=1)[index]
        frame_a, frame_b = pair[:, 0], pair[:, 1]

        def error(f):
            return (frame_a - warp(frame_b[None], f[None])[0]).abs().mean(0)

        assert error(flow).median() < 0.3 * error(flow + 1).median()
        assert error(flow).median() < 0.5 * error(flow - torch.tensor([1.0, 0.0]).view(2, 1, 1)).median()
        assert (error(flow) < 3).float().mean() > 0.5
        assert (frame_a - frame_b).abs().mean() > 5 * error(flow).median()


def test_background_translation_only_gives_a_constant_flow_and_a_shifted_frame():
    motion = MotionRange(background_rotation_deg=0, background_scale=0, min_objects=0, max_objects=0)
    frame_a, frame_b, flow = generate_pair(seeded_generator(3), 40, 50, motion)
    u, v = flow[0, 0, 0], flow[1, 0, 0]
    assert torch.allclose(flow[0], u.expand(40, 50), atol=1e-4) and torch.allclose(flow[1], v.expand(40, 50), atol=1e-4)
    assert 0 < torch.hypot(u, v) <= 0.04 * np.hypot(40, 50)
    # frame_b at q is frame_a at q - (u, v), both sampled bilinearly from the same texture
    # raster, so equal to rounding away from the border (mirrored there, clamped by warp)
    shifted = warp(frame_a[None], -flow[None])[0]
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert (shifted - frame_b)[inner].abs().max() < 1e-2


def test_polygon_coverage_is_one_inside_zero_outside_and_half_on_the_edge():
    square = Polygon(torch.tensor([20.0, 20.0]),
                      torch.tensor([[10.0, 10.0], [-10.0, 10.0], [-10.0, -10.0], [10.0, -10.0]]))
    # angles of the vertices must ascend for the sector search: 45, 135, 225, 315 degrees
    points = torch.tensor([[20.0, 20.0], [20.0, 35.0], [30.0, 20.0], [29.75, 20.0], [3.0, 3.0]]).T.reshape(2, 1, 5)
    coverage = square.coverage(points)[0]
    assert torch.allclose(coverage, torch.tensor([1.0, 0.0, 0.5, 0.75, 0.0]))


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        SyntheticFlowDataset(2, 64, 64, split="test")
    with pytest.raises(ValueError, match="at least 8x8"):
        SyntheticFlowDataset(2, 4, 64)
    with pytest.raises(IndexError):
        SyntheticFlowDataset(2, 16, 16)[2]


# ------------------------------------------------------------------------- augmentation


def test_photometric_augmentation_changes_colours_alike_in_both_frames():
    frame = SyntheticFlowDataset(1, 32, 32)[0][0][:, :1]
    pairs = frame.expand(3, 3, 2, 32, 32).contiguous()  # two identical frames per pair
    out = photometric_augment(pairs, seeded_generator(1))
    assert out.shape == pairs.shape and 0 <= out.min() and out.max() <= 255
    assert torch.equal(out, photometric_augment(pairs, seeded_generator(1)))
    assert not torch.equal(out, photometric_augment(pairs, seeded_generator(2)))
    change = (out - pairs).abs().mean()
    between_frames = (out[:, :, 0] - out[:, :, 1]).abs().mean()
    assert change > 10 and 0 < between_frames < change / 2
    assert not torch.allclose(out[0], out[1])  # each pair is changed in its own way
    with pytest.raises(ValueError, match=r"\(B, 3, 2, H, W\)"):
        photometric_augment(torch.zeros(1, 6, 8, 8), seeded_generator(1))


# ------------------------------------------------------------------------------- losses


def test_multiscale_epe_by_hand():
    target = torch.zeros(2, 2, 64, 64)
    target[:, 0], target[:, 1] = 6.0, 8.0  # 10 px, i.e. 0.5 in units of px / 20
    flows = [torch.zeros(2, 2, 64 // s, 64 // s) for s in (4, 8, 16, 32, 64)]
    assert multiscale_epe(flows, target, div_flow=20) == pytest.approx(0.5 * sum(MULTISCALE_WEIGHTS))
    flows[0][:, 0], flows[0][:, 1] = 0.3, 0.4  # finest scale exact
    assert multiscale_epe(flows, target, 20) == pytest.approx(0.5 * sum(MULTISCALE_WEIGHTS[1:]), abs=1e-6)
    # the stacks' full-resolution flow in pixels
    assert flow_loss(torch.zeros(2, 2, 64, 64), target, 20) == pytest.approx(10.0)
    assert flow_loss(tuple(flows), target, 20) == multiscale_epe(flows, target, 20)
    with pytest.raises(ValueError, match="5 flow predictions but 2 loss weights"):
        multiscale_epe(flows, target, 20, weights=(1, 1))
    with pytest.raises(ValueError, match="not an integer downscale"):
        multiscale_epe([torch.zeros(2, 2, 10, 16)] * 5, target, 20)


# ----------------------------------------------------------------------------- training


def tiny(**changes) -> FlowTrainingConfig:
    settings = dict(model="FlowNet2S", height=64, width=64, batch_size=2, steps=4, eval_every=2, val_pairs=4)
    return FlowTrainingConfig(**{**settings, **changes})


def test_training_lowers_the_loss_and_writes_official_checkpoints(tmp_path):
    config = tiny(steps=16, eval_every=8, batch_size=2, train_pairs=2, augment=False)
    history = train_flownet(config, tmp_path, progress=False)
    assert [row["step"] for row in history] == [8, 16]
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    val_set = SyntheticFlowDataset(config.val_pairs, 64, 64, seed=config.seed, split="val")

    latest, best = checkpoint_paths(tmp_path, "FlowNet2S")
    assert latest.name == "FlowNet2S_checkpoint.pth.tar" and best.name == "FlowNet2S_model_best.pth.tar"
    saved = flownet.read_checkpoint(best)
    assert saved["arch"] == "FlowNet2S" and saved["best_EPE"] == min(r["val_epe"] for r in history)
    assert "optimizer" not in saved and "optimizer" in flownet.read_checkpoint(latest)
    model = flownet.load_checkpoint(best)  # variant inferred, loaded strictly, like the published files
    assert isinstance(model, flownet.FlowNet2S)
    assert synthetic_epe(model, val_set) == pytest.approx(saved["best_EPE"], rel=1e-5)
    assert read_training_config(best) == config
    with open(tmp_path / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [8, 16]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    train_flownet(tiny(), tmp_path / "straight", progress=False)
    train_flownet(tiny(steps=2), tmp_path / "resumed", progress=False)
    history = train_flownet(tiny(), tmp_path / "resumed", resume=True, progress=False)
    assert [row["step"] for row in history] == [4]
    straight = flownet.read_state_dict(tmp_path / "straight" / "FlowNet2S_checkpoint.pth.tar")
    resumed = flownet.read_state_dict(tmp_path / "resumed" / "FlowNet2S_checkpoint.pth.tar")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    with open(tmp_path / "resumed" / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [2, 4]


def test_resume_refuses_a_different_run_and_bad_settings(tmp_path):
    train_flownet(tiny(steps=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match="comes from a different run"):
        train_flownet(tiny(lr=1e-3), tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="multiples of 64"):
        tiny(height=100)
    with pytest.raises(ValueError, match="model must be one of"):
        tiny(model="FlowNet3")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        tiny(batch_size=0)
    with pytest.raises(ValueError, match="train_pairs must be at least 1"):
        tiny(train_pairs=0)


def test_stacks_train_on_their_full_resolution_flow(tmp_path):
    history = train_flownet(tiny(model="FlowNet2CS", steps=1, eval_every=1, val_pairs=2), tmp_path,
                            progress=False)
    assert np.isfinite(history[0]["train_loss"]) and history[0]["train_loss"] > 0.1  # pixels, not px / 20


def test_fresh_flownetc_weights_hear_the_cost_volume_as_loudly_as_the_first_frame(tmp_path):
    pairs = torch.stack([SyntheticFlowDataset(2, 64, 64, seed=0, split="train")[i][0] for i in range(2)])
    torch.manual_seed(0)
    model = flownet.MODELS["FlowNet2CS"]()
    before = model.flownetc.conv3_1[0].weight.clone()
    (factor,) = balance_cost_volumes(model, pairs)
    assert factor > 3  # He initialisation leaves the 441 correlation channels far quieter than the 32 beside them
    after = model.flownetc.conv3_1[0].weight
    torch.testing.assert_close(after[:, 32:], before[:, 32:] * factor)
    torch.testing.assert_close(after[:, :32], before[:, :32])
    assert balance_cost_volumes(model, pairs) == [pytest.approx(1.0, rel=1e-4)]  # balanced now
    assert balance_cost_volumes(flownet.MODELS["FlowNet2S"](), pairs) == []  # no correlation, nothing to do

    # a fresh run starts balanced (on its first batch: these pairs); one from a checkpoint keeps its weights
    config = tiny(model="FlowNet2C", steps=1, eval_every=1, val_pairs=2, lr=1e-12)
    train_flownet(config, tmp_path / "fresh", progress=False)
    fresh = flownet.load_checkpoint(checkpoint_paths(tmp_path / "fresh", "FlowNet2C")[0])
    assert balance_cost_volumes(fresh, pairs) == [pytest.approx(1.0, rel=1e-3)]
    unbalanced = flownet.MODELS["FlowNet2C"]()
    torch.save({"state_dict": unbalanced.state_dict()}, tmp_path / "unbalanced.pth.tar")
    train_flownet(config, tmp_path / "tuned", init=tmp_path / "unbalanced.pth.tar", progress=False)
    tuned = flownet.load_checkpoint(checkpoint_paths(tmp_path / "tuned", "FlowNet2C")[0])
    torch.testing.assert_close(tuned.conv3_1[0].weight, unbalanced.conv3_1[0].weight)


# --------------------------------------------------------------------------- evaluation


class ConstantFlow(nn.Module):
    def __init__(self, u, v):
        super().__init__()
        self.flow = nn.Parameter(torch.tensor([u, v]).view(1, 2, 1, 1))

    def forward(self, x):
        return self.flow.expand(x.shape[0], 2, *x.shape[-2:])


def test_synthetic_epe_and_the_zero_flow_baseline():
    val_set = SyntheticFlowDataset(3, 64, 64, split="val")
    mean_magnitude = np.mean([float(flow.norm(dim=0).mean()) for _, flow in val_set])
    assert zero_flow_epe(val_set) == pytest.approx(mean_magnitude, rel=1e-5)
    assert synthetic_epe(ConstantFlow(0.0, 0.0), val_set, batch_size=2) == pytest.approx(mean_magnitude, rel=1e-5)


def test_the_precision_report_sees_what_autocast_changes():
    from flownet.evaluation import precision_report

    class RoundedFlow(ConstantFlow):  # its one operation, a convolution, runs in the autocast dtype
        def forward(self, x):
            return F.conv2d(torch.ones_like(x[:, :1, 0]), self.flow.view(2, 1, 1, 1))

    val_set = SyntheticFlowDataset(3, 64, 64, split="val")
    model = RoundedFlow(1.01, 0.0).train()
    report = precision_report(model, val_set, torch.bfloat16, batch_size=2)
    assert model.training  # scored in eval mode, handed back as it came
    assert report.reduced != report.full and report.full == pytest.approx(synthetic_epe(model, val_set), rel=1e-6)
    assert report.reduced == pytest.approx(synthetic_epe(model, val_set, amp=torch.bfloat16), rel=1e-6)
    for dtype in (torch.bfloat16, torch.float16):  # the rounding of 1.01 px, and nothing else
        rounding = 1.01 - float(torch.tensor(1.01).to(dtype))
        assert precision_report(model, val_set, dtype, batch_size=2).between == pytest.approx(abs(rounding), rel=1e-3)


def _moving_frames(count, shift=2):
    base = (np.random.default_rng(0).random((72, 96, 3)) * 255).astype(np.uint8)
    base = np.repeat(np.repeat(base[::4, ::4], 4, 0), 4, 1)  # blocks, so a 2-px shift is smooth enough
    return [np.roll(base, shift * i, axis=1) for i in range(count)]


def test_frame_pair_warping_rewards_the_true_motion():
    frames = _moving_frames(4)
    # frame t+1 is frame t moved right by 2 px, so the flow from t to t+1 is (+2, 0)
    right = frame_pair_warping(ConstantFlow(2.0, 0.0), frames, fit="pad")
    zero = frame_pair_warping(ConstantFlow(0.0, 0.0), frames, fit="pad")
    assert right.pairs == zero.pairs == 3
    assert right.model_error < 0.01 < zero.model_error
    assert zero.model_error == pytest.approx(zero.zero_flow_error)
    assert frame_pair_warping(ConstantFlow(0.0, 0.0), frames, max_pairs=1).pairs == 1
    with pytest.raises(ValueError, match="at least two frames"):
        frame_pair_warping(ConstantFlow(0.0, 0.0), frames[:1])


# ------------------------------------------------------------------------------ scripts


def _run(script, *args):
    return subprocess.run([sys.executable, f"scripts/{script}", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_train_then_evaluate_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    result = _run("train_flownet.py", "--model", "FlowNet2S", "--size", "64", "--batch-size", "2", "--steps", "2",
                  "--eval-every", "1", "--val-pairs", "2", "--out", str(out), "--device", "cpu", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "best validation EPE" in result.stdout and "FlowNet2S_model_best.pth.tar" in result.stdout

    result = _run("train_flownet.py", "--size", "64", "--batch-size", "2", "--steps", "2", "--eval-every", "1",
                  "--val-pairs", "2", "--out", str(out), "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "has done its 2 steps already" in result.stdout

    write_video(tmp_path / "clip.mp4", _moving_frames(3))
    result = _run("eval_flownet.py", "--checkpoint", str(out / "FlowNet2S_model_best.pth.tar"),
                  "--frames", str(tmp_path / "clip.mp4"), "--device", "cpu", "--amp", "bf16")
    assert result.returncode == 0, result.stderr
    assert "generated pairs (2 of 64x64, seed 0): EPE" in result.stdout  # the training run's validation set
    assert "under bf16 autocast: EPE" in result.stdout and "px from the float32 flow" in result.stdout
    assert "clip.mp4 (2 frame pairs): warping error" in result.stdout


def test_scripts_report_bad_input(tmp_path):
    result = _run("eval_flownet.py")
    assert result.returncode == 2 and "train_flownet.py" in result.stderr
    result = _run("train_flownet.py", "--size", "100", "--out", str(tmp_path))
    assert result.returncode == 1 and "multiples of 64" in result.stderr
    result = _run("eval_flownet.py", "--checkpoint", str(tmp_path / "missing.pth"))
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_image_size_argument():
    assert image_size("128") == (128, 128) and image_size("64x192") == (64, 192)
    for bad in ("", "12x", "axb", "1x2x3", "0x5"):
        with pytest.raises(argparse.ArgumentTypeError, match="must look like"):
            image_size(bad)
