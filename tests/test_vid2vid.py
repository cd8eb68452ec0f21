"""vid2vid (issue 6): temporal sampling and flows of the video discriminators, the
progressive schedule, the sequence dataset and the demo data, training steps, chunked
generation, rendering and the scripts, and the bad inputs a user can make."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from flownet.flow_utils import read_flo
from vid2vid.config import ConfigError, load_config
from vid2vid.data.demo import build_video_demo_dataset, demo_video
from vid2vid.data.frames import iter_frames, write_video
from vid2vid.data.images import DatasetError
from vid2vid.data.sequences import ClipSchedule
from vid2vid.models.temporal import chain_flows, flow_confidence, temporal_skips, video_clips, window_starts
from vid2vid.models.vid2vid import Vid2Vid, Vid2VidConfig, sequence_dataset
from vid2vid.ops import warp
from vid2vid.rendering import FrameByFrame
from vid2vid.training import DistContext, StepContext, Trainer, read_losses

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.label_nc=6", "model.ngf=8", "model.n_downsample_G=2", "model.n_blocks=2", "model.n_blocks_local=1",
        "model.ndf=8", "model.n_layers_D=2", "model.num_D=1", "model.n_scales_temporal=2", "data.preprocess=none",
        "schedule.n_frames_start=7", "schedule.n_frames_total=7", "schedule.max_frames_per_gpu=3",
        "train.batch_size=2", "train.workers=0", "schedule.image_epochs=0"]  # the scripts' runs train clips at once


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_video_demo_dataset(tmp_path_factory.mktemp("demo"), train=2, test=1, frames=10, size=32)


def config(*overrides):
    return load_config(Vid2VidConfig, None, TINY + list(overrides))


def clip_batch(cfg, root, phase="train", **options):
    task = Vid2Vid(cfg)
    data = sequence_dataset(cfg, root, phase, multiple=task.multiple, **options)
    return task, torch.utils.data.default_collate([data[i] for i in range(len(data))])


# ------------------------------------------------------------------ temporal sampling and flows


def test_temporal_scales_skip_1_3_9_and_windows_end_in_the_chunk():
    assert temporal_skips(3, 3) == [1, 3, 9]
    assert window_starts(10, 3, 3) == [0, 1, 2, 3]  # frames s, s+3, s+6 <= 9
    assert window_starts(10, 3, 1, last_from=8) == [6, 7]  # windows whose last frame is 8 or 9
    assert window_starts(6, 3, 3) == []  # too short for this scale
    frames = torch.arange(10.0).view(1, 10, 1, 1, 1).expand(2, 10, 3, 4, 4)
    flows = torch.arange(9.0).view(1, 9, 1, 1, 1).expand(2, 9, 2, 4, 4) * 20
    clips = video_clips(frames, flows, 3, 3, [0, 2])
    assert clips.shape == (4, 3 * 3 + 2 * 2, 4, 4)
    # clip of start 2: frames 2, 5, 8, then the flows given at entries 2 and 5, divided by 20
    assert clips[2:, ::3, 0, 0].tolist() == [[2, 5, 8, 2, 5]] * 2
    assert video_clips(frames, None, 3, 1, [4]).shape == (2, 9, 4, 4)


def test_chained_flows_match_the_exact_flow_over_several_frames():
    video = demo_video(3, 0, 8, 48)
    images = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float()[None]
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)[None]
    chained = chain_flows(flows, 3)
    assert chained.shape == (1, 5, 2, 48, 48)
    # every layer translates steadily: where a surface stays in view, 3 frames back is 3 single steps
    steady = (chained - 3 * flows[:, 2:]).norm(dim=2) < 1e-3
    assert steady.float().mean() > 0.8
    # and warping frame t-3 by the chained flow reproduces frame t there
    error = (warp(images[:, 0:5].flatten(0, 1), chained[0]) - images[0, 3:8]).abs().mean(1)
    assert error[steady[0]].mean() < 1.0
    constant = torch.tensor([1.5, -0.5]).view(1, 1, 2, 1, 1).expand(1, 4, 2, 8, 8)
    torch.testing.assert_close(chain_flows(constant, 3), constant[:, :2] * 3)


def test_confidence_of_the_reference_flow():
    video = demo_video(0, 1, 3, 48)
    images = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)
    exact = flow_confidence(images[1:], images[:-1], flows)
    wrong = flow_confidence(images[1:], images[:-1], flows + 3)
    assert exact.shape == (2, 1, 48, 48) and exact.mean() > 0.8 and wrong.mean() < exact.mean() - 0.3
    assert flow_confidence(images, images, torch.zeros(3, 2, 48, 48)).min() == 1


def test_progressive_schedule():
    clips = ClipSchedule(4, 30, 5)
    assert [clips.length(e) for e in (0, 4, 5, 9, 10, 15, 40)] == [4, 4, 8, 8, 16, 30, 30]
    images_first = ClipSchedule(4, 30, 5, image_epochs=2)  # single frames, then the same growth
    assert [images_first.length(e) for e in (0, 1, 2, 6, 7, 12)] == [1, 1, 4, 4, 8, 16]
    schedule = config("schedule.scale_epochs=3").schedule
    assert [schedule.active_scales(e, 3) for e in (0, 2, 3, 6, 20)] == [1, 1, 2, 3, 3]
    assert config().schedule.active_scales(0, 3) == 3  # scale_epochs 0: every level at once
    with pytest.raises(ValueError, match="n_frames_start"):
        ClipSchedule(8, 4, 1)


# ------------------------------------------------------------------------------------ data


def test_demo_flow_is_exact():
    video = demo_video(0, 0, 6, 32)
    assert video["label"].shape == (6, 32, 32) and video["flow"].shape == (5, 32, 32, 2)
    assert set(np.unique(video["label"])) <= set(range(1, 6))
    images = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float()
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)
    error = (warp(images[:-1], flows) - images[1:]).abs().mean(1)
    # wherever the same object is seen at both ends of the flow (no occlusion), frame t-1 warps onto frame t
    ys, xs = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    source_x = (xs + flows[:, 0]).round().long().clamp(0, 31)
    source_y = (ys + flows[:, 1]).round().long().clamp(0, 31)
    instances = torch.from_numpy(video["instance"])
    same = instances[:-1][torch.arange(5).view(5, 1, 1), source_y, source_x] == instances[1:]
    # (bilinear warping mixes layers along the edges: those few pixels differ more)
    assert same.float().mean() > 0.7 and error[same].median() < 0.5 and (error[same] < 2).float().mean() > 0.9


def shuffled_ids(instances: torch.Tensor, seed: int) -> torch.Tensor:
    """Cityscapes-style per-frame ids: each frame's objects renumbered at random within their class."""
    generator, shuffled = torch.Generator().manual_seed(seed), instances.clone()
    for t in range(len(instances)):
        numbers = torch.randperm(900, generator=generator)
        for n, object_id in enumerate(instances[t][instances[t] >= 1000].unique().tolist()):
            shuffled[t][instances[t] == object_id] = object_id // 1000 * 1000 + 100 + int(numbers[n])
    return shuffled


def test_tracks_are_recovered_from_ids_shuffled_on_every_frame():
    from vid2vid.data.tracks import MEMORY, link_tracks

    for index in range(6):  # shapes that pass behind each other and come out again, and leave the frame
        video = demo_video(0, index, 48, 48)
        truth = torch.from_numpy(video["instance"]).long()
        tracks = link_tracks(shuffled_ids(truth, index), torch.from_numpy(video["flow"]).permute(0, 3, 1, 2))
        objects = truth >= 1000
        pairs = set(zip(truth[objects].tolist(), tracks[objects].tolist()))
        assert len(pairs) == len({o for o, _ in pairs}) == len({k for _, k in pairs}), (index, pairs)  # 1:1
        assert all(k // 1000 == o // 1000 for o, k in pairs) and (tracks[~objects] == truth[~objects]).all()
    # shapes that leave and come back much later start new tracks, and no track ever holds two shapes
    video = demo_video(1, 0, 160, 64, loop=True)
    truth = torch.from_numpy(video["instance"]).long()
    tracks = link_tracks(shuffled_ids(truth, 7), torch.from_numpy(video["flow"]).permute(0, 3, 1, 2))
    for object_id in truth[truth >= 1000].unique():
        frames = torch.nonzero((truth == object_id).flatten(1).any(1)).flatten().tolist()
        returns = sum(b - a > MEMORY for a, b in zip(frames, frames[1:]))
        assert len(tracks[truth == object_id].unique()) == 1 + returns
    for track in tracks[tracks >= 1000].unique():
        assert len(truth[tracks == track].unique()) == 1
    # an object of another class where a track was is another object
    swapped = torch.ones(2, 8, 8, dtype=torch.int64)
    swapped[0, 2:6, 2:6], swapped[1, 2:6, 2:6] = 2005, 3007
    assert link_tracks(swapped, torch.zeros(1, 2, 8, 8))[:, 3, 3].tolist() == [2000, 3000]
    with pytest.raises(ValueError, match="flows"):
        link_tracks(truth, torch.zeros(3, 2, 64, 64))


def test_tracks_linked_on_subsampled_maps_are_those_of_the_full_maps():
    from vid2vid.data.tracks import TrackLinker

    video = demo_video(0, 1, 24, 48)
    truth = torch.from_numpy(video["instance"]).long()
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2).float()
    shuffled = shuffled_ids(truth, 1)
    # four times as large, linked on every fourth pixel: the tracks of the map that size
    large, large_flows = (x.repeat_interleave(4, -1).repeat_interleave(4, -2) for x in (shuffled, flows * 4))
    large[:, 1, :] = 9999  # a line one pixel high that no sample hits: a new track on every frame
    linker, small = TrackLinker(max_width=48), TrackLinker()
    for t in range(len(truth)):
        tracks = linker(large[t], large_flows[t - 1] if t else None)
        expected = small(shuffled[t], flows[t - 1] if t else None)
        assert torch.equal(tracks[::4, ::4], expected), t
        assert (tracks[1] == 9000 + t).all()


