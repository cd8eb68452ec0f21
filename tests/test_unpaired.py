"""Unpaired translation (issue 14): the data, CycleGAN, and exact resume."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vid2vid.config import ConfigError, load_config
from vid2vid.data.images import DatasetError
from vid2vid.data.unpaired import UnpairedDataConfig, UnpairedDataset, build_unpaired_demo_dataset
from vid2vid.models.cyclegan import ImagePool
from vid2vid.models.unpaired import UnpairedConfig

ROOT = Path(__file__).resolve().parent.parent
TINY = ["model.ngf=8", "model.ndf=8", "model.netG=resnet_6blocks", "data.load_size=36", "data.crop_size=32",
        "train.workers=0"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_unpaired_demo_dataset(tmp_path_factory.mktemp("unpaired") / "demo", train=6, test=2, size=32)


def test_the_demo_domains_are_unpaired_and_b_is_drawn_per_epoch(demo):
    assert all(len(list((demo / f).glob("*.png"))) == n for f, n in
               (("trainA", 6), ("trainB", 6), ("testA", 2), ("testB", 2), ("trainA_structure", 6)))
    a, b = (np.asarray(Image.open(demo / f"train{d}" / "0000.png"), float) for d in "AB")
    assert a[..., 1].mean() > a[..., 2].mean() and b[..., 2].mean() > b[..., 1].mean() - 5  # green summer, pale winter
    data = UnpairedDataset(demo, "train", UnpairedDataConfig(load_size=36, crop_size=32), seed=3)
    first = [data[i]["B_path"] for i in range(6)]
    assert [data[i]["A_path"] for i in range(6)] == [str(demo / "trainA" / f"{i:04d}.png") for i in range(6)]
    assert [data[i]["B_path"] for i in range(6)] == first  # a function of (seed, epoch, index)
    data.set_epoch(1)
    assert [data[i]["B_path"] for i in range(6)] != first
    assert data[0]["A"].shape == data[0]["B"].shape == (3, 32, 32)


def test_bad_unpaired_datasets_name_the_folder_or_file(tmp_path, demo):
    config = UnpairedDataConfig(load_size=36, crop_size=32)
    with pytest.raises(DatasetError, match="trainA does not exist"):
        UnpairedDataset(tmp_path, "train", config)
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "trainA" / "a.png")
    with pytest.raises(DatasetError, match="trainB holds no images"):
        UnpairedDataset(tmp_path, "train", config)
    Image.fromarray(np.full((32, 32), 200, np.uint8)).save(tmp_path / "trainB" / "grey.png")  # grey-scale
    data = UnpairedDataset(tmp_path, "train", config)
    with pytest.warns(UserWarning, match=r"converted to RGB: grey.png \(L\)"):
        item = data[0]
    assert item["B"].shape == (3, 32, 32) and torch.allclose(item["B"], torch.full_like(item["B"], 200 / 127.5 - 1))
    with pytest.raises(ConfigError, match="model.name: expected one of 'cyclegan'"):
        load_config(UnpairedConfig, ROOT / "configs" / "cyclegan_demo.yaml", ["model.name=munit"])


def test_the_image_pool_keeps_then_swaps_and_resumes_with_its_images():
    torch.manual_seed(0)
    pool = ImagePool(3)
    images = torch.arange(5.0).view(5, 1, 1, 1)
    assert torch.equal(pool(images[:3]), images[:3]) and torch.equal(pool.images, images[:3])
    shown = pool(images[3:])  # full: each new image is shown, or swapped for a kept one it replaces
    kept = set(pool.images.flatten().tolist())
    assert len(kept) == 3 and set(shown.flatten().tolist()) | kept == set(range(5))
    restored = ImagePool(3)
    restored.load_state_dict(pool.state_dict())
    assert torch.equal(restored.images, pool.images)
    assert torch.equal(ImagePool(0)(images), images)


def run(output, *args):
    import os

    config = [] if "--config" in args else ["--config", "configs/cyclegan_demo.yaml"]
    # MKL's matrix products (CUT's MLP head and PatchNCE) depend on the memory alignment of their
    # operands unless its conditional numerical reproducibility is on: two fresh CPU runs then differ
    # in the 6th digit. It is on here, so that resuming is checked bit for bit.
    result = subprocess.run([sys.executable, "scripts/train_unpaired.py", *config,
                             "--output", str(output), "--quiet", *args, *TINY], capture_output=True, text=True,
                            cwd=ROOT, timeout=600, env={**os.environ, "MKL_CBWR": "COMPATIBLE"})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in (Path(output) / "losses.jsonl").read_text().splitlines()]


def test_cyclegan_trains_and_resumes_exactly(tmp_path):
    # 6 images a pass, batches of 2: the resume lands mid-epoch, with a pool of 4 already full
    settings = ["train.batch_size=2", "model.pool_size=4", f"data.root={tmp_path / 'data'}"]
    build_unpaired_demo_dataset(tmp_path / "data", train=6, test=2, size=32)
    straight = run(tmp_path / "straight", "--max-iters", "5", *settings)
    run(tmp_path / "resumed", "--max-iters", "4", *settings)
    resumed = run(tmp_path / "resumed", "--resume", "--max-iters", "5", *settings)
    assert [r["iteration"] for r in resumed] == [1, 2, 3, 4, 5] and straight == resumed
    assert set(straight[0]) >= {"G_GAN", "F_GAN", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "latest.pt", weights_only=True)["networks"]
    assert set(saved) == {"G", "F", "D_A", "D_B", "pool_A", "pool_B"} and saved["pool_A"]["images"].shape[0] == 4


# ----------------------------------------------------------------------------- CUT, FastCUT

def test_patch_nce_picks_the_key_at_the_same_position():
    from vid2vid.models.cut import patch_nce

    keys = torch.nn.functional.normalize(torch.randn(2 * 16, 8), dim=1)
    aligned = patch_nce(keys.clone(), keys, 2, 0.07)  # each query is its own key
    shuffled = patch_nce(keys.roll(1, 0), keys, 2, 0.07)
    assert aligned.shape == (32,) and aligned.mean() < 0.05 < shuffled.mean()


def test_the_cut_generator_reads_cuts_encoder_layers():
    from vid2vid.models.unpaired import UnpairedModelConfig, build_unpaired

    config = UnpairedConfig(model=UnpairedModelConfig(name="cut", ngf=8, ndf=8))
    task = build_unpaired(config)
    features = task.G(torch.zeros(1, 3, 32, 32), task.nce_layers)
    # the padded input, the two anti-aliased downsampling convs (before their norm), resblocks 1 and 5
    assert [tuple(f.shape[1:]) for f in features] == [(3, 38, 38), (16, 32, 32), (32, 16, 16), (32, 8, 8),
                                                      (32, 8, 8)]
    assert [h[0].in_features for h in task.F.heads] == [3, 16, 32, 32, 32]
    assert task.G(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert set(task.networks()) == {"G", "D", "F"}
    assert (task.lambda_NCE, task.nce_idt, task.flip_equivariance) == (1.0, True, False)
    fast = build_unpaired(UnpairedConfig(model=UnpairedModelConfig(name="fastcut", ngf=8, ndf=8)))
    assert (fast.lambda_NCE, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    with pytest.raises(ConfigError, match="cut reads the encoder layers of a ResNet generator"):
        load_config(UnpairedConfig, ROOT / "configs" / "cut_demo.yaml", ["model.netG=unet_128"])


@pytest.mark.parametrize("name", ["cut", "fastcut"])
def test_cut_trains_and_resumes_exactly(tmp_path, name):
    settings = ["train.batch_size=2", "model.num_patches=32", f"data.root={tmp_path / 'data'}"]
    build_unpaired_demo_dataset(tmp_path / "data", train=6, test=2, size=32)
    config = ["--config", f"configs/{name}_demo.yaml"]
    straight = run(tmp_path / "straight", *config, "--max-iters", "4", *settings)
    run(tmp_path / "resumed", *config, "--max-iters", "2", *settings)
    resumed = run(tmp_path / "resumed", *config, "--resume", "--max-iters", "4", *settings)
    assert straight == resumed and len(straight) == 4
    assert {"G_GAN", "NCE", "D_real", "D_fake"} <= set(straight[0]) and ("NCE_Y" in straight[0]) == (name == "cut")
    saved = torch.load(tmp_path / "resumed" / "checkpoints" / "latest.pt", weights_only=True)
    assert set(saved["networks"]) == {"G", "D", "F"} and set(saved["optimizers"]) == {"G", "D"}


@pytest.mark.parametrize("name", ["cut", "ssal"])
def test_two_process_ddp_trains_the_models_with_a_patchnce_head(tmp_path, name):
    import os

    root = build_unpaired_demo_dataset(tmp_path / "data", train=4, test=2, size=32)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "tests/ddp_worker.py", name, str(root), str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "ddp_report.json").read_text())
    assert report["world_size"] == 2 and report["identical"] and report["changed"]


def test_translate_renders_images_and_videos_of_any_size(tmp_path, demo):
    from vid2vid.data.frames import iter_frames, write_video

    run(tmp_path / "run", "--max-iters", "1", f"data.root={demo}")

    def translate(*args):
        return subprocess.run([sys.executable, "scripts/translate.py", "--checkpoint", str(tmp_path / "run"), *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)

    odd = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(odd)
    result = translate("--input", str(odd), "--output", str(tmp_path / "one"), "--direction", "BtoA")
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(tmp_path / "one" / "images" / "odd_output.png")).shape == (30, 45, 3)
    result = translate("--input", str(demo / "testA"), "--output", str(tmp_path / "folder"))
    assert result.returncode == 0 and "translated 2 images" in result.stdout
    assert (tmp_path / "folder" / "index.html").exists()
    frames = [np.asarray(Image.open(p)) for p in sorted((demo / "testA").glob("*.png"))]
    write_video(tmp_path / "clip.mp4", frames * 2)
    result = translate("--input", str(tmp_path / "clip.mp4"), "--output", str(tmp_path / "video"))
    assert result.returncode == 0, result.stderr
    assert len(list(iter_frames(tmp_path / "video" / "video.mp4"))) == 4
    result = translate("--input", str(odd), "--output", str(tmp_path / "x"), "--reference", str(odd))
    assert result.returncode == 1 and "model.name=cyclegan has no style encoder" in result.stderr
    assert result.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- evaluation

def test_the_structure_measures_ignore_colour_and_the_colour_measures_see_it(demo):
    from vid2vid.unpaired_evaluation import (boundary_f1, colourfulness, edge_f1, hellinger, log_chroma_histogram,
                                             moment_distance, self_similarity_distance)

    a = (torch.from_numpy(np.array(Image.open(demo / "testA" / "0000.png"))).permute(2, 0, 1)[None] / 127.5 - 1)
    b = (torch.from_numpy(np.array(Image.open(demo / "testB" / "0000.png"))).permute(2, 0, 1)[None] / 127.5 - 1)
    recoloured = a[:, [2, 0, 1]] * 0.8  # the same shapes in other colours
    assert self_similarity_distance(a, a).item() == 0 and self_similarity_distance(a, recoloured).item() < 1e-4
    assert self_similarity_distance(a, b).item() > 0.2
    assert edge_f1(a, a).item() == 1 and edge_f1(a, b).item() < 0.5
    histogram = log_chroma_histogram(a)
    assert histogram.shape == (1, 3, 32, 32) and torch.allclose(histogram.sum(), torch.tensor(1.0))
    assert hellinger(histogram, histogram).item() < 1e-3 < 0.5 < hellinger(histogram, log_chroma_histogram(b)).item()
    assert moment_distance(a, a).item() == 0 < moment_distance(a, b).item()
    assert colourfulness(torch.zeros(1, 3, 8, 8)).item() == 0 < colourfulness(a).item()
    ids = torch.from_numpy(np.asarray(Image.open(demo / "testA_structure" / "0000.png"), dtype=np.int64))[None, None]
    assert boundary_f1(ids, a).item() > boundary_f1(ids, b).item()  # A's edges lie on its own shapes' outlines


def test_evaluate_unpaired_prints_a_row_per_model(tmp_path, demo):
    run(tmp_path / "run", "--max-iters", "1", f"data.root={demo}")
    result = subprocess.run([sys.executable, "scripts/evaluate_unpaired.py", "--checkpoint", str(tmp_path / "run"),
                             "--data", str(demo)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| input") or line.startswith("| cyclegan")]
    assert len(rows) == 2 and rows[0].startswith("| input (unchanged) | 0.000 | 1.000 |")
    assert len(rows[1].split("|")) == 11  # every column, the boundary F1 included (the demo has ground truth)
    assert "FID and KID: pass --inception-weights FILE" in result.stdout
    seeded_inception(tmp_path / "pt_inception.pth")
    result = subprocess.run([sys.executable, "scripts/evaluate_unpaired.py", "--checkpoint", str(tmp_path / "run"),
                             "--data", str(demo), "--inception-weights", str(tmp_path / "pt_inception.pth")],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("| method | FID ↓ | KID ↓ |")[1].splitlines()[2:4]
    assert [row.split("|")[1].strip() for row in table] == ["input (unchanged)", "cyclegan (run)"]
    assert all(float(row.split("|")[2]) > 0 for row in table)  # summer and an untrained model's against winter


def seeded_inception(path: Path) -> None:
    """A FID Inception weights file of the real one's layout, seeded (He-scaled convs, so that the
    features do not vanish through the 94 layers), as pytorch-fid saves it (no num_batches_tracked)."""
    from vid2vid.models.inception import FIDInceptionV3

    torch.manual_seed(0)
    network = FIDInceptionV3()
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save({k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}, path)


def test_fid_and_kid_with_the_inception_weights_the_user_supplies(tmp_path):
    from vid2vid.models.inception import load_fid_inception
    from vid2vid.serialization import CheckpointError
    from vid2vid.unpaired_evaluation import fid_kid

    seeded_inception(tmp_path / "pt_inception.pth")
    inception = load_fid_inception(tmp_path / "pt_inception.pth")
    assert inception(torch.rand(2, 3, 40, 56)).shape == (2, 2048)
    torch.manual_seed(1)
    real = [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(3)]
    other = [torch.rand(1, 3, 32, 32).pow(3) * 2 - 1 for _ in range(3)]  # darker images
    fid_same, kid_same, _ = fid_kid(real, real, inception)
    fid_other, kid_other, _ = fid_kid(real, other, inception)
    assert abs(fid_same) < 1e-3 and fid_other > 1e-2 and kid_other > kid_same

    state = torch.load(tmp_path / "pt_inception.pth", weights_only=True)
    state["Mixed_6b.branch7x7_2.conv.weight"] = torch.zeros(128, 128, 1, 5)
    torch.save(state, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match=r"wrong.pth does not fit the FID Inception-v3.*Mixed_6b.branch7x7_2.conv"
                                              r".weight is \(128, 128, 1, 5\), expected \(128, 128, 1, 7\)"):
        load_fid_inception(tmp_path / "wrong.pth")
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match="vgg.pth does not fit the FID Inception-v3"):
        load_fid_inception(tmp_path / "vgg.pth")


# ----------------------------------------------------------------------------- SSAL-GAN

def test_self_structure_attention_is_a_distribution_over_the_window():
    from vid2vid.models.ssal import structure_attention

    features = torch.randn(2, 8, 12, 12)
    positions = torch.tensor([26, 40, 77, 117])  # inside, two pixels from the border or more
    p = structure_attention(features, positions, 5, 0.1)
    assert p.shape == (2, 4, 25) and torch.allclose(p.sum(2), torch.ones(2, 4))
    assert (p.argmax(2) == 12).all()  # each query attends most to itself, the window's centre
    recoloured = structure_attention(features * 3, positions, 5, 0.1)  # scale-free: cosine similarities
    assert torch.allclose(p, recoloured, atol=1e-6)


def test_ssal_trains_resumes_and_translates_by_reference_or_random_style(tmp_path, demo):
    settings = ["--config", "configs/ssal_demo.yaml"]
    tiny = ["model.num_patches=16", "model.n_res=1", f"data.root={demo}"]
    straight = run(tmp_path / "straight", *settings, "--max-iters", "3", *tiny)
    run(tmp_path / "resumed", *settings, "--max-iters", "2", *tiny)
    assert run(tmp_path / "resumed", *settings, "--resume", "--max-iters", "3", *tiny) == straight
    assert {"G_GAN", "NCE", "SSA", "content", "style", "colour", "histogram", "diversity"} <= set(straight[0])

    def translate(*args):
        result = subprocess.run([sys.executable, "scripts/translate.py", "--checkpoint", str(tmp_path / "straight"),
                                 "--input", str(demo / "testA" / "0000.png"), *args], capture_output=True,
                                text=True, cwd=ROOT, timeout=600)
        assert result.returncode == 0, result.stderr
        return np.asarray(Image.open(Path(args[args.index("--output") + 1]) / "images" / "0000_output.png"))

    by_reference = translate("--reference", str(demo / "testB"), "--output", str(tmp_path / "ref"))
    assert by_reference.shape == (32, 2 * 32, 3)  # one output per reference image, side by side
    random = translate("--n-samples", "3", "--seed", "1", "--output", str(tmp_path / "random"))
    assert random.shape == (32, 3 * 32, 3) and not np.array_equal(random[:, :32], random[:, 32:64])
    assert np.array_equal(random, translate("--n-samples", "3", "--seed", "1", "--output", str(tmp_path / "again")))

    result = subprocess.run([sys.executable, "scripts/evaluate_unpaired.py", "--checkpoint", str(tmp_path / "straight"),
                             "--data", str(demo), "--n-references", "2"], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ssal"))
    assert float(row.split("|")[7]) > 0  # two references, two different outputs: some diversity


def test_a_videos_come_with_the_frame_before_and_the_exact_flow(tmp_path):
    from vid2vid.data.unpaired import build_unpaired_video_demo_dataset
    from vid2vid.models.temporal import flow_confidence

    root = build_unpaired_video_demo_dataset(tmp_path / "video", train=2, test=1, frames=4, size=32)
    config = UnpairedDataConfig(load_size=36, crop_size=32)
    data = UnpairedDataset(root, "train", config, temporal=True, with_flow=True, seed=1)
    assert len(data) == 8 and len(data.items_A) == 2 * 3  # frames 1 .. 3 of each video (as many B images: 8)
    for i in range(6):
        item = data[i]
        assert item["A_path"].endswith(f"seq{i // 3:02d}#{i % 3 + 1}") and item["A_flow"].shape == (2, 32, 32)
        # the same crop and flip for the frames and the flow: the flow explains the frames
        a, previous, flow = item["A"][None], item["A_prev"][None], item["A_flow"][None]
        trusted = flow_confidence(a, previous, flow).mean()
        assert trusted > 0.7 and trusted > flow_confidence(a, previous, -flow).mean() + 0.03
    still = UnpairedDataset(root, "train", config)  # without the temporal loss: every frame is an image of A
    assert len(still.items_A) == 8 and "A_prev" not in still[0]
    with pytest.raises(DatasetError, match="lambda_temporal needs videos in"):
        UnpairedDataset(build_unpaired_demo_dataset(tmp_path / "images", train=2, test=1, size=32), "train", config,
                        temporal=True)
    for flow in (root / "trainA_flow" / "seq01").glob("0002.flo"):
        flow.unlink()
    with pytest.raises(DatasetError, match="seq01 has 4 frames: expected 3 flows"):
        UnpairedDataset(root, "train", config, temporal=True, with_flow=True)


def test_the_temporal_loss_is_zero_for_a_video_that_follows_its_flow():
    from vid2vid.models.temporal import TemporalConsistency

    frames = torch.rand(1, 3, 24, 40) * 2 - 1
    shifted = torch.roll(frames, 2, dims=3)  # everything moves 2 pixels right: flow t -> t-1 is -2 in x
    batch = {"A": shifted, "A_prev": frames, "A_flow": torch.tensor([-2.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 24, 40)}
    loss = TemporalConsistency(10.0, None)
    assert float(loss(lambda x: x * 0.5, shifted * 0.5, batch)) < 1e-6  # a translation that follows the motion
    assert float(loss(lambda x: x * 0.5, frames * 0.5, batch)) > 0.1  # one that stands still flickers
    # without .flo files the estimator (FlowNet2's estimate) gives the flow, from frames in 0..255
    seen = []

    def estimator(a, b):
        seen.append((float(a.min()), float(a.max())))
        return batch["A_flow"].expand(len(a), -1, -1, -1)

    estimated = TemporalConsistency(10.0, estimator)
    without_files = {k: v for k, v in batch.items() if k != "A_flow"}
    assert float(estimated(lambda x: x * 0.5, shifted * 0.5, without_files)) < 1e-6
    assert seen and seen[0][0] >= 0 and 200 < seen[0][1] <= 255


def test_unpaired_video_training_and_its_warping_error(tmp_path):
    from vid2vid.data.unpaired import build_unpaired_video_demo_dataset

    build_unpaired_video_demo_dataset(tmp_path / "video", train=2, test=1, frames=4, size=32)
    losses = run(tmp_path / "run", "--config", "configs/cut_video_demo.yaml", "--max-iters", "3",
                 f"data.root={tmp_path / 'video'}", "model.num_patches=16")
    assert len(losses) == 3 and all("temporal" in record for record in losses)
    result = subprocess.run([sys.executable, "scripts/evaluate_unpaired.py", "--checkpoint", str(tmp_path / "run"),
                             "--data", str(tmp_path / "video")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("| method | warping error ↓ | motion ratio |")[1]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) == {"input (unchanged)", "cut (run)"}
    assert float(rows["input (unchanged)"].split("|")[2]) < 1.0  # the exact flow explains the source
