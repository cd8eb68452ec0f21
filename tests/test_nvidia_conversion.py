"""NVIDIA's pix2pixHD and vid2vid checkpoints converted into runs: small seeded networks in the
originals' layouts (tests/nvidia_layouts.py), rendered by this project's scripts, must match
what the originals' test.py computes to within one grey level."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nvidia_layouts as nv
from vid2vid.config import ConfigError
from vid2vid.data.images import DatasetError
from vid2vid.nvidia import convert_checkpoint
from vid2vid.nvidia.flags import parse_flags
from vid2vid.serialization import CheckpointError

ROOT = Path(__file__).resolve().parents[1]


def cityscapes_like(root: Path, phase: str, names: list[str], size: tuple[int, int], seed: int = 0):
    """<phase>_label/ (uint8 ids < 35) and <phase>_inst/ (16-bit class*1000+k ids, Cityscapes' encoding)."""
    rng = np.random.default_rng(seed)
    w, h = size
    (root / f"{phase}_label").mkdir(parents=True)
    (root / f"{phase}_inst").mkdir(parents=True)
    for name in names:
        # blocky regions, so that the nearest-neighbour resize and the edges both matter
        label = np.kron(rng.integers(0, 35, (h // 4, w // 4)), np.ones((4, 4), dtype=np.int64)).astype(np.uint8)
        label[:, : w // 3] = rng.integers(0, 35)
        inst = label.astype(np.int32) * 1000 + np.kron(rng.integers(0, 3, (h // 8, w // 8)), np.ones((8, 8), dtype=np.int64))
        Image.fromarray(label).save(root / f"{phase}_label" / f"{name}_gtFine_labelIds.png")
        Image.fromarray(inst.astype(np.uint16)).save(root / f"{phase}_inst" / f"{name}_gtFine_instanceIds.png")


def nvidia_pix2pixhd_output(net, label_file: Path, inst_file: Path, width: int | None) -> np.ndarray:
    """pix2pixHD's test.py on one label map: scale_width with NEAREST (width None: as stored), one-hot
    of 35 classes, the instance edges, G, util.tensor2im."""
    label, inst = Image.open(label_file), Image.open(inst_file)
    if width is not None:
        size = (width, int(width * label.size[1] / label.size[0]))
        label, inst = label.resize(size, Image.NEAREST), inst.resize(size, Image.NEAREST)
    ids = torch.from_numpy(np.array(label).astype(np.int64))[None, None]
    inst_ids = torch.from_numpy(np.array(inst).astype(np.int64))[None, None]
    one_hot = torch.zeros(1, 35, *ids.shape[-2:]).scatter_(1, ids, 1.0)
    x = torch.cat((one_hot, nv.get_edges(inst_ids)), 1)
    with torch.no_grad():
        return nv.tensor2im(net(x)[0])


def run_test_pix2pixhd(run: Path, data: Path, out: Path):
    result = subprocess.run([sys.executable, "scripts/test_pix2pixhd.py", "--run", str(run), "--input", str(data),
                             "--output", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("netG", ["local", "global"])
def test_pix2pixhd_renders_as_the_original(netG, tmp_path):
    # label2city 1024p (local enhancer, --resize_or_crop none) and 512p (global, scale_width to loadSize)
    # in miniature: same layouts, a few channels
    if netG == "local":
        net = nv.Local(36, 3, ngf=4, n_down=2, n_blocks=2, n_local=1, n_blocks_local=1)
        flags = ["--name", "label2city_1024p", "--netG", "local", "--ngf", "4", "--n_downsample_global", "2",
                 "--n_blocks_global", "2", "--n_blocks_local", "1", "--resize_or_crop", "none"]
        size, width = (64, 32), None
    else:
        net = nv.Global(36, 3, ngf=4, n_down=2, n_blocks=2)
        flags = ["--name", "label2city_512p", "--loadSize", "64", "--ngf", "4", "--n_downsample_global", "2",
                 "--n_blocks_global", "2"]
        size, width = (128, 64), 64
    nv.seeded(net, 1)
    checkpoint = tmp_path / "checkpoints" / "label2city"
    checkpoint.mkdir(parents=True)
    torch.save(net.state_dict(), checkpoint / "latest_net_G.pth")
    data = tmp_path / "cityscapes"
    cityscapes_like(data, "test", ["frankfurt_000000_000294", "lindau_000001_000019"], size)

    summary = convert_checkpoint(checkpoint, tmp_path / "run", flags)
    assert f"pix2pixHD {netG} generator" in summary and "ignored flags: --name" in summary
    run_test_pix2pixhd(tmp_path / "run", data, tmp_path / "out")
    for stem in ("frankfurt_000000_000294", "lindau_000001_000019"):
        expected = nvidia_pix2pixhd_output(net, data / "test_label" / f"{stem}_gtFine_labelIds.png",
                                           data / "test_inst" / f"{stem}_gtFine_instanceIds.png", width)
        ours = np.array(Image.open(tmp_path / "out" / "images" / f"{stem}_gtFine_labelIds_synthesized_image.png"))
        assert ours.shape == expected.shape
        assert np.abs(ours.astype(int) - expected.astype(int)).max() <= 1
        assert expected.std() > 5  # a picture, not a flat tanh-saturated field


def test_pix2pixhd_structure_comes_from_the_weights(tmp_path):
    net = nv.seeded(nv.Local(36, 3, ngf=4, n_down=2, n_blocks=3, n_local=1, n_blocks_local=2), 0)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    convert_checkpoint(tmp_path, tmp_path / "run", ["--resize_or_crop", "none"])
    text = (tmp_path / "run" / "config.yaml").read_text()
    for line in ("netG: local", "ngf: 4", "n_downsample_global: 2", "n_blocks_global: 3", "n_blocks_local: 2",
                 "preprocess: none", "flip: false"):
        assert line in text, line


def test_flags_that_disagree_with_the_weights_name_the_tensor_and_both_shapes(tmp_path):
    net = nv.seeded(nv.Global(36, 3, ngf=4, n_down=2, n_blocks=2), 0)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match=r"latest_net_G.pth: tensor model.1.weight is \(4, 36, 7, 7\), but the "
                                              r"flags make it \(8, 36, 7, 7\) \(--label_nc 35, instance edges"):
        convert_checkpoint(tmp_path, tmp_path / "run", ["--ngf", "8"])
    with pytest.raises(CheckpointError, match=r"model.1.weight is \(4, 36, 7, 7\), but the flags make it "
                                              r"\(4, 35, 7, 7\) \(--label_nc 35, --no_instance"):
        convert_checkpoint(tmp_path, tmp_path / "run", ["--no_instance"])


def test_bad_checkpoint_folders_get_messages_that_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"empty has no latest_net_G.pth \(pix2pixHD\) or latest_net_G0.pth"):
        (tmp_path / "empty").mkdir()
        convert_checkpoint(tmp_path / "empty", tmp_path / "run", [])
    other = tmp_path / "other"
    other.mkdir()
    (other / "10_net_G.pth").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"it has 10_net_G.pth \(pass --which_epoch\)"):
        convert_checkpoint(other, tmp_path / "run", [])
    broken = tmp_path / "broken"
    broken.mkdir()
    torch.save(nv.Global(36, 3, 4, 2, 1).state_dict(), broken / "latest_net_G.pth")
    data = (broken / "latest_net_G.pth").read_bytes()
    (broken / "latest_net_G.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"broken/latest_net_G.pth is not a readable PyTorch checkpoint"):
        convert_checkpoint(broken, tmp_path / "run", [])
    (broken / "latest_net_G.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken/latest_net_G.pth is not a readable PyTorch checkpoint"):
        convert_checkpoint(broken, tmp_path / "run", [])


def test_old_instance_norm_statistics_are_dropped_with_one_warning(tmp_path):
    net = nv.seeded(nv.Global(36, 3, ngf=4, n_down=2, n_blocks=1), 0)
    state = dict(net.state_dict())
    state["model.2.running_mean"], state["model.2.running_var"] = torch.zeros(4), torch.ones(4)
    torch.save(state, tmp_path / "latest_net_G.pth")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_checkpoint(tmp_path, tmp_path / "run", ["--resize_or_crop", "none"])
    messages = [str(w.message) for w in caught if "running statistics" in str(w.message)]
    assert len(messages) == 1 and "model.2.running_mean, model.2.running_var" in messages[0]


def test_original_flags_keep_the_originals_defaults():
    pix = parse_flags("pix2pixhd", ["--name", "x", "--netG", "local", "--ngf", "32", "--gpu_ids", "0,1"])
    assert (pix.netG, pix.ngf, pix.n_downsample_global, pix.label_nc, pix.norm) == ("local", 32, 4, 35, "instance")
    assert pix.given == {"netG", "ngf"} and pix.ignored == ("--name", "x", "--gpu_ids", "0,1")
    vid = parse_flags("vid2vid", ["--use_instance", "--fg", "--n_scales_spatial", "3"])
    assert (vid.ngf, vid.n_downsample_G, vid.norm, vid.use_instance, vid.fg, vid.n_scales_spatial, vid.label_nc) == \
        (128, 3, "batch", True, True, 3, 0)  # label_nc 0: the street scripts pass --label_nc 35
    with pytest.raises(ValueError, match="--ngf"):
        parse_flags("vid2vid", ["--ngf", "many"])


def test_a_converted_run_fine_tunes_from_its_weights(tmp_path):
    net = nv.seeded(nv.Global(36, 3, ngf=4, n_down=2, n_blocks=1), 3)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    convert_checkpoint(tmp_path, tmp_path / "run", ["--resize_or_crop", "none", "--ngf", "4"])
    data = tmp_path / "data"
    cityscapes_like(data, "train", ["a", "b"], (32, 16))
    (data / "train_img").mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((16, 32, 3), 90, np.uint8)).save(data / "train_img" / f"{name}.png")
    result = subprocess.run([sys.executable, "scripts/train_pix2pixhd.py", "--config", str(tmp_path / "run" / "config.yaml"),
                             "--output", str(tmp_path / "tuned"), "--max-iters", "1", "--quiet", f"data.root={data}",
                             f"train.init_from={tmp_path / 'run'}", "model.ndf=4", "model.lambda_vgg=0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    tuned = torch.load(tmp_path / "tuned" / "checkpoints" / "latest.pt", weights_only=True)["networks"]["G"]
    # one Adam step of lr 2e-4 from the converted weights (a fresh start would differ by ~0.05)
    assert (tuned["model.1.weight"] - net.state_dict()["model.1.weight"]).abs().max() < 1e-3


def _parameters(*modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_published_parameter_counts():
    from vid2vid.models.generators import GlobalGenerator, LocalEnhancer
    from vid2vid.models.sequential import SequentialGenerator

    head = 64 * 3 * 49 + 3  # our LocalEnhancer's global_head (training G1 alone); NVIDIA's G has none
    assert _parameters(LocalEnhancer(36, 3, 32, 4, 9, 1, 3)) - head == 182_857_059  # pix2pixHD 1024p
    assert _parameters(GlobalGenerator(36, 3, 64, 4, 9)) == 182_546_755  # pix2pixHD 512p
    assert _parameters(LocalEnhancer(35, 3, 32, 4, 9, 1, 3)) - head == 182_852_355  # vid2vid's single-image 2048
    g = SequentialGenerator(36, 3, 3, ngf=128, n_downsampling=3, n_blocks=9, norm="batch_frame", use_foreground=True,
                            n_scales=3, n_blocks_local=3)  # vid2vid label2city 2048
    assert [_parameters(g.coarsest, g.heads[0]), _parameters(g.finer[0], g.heads[1]),
            _parameters(g.finer[1], g.heads[2])] == [411_335_241, 2_880_489, 859_641]
    pose = SequentialGenerator(6, 3, 3, ngf=128, n_downsampling=3, n_blocks=9, norm="batch_frame")  # pose2body 256p
    assert _parameters(pose) == 364_826_886


def label_sequence(root: Path, frames: int, size: tuple[int, int], seed: int = 0):
    """test_A/seq0000/ label ids and test_inst/seq0000/ 16-bit instance ids, a car (26) crossing."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.kron(rng.integers(0, 35, (h // 8, w // 8)), np.ones((8, 8), dtype=np.int64))
    for folder in ("test_A", "test_inst"):
        (root / folder / "seq0000").mkdir(parents=True)
    for t in range(frames):
        label = np.roll(base, 2 * t, axis=1).astype(np.uint8)
        label[h // 4: h // 2, 4 + 5 * t: 20 + 5 * t] = 26
        inst = label.astype(np.int32) * 1000 + (label == 26)
        Image.fromarray(label).save(root / "test_A" / "seq0000" / f"frame{t:03d}.png")
        Image.fromarray(inst.astype(np.uint16)).save(root / "test_inst" / "seq0000" / f"frame{t:03d}.png")


def vid2vid_checkpoint(folder: Path, n_down: int, n_scales: int, fg: bool) -> list:
    """Seeded G0 ... G{n_scales-1} of NVIDIA's layout (35 labels + edges, 3 frames, ngf 8, 2 blocks, 1 local
    block, batch norm) saved in ``folder`` as latest_net_G{s}.pth."""
    nets = nv.vid2vid_generators(36 * 3, 6, ngf=8, n_down=n_down, n_blocks=2, n_blocks_local=1, n_scales=n_scales,
                                 fg=fg, kind="batch")
    folder.mkdir()
    for s, net in enumerate(nets):
        torch.save(nv.seeded(net, 10 + s).state_dict(), folder / f"latest_net_G{s}.pth")
    return nets


def test_vid2vid_label2city_renders_as_the_original(tmp_path):
    # label2city 2048's layout in miniature: 3 scales, instance edges, the foreground branch, batch norm
    # with each frame's statistics, first frames by the single-image (local enhancer) generator
    checkpoint = tmp_path / "label2city_2048"
    nets = vid2vid_checkpoint(checkpoint, n_down=3, n_scales=3, fg=True)
    single = nv.seeded(nv.Local(35, 3, ngf=4, n_down=2, n_blocks=1, n_local=1, n_blocks_local=1), 20)
    (tmp_path / "single").mkdir()
    torch.save(single.state_dict(), tmp_path / "single" / "latest_net_G_128.pth")
    frames, size = 6, (128, 64)
    label_sequence(tmp_path / "data", frames, size)

    flags = ["--name", "label2city_2048", "--label_nc", "35", "--loadSize", "128", "--n_scales_spatial", "3",
             "--use_instance", "--fg", "--use_single_G", "--ngf", "8", "--n_blocks", "2", "--n_blocks_local", "1"]
    summary = convert_checkpoint(checkpoint, tmp_path / "run", flags, tmp_path / "single" / "latest_net_G_128.pth")
    assert "vid2vid generator of 3 scales" in summary
    result = subprocess.run([sys.executable, "scripts/render_vid2vid.py", "--checkpoint", str(tmp_path / "run"),
                             "--input", str(tmp_path / "data" / "test_A" / "seq0000"), "--instances",
                             str(tmp_path / "data" / "test_inst" / "seq0000"), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr

    ids = torch.stack([torch.from_numpy(np.array(Image.open(p)).astype(np.int64))
                       for p in sorted((tmp_path / "data" / "test_A" / "seq0000").iterdir())])[:, None]
    inst = torch.stack([torch.from_numpy(np.array(Image.open(p)).astype(np.int64))
                        for p in sorted((tmp_path / "data" / "test_inst" / "seq0000").iterdir())])[:, None]
    one_hot = torch.zeros(frames, 35, *ids.shape[-2:]).scatter_(1, ids, 1.0)
    with torch.no_grad():
        first = torch.cat([single(one_hot[t:t + 1]) for t in range(2)])  # the one-hot alone, no edges
    later = nv.vid2vid_test(nets, torch.cat((one_hot, nv.get_edges(inst)), 1), first, [26], 3, no_first_img=False)
    expected = [nv.tensor2im(f) for f in torch.cat((first, later))]
    for t in range(frames):
        ours = np.array(Image.open(tmp_path / "out" / "frames" / f"{t:05d}.png"))
        assert np.abs(ours.astype(int) - expected[t].astype(int)).max() <= 1, t
    assert np.std(expected[-1]) > 5


def test_bad_vid2vid_checkpoints_get_messages_that_name_the_file(tmp_path):
    folder = tmp_path / "vid"
    nets = vid2vid_checkpoint(folder, n_down=2, n_scales=2, fg=False)
    flags = ["--label_nc", "35", "--use_instance", "--ngf", "8", "--n_downsample_G", "2", "--n_blocks", "2",
             "--n_blocks_local", "1"]
    with pytest.raises(DatasetError, match=r"--use_single_G: pass --first-frame-generator .*latest_net_G_512.pth"):
        convert_checkpoint(folder, tmp_path / "run", [*flags, "--use_single_G"])
    with pytest.raises(CheckpointError, match=r"G0.model_res_flow.* has no place .*--n_blocks_local 1, --no_flow\)"):
        convert_checkpoint(folder, tmp_path / "run", [*flags, "--no_flow"])
    with pytest.raises(CheckpointError, match=r"vid/latest_net_G\*.pth: tensor G0.model_down_seg.1.weight is "
                                              r"\(8, 108, 7, 7\), but the flags make it \(8, 105, 7, 7\)"):
        convert_checkpoint(folder, tmp_path / "run", flags[:2] + flags[3:])  # without --use_instance: 35 a frame
    # the structure the flags leave out comes from the weights
    convert_checkpoint(folder, tmp_path / "run", ["--label_nc", "35", "--use_instance"])
    text = (tmp_path / "run" / "config.yaml").read_text()
    for line in ("ngf: 8", "n_downsample_G: 2", "n_blocks: 2", "n_blocks_local: 1", "n_scales_spatial: 2",
                 "norm: batch_frame", "history_per_level: true"):
        assert line in text, line

    # a pix2pixHD generator among vid2vid's, and the reverse
    torch.save(nv.Global(36, 3, 4, 2, 1).state_dict(), folder / "latest_net_G1.pth")
    with pytest.raises(CheckpointError, match="latest_net_G1.pth is not a vid2vid generator"):
        convert_checkpoint(folder, tmp_path / "run", flags)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    torch.save(nets[0].state_dict(), swapped / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="latest_net_G.pth is a vid2vid generator"):
        convert_checkpoint(swapped, tmp_path / "run", [])


def test_a_converted_vid2vid_run_fine_tunes_from_its_weights(tmp_path):
    nets = vid2vid_checkpoint(tmp_path / "vid", n_down=2, n_scales=2, fg=True)
    convert_checkpoint(tmp_path / "vid", tmp_path / "run", ["--label_nc", "35", "--use_instance", "--fg"])
    label_sequence(tmp_path / "seq", 4, (64, 32))
    data = tmp_path / "data"
    data.mkdir()
    for test, train in (("test_A", "train_A"), ("test_inst", "train_inst")):
        (tmp_path / "seq" / test).rename(data / train)
    (data / "train_B" / "seq0000").mkdir(parents=True)
    for t in range(4):
        Image.fromarray(np.full((32, 64, 3), 40 * t, np.uint8)).save(data / "train_B" / "seq0000" / f"frame{t:03d}.png")
    result = subprocess.run([sys.executable, "scripts/train_vid2vid.py", "--config", str(tmp_path / "run" / "config.yaml"),
                             "--output", str(tmp_path / "tuned"), "--max-iters", "1", "--quiet", f"data.root={data}",
                             f"train.init_from={tmp_path / 'run'}", "model.flow_source=none", "model.ndf=4",
                             "model.lambda_vgg=0", "schedule.n_frames_total=4"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    tuned = torch.load(tmp_path / "tuned" / "checkpoints" / "latest.pt", weights_only=True)["networks"]["G"]
    converted = nets[1].state_dict()["model_up_img.0.conv_block.1.weight"]  # G1's first block, through training
    assert (tuned["generator.finer.0.image_branch.0.block.0.weight"] - converted).abs().max() < 1e-3


def test_the_script_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "scripts/convert_nvidia_checkpoint.py", str(tmp_path / "nowhere"),
                             "--output", str(tmp_path / "run"), "--", "--ngf", "many"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "nowhere is not a folder" in result.stderr


@pytest.mark.parametrize("no_flow", [False, True], ids=["flow", "no flow"])
def test_vid2vid_without_first_images_renders_as_the_original(tmp_path, no_flow):
    # the start of NVIDIA's pose models (--no_first_img: a history of black frames, G's first frame drawn
    # without warping from the first n_frames_G inputs), here with pictures in and 2 scales; and a model
    # trained with --no_flow (no flow parts: every frame is the image G draws)
    nets = nv.vid2vid_generators(3 * 3, 6, ngf=8, n_down=2, n_blocks=2, n_blocks_local=1, n_scales=2, fg=False,
                                 kind="batch", no_flow=no_flow)
    (tmp_path / "ck").mkdir()
    for s, net in enumerate(nets):
        torch.save(nv.seeded(net, 30 + s).state_dict(), tmp_path / "ck" / f"latest_net_G{s}.pth")
    rng = np.random.default_rng(0)
    (tmp_path / "pictures").mkdir()
    base = np.kron(rng.integers(0, 256, (4, 8, 3)), np.ones((8, 8, 1), dtype=np.int64))
    for t in range(5):
        Image.fromarray(np.roll(base, 3 * t, axis=1).astype(np.uint8)).save(tmp_path / "pictures" / f"{t:03d}.png")
    flags = ["--label_nc", "0", "--input_nc", "3", "--loadSize", "64", "--n_scales_spatial", "2", "--no_first_img",
             "--ngf", "8", "--n_downsample_G", "2", "--n_blocks", "2", "--n_blocks_local", "1"]
    convert_checkpoint(tmp_path / "ck", tmp_path / "run", flags)  # --no_flow read from the weights
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert "history_padding: zeros" in text and f"predict_flow: {str(not no_flow).lower()}" in text
    result = subprocess.run([sys.executable, "scripts/render_vid2vid.py", "--checkpoint", str(tmp_path / "run"),
                             "--input", str(tmp_path / "pictures"), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr

    pictures = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255
                            for p in sorted((tmp_path / "pictures").iterdir())])
    made = nv.vid2vid_test(nets, (pictures - 0.5) / 0.5, None, [], 3, no_first_img=True)  # frames 2, 3, 4
    for t, frame in enumerate(made, start=2):
        ours = np.array(Image.open(tmp_path / "out" / "frames" / f"{t:05d}.png"))
        assert np.abs(ours.astype(int) - nv.tensor2im(frame).astype(int)).max() <= 1, t
    assert len(list((tmp_path / "out" / "frames").iterdir())) == 5  # the two before G's first are made too


@pytest.mark.parametrize("alone", [None, "openpose", "densepose"])
def test_vid2vid_pose2body_renders_as_the_original(tmp_path, alone):
    # pose2body 256p's layout in miniature: DensePose + OpenPose maps (6 channels a frame) of the middle
    # half of frames scaled to --loadSize high, --no_first_img; NVIDIA's dataset layout read as it is.
    # Or --openpose_only: the OpenPose maps alone, and no flow parts (the original sets --no_flow with it);
    # or --densepose_only: the DensePose images alone
    import pose_keypoints as pk

    channels = 3 if alone else 6
    nets = nv.vid2vid_generators(channels * 3, 6, ngf=8, n_down=3, n_blocks=2, n_blocks_local=1, n_scales=1,
                                 fg=False, kind="batch", no_flow=alone == "openpose")
    (tmp_path / "pose2body_256p").mkdir()
    torch.save(nv.seeded(nets[0], 40).state_dict(), tmp_path / "pose2body_256p" / "latest_net_G0.pth")
    rng, frames, size = np.random.default_rng(1), 5, (512, 256)
    data = tmp_path / "datasets" / "pose"
    for folder in ("test_openpose", "test_densepose"):
        (data / folder / "dance").mkdir(parents=True)
    for t in range(frames):
        people = [pk.person((250 + 6 * t, 150), 1.1, rng), pk.person((280, 160 + t), 0.9, rng)]  # overlapping
        pk.keypoint_file(data / "test_openpose" / "dance" / f"frame{t:05d}_keypoints.json", people)
        pk.densepose_image(data / "test_densepose" / "dance" / f"frame{t:05d}_IUV.png", size, rng)

    flags = ["--name", "pose2body_256p", "--dataroot", "datasets/pose", "--dataset_mode", "pose", "--input_nc",
             str(channels), "--resize_or_crop", "scaleHeight", "--loadSize", "128", "--no_first_img", "--ngf", "8",
             "--n_blocks", "2"] + ([f"--{alone}_only"] if alone else [])
    convert_checkpoint(tmp_path / "pose2body_256p", tmp_path / "run", flags)
    text = (tmp_path / "run" / "config.yaml").read_text()
    assert f"input: {alone or 'openpose'}" in text and f"densepose: {str(alone is None).lower()}" in text
    assert "scale_height_and_middle_half" in text
    inputs_from = {None: ["--input", str(data / "test_openpose" / "dance"),
                          "--densepose", str(data / "test_densepose" / "dance")],
                   "openpose": ["--input", str(data / "test_openpose" / "dance"), "--size", f"{size[1]}x{size[0]}"],
                   "densepose": ["--input", str(data / "test_densepose" / "dance")]}[alone]
    result = subprocess.run([sys.executable, "scripts/render_vid2vid.py", "--checkpoint", str(tmp_path / "run"),
                             *inputs_from, "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr

    inputs = torch.stack([nv.pose_dataset_frame(data / "test_openpose" / "dance" / f"frame{t:05d}_keypoints.json",
                                                data / "test_densepose" / "dance" / f"frame{t:05d}_IUV.png", size, 128)
                          for t in range(frames)])
    assert inputs.shape == (frames, 6, 128, 128) and (inputs[:, 3:] > -1).float().mean() > 0.02  # limbs in view
    if alone:  # the dataset's DensePose channels, or its OpenPose maps after them
        inputs = inputs[:, :3] if alone == "densepose" else inputs[:, 3:]
    made = nv.vid2vid_test(nets, inputs, None, [], 3, no_first_img=True)
    for t, frame in enumerate(made, start=2):
        ours = np.array(Image.open(tmp_path / "out" / "frames" / f"{t:05d}.png"))
        assert ours.shape == (128, 128, 3)
        assert np.abs(ours.astype(int) - nv.tensor2im(frame).astype(int)).max() <= 1, t
    assert np.std(nv.tensor2im(made[-1])) > 5


def test_pose_flags_that_cannot_be_expressed_are_named(tmp_path):
    nets = nv.vid2vid_generators(6 * 3, 6, ngf=8, n_down=3, n_blocks=2, n_blocks_local=1, n_scales=1, fg=False,
                                 kind="batch")
    (tmp_path / "ck").mkdir()
    torch.save(nets[0].state_dict(), tmp_path / "ck" / "latest_net_G0.pth")
    pose = ["--dataset_mode", "pose", "--input_nc", "6", "--no_first_img"]
    for alone in ("--densepose_only", "--openpose_only"):
        with pytest.raises(ValueError, match=f"--input_nc 6 {alone}: NVIDIA's pose dataset makes 6 channels"):
            convert_checkpoint(tmp_path / "ck", tmp_path / "run", [*pose, alone])
    with pytest.raises(ValueError, match="pose models are supported with --resize_or_crop scaleHeight"):
        convert_checkpoint(tmp_path / "ck", tmp_path / "run", pose)  # the default scaleWidth
    with pytest.raises(ValueError, match="--input_nc 15 --no_dist_map: NVIDIA's face dataset makes 1 channels"):
        convert_checkpoint(tmp_path / "ck", tmp_path / "run", ["--dataset_mode", "face", "--input_nc", "15",
                                                               "--no_dist_map"])
    with pytest.raises(ValueError, match="--input_nc 4: converting vid2vid models with inputs other than"):
        convert_checkpoint(tmp_path / "ck", tmp_path / "run", ["--dataset_mode", "temporal", "--input_nc", "4"])
    convert_checkpoint(tmp_path / "ck", tmp_path / "run", [*pose, "--resize_or_crop", "scaleHeight",
                                                           "--basic_point_only"])
    assert "openpose_basic: true" in (tmp_path / "run" / "config.yaml").read_text()


def edge2face_checkpoint(root: Path, feat_num: int = 4, images: int = 6, input_nc: int = 15):
    """Seeded edge2face_512/latest_net_G0.pth (`input_nc` face maps, 3 frames, ngf 8, 2 blocks, batch norm) and
    edge2face_single/ (Global_with_z G, its encoder E, features.npy of `images` training faces)."""
    g0 = nv.seeded(nv.vid2vid_generators(input_nc * 3, 6, ngf=8, n_down=3, n_blocks=2, n_blocks_local=1, n_scales=1,
                                         fg=False, kind="batch")[0], 50)
    single = nv.seeded(nv.GlobalWithZ(15, 3, feat_num, ngf=4, n_down=2, n_blocks=1), 51)
    encoder = nv.seeded(nv.Encoder(3, feat_num, 4, 2), 52)
    rng = np.random.default_rng(53)
    features = {label: rng.normal(0, 0.5, (images, feat_num + 1)).astype(np.float32) for label in range(7)}
    (root / "edge2face_512").mkdir(parents=True)
    (root / "edge2face_single").mkdir()
    torch.save(g0.state_dict(), root / "edge2face_512" / "latest_net_G0.pth")
    torch.save(single.state_dict(), root / "edge2face_single" / "latest_net_G.pth")
    torch.save(encoder.state_dict(), root / "edge2face_single" / "latest_net_E.pth")
    np.save(root / "edge2face_single" / "features.npy", features)
    return g0, single, encoder, features


EDGE2FACE_FLAGS = ["--name", "edge2face_512", "--dataroot", "datasets/face/", "--dataset_mode", "face", "--input_nc",
                   "15", "--loadSize", "64", "--use_single_G", "--ngf", "8", "--n_blocks", "2"]


@pytest.mark.parametrize("edges_only", [False, True], ids=["edge2face", "edges only"])
def test_vid2vid_edge2face_renders_as_the_original(tmp_path, edges_only):
    # edge2face 512's layout in miniature: landmarks drawn as 15 maps of the square around the face (Canny
    # edges of the real frame's background), first frames by Global_with_z with the features of the
    # nearest training face; NVIDIA's face dataset layout read as it is. Or a model trained on the
    # face's lines alone (--no_dist_map --no_canny_edge), which NVIDIA tests with --no_first_img
    import face_landmarks

    from vid2vid.data.sequences import SequenceDataset
    from vid2vid.models.vid2vid import Vid2VidConfig

    channels = 1 if edges_only else 15
    g0, single, encoder, features = edge2face_checkpoint(tmp_path, input_nc=channels)
    data, frames = tmp_path / "datasets" / "face", 5
    face_landmarks.face_sequence(data, "test", "0001", frames, (256, 192))
    if edges_only:
        flags = [f for f in EDGE2FACE_FLAGS if f != "--use_single_G"]
        flags += ["--input_nc", "1", "--no_dist_map", "--no_canny_edge", "--no_first_img"]
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", flags)
    else:
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", EDGE2FACE_FLAGS,
                           tmp_path / "edge2face_single" / "latest_net_G.pth")
    assert "input: face" in (tmp_path / "run" / "config.yaml").read_text()
    result = subprocess.run([sys.executable, "scripts/render_vid2vid.py", "--checkpoint", str(tmp_path / "run"),
                             "--input", str(data / "test_keypoints" / "0001"), "--ground-truth",
                             str(data / "test_img" / "0001"), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr

    keypoints = sorted((data / "test_keypoints" / "0001").glob("*.txt"))
    inputs, parts, images = nv.face_dataset_sequence(keypoints, sorted((data / "test_img" / "0001").glob("*.png")), 64,
                                                     no_dist_map=edges_only, no_canny_edge=edges_only)
    assert inputs.shape == (frames, channels, 64, 64) and set(parts.unique().tolist()) == set(range(7))
    lines = (inputs[:, 0] > 0).float().mean()
    assert 0.05 < lines < 0.3 if edges_only else lines > 0.5  # the face's lines, or with the background's edges
    # the dataset reads the same maps (as training sees them)
    from vid2vid.config import load_config
    config = load_config(Vid2VidConfig, tmp_path / "run" / "config.yaml", [])
    clip = SequenceDataset(data, "test", config.data, label_nc=0, use_instance=False, schedule=None, train=False)[0]
    assert torch.equal(clip["label"], inputs) and torch.equal(clip["instance"].float(), parts)
    assert (clip["image"] - images).abs().max() < 1e-6

    if edges_only:  # frames 2, 3, 4 from a black history
        made, start = nv.vid2vid_test([g0], inputs, None, [], 3, no_first_img=True), 2
    else:
        with torch.no_grad():
            first = torch.cat([single(inputs[i:i + 1], nv.face_features(encoder, features, 4, images[i:i + 1],
                                                                        parts[i:i + 1])) for i in range(2)])
        made, start = torch.cat([first, nv.vid2vid_test([g0], inputs, first, [], 3, no_first_img=False)]), 0
    for t, frame in enumerate(made, start):
        ours = np.array(Image.open(tmp_path / "out" / "frames" / f"{t:05d}.png"))
        assert ours.shape == (64, 64, 3)
        assert np.abs(ours.astype(int) - nv.tensor2im(frame).astype(int)).max() <= 1, t


def test_edge2face_files_that_do_not_fit_are_named(tmp_path):
    edge2face_checkpoint(tmp_path)
    single = tmp_path / "edge2face_single"
    with pytest.raises(DatasetError, match="edge2face_single/latest_net_G.pth"):
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", EDGE2FACE_FLAGS)
    with pytest.raises(CheckpointError, match="first-frame generator"):  # the single G given as pix2pixHD
        convert_checkpoint(single, tmp_path / "run", [])
    with pytest.raises(Exception, match="--input_nc 16"):
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", EDGE2FACE_FLAGS + ["--input_nc", "16"],
                           single / "latest_net_G.pth")
    with pytest.raises(ConfigError, match="--use_single_G --no_dist_map: .* takes the 15 face maps"):
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run",
                           EDGE2FACE_FLAGS + ["--input_nc", "1", "--no_dist_map"], single / "latest_net_G.pth")
    features = np.load(single / "features.npy", allow_pickle=True).item()
    del features[3]
    np.save(single / "features.npy", features)
    with pytest.raises(CheckpointError, match="features.npy: expected features of parts 0 .. 6"):
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", EDGE2FACE_FLAGS, single / "latest_net_G.pth")

    class Payload:  # a features.npy that would run code when unpickled
        def __reduce__(self):
            return (print, ("ran",))

    payload = np.empty((), object)
    payload[()] = {0: Payload()}
    np.save(single / "features.npy", payload, allow_pickle=True)
    with pytest.raises(CheckpointError, match="builtins.print"):
        convert_checkpoint(tmp_path / "edge2face_512", tmp_path / "run", EDGE2FACE_FLAGS, single / "latest_net_G.pth")