def test_sequence_dataset_clips_share_one_geometry(demo):
    cfg = config("data.preprocess=crop", "data.crop_size=24", "data.flip=true", "schedule.n_frames_start=4",
                 "schedule.n_frames_total=8", "schedule.niter_step=1")
    data = sequence_dataset(cfg, demo, "train", multiple=4)
    item = data[0]
    assert item["image"].shape == (4, 3, 24, 24) and item["label"].shape == (4, 1, 24, 24)
    assert item["instance"].shape == (4, 1, 24, 24) and item["flow"].shape == (3, 2, 24, 24)
    assert item["label"].dtype == torch.int64 and 0 <= item["start"] <= 10 - 4
    data.set_epoch(1)
    assert data[0]["image"].shape[0] == 8  # the clip length doubles with the epochs
    # flows were cropped and flipped with the frames: they still warp frame t-1 onto frame t
    flipped = 0
    for epoch in range(6):
        data.set_epoch(epoch)
        item = data[1]
        error = (warp(item["image"][:-1], item["flow"]) - item["image"][1:]).abs().mean(1)
        assert error.median() < 0.02
        flipped += int(np.asarray(item["flow"][:, 0]).mean() * np.asarray(
            torch.from_numpy(demo_video(0, 1, 10, 32)["flow"][..., 0]).mean()) < 0)
    assert 0 < flipped  # some epochs flipped the clip


def test_sequence_dataset_refuses_instance_maps_of_another_size(tmp_path, demo):
    shutil.copytree(demo, tmp_path / "data")
    path = sorted((tmp_path / "data" / "test_inst" / "seq00").iterdir())[3]
    Image.open(path).resize((16, 16), Image.NEAREST).save(path)
    data = sequence_dataset(config(), tmp_path / "data", "test", multiple=4, train=False, schedule=None)
    with pytest.raises(DatasetError, match=f"{path.name} is 16x16, but its frame is 32x32"):
        data[0]


def test_sequences_from_videos_with_canny_edges(tmp_path, demo):
    for name in ("a", "b"):
        (tmp_path / "train_B").mkdir(exist_ok=True)
        frames = [np.asarray(Image.open(p)) for p in sorted((demo / "train_B" / "seq00").glob("*.png"))]
        write_video(tmp_path / "train_B" / f"{name}.mp4", frames)
    cfg = config("data.input=canny", "model.use_instance=false", "model.flow_source=none",
                 "schedule.n_frames_start=5", "schedule.n_frames_total=5")
    assert cfg.input_channels == 1
    data = sequence_dataset(cfg, tmp_path, "train", multiple=4)
    item = data[0]
    assert item["label"].shape == (5, 1, 32, 32) and set(item["label"].unique().tolist()) <= {-1.0, 1.0}
    assert item["image"].shape == (5, 3, 32, 32) and data.names == ["a", "b"]


def test_openpose_and_densepose_sequences(tmp_path):
    from test_data_tools import openpose_file

    # NVIDIA's pose dataset layout: <phase>_img, <phase>_openpose, <phase>_densepose
    for folder in ("train_openpose", "train_img", "train_densepose"):
        (tmp_path / folder / "walk").mkdir(parents=True)
    iuv = np.zeros((32, 48, 3), np.uint8)
    iuv[20:, :, 2] = 6  # body part 6 in the lower rows (the blue channel, as DensePose writes it)
    for t in range(10):
        Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(tmp_path / "train_img" / "walk" / f"{t:04d}.png")
        Image.fromarray(iuv).save(tmp_path / "train_densepose" / "walk" / f"{t:04d}.png")
        points = [[0, 0, 0.0]] * 18
        points[1], points[2] = [8 + 2 * t, 10, 0.9], [30 + 2 * t, 10, 0.9]  # neck and right shoulder, moving right
        openpose_file(tmp_path / "train_openpose" / "walk" / f"{t:04d}.json", points)
    cfg = config("data.input=openpose", "data.densepose=true", "model.use_instance=false", "model.flow_source=none")
    item = sequence_dataset(cfg, tmp_path, "train", multiple=4, train=False)[0]
    assert item["label"].shape == (7, 6, 32, 48) and cfg.input_channels == 6  # frames 48 wide, 32 high
    parts, limbs = item["label"][:, 2], item["label"][:, 3:]  # DensePose first, as NVIDIA's PoseDataset
    assert limbs[:, :, 10].gt(-1).any() and not limbs[:, :, 16:].gt(-1).any()  # rows 5 .. 15: pen 3, round ends
    columns = (limbs > -1).any(1).any(1)  # (T, W)
    assert columns[0, 20] and not columns[0, 41] and columns[6, 41]  # it moves right with the keypoints
    assert torch.allclose(parts[0, 20:], torch.full((12, 48), 6 / 12 - 1)) and (parts[0, :20] == -1).all()
    alone = config("data.input=densepose", "model.use_instance=false", "model.flow_source=none")
    densepose = sequence_dataset(alone, tmp_path, "train", multiple=4, train=False)[0]["label"]
    assert alone.input_channels == 3 and torch.equal(densepose, item["label"][:, :3])  # the same IUV channels
    shutil.rmtree(tmp_path / "train_densepose")
    with pytest.raises(DatasetError, match="no counterpart in"):
        sequence_dataset(cfg, tmp_path, "train", multiple=4)


def test_a_canny_model_renders_a_video(tmp_path, demo):
    frames = [np.asarray(Image.open(p)) for p in sorted((demo / "train_B" / "seq00").glob("*.png"))]
    for phase in ("train", "test"):
        (tmp_path / "data" / f"{phase}_B").mkdir(parents=True)
        write_video(tmp_path / "data" / f"{phase}_B" / "clip.mp4", frames)
    out = tmp_path / "run"
    result = run_script("scripts/train_vid2vid.py", "--output", str(out), "--max-iters", "1", "--quiet",
                        f"data.root={tmp_path / 'data'}", *TINY, "data.input=canny", "model.use_instance=false",
                        "model.use_features=false", "model.lambda_l1=0",
                        "model.flow_source=none")
    assert result.returncode == 0, result.stderr
    assert "rendered 10 frames" in result.stdout  # the test video, from its own edges
    result = run_script("scripts/render_vid2vid.py", "--checkpoint", str(out), "--input",
                        str(tmp_path / "data" / "test_B" / "clip.mp4"), "--output", str(tmp_path / "r"),
                        "--max-frames", "4", "--side-by-side", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [f.shape for f in iter_frames(tmp_path / "r" / "video.mp4")] == [(32, 64, 3)] * 4  # edges | output


def _copy(demo, tmp_path):
    shutil.copytree(demo, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("case, message", [
    ("few frames", "fewer than n_frames_total"),
    ("label too big", "holds label 9, but model.label_nc is 6"),
    ("rgb labels", "is an RGB image; label maps hold one id"),
    ("missing flow", "has no counterpart in"),
    ("flow count", "has 8 flows, expected 9"),
    ("no frames folder", "no frames folder"),
])
def test_bad_sequence_data_is_named(tmp_path, demo, case, message):
    root = _copy(demo, tmp_path)
    overrides = []
    if case == "few frames":
        overrides = ["schedule.n_frames_total=12"]
    elif case == "label too big":
        Image.fromarray(np.full((32, 32), 9, np.uint8)).save(root / "train_A" / "seq01" / "0000.png")
    elif case == "rgb labels":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "train_A" / "seq00" / "0000.png")
    elif case == "missing flow":
        shutil.rmtree(root / "train_flow" / "seq01")
    elif case == "flow count":
        (root / "train_flow" / "seq00" / "0008.flo").unlink()
    else:
        shutil.rmtree(root / "train_B")
    with pytest.raises(DatasetError, match=message):
        sequence_dataset(config(*overrides), root, "train", multiple=4)


def test_check_dataset_reads_a_vid2vid_config(tmp_path, demo):
    config_file = tmp_path / "c.yaml"
    config_file.write_text("model:\n  label_nc: 6\nschedule:\n  n_frames_total: 10\n")
    run = lambda: run_script("scripts/check_dataset.py", str(demo), "--config", str(config_file))  # noqa: E731
    assert run().returncode == 0
    config_file.write_text("model:\n  label_nc: 3\nschedule:\n  n_frames_total: 11\n")
    result = run()
    assert result.returncode == 1 and "fewer than n_frames_total 11" in result.stdout and ">= label_nc 3" in result.stdout


def test_bad_configs():
    with pytest.raises(ValueError, match="needs model.flownet_checkpoint"):
        config("model.flow_source=flownet")
    with pytest.raises(ValueError, match="need label maps"):
        config("data.input=images", "model.foreground_classes=[2]")
    with pytest.raises(ValueError, match=r"model.mask_start must be in \(0, 1\), got 1.0"):
        config("model.mask_start=1.0")
    with pytest.raises(ValueError, match="model.warp_tolerance must be >= 0"):
        config("model.warp_tolerance=-0.1")
    with pytest.raises(ValueError, match="model.structure_radius must be >= 0 and needs model.warp_tolerance > 0"):
        config("model.structure_radius=8")
    with pytest.raises(ValueError, match=r"model.scene_cut_agreement must be in \[0, 1\) and needs model.warp_tolerance"):
        config("model.scene_cut_agreement=0.5")
    with pytest.raises(ValueError, match="schedule.clip_warmup must be >= 0"):
        config("schedule.clip_warmup=-1")
    with pytest.raises(ValueError, match="model.lambda_appearance ties objects to their first look"):
        config("model.lambda_appearance=1", "model.flow_source=none")
    with pytest.raises(ValueError, match="model.lambda_appearance ties objects to their first look"):
        config("model.lambda_appearance=1", "model.use_instance=false", "data.instance_tracks=true")


# -------------------------------------------------------------------------------- training


def _ctx(cfg, task):
    ctx = StepContext(cfg.train, DistContext(0, 1, torch.device("cpu")), task.optimizers())
    task.distribute(ctx.dist)
    return ctx


def test_networks_and_discriminator_inputs(demo):
    cfg = config("model.n_scales_spatial=2", "model.use_features=true", "model.n_downsample_E=2",
                 "model.foreground_classes=[4,5]")
    task = Vid2Vid(cfg)
    assert set(task.networks()) == {"G", "D", "D_T", "E"} and task.multiple == 8
    assert cfg.input_channels == 6 + 1 + 3 and cfg.label_channels == 7
    assert len(task.video_discriminators) == 2
    first_conv = task.video_discriminators[0].scales[0].blocks[0][0]
    assert first_conv.in_channels == 3 * 3 + 2 * 2  # K frames and their K-1 flows
    assert task.image_discriminator.scales[0].blocks[0][0].in_channels == 7 + 3
    without_flow = Vid2Vid(config("model.flow_source=none"))
    assert without_flow.video_discriminators[0].scales[0].blocks[0][0].in_channels == 9
    clips = video_clips(torch.rand(2, 7, 3, 32, 32), torch.rand(2, 4, 2, 32, 32), 3, 3, [0])
    outputs = task.video_discriminators[1](clips)  # num_D scales, each every block's features
    assert len(outputs) == 1 and outputs[0][-1].shape[:2] == (2, 1)


@pytest.mark.parametrize("overrides", [
    [],
    ["model.n_scales_spatial=2", "model.foreground_classes=[4,5]", "schedule.max_frames_per_gpu=7"],
    ["model.use_features=true", "model.n_downsample_E=2", "model.gradient_checkpointing=true"],
])
def test_a_few_training_steps_reduce_the_losses(demo, overrides):
    torch.manual_seed(0)
    cfg = config(*overrides)
    task, batch = clip_batch(cfg, demo)
    ctx = _ctx(cfg, task)
    history = [task.train_step(batch, ctx) for _ in range(8)]
    assert {"G_GAN", "G_FM", "G_T_GAN", "G_T_FM", "F_flow", "F_warp", "G_warp", "F_mask", "D_real", "D_T_fake"} \
        <= set(history[0])
    for name in ("F_flow", "F_warp", "G_FM"):
        assert np.mean([h[name] for h in history[-3:]]) < history[0][name], name


def test_channels_last_stores_every_network_channels_last_and_computes_what_the_default_layout_does(demo, tmp_path):
    tasks = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        cfg = config(f"train.channels_last={str(channels_last).lower()}", "train.max_iters=2", "train.ema_halflife=1",
                     "model.use_features=true", "model.n_downsample_E=2")
        tasks[channels_last], batch = clip_batch(cfg, demo)
    trainer = Trainer(tasks[True], sequence_dataset(cfg, demo, "train", multiple=tasks[True].multiple), cfg.train,
                      tmp_path, progress=False)

    def channels_last_kernels(network):  # whether each kernel is channels-last (a 1x1 one is so in either layout)
        return [p.is_contiguous(memory_format=torch.channels_last) for p in network.parameters()
                if p.dim() == 4 and p.shape[-1] > 1]

    networks = {**tasks[True].networks(), "G average": trainer.average.network}
    layouts = {name: channels_last_kernels(network) for name, network in networks.items()}
    assert set(layouts) == {"G", "D", "D_T", "E", "G average"}
    assert all(layout and all(layout) for layout in layouts.values()), layouts
    assert not any(channels_last_kernels(tasks[False].generator))
    # the same weights in either layout make the same frames, float rounding apart; an untrained G's
    # recurrence grows that rounding some sevenfold a frame (from 3e-6 on the first), so two frames are compared
    nhwc, nchw = tasks[True].synthesize(batch), tasks[False].synthesize(batch)
    assert torch.allclose(nhwc[:, :2], nchw[:, :2], atol=1e-4)
    trainer.fit()
    assert len(read_losses(tmp_path)) == 2


def test_progressive_spatial_training_starts_at_the_coarsest_level(demo):
    cfg = config("model.n_scales_spatial=2", "schedule.scale_epochs=1")
    task, batch = clip_batch(cfg, demo)
    ctx = _ctx(cfg, task)
    finer = task.sequential_generator.finer[0]
    before = [p.detach().clone() for p in finer.parameters()]
    task.train_step(batch, ctx)  # epoch 0: the coarsest level alone, at half resolution
    assert all(torch.equal(a, b) for a, b in zip(before, finer.parameters()))
    ctx.epoch = 1
    task.train_step(batch, ctx)
    assert not all(torch.equal(a, b) for a, b in zip(before, finer.parameters()))


def _recording_history(task):
    """Records the history the clip generator is called with, call by call."""
    calls = []
    generator = task.generator
    original = generator.forward
    generator.forward = lambda labels, history, *rest: calls.append(history) or original(labels, history, *rest)
    return calls


def test_real_training_history_starts_clips_from_the_real_frames(demo):
    cfg = config("model.training_history=real", "schedule.max_frames_per_gpu=7")
    task, batch = clip_batch(cfg, demo)
    calls = _recording_history(task)
    losses = task.train_step(batch, _ctx(cfg, task))
    assert calls[0] is None  # frame 0 as a first frame, in an update of its own
    assert len(calls) == 2 and torch.equal(calls[1], batch["image"][:, :2])  # n_frames_G - 1 real frames
    assert {"F_flow", "G_T_GAN", "first_G_GAN", "first_D_real"} <= set(losses)
    generated = config("schedule.max_frames_per_gpu=7")
    task, batch = clip_batch(generated, demo)
    calls = _recording_history(task)
    task.train_step(batch, _ctx(generated, task))
    assert calls == [None]  # G makes frame 0 from an empty history, as at render time
    with pytest.raises(ValueError, match="n_frames_start must be at least n_frames_G"):
        config("model.training_history=real", "schedule.n_frames_start=2")


def test_an_epoch_that_cycles_the_sequences_draws_new_clips_each_pass(demo, tmp_path):
    from vid2vid.training import Trainer

    cfg = config("train.iters_per_epoch=8", "train.batch_size=1", "schedule.n_frames_start=2")
    task = Vid2Vid(cfg)
    data = sequence_dataset(cfg, demo, "train", multiple=task.multiple)  # 2 sequences: 4 passes an epoch
    indices = Trainer(task, data, cfg.train, tmp_path, progress=False)._epoch_indices()
    clips = {data[i]["image"].sum().item() for i in indices}
    assert len(indices) == 8 and len(clips) > 4  # not the same 2 clips in every pass
    torch.testing.assert_close(data[1]["image"], data[1]["image"])  # a function of (seed, epoch, index)


def test_image_epochs_train_single_first_frames_before_the_clips(demo):
    cfg = config("schedule.image_epochs=1", "model.lambda_l1=10")
    task = Vid2Vid(cfg)
    data = sequence_dataset(cfg, demo, "train", multiple=task.multiple)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    assert batch["image"].shape[1] == 1
    ctx = _ctx(cfg, task)
    flow_path = [p.detach().clone() for p in task.sequential_generator.coarsest.flow_decoder.parameters()]
    first_frames = task.synthesize(batch)[:, 0]
    losses = task.train_step(batch, ctx)  # epoch 0: single frames, made as first frames
    assert set(losses) == {"G_GAN", "G_FM", "G_L1", "D_real", "D_fake"}
    assert all(torch.equal(a, b) for a, b in zip(flow_path, task.sequential_generator.coarsest.flow_decoder.parameters()))
    assert not torch.equal(task.synthesize(batch)[:, 0], first_frames)
    data.set_epoch(1)
    ctx.epoch = 1
    clips = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    assert clips["image"].shape[1] == 7 and {"F_flow", "G_T_GAN"} <= set(task.train_step(clips, ctx))


def test_starting_as_an_image_generator_leaves_the_older_label_maps_and_the_history_unread_until_the_clips(demo):
    # model.start_as_image_generator: the image epochs make each frame from its own map (the older ones read
    # as nothing, their weights staying zero); the clips then let the older maps and the history in
    cfg = config("schedule.image_epochs=1", "model.start_as_image_generator=true", "model.lambda_l1=10")
    task = Vid2Vid(cfg)
    data = sequence_dataset(cfg, demo, "train", multiple=task.multiple)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    g = task.sequential_generator
    stem = g.coarsest.label_encoder[1].weight
    older = stem.shape[1] // cfg.model.n_frames_G * (cfg.model.n_frames_G - 1)
    assert torch.equal(stem[:, :older], torch.zeros_like(stem[:, :older]))
    newest = stem[:, older:].detach().clone()
    ctx = _ctx(cfg, task)
    for _ in range(3):
        assert set(task.train_step(batch, ctx)) == {"G_GAN", "G_FM", "G_L1", "D_real", "D_fake"}
    assert torch.equal(stem[:, :older], torch.zeros_like(stem[:, :older])) and not torch.equal(stem[:, older:], newest)

    data.set_epoch(1)
    ctx.epoch = 1
    clips = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    assert {"F_flow", "G_T_GAN"} <= set(task.train_step(clips, ctx))
    assert stem[:, :older].abs().sum() > 0 and g.coarsest.history_gate.weight.abs().sum() > 0


def test_the_clip_warmup_starts_the_clip_only_weights_with_small_steps(demo):
    # Adam's first step moves every weight with a gradient by its learning rate: the older label maps' stem
    # weights (zero until the clips) show the first clip step's rate, 1/clip_warmup of the scheduled one
    def first_clip_step(warmup):
        torch.manual_seed(0)
        cfg = config("schedule.image_epochs=1", "model.start_as_image_generator=true",
                     "schedule.max_frames_per_gpu=7", f"schedule.clip_warmup={warmup}")  # one G step
        task = Vid2Vid(cfg)
        data = sequence_dataset(cfg, demo, "train", multiple=task.multiple)
        data.set_epoch(1)
        ctx = _ctx(cfg, task)
        ctx.epoch = 1  # the clips' first iteration
        task.train_step(torch.utils.data.default_collate([data[i] for i in range(len(data))]), ctx)
        stem = task.sequential_generator.coarsest.label_encoder[1].weight
        older = stem.shape[1] // cfg.model.n_frames_G * (cfg.model.n_frames_G - 1)
        assert all(group["lr"] == cfg.train.lr for group in task.optimizers()["G"].param_groups)
        return stem[:, :older].detach().abs().max().item()

    assert first_clip_step(0) == pytest.approx(2e-4, rel=1e-3)
    assert first_clip_step(10) == pytest.approx(2e-5, rel=1e-3)


def test_reference_flow_from_flownet(tmp_path, demo):
    import flownet

    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    cfg = config("model.flow_source=flownet", f"model.flownet_checkpoint={tmp_path / 's.pth.tar'}")
    task, batch = clip_batch(cfg, demo)
    assert "flow" not in batch  # no flow files read: FlowNet2 computes them from the real frames
    flows, confidence = task.reference_flows(batch, batch["image"])
    assert flows.shape == (2, 6, 2, 32, 32) and confidence.shape == (2, 6, 1, 32, 32)
    assert "F_flow" in task.train_step(batch, _ctx(cfg, task))


def test_reference_flow_from_dis_follows_the_exact_demo_flow(demo):
    cfg = config("model.flow_source=dis")
    task, batch = clip_batch(cfg, demo)
    assert "flow" not in batch  # DIS computes the flows from the real frames while training
    flows, confidence = task.reference_flows(batch, batch["image"])
    exact = clip_batch(config(), demo)[1]["flow"]
    trusted = confidence[:, :, 0] > 0
    error = (flows - exact).norm(dim=2)[trusted]
    assert trusted.float().mean() > 0.5 and error.median() < 0.5
    assert "F_flow" in task.train_step(batch, _ctx(cfg, task))


def test_input_flow_warps_by_the_label_maps_own_motion_before_the_flow_heads_learn(demo, monkeypatch):
    from flownet.dis import dis_flow
    from vid2vid.models.pix2pixhd import colorize_labels

    cfg = config("model.input_flow=true", "model.start_as_image_generator=true")
    task, batch = clip_batch(cfg, demo)
    condition = task.encode_labels(batch)
    length = condition.shape[1]
    with torch.no_grad():
        flows = task.generator(task._frame_windows(batch, condition, 0, length, 0), None)["flow"]
    labels = batch["label"].long()
    pictures = ((colorize_labels(labels.flatten(0, 1), 6) + 1) * 127.5).unflatten(0, labels.shape[:2])
    expected = torch.stack([dis_flow(pictures[:, t], pictures[:, t - 1], finest_scale=0, start_blur=2.0)
                            for t in range(1, length)], 1)
    assert torch.equal(flows, expected)  # zero flow heads: G warps by the label maps' DIS flow
    shapes = labels[:, 1:, 0] > 1  # the background's class is one colour: its pan is not in the maps
    error, still = (flows - batch["flow"]).norm(dim=2)[shapes], batch["flow"].norm(dim=2)[shapes]
    assert error.mean() < still.mean() / 2
    assert "F_flow" in task.train_step(batch, _ctx(cfg, task))

    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ValueError, match="model.input_flow: DIS optical flow needs OpenCV"):
        Vid2Vid(cfg)


def test_a_missing_flow_folder_names_the_ways_to_get_flow(tmp_path, demo):
    root = _copy(demo, tmp_path)
    shutil.rmtree(root / "train_flow")
    with pytest.raises(DatasetError) as e:
        sequence_dataset(config(), root, "train", multiple=4)
    for route in ("compute_flow.py --dataset", "--method dis", "prepare_video_dataset.py --flow dis",
                  "model.flow_source=dis", "model.flow_source=none", "docs/troubleshooting.md#flows-missing"):
        assert route in str(e.value)


def test_without_flow_the_flow_losses_are_off(demo):
    with pytest.warns(UserWarning, match="flow_source=none"):
        cfg = config("model.flow_source=none")
        task, batch = clip_batch(cfg, demo)
    losses = task.train_step(batch, _ctx(cfg, task))
    assert "F_flow" not in losses and "G_T_GAN" in losses


def test_a_generator_without_flow_heads_trains_on_the_generated_frames_warp_loss(demo):
    cfg = config("model.predict_flow=false", "model.n_scales_spatial=2")
    task, batch = clip_batch(cfg, demo)
    g = task.sequential_generator
    assert g.coarsest.flow_decoder is None and g.finer[0].flow_branch is None and g.heads[1].flow is None
    history = [task.train_step(batch, _ctx(cfg, task)) for _ in range(2)]
    assert {"G_warp", "G_T_GAN"} <= set(history[0]) and not {"F_flow", "F_warp", "F_mask"} & set(history[0])
    assert all(torch.isfinite(torch.stack(list(h.values()))).all() for h in history)
    out = task.generator(batch["label"].new_zeros(1, 4, cfg.input_channels, 32, 32).float(), None)
    assert "flow" not in out and torch.equal(out["frame"], out["hallucinated"])  # every frame is h_t


def test_chunks_carry_the_history(demo):
    """Frames made in chunks of 2 with the history handed over equal frames made at once."""
    torch.manual_seed(0)
    cfg = config()
    task, batch = clip_batch(cfg, demo)
    generator = task.generator.eval()
    whole = task.synthesize(batch)
    windows = task._frame_windows(batch, task.encode_labels(batch), 0, 7, 0)
    made = []
    with torch.no_grad():
        for begin in range(0, 7, 2):
            end = min(begin + 2, 7)
            history = torch.stack(made[-2:], 1) if made else None
            frames = generator(windows[:, begin:end + 2], history)["frame"]
            made.extend(frames.unbind(1))
    torch.testing.assert_close(torch.stack(made, 1), whole)
    # the flat-memory renderer makes the same frames too (compared at batch size 1: the recurrence
    # amplifies float rounding, which differs between batch sizes)
    render = FrameByFrame(task)
    one = [render({k: batch[k][:1, t] for k in ("label", "instance")}) for t in range(7)]
    first = task.synthesize({k: batch[k][:1] for k in ("label", "instance", "image")})
    torch.testing.assert_close(torch.cat(one)[None], first)


def test_sample_videos_in_the_logs(tmp_path):
    from vid2vid.training.logging import RunLogger

    logger = RunLogger(tmp_path, progress=False)
    logger.start(total=1, initial=0)
    logger.samples(0, {"output": torch.rand(2, 5, 3, 16, 16) * 2 - 1, "target": torch.zeros(2, 5, 3, 16, 16)})
    logger.close()
    assert len(list(iter_frames(tmp_path / "web" / "videos" / "epoch0000.mp4"))) == 5
    assert Image.open(tmp_path / "web" / "images" / "epoch0000_output.png").size == (5 * 16, 16)


# ----------------------------------------------------------------------------- rendering


def run_script(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo):
    out = tmp_path_factory.mktemp("run") / "run"
    result = run_script("scripts/train_vid2vid.py", "--output", str(out), "--max-iters", "2", "--quiet",
                        f"data.root={demo}", *TINY, "model.use_features=true", "model.n_downsample_E=2")
    assert result.returncode == 0, result.stderr
    assert "rendered 10 frames" in result.stdout
    return out


def test_training_leaves_a_checkpoint_samples_and_a_video(trained):
    assert (trained / "checkpoints" / "latest.pt").exists() and (trained / "config.yaml").exists()
    assert len(list(iter_frames(trained / "web" / "videos" / "epoch0001.mp4"))) == 7  # the sample clip
    frames = list(iter_frames(trained / "render" / "video.mp4"))
    assert len(frames) == 10 and frames[0].shape == (32, 96, 3)  # input | output | ground truth
    records = [json.loads(line) for line in open(trained / "losses.jsonl")]
    assert [r["iteration"] for r in records] == [1, 2]


@pytest.fixture(scope="module")
def clustered(trained):
    """The trained run with its feature clusters, the styles rendering picks from."""
    result = run_script("scripts/encode_features.py", "--run", str(trained), "--clusters", "2")
    assert result.returncode == 0, result.stderr
    return trained


def test_render_script_remap_and_styles(clustered, demo, tmp_path):
    source = str(demo / "test_A" / "seq00")
    outputs = {}
    for name, extra in {"style0": ["--style", "0"], "style1": ["--style", "1"],
                        "remap": ["--style", "0", "--remap", "2:3,4:5"]}.items():
        result = run_script("scripts/render_vid2vid.py", "--checkpoint", str(clustered), "--input", source,
                            "--instances", str(demo / "test_inst" / "seq00"), "--output", str(tmp_path / name),
                            "--quiet", *extra)
        assert result.returncode == 0, result.stderr
        outputs[name] = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / name / "frames").glob("*.png"))])
        assert outputs[name].shape == (10, 32, 32, 3)
        assert len(list(iter_frames(tmp_path / name / "video.mp4"))) == 10
    assert not np.array_equal(outputs["style0"], outputs["style1"])
    assert not np.array_equal(outputs["style0"], outputs["remap"])


@pytest.mark.parametrize("case, message", [
    ("pictures for labels", "colour picture"),
    ("video for labels", "not a video"),
    ("no style", "pass a style"),
    ("remapped beyond", "beyond model.label_nc"),
    ("missing input", "does not exist"),
    ("no instance maps", "pass the instance maps (--instances"),
    ("instance maps of another size", "is 16x16, but the input"),
])
def test_render_bad_inputs(clustered, demo, tmp_path, case, message):
    source, extra = str(demo / "test_A" / "seq00"), ["--style", "0", "--instances", str(demo / "test_inst" / "seq00")]
    if case == "pictures for labels":
        source = str(demo / "test_B" / "seq00")
    elif case == "video for labels":
        write_video(tmp_path / "v.mp4", [np.zeros((32, 32, 3), np.uint8)] * 3)
        source = str(tmp_path / "v.mp4")
    elif case == "no style":
        extra = extra[2:]
    elif case == "remapped beyond":
        extra += ["--remap", "2:7"]
    elif case == "no instance maps":  # the demo's config keeps each object's first look by its instance id
        extra = ["--style", "0"]
    elif case == "instance maps of another size":  # resized, they would mark the wrong pixels
        for path in sorted((demo / "test_inst" / "seq00").iterdir()):
            (tmp_path / "inst").mkdir(exist_ok=True)
            Image.open(path).resize((16, 16), Image.NEAREST).save(tmp_path / "inst" / path.name)
        extra = ["--style", "0", "--instances", str(tmp_path / "inst")]
    else:
        source = str(tmp_path / "nowhere")
    result = run_script("scripts/render_vid2vid.py", "--checkpoint", str(clustered), "--input", source,
                        "--output", str(tmp_path / "out"), "--quiet", *extra)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_render_refuses_a_checkpoint_of_another_model(tmp_path, demo, baseline):
    result = run_script("scripts/render_vid2vid.py", "--checkpoint", str(baseline), "--input",
                        str(demo / "test_A" / "seq00"), "--output", str(tmp_path / "x"))
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_compute_flow_writes_a_dataset_s_reference_flows(tmp_path, demo):
    import flownet

    root = _copy(demo, tmp_path)
    shutil.rmtree(root / "train_flow")
    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    result = run_script("scripts/compute_flow.py", "--dataset", str(root), "--checkpoint", str(tmp_path / "s.pth.tar"),
                        "--device", "cpu")
    assert result.returncode == 0, result.stderr
    flows = sorted((root / "train_flow" / "seq01").glob("*.flo"))
    assert len(flows) == 9 and read_flo(flows[0]).shape == (32, 32, 2)
    sequence_dataset(config(), root, "train", multiple=4)  # the dataset takes them

    shutil.rmtree(root / "train_flow")
    result = run_script("scripts/compute_flow.py", "--dataset", str(root), "--method", "dis")
    assert result.returncode == 0, result.stderr
    assert len(list((root / "train_flow" / "seq01").glob("*.flo"))) == 9
    sequence_dataset(config(), root, "train", multiple=4)



# ---------------------------------------------------------------------------- evaluation


def test_the_baseline_must_see_the_same_inputs_and_the_refusal_says_so_in_the_same_terms():
    from vid2vid.evaluation import pix2pixhd_inputs, vid2vid_inputs
    from vid2vid.models.pix2pixhd import Pix2PixHDConfig

    edges = load_config(Vid2VidConfig, ROOT / "configs" / "vid2vid_edges.yaml")
    edges_baseline = load_config(Pix2PixHDConfig, ROOT / "configs" / "pix2pixhd_edges.yaml")
    assert vid2vid_inputs(edges) == pix2pixhd_inputs(edges_baseline) == \
        "pictures from <phase>_A (label_nc 0), instance maps no"
    labels = config("model.use_instance=true")
    labels_baseline = load_config(Pix2PixHDConfig, None, ["model.label_nc=6", "model.use_instance=true"])
    assert vid2vid_inputs(labels) == pix2pixhd_inputs(labels_baseline)
    assert pix2pixhd_inputs(labels_baseline) == "label ids from <phase>_A (label_nc 6), instance maps yes"
    assert vid2vid_inputs(edges) != pix2pixhd_inputs(labels_baseline)
    pose = load_config(Vid2VidConfig, ROOT / "configs" / "vid2vid_pose2body_256.yaml")  # inputs no baseline takes
    assert vid2vid_inputs(pose).startswith("OpenPose poses, ")
    for kind, words in (("densepose", "DensePose IUV images, "), ("face", "face landmarks drawn as edge maps, ")):
        assert vid2vid_inputs(dataclasses.replace(pose, data=dataclasses.replace(pose.data, input=kind))) \
            .startswith(words)


def test_the_motion_ratio_tells_a_frozen_video_from_one_that_moves():
    from vid2vid.evaluation import score_videos, scores_table

    video = demo_video(0, 2, 5, 48)
    real = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    sequence = {"image": real, "flow": torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)}
    scores = score_videos({"real": lambda s: s["image"], "frozen": lambda s: s["image"][:1].expand_as(s["image"])},
                          [sequence])
    assert scores["real"].motion_ratio == pytest.approx(1.0) and scores["frozen"].motion_ratio == 0
    assert scores["frozen"].warping_error > scores["real"].warping_error
    table = scores_table(scores, {"iterations": {"real": "12"}})
    assert "| method | PSNR (dB) | SSIM | warping error | motion ratio | iterations |" in table
    assert "| frozen |" in table and "| 0.00 |" in table and "| 12 |" in table


def test_warping_error_tells_a_steady_video_from_a_flickering_one():
    from vid2vid.evaluation import temporal_warping_error

    video = demo_video(0, 2, 5, 48)
    real = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)
    steady_sum, trusted = temporal_warping_error(real, real, flows)
    flicker = real + torch.tensor([0.2, -0.2] * 2 + [0.2]).view(5, 1, 1, 1)
    flicker_sum, _ = temporal_warping_error(flicker, real, flows)
    assert trusted > 0.8 * 4 * 48 * 48
    assert steady_sum / trusted < 1.0 and flicker_sum / trusted > 20


def test_looped_demo_objects_leave_come_back_and_keep_an_exact_flow():
    video = demo_video(1, 0, 120, 32, loop=True)
    instances = torch.from_numpy(video["instance"])
    assert 1 in instances and instances[instances < 1000].unique().tolist() == [1]  # the background is stuff
    returns = 0
    for object_id in instances[instances >= 1000].unique():
        seen = (instances == object_id).flatten(1).any(1).int()
        returns += int((seen[1:] - seen[:-1] == 1).sum())  # from out of view to in view
    assert returns >= 2
    images = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float()
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)
    error = (warp(images[:-1], flows) - images[1:]).abs().mean(1)
    assert error.median() < 0.5 and (error < 2).float().mean() > 0.9  # no jump at the seam: it is out of view
    # a shape that comes back looks as it did: the real video's own colour drift is small
    from vid2vid.evaluation import colour_drift

    real_drift = colour_drift(images / 127.5 - 1, instances[:, None].long())
    assert real_drift and max(real_drift.values()) < 1.0


def test_colour_drift_is_ciede2000_from_the_first_look_on_eroded_masks():
    import kornia

    from vid2vid.evaluation import colour_drift, object_colours

    # Sharma, Wu and Dalal's CIEDE2000 test data, pair 7: (50, 0, 0) and (50, -1, 2) are 2.3669 apart
    lab = torch.tensor([[50.0, 0.0, 0.0], [50.0, -1.0, 2.0], [30.0, 40.0, 10.0]]).view(3, 3, 1, 1)
    rgb = kornia.color.lab_to_rgb(lab) * 2 - 1  # (3 colours, 3, 1, 1)
    frames = torch.zeros(5, 3, 12, 12)
    instances = torch.zeros(5, 1, 12, 12, dtype=torch.int64)
    instances[:, :, 2:8, 2:8] = 2001  # 6x6: 16 pixels after erosion
    instances[:, :, 9:, :] = 7  # stuff: not an object
    frames[0] = rgb[0]
    frames[1:] = rgb[1]
    frames[:, :, 2:3, 2:8] = rgb[2]  # the outline's colour is eroded away
    frames[3, :, 2:8, 2:8] = rgb[2]
    instances[4, :, 2:8, 5:8] = 0  # 6x3: too small on frame 4
    assert sorted(object_colours(frames, instances)[2001]) == [0, 1, 2, 3]
    # frames 1, 2, 3: 2.37, 2.37 and far; the median
    assert colour_drift(frames, instances) == {2001: pytest.approx(2.3669, abs=2e-3)}
    assert colour_drift(frames[:1], instances[:1]) == {}  # seen once: no drift


def test_long_range_warping_error_and_the_drift_columns():
    from vid2vid.evaluation import long_range_warping_error, score_videos, scores_table
    from vid2vid.models.temporal import flows_to_first

    constant = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(4, 2, 8, 8)
    torch.testing.assert_close(flows_to_first(constant), constant * torch.arange(1.0, 5).view(4, 1, 1, 1))
    video = demo_video(1, 1, 60, 32, loop=True)
    real = torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    flows = torch.from_numpy(video["flow"]).permute(0, 3, 1, 2)
    error, trusted = long_range_warping_error(real, real, flows)
    assert trusted > 0.1 * 59 * 32 * 32 and error / trusted < 1.5
    frozen_error, _ = long_range_warping_error(real[:1].expand_as(real), real, flows)
    assert frozen_error / trusted > 5
    sequence = {"image": real, "flow": flows, "instance": torch.from_numpy(video["instance"]).long()[:, None]}
    redder = torch.linspace(0, 0.3, 60).view(60, 1, 1, 1) * torch.tensor([1.0, -1, -1]).view(1, 3, 1, 1)
    makers = {"real": lambda s: s["image"], "drifting": lambda s: s["image"] + redder}
    scores = score_videos(makers, [sequence], long_range=True)
    assert scores["real"].excess_drift == 0 and scores["real"].colour_drift < 1
    assert scores["drifting"].excess_drift > 3 and scores["drifting"].long_range_warping_error > 5
    table = scores_table(scores)
    assert "| long-range warping error | colour drift | excess drift |" in table
    short = score_videos(makers, [sequence])  # without long_range: neither computed nor shown
    assert "colour drift" not in scores_table(short) and short["real"].colour_drift != short["real"].colour_drift


def test_sigterm_stops_training_with_a_checkpoint_and_still_renders(tmp_path, demo):
    import signal
    import time

    out = tmp_path / "run"
    trainer = subprocess.Popen([sys.executable, "scripts/train_vid2vid.py", "--output", str(out), "--quiet",
                                f"data.root={demo}", *TINY, "train.epochs=1000", "train.checkpoint_every=1000"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    losses = out / "losses.jsonl"
    deadline = time.monotonic() + 240
    while not (losses.exists() and losses.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    trainer.send_signal(signal.SIGTERM)
    stdout, stderr = trainer.communicate(timeout=300)
    assert trainer.returncode == 0, stderr
    assert "(on SIGTERM; continue with --resume)" in stdout and "rendered 10 frames" in stdout, stdout
    iteration = int(stdout.split("stopped at iteration ")[1].split()[0])
    assert torch.load(out / "checkpoints" / "latest.pt", weights_only=True)["iteration"] == iteration >= 2


def test_a_time_budget_stops_training_after_the_iteration_that_spends_it(tmp_path, demo):
    result = run_script("scripts/train_vid2vid.py", "--output", str(tmp_path / "run"), "--quiet",
                        f"data.root={demo}", *TINY, "train.epochs=1000", "train.max_minutes=0.0001")
    assert result.returncode == 0, result.stderr
    assert "stopped at iteration 1 (the budget of train.max_minutes=0.0001)" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, demo):
    """A tiny pix2pixHD run trained on the demo's frames (the sequence layout read frame by frame)."""
    out = tmp_path_factory.mktemp("hd") / "hd"
    result = run_script("scripts/train_pix2pixhd.py", "--output", str(out), "--max-iters", "1", "--quiet",
                        f"data.root={demo}", "model.ngf=8", "model.n_blocks_global=1", "model.use_features=false",
                        "model.n_downsample_global=2")
    assert result.returncode == 0, result.stderr
    return out


def test_first_frames_from_a_pix2pixhd_run(demo, baseline):
    from vid2vid.inference import load_run
    from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig

    cfg = config("model.first_frame=pix2pixhd", f"model.first_frame_run={baseline}", "model.training_history=real")
    task, batch = clip_batch(cfg, demo)
    losses = task.train_step(batch, _ctx(cfg, task))  # from the real first frames on
    assert "F_flow" in losses
    hd = load_run(baseline, Pix2PixHDConfig, Pix2PixHD.for_inference, torch.device("cpu"))[0]
    frames = task.synthesize(batch)
    assert frames.shape == batch["image"].shape
    torch.testing.assert_close(frames[:, 0], hd.synthesize({k: batch[k][:, 0] for k in ("label", "instance")}))
    render = FrameByFrame(task)
    torch.testing.assert_close(render({k: batch[k][:1, 0] for k in ("label", "instance")}), frames[:1, 0])
    with pytest.raises(ValueError, match="needs model.first_frame_run"):
        config("model.first_frame=pix2pixhd")
    with pytest.raises(ValueError, match="set model.training_history=real"):
        config("model.first_frame=pix2pixhd", f"model.first_frame_run={baseline}")
    other = Vid2Vid(config("model.first_frame=pix2pixhd", f"model.first_frame_run={baseline}", "model.label_nc=7",
                           "model.training_history=real"))
    with pytest.raises(ValueError, match="must take this model.s inputs: the same label maps"):
        other.first_frame_generator


def test_g_can_start_from_a_pix2pixhd_run(demo, baseline):
    from vid2vid.inference import load_run
    from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig

    task, batch = clip_batch(config("model.n_blocks=1", f"model.init_from_pix2pixhd={baseline}"), demo)
    hd = load_run(baseline, Pix2PixHDConfig, Pix2PixHD.for_inference, torch.device("cpu"))[0]
    # its first frames are the pix2pixHD run's from the first iteration on
    torch.testing.assert_close(task.synthesize(batch)[:, 0],
                               hd.synthesize({k: batch[k][:, 0] for k in ("label", "instance")}))
    with pytest.raises(ValueError, match=r"init_from_pix2pixhd: .* model.1.weight is \(8, 21, 7, 7\), .* \(16, 21"):
        Vid2Vid(config("model.n_blocks=1", "model.ngf=16", f"model.init_from_pix2pixhd={baseline}"))
    with pytest.raises(ValueError, match="do not match this generator's image path"):
        Vid2Vid(config("model.n_blocks=3", f"model.init_from_pix2pixhd={baseline}"))


def test_pix2pixhd_renders_a_sequence_dataset_with_its_real_frames(baseline, demo, tmp_path):
    result = run_script("scripts/test_pix2pixhd.py", "--run", str(baseline), "--input", str(demo), "--output",
                        str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "rendered 10 inputs" in result.stdout
    names = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert all(n.startswith("seq00_") for n in names)  # the sequence in every name: no frame overwrites another
    for kind in ("input_label", "synthesized_image", "real_image"):  # the real frames beside the made ones
        assert sum(n.endswith(f"_{kind}.png") for n in names) == 10, names


def test_evaluate_script_compares_vid2vid_with_a_pix2pixhd_baseline(trained, demo, baseline, tmp_path):
    result = run_script("scripts/evaluate_vid2vid.py", "--checkpoint", str(trained), "--dataset", str(demo),
                        "--pix2pixhd", str(baseline), "--json", str(tmp_path / "scores.json"))
    assert result.returncode == 0, result.stderr
    assert "| vid2vid |" in result.stdout and "| pix2pixHD (frame by frame) |" in result.stdout
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["real video"]["ssim"] == pytest.approx(1.0) and scores["real video"]["warping_error"] < 1.0
    assert scores["vid2vid"]["frames"] == 10 and 0 < scores["vid2vid"]["psnr"] < 60
    shutil.copytree(demo, tmp_path / "noflow")
    shutil.rmtree(tmp_path / "noflow" / "test_flow")
    result = run_script("scripts/evaluate_vid2vid.py", "--checkpoint", str(trained), "--dataset",
                        str(tmp_path / "noflow"), "--json", str(tmp_path / "dis.json"))
    assert result.returncode == 0 and "| vid2vid |" in result.stdout, result.stderr  # DIS flow, no weights
    dis_scores = json.loads((tmp_path / "dis.json").read_text())
    # the flow only scores the frames; they agree up to float rounding, which the recurrent frames can carry
    # to ~0.01 dB between two processes (seen once in CI, cause not found: see the session note of 2026-12-02)
    assert dis_scores["vid2vid"]["psnr"] == pytest.approx(scores["vid2vid"]["psnr"], abs=0.05)
    assert dis_scores["real video"]["warping_error"] < 3.0
    import flownet

    torch.save({"state_dict": flownet.FlowNet2S().state_dict()}, tmp_path / "s.pth.tar")
    result = run_script("scripts/evaluate_vid2vid.py", "--checkpoint", str(trained), "--dataset",
                        str(tmp_path / "noflow"), "--flownet-checkpoint", str(tmp_path / "s.pth.tar"))
    assert result.returncode == 0 and "| vid2vid |" in result.stdout, result.stderr  # FlowNet2's flow instead


def test_evaluate_script_scores_drift_on_the_long_demo(trained, tmp_path):
    result = run_script("scripts/evaluate_vid2vid.py", "--checkpoint", str(trained), "--long-demo", "--frames",
                        "40", "--sequences", "1", "--dataset", str(tmp_path / "long"), "--json",
                        str(tmp_path / "scores.json"))
    assert result.returncode == 0, result.stderr
    assert "| long-range warping error | colour drift | excess drift |" in result.stdout
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["vid2vid"]["frames"] == 40 and scores["real video"]["excess_drift"] == 0
    assert scores["vid2vid"]["colour_drift"] > scores["real video"]["colour_drift"]  # two iterations of training
    assert len(list((tmp_path / "long" / "test_A" / "seq00").iterdir())) == 40


def test_appearance_memory_keeps_each_objects_first_look():
    from vid2vid.models.appearance import AppearanceMemory

    memory = AppearanceMemory(capacity=2)
    tracks = torch.ones(1, 1, 12, 12, dtype=torch.int64)
    tracks[..., 2:8, 2:8] = 2000
    first = torch.zeros(1, 3, 12, 12)
    first[..., 2:8, 2:8] = 0.5
    torch.testing.assert_close(memory(first, tracks), first)  # the first look is written, not changed
    later = first.clone()
    later[..., 2:8, 2:8] = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(0)) * 0.2 - 0.3  # drifted
    anchored = memory(later, tracks)
    inside = tracks[0, 0] == 2000
    assert float(anchored[0][:, inside].mean()) == pytest.approx(0.5, abs=0.01)  # its mean is the first look's
    shift = (anchored - later)[0][:, inside]
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))  # the detail is G's, moved as a whole
    torch.testing.assert_close(anchored[0][:, ~inside], later[0][:, ~inside])  # nothing else changes
    sliver = tracks.clone()
    sliver[..., 2:8, 2:8], sliver[..., 0, :] = 1, 3000  # one row: nothing to read once eroded
    assert torch.equal(memory(later, sliver), later) and 3000 not in memory.colours
    for track in (4000, 5000):  # two more objects: the one unseen the longest (2000) is forgotten
        others = torch.ones_like(tracks)
        others[..., 2:8, 2:8] = track
        memory(first, others)
    assert list(memory.colours) == [4000, 5000] and memory.forgotten == 1
    with pytest.raises(ValueError, match="one frame"):
        memory(torch.zeros(2, 3, 12, 12), torch.zeros(2, 1, 12, 12))


def test_the_appearance_loss_ties_each_objects_colours_to_its_first_look_wherever_g_draws_them():
    from vid2vid.models.appearance import appearance_loss, first_looks

    def loss(fake, real, tracks):  # fake: the clip's last frames made
        return appearance_loss(fake, tracks[:, -fake.shape[1]:], first_looks(real, tracks))

    rng = torch.Generator().manual_seed(0)
    tracks = torch.ones(1, 3, 1, 12, 12, dtype=torch.int64)
    tracks[..., 2:9, 2:9] = 2000
    real = torch.rand(1, 3, 3, 12, 12, generator=rng) * 2 - 1
    real[:, 1:] = real[:, :1]  # the object keeps its look in the real clip
    fake = real[:, 1:].clone().requires_grad_()
    assert float(loss(fake, real, tracks).detach()) == 0
    read = torch.zeros(12, 12, dtype=torch.bool)
    read[3:8, 3:8] = True  # what is read of the object: its mask eroded by a pixel
    shuffled = fake.detach().clone()
    pixels = shuffled[0, 1][:, read]
    shuffled[0, 1][:, read] = pixels[:, torch.randperm(pixels.shape[1], generator=rng)]
    assert float(loss(shuffled, real, tracks)) < 1e-6  # the same colours in other places: its look
    drifted = fake.detach().clone()
    drifted[0, 1][:, read] += 0.2  # the second frame made drifts
    assert float(loss(drifted, real, tracks)) == pytest.approx(0.1, abs=1e-5)  # on half of the frames
    moved = real.clone()
    moved[:, 2][:, :, read] -= 0.5  # the real object changes on the last frame; a G that follows it ...
    assert float(loss(moved[:, 1:], moved, tracks)) == pytest.approx(0.25, abs=1e-5)  # ... drifts
    loss(fake * 1.5, real, tracks).backward()
    assert fake.grad[0, 0][:, ~read].abs().sum() == 0 and fake.grad[0, 0][:, read].abs().sum() > 0
    late = tracks.clone()
    late[:, :2] = 1  # an object that enters on the last frame: its first look is that frame's real pixels
    assert float(loss(moved[:, 1:], moved, late)) == 0
    assert float(loss(fake, real, torch.ones_like(tracks)).detach()) == 0  # no objects: nothing to tie


def test_the_appearance_loss_trains_the_clips_on_tracks_or_on_per_frame_ids_linked_along_the_flow(demo):
    losses = {}
    for name, overrides in (("tracks", ["data.instance_tracks=true"]), ("per-frame ids", []), ("off", [])):
        torch.manual_seed(0)
        cfg = config("model.lambda_appearance=10" if name != "off" else "model.lambda_appearance=0", *overrides)
        task, batch = clip_batch(cfg, demo)
        if name == "per-frame ids":
            batch["instance"] = torch.stack([shuffled_ids(sample[:, 0], seed)
                                             for seed, sample in enumerate(batch["instance"])])[:, :, None]
        losses[name] = task.train_step(batch, _ctx(cfg, task))
    assert losses["tracks"]["G_appearance"] > 0 and "G_appearance" not in losses["off"]
    # the shapes renumbered on every frame, linked into tracks along the reference flow: the same objects
    torch.testing.assert_close(losses["per-frame ids"]["G_appearance"], losses["tracks"]["G_appearance"])
    cfg = config("model.lambda_appearance=10", "schedule.image_epochs=1")  # single frames: each its own look
    task = Vid2Vid(cfg)
    data = sequence_dataset(cfg, demo, "train", multiple=task.multiple)
    single = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    assert single["image"].shape[1] == 1 and task.train_step(single, _ctx(cfg, task))["G_appearance"] > 0


def test_rendering_with_the_memory_keeps_objects_from_drifting(trained, demo, tmp_path):
    from vid2vid.data.tracks import OBJECT_MIN_PIXELS, eroded_mask, object_ids
    from vid2vid.evaluation import colour_drift, vid2vid_frames
    from vid2vid.inference import load_run

    model, config, _ = load_run(trained, Vid2VidConfig, Vid2Vid.for_inference, torch.device("cpu"))
    assert config.model.appearance_memory  # the demo's config
    video = demo_video(1, 0, 40, 32, loop=True)
    sequence = {"label": torch.from_numpy(video["label"]).long()[:, None],
                "instance": torch.from_numpy(video["instance"]).long()[:, None],
                "image": torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1}
    with_memory = vid2vid_frames(model)(sequence)
    model.config = dataclasses.replace(config, model=dataclasses.replace(config.model, appearance_memory=False))
    without = vid2vid_frames(model)(sequence)
    # what the memory guarantees: every object's mean colour, wherever it is read, is its first look's
    for track in object_ids(sequence["instance"]):
        inside = eroded_mask(sequence["instance"], track)[:, 0]
        read = [t for t in range(len(inside)) if inside[t].sum() >= OBJECT_MIN_PIXELS]
        means = torch.stack([with_memory[t][:, inside[t]].mean(1) for t in read])
        assert len(read) > 5 and (means - means[0]).abs().max() < 0.02, track  # 0.02: the odd clamped pixel
    # and so the drift measure (median CIELAB colours) falls, though not to 0: G's pattern inside each object
    # still changes (docs/vid2vid.md, "Long videos"); two iterations of training drift a lot without it
    drifts = [colour_drift(frames, sequence["instance"]) for frames in (with_memory, without)]
    assert drifts[0].keys() == drifts[1].keys() and sum(drifts[0].values()) < 0.75 * sum(drifts[1].values())
    outputs = []
    for extra in ([], ["--reset-memory-every", "1"]):  # forgotten on every frame: no memory at all
        result = run_script("scripts/render_vid2vid.py", "--checkpoint", str(trained), "--input",
                            str(demo / "test_A" / "seq00"), "--instances", str(demo / "test_inst" / "seq00"),
                            "--ground-truth", str(demo / "test_B" / "seq00"), "--output", str(tmp_path / str(extra)),
                            "--quiet", *extra)
        assert result.returncode == 0, result.stderr
        written = sorted((tmp_path / str(extra) / "frames").glob("*.png"))
        outputs.append(np.stack([np.asarray(Image.open(p)) for p in written]))
    assert not np.array_equal(outputs[0], outputs[1])


def test_a_warm_start_makes_the_first_frame_from_a_still_scene(trained):
    from vid2vid.data.tracks import OBJECT_MIN_PIXELS, eroded_mask, object_ids
    from vid2vid.inference import load_run

    model, config, _ = load_run(trained, Vid2VidConfig, Vid2Vid.for_inference, torch.device("cpu"))
    assert config.model.warm_start == 3  # the demo's config
    video = demo_video(3, 0, 4, 32)
    sequence = {"label": torch.from_numpy(video["label"]).long()[:, None],
                "instance": torch.from_numpy(video["instance"]).long()[:, None],
                "image": torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1}
    item = lambda t: {k: v[t:t + 1] for k, v in sequence.items()}  # noqa: E731

    def frames(warm_start, memory, times):
        model.config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, warm_start=warm_start, appearance_memory=memory))
        render = FrameByFrame(model)
        return render, torch.cat([render(item(t)) for t in times])

    # without the memory: frame 0 shown three more times before the sequence, and those frames dropped
    cold = frames(0, False, [0, 0, 0, 0, 1, 2])[1][3:]
    torch.testing.assert_close(frames(3, False, [0, 1, 2])[1], cold)
    assert not torch.equal(frames(0, False, [0, 1, 2])[1][0], cold[0])
    # with the memory, the first look it keeps is the warm first frame's
    render, warm = frames(3, True, [0, 1, 2, 3])
    seen = [track for track in object_ids(sequence["instance"][:1])
            if eroded_mask(sequence["instance"][:1], track).sum() >= OBJECT_MIN_PIXELS]
    assert seen
    for track in seen:
        inside = eroded_mask(sequence["instance"][:1], track)[0, 0]
        torch.testing.assert_close(render.memory.colours[track], warm[0][:, inside].mean(1))
    render.reset()  # a new sequence warms up again
    torch.testing.assert_close(torch.cat([render(item(t)) for t in range(4)]), warm)
    model.config = config
    for bad in (["model.warm_start=-1"], ["model.warm_start=2", "model.history_padding=zeros"]):
        with pytest.raises(ConfigError, match="warm_start"):
            load_config(Vid2VidConfig, None, TINY + bad)


def test_the_memory_links_per_frame_ids_along_gs_flow(trained):
    from vid2vid.data.tracks import object_ids
    from vid2vid.evaluation import colour_drift, score_videos, vid2vid_frames
    from vid2vid.inference import load_run

    model, config, _ = load_run(trained, Vid2VidConfig, Vid2Vid.for_inference, torch.device("cpu"))
    assert config.data.instance_tracks  # the demo's ids are tracks
    video = demo_video(2, 0, 12, 32)
    tracks = torch.from_numpy(video["instance"]).long()[:, None]
    sequence = {"label": torch.from_numpy(video["label"]).long()[:, None], "instance": tracks,
                "image": torch.from_numpy(video["image"]).permute(0, 3, 1, 2).float() / 127.5 - 1,
                "flow": torch.from_numpy(video["flow"]).permute(0, 3, 1, 2).float()}
    renumbered = {**sequence, "instance": shuffled_ids(tracks, 2)}
    assert len(object_ids(renumbered["instance"])) > 3 * len(object_ids(tracks))
    as_tracks = vid2vid_frames(model)(sequence)
    assert not torch.equal(vid2vid_frames(model)(renumbered), as_tracks)  # per-frame ids taken for tracks
    model.config = dataclasses.replace(config, data=dataclasses.replace(config.data, instance_tracks=False))
    torch.testing.assert_close(vid2vid_frames(model)(renumbered), as_tracks)  # linked: the same objects
    # the drift measure links them along the real flow
    real = {"real": lambda s: s["image"]}
    linked = score_videos(real, [renumbered], long_range=True, instance_tracks=False)["real"]
    assert linked.colour_drift == pytest.approx(score_videos(real, [sequence], long_range=True)["real"].colour_drift)
    assert linked.colour_drift == pytest.approx(sum(colour_drift(sequence["image"], tracks).values())
                                                / len(colour_drift(sequence["image"], tracks)))


def test_two_process_ddp_keeps_parameters_identical(tmp_path, demo):
    import os

    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "tests/ddp_worker.py", "vid2vid", str(demo), str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "ddp_report.json").read_text())
    assert report["world_size"] == 2 and report["identical"] and report["changed"]


def test_mixed_precision_training_step(demo):
    cfg = config("train.amp=bf16")
    task, batch = clip_batch(cfg, demo)
    losses = task.train_step(batch, _ctx(cfg, task))
    assert all(torch.isfinite(v) for v in losses.values()) and "F_warp" in losses


def test_resume_is_exact(tmp_path, demo):
    args = ["--quiet", f"data.root={demo}", *TINY, "schedule.n_frames_start=4", "schedule.niter_step=1",
            "schedule.clip_warmup=3", "train.batch_size=1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run_script("scripts/train_vid2vid.py", "--output", str(straight), "--max-iters", "4", *args).returncode == 0
    assert run_script("scripts/train_vid2vid.py", "--output", str(split), "--max-iters", "2", *args).returncode == 0
    result = run_script("scripts/train_vid2vid.py", "--output", str(split), "--max-iters", "4", "--resume", *args)
    assert result.returncode == 0, result.stderr
    records = [[json.loads(line) for line in open(run / "losses.jsonl")] for run in (straight, split)]
    assert records[0] == records[1]  # the clips grow from 4 to 7 frames and the warm-up ends across the resume point
