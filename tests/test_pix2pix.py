"""pix2pix on the training framework: networks, losses, data, trainer
(checkpoints, exact resume, non-finite losses, DDP) and the two scripts."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vid2vid.config import load_config
from vid2vid.data.aligned import AlignedDataConfig, AlignedDataset
from vid2vid.data.images import DatasetError
from vid2vid.models.discriminators import build_discriminator
from vid2vid.models.generators import build_generator
from vid2vid.models.layers import init_weights
from vid2vid.models.losses import GANLoss, gradient_penalty
from vid2vid.models.pix2pix import Pix2Pix, Pix2PixConfig
from vid2vid.training import (CheckpointFolder, DistContext, NonFiniteLossError, StepContext, Trainer, atomic_save,
                              read_losses)
from vid2vid.training.ema import WeightAverage
from vid2vid.training.trainer import TrainConfig, linear_decay, seed_everything

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------- networks


@pytest.mark.parametrize("name, size", [("unet_256", 256), ("unet_128", 128), ("resnet_9blocks", 36),
                                        ("resnet_6blocks", 20)])
def test_generators_keep_the_size_and_range(name, size):
    net = build_generator(name, 3, 2, ngf=4, norm="instance")
    out = net(torch.randn(2, 3, size, size * 2))
    assert out.shape == (2, 2, size, size * 2) and out.abs().max() <= 1


def test_parameter_counts_match_the_reference_implementation():
    # the numbers junyanz/pytorch-CycleGAN-and-pix2pix prints for its defaults
    assert sum(p.numel() for p in build_generator("unet_256", 3, 3).parameters()) == 54_413_955
    assert sum(p.numel() for p in build_generator("resnet_9blocks", 3, 3, norm="instance").parameters()) == 11_378_179
    assert sum(p.numel() for p in build_discriminator("basic", 6).parameters()) == 2_768_705


def test_unet_dropout_sits_in_the_inner_decoder_levels():
    assert sum(isinstance(m, nn.Dropout) for m in build_generator("unet_256", 3, 3, ngf=4).modules()) == 3
    assert sum(isinstance(m, nn.Dropout) for m in build_generator("unet_256", 3, 3, ngf=4, dropout=False).modules()) == 0


@pytest.mark.parametrize("name, out_size", [("basic", 30), ("n_layers", 14), ("pixel", 256)])
def test_discriminators_give_a_logit_per_patch(name, out_size):
    net = build_discriminator(name, 6, ndf=4, n_layers=4, norm="batch")
    assert net(torch.randn(2, 6, 256, 256)).shape == (2, 1, out_size, out_size)


def test_patchgan_features_for_feature_matching():
    net = build_discriminator("basic", 6, ndf=4, norm="instance")
    x = torch.randn(1, 6, 64, 64)
    features = net(x, features=True)
    assert [f.shape[1] for f in features] == [4, 8, 16, 32, 1]
    assert torch.equal(features[-1], net(x))


def test_bad_network_names():
    with pytest.raises(ValueError, match="generator must be one of unet_256"):
        build_generator("unet_512", 3, 3)
    with pytest.raises(ValueError, match="discriminator must be one of basic"):
        build_discriminator("huge", 6)
    with pytest.raises(ValueError, match="norm must be"):
        build_generator("unet_128", 3, 3, norm="group")
    with pytest.raises(ValueError, match="init must be one of"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")


def test_normal_init_draws_weights_with_the_asked_spread():
    net = init_weights(build_generator("unet_256", 3, 3), "normal", 0.02)
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001


# ------------------------------------------------------------------------------- losses


def test_gan_losses_on_known_logits():
    zero, half = torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), 0.5)
    assert GANLoss("vanilla")(zero, True).item() == pytest.approx(math.log(2))
    assert GANLoss("vanilla")(zero, False).item() == pytest.approx(math.log(2))
    assert GANLoss("lsgan")(half, True).item() == pytest.approx(0.25)
    assert GANLoss("lsgan")(half, False).item() == pytest.approx(0.25)
    assert GANLoss("wgangp")(half, True).item() == pytest.approx(-0.5)
    assert GANLoss("wgangp")(half, False).item() == pytest.approx(0.5)
    assert GANLoss("hinge")(half, True).item() == pytest.approx(0.5)
    assert GANLoss("hinge")(-half, False).item() == pytest.approx(0.5)
    assert GANLoss("hinge")(half, True, for_discriminator=False).item() == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="gan_mode must be"):
        GANLoss("least_squares")


def test_gradient_penalty_of_a_linear_critic():
    critic = nn.Conv2d(1, 1, 1, bias=False)
    critic.weight.data.fill_(3.0)  # the gradient of sum(3 x) has norm 3 * sqrt(pixels)
    real, fake = torch.randn(2, 1, 2, 2), torch.randn(2, 1, 2, 2)
    assert gradient_penalty(critic, real, fake, weight=10).item() == pytest.approx(10 * (3 * 2 - 1) ** 2)


def test_linear_decay_schedule():
    factor = linear_decay(epochs=2, epochs_decay=3)
    assert [factor(e) for e in range(5)] == pytest.approx([1, 1, 0.75, 0.5, 0.25])


def test_a_step_context_counts_a_phase_s_age_and_scales_an_optimizer_s_rates_for_a_block():
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam([{"params": [layer.weight], "lr": 1e-3}, {"params": [layer.bias], "lr": 4e-3}])
    ctx = StepContext(TrainConfig(), DistContext(), {"G": optimizer}, batches_per_epoch=5)
    ctx.epoch, ctx.batch_in_epoch = 3, 2
    assert ctx.iterations_since(1) == 12 and ctx.iterations_since(3) == 2 and ctx.iterations_since(4) == -3
    with pytest.raises(RuntimeError):
        with ctx.scaled_lr("G", 0.25):
            assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([2.5e-4, 1e-3])
            raise RuntimeError("a failed step")
    assert [group["lr"] for group in optimizer.param_groups] == [1e-3, 4e-3]  # restored, even after an error
    assert StepContext(TrainConfig(iters_per_epoch=7), DistContext(), {}).batches_per_epoch == 7


# --------------------------------------------------------------------------------- data


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def side_by_side_dataset(root, count=8, size=32, phase="train"):
    """A -> B where B is A's colour negative: a mapping a small network learns in a few steps."""
    rng = np.random.default_rng(0)
    for i in range(count):
        a = np.repeat(np.repeat(rng.integers(0, 256, (size // 8, size // 8, 3)), 8, 0), 8, 1)
        save(root / phase / f"{i:03d}.png", np.concatenate((a, 255 - a), 1))
    return root


def tiny_config(root, *overrides, **train):
    settings = {"batch_size": 2, "epochs": 2, "epochs_decay": 2, "checkpoint_every": 2, "log_every": 1,
                "workers": 0, "device": "cpu", **train}
    return load_config(Pix2PixConfig, None, [
        "model.netG=resnet_6blocks", "model.ngf=8", "model.ndf=8", f"data.root={root}", "data.load_size=36",
        "data.crop_size=32", *[f"train.{k}={v}" for k, v in settings.items()], *overrides,
    ])


def test_aligned_dataset_splits_crops_and_flips_alike(tmp_path):
    side_by_side_dataset(tmp_path)
    data = AlignedDataset(tmp_path, "train", AlignedDataConfig(load_size=36, crop_size=32), seed=1)
    item = data[3]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert torch.allclose(item["A"], -item["B"], atol=0.02)  # the same crop and flip for A and B
    assert torch.equal(data[3]["A"], item["A"])  # a function of (seed, epoch, index)
    data.set_epoch(1)
    assert not torch.equal(data[3]["A"], item["A"])
    swapped = AlignedDataset(tmp_path, "train", AlignedDataConfig(direction="BtoA", preprocess="none"))
    plain = AlignedDataset(tmp_path, "train", AlignedDataConfig(preprocess="none", flip=False))
    assert torch.equal(swapped[0]["A"], plain[0]["B"])


def test_folder_layout_and_non_square_images(tmp_path):
    for i in range(3):
        save(tmp_path / "A" / "train" / f"{i}.png", np.full((24, 40, 3), 10 * i))
        save(tmp_path / "B" / "train" / f"{i}.png", np.full((24, 40, 3), 200))
    data = AlignedDataset(tmp_path, "train", AlignedDataConfig(layout="folders", preprocess="none", flip=False),
                          multiple=4)
    assert len(data) == 3 and data[1]["A"].shape == (3, 24, 40)
    assert data[1]["A"].mean().item() == pytest.approx(10 / 127.5 - 1)
    scaled = AlignedDataset(tmp_path, "train", AlignedDataConfig(layout="folders", preprocess="scale_width",
                                                                  load_size=20))
    assert scaled[0]["A"].shape == (3, 12, 20)


def test_scale_height_rounds_as_vid2vid_and_takes_the_middle_half():
    from vid2vid.data.transforms import Preprocessing

    scale = Preprocessing("scale_height", 256, 0, False)
    assert scale.output_size((1920, 1080)) == (448, 256)  # 455 -> 456 (multiple of 4) -> 448 (of 32)
    middle = Preprocessing("scale_height_and_middle_half", 256, 0, False)
    assert middle.output_size((1920, 1080)) == (192, 256)  # 2 * floor(448 / 4 / 32) * 32
    geometry = middle.draw((1024, 512), np.random.default_rng(0), train=True)
    assert geometry.resize == (512, 256) and geometry.crop == (128, 0, 384, 256) and not geometry.flip
    with pytest.raises(DatasetError, match="has no middle half .* raise data.load_size"):
        Preprocessing("scale_height_and_middle_half", 64, 0, False).check((100, 100), 8, Path("x.png"))


@pytest.mark.parametrize(
    "make, config, message",
    [
        (lambda r: None, {}, "dataset folder .* does not exist"),
        (lambda r: (r / "train").mkdir(parents=True), {}, "no images"),
        (lambda r: (r / "train").mkdir(parents=True) or (r / "train" / "x.png").write_bytes(b"not a png"), {},
         "cannot read image .*x.png"),
        ("truncated", {}, "cannot read image .*000.png"),
        (lambda r: save(r / "train" / "odd.png", np.zeros((8, 9, 3))), {"preprocess": "none"}, "even width"),
        (lambda r: side_by_side_dataset(r, 1, 40), {"preprocess": "none"}, "multiples of 32"),
        ("sizes", {"layout": "folders"}, "different sizes"),
        ("unpaired", {"layout": "folders"}, "no partner"),
    ],
)
def test_bad_datasets_name_the_file(tmp_path, make, config, message):
    root = tmp_path / "data"
    if make == "truncated":
        side_by_side_dataset(root, 1)
        path = root / "train" / "000.png"
        path.write_bytes(path.read_bytes()[:200])
    elif make in ("sizes", "unpaired"):
        save(root / "A" / "train" / "0.png", np.zeros((8, 8, 3)))
        save(root / "B" / "train" / ("0.png" if make == "sizes" else "1.png"), np.zeros((8, 16, 3)))
    else:
        make(root)
    with pytest.raises(DatasetError, match=message):
        AlignedDataset(root, "train", AlignedDataConfig(**config), multiple=32)


# ----------------------------------------------------------------------------- training


def run_trainer(root, output, resume=False, **train):
    config = tiny_config(root, **train)
    seed_everything(config.train.seed)
    task = Pix2Pix(config.model, config.train)
    data = AlignedDataset(root, "train", config.data, seed=config.train.seed, multiple=task.multiple)
    trainer = Trainer(task, data, config.train, output, progress=False)
    if resume:
        assert trainer.resume()
    trainer.fit()
    return task, trainer


def test_a_few_steps_reduce_the_l1_loss(tmp_path):
    root = side_by_side_dataset(tmp_path / "data")
    run_trainer(root, tmp_path / "run", epochs=10, epochs_decay=0, max_iters=40, lr=2e-3)
    l1 = [r["G_L1"] for r in read_losses(tmp_path / "run")]
    assert len(l1) == 40 and np.mean(l1[-5:]) < 0.7 * np.mean(l1[:5])


def test_resumed_run_computes_the_same_losses(tmp_path):
    root = side_by_side_dataset(tmp_path / "data", count=6)  # 3 batches an epoch: resume lands mid-epoch
    run_trainer(root, tmp_path / "straight", max_iters=8)
    run_trainer(root, tmp_path / "resumed", max_iters=4)
    run_trainer(root, tmp_path / "resumed", resume=True, max_iters=8)
    straight, resumed = read_losses(tmp_path / "straight"), read_losses(tmp_path / "resumed")
    assert [r["iteration"] for r in resumed] == list(range(1, 9))
    assert straight == resumed
    assert (tmp_path / "resumed" / "web" / "index.html").exists()


def test_an_epoch_of_a_set_number_of_iterations_cycles_the_data_and_resumes_exactly(tmp_path):
    root = side_by_side_dataset(tmp_path / "data", count=4)  # one pass over the data: 2 batches
    run_trainer(root, tmp_path / "straight", max_iters=12, iters_per_epoch=5)
    run_trainer(root, tmp_path / "resumed", max_iters=7, iters_per_epoch=5)  # stops mid-epoch, mid-pass
    run_trainer(root, tmp_path / "resumed", resume=True, max_iters=12, iters_per_epoch=5)
    straight, resumed = read_losses(tmp_path / "straight"), read_losses(tmp_path / "resumed")
    assert straight == resumed
    assert [r["epoch"] for r in straight] == [0] * 5 + [1] * 5 + [2] * 2


def test_a_weight_average_halves_a_steps_weight_after_its_half_life():
    network = nn.Linear(2, 2)
    nn.init.zeros_(network.weight)
    average = WeightAverage(network, halflife=4, rampup=1e6)  # no ramp: the half-life from the first update
    nn.init.ones_(network.weight)
    for updates in range(1, 5):
        average.update(network, updates)
    torch.testing.assert_close(average.network.weight, torch.full((2, 2), 0.5))
    ramped = WeightAverage(network, halflife=100)
    nn.init.constant_(network.weight, 3.0)
    ramped.update(network, 1)  # half-life 0.1 at the first update: the random start is all but forgotten
    torch.testing.assert_close(ramped.network.weight, torch.full((2, 2), 3.0), atol=3e-3, rtol=0)
    with pytest.raises(ValueError, match="half-life must be positive"):
        WeightAverage(network, halflife=0)


def test_the_average_of_g_resumes_exactly_and_is_what_renders(tmp_path):
    from vid2vid.inference import load_networks

    root = side_by_side_dataset(tmp_path / "data", count=6)
    task, straight = run_trainer(root, tmp_path / "straight", max_iters=8, ema_halflife=2)
    run_trainer(root, tmp_path / "resumed", max_iters=4, ema_halflife=2)
    _, resumed = run_trainer(root, tmp_path / "resumed", resume=True, max_iters=8, ema_halflife=2)
    average = straight.average.network.state_dict()
    for name, value in resumed.average.network.state_dict().items():
        torch.testing.assert_close(value, average[name], rtol=0, atol=0)
    last = task.networks()["G"].state_dict()
    assert any(not torch.equal(average[name], last[name]) for name in average)
    straight.generator_to_average()  # after training, before the scripts' last render
    for name, value in task.networks()["G"].state_dict().items():
        torch.testing.assert_close(value, average[name], rtol=0, atol=0)
    saved = load_networks(straight.checkpoints.latest, torch.device("cpu"))
    assert set(saved) == {"G", "D"}  # the average in G's place
    for name, value in saved["G"].items():
        torch.testing.assert_close(value, average[name], rtol=0, atol=0)


def test_checkpoints_keep_the_last_k_and_latest(tmp_path):
    root = side_by_side_dataset(tmp_path / "data")
    _, trainer = run_trainer(root, tmp_path / "run", max_iters=8, checkpoint_every=2, keep_checkpoints=2)
    assert [p.name for p in trainer.checkpoints.numbered()] == ["iter_00000006.pt", "iter_00000008.pt"]
    assert torch.load(trainer.checkpoints.latest, weights_only=True)["iteration"] == 8


def test_a_killed_writer_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    folder = CheckpointFolder(tmp_path, keep=3)
    folder.save({"weights": torch.ones(3), "iteration": 1}, 1)

    def dies_half_way(obj, f):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # what a kill in the middle of torch.save leaves behind

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        folder.save({"weights": torch.zeros(3), "iteration": 2}, 2)
    monkeypatch.undo()
    assert torch.equal(folder.load_latest()["weights"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_00000001.pt", "latest.pt"]  # no debris


def test_atomic_save_survives_sigkill(tmp_path):
    target = tmp_path / "state.pt"
    atomic_save({"step": 0}, target)
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, torch; from vid2vid.training import atomic_save\n"
        "big = torch.zeros(50_000_000)\n"
        "print('writing', flush=True)\n"
        "while True: atomic_save({'step': 1, 'big': big}, sys.argv[1])\n"), str(target)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    assert torch.load(target, weights_only=True)["step"] in (0, 1)  # whole, old or new


def test_a_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    root = side_by_side_dataset(tmp_path / "data", count=4)
    run_trainer(root, tmp_path / "run", max_iters=2, checkpoint_every=2)
    before = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    config = tiny_config(root, max_iters=6)
    task = Pix2Pix(config.model, config.train)
    data = AlignedDataset(root, "train", config.data, multiple=task.multiple)
    trainer = Trainer(task, data, config.train, tmp_path / "run", progress=False)
    trainer.resume()
    task.generator.model[1].weight.data.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="loss became nan at iteration 3"):
        trainer.fit()
    after = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert after["iteration"] == 2
    assert all(torch.equal(before["networks"]["G"][k], after["networks"]["G"][k]) for k in before["networks"]["G"])


@pytest.mark.parametrize("amp, gan_mode", [("bf16", "lsgan"), ("fp16", "hinge"), ("none", "wgangp")])
def test_mixed_precision_channels_last_and_every_gan_mode_train(tmp_path, amp, gan_mode):
    root = side_by_side_dataset(tmp_path / "data", count=4)
    config = tiny_config(root, f"model.gan_mode={gan_mode}", max_iters=2, amp=amp, channels_last=True)
    task = Pix2Pix(config.model, config.train)
    data = AlignedDataset(root, "train", config.data, multiple=task.multiple)
    Trainer(task, data, config.train, tmp_path / "run", progress=False).fit()
    records = read_losses(tmp_path / "run")
    assert len(records) == 2 and all(np.isfinite(list(r.values())).all() for r in records)


def test_amp_auto_is_bf16_where_a_gpu_has_it_and_fp32_elsewhere(monkeypatch):
    from vid2vid.training.trainer import resolved_amp

    assert TrainConfig().amp == "auto"
    assert resolved_amp("auto", torch.device("cpu")) == "none"
    assert resolved_amp("auto", torch.device("meta")) == "bf16"  # plans are for such GPUs
    for has_bf16, expected in ((True, "bf16"), (False, "none")):  # e.g. an H100, a V100
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: has_bf16)
        assert resolved_amp("auto", torch.device("cuda")) == expected
    assert [resolved_amp(a, torch.device("cuda")) for a in ("none", "bf16", "fp16")] == ["none", "bf16", "fp16"]


def test_adam_is_the_fused_kernel_on_a_gpu_and_the_default_elsewhere():
    from vid2vid.training import adam

    for device in ("cpu", "meta"):  # the planner builds on meta: the same optimizer state either way
        optimizer = adam(nn.Linear(2, 2, device=device).parameters(), 1e-3, (0.5, 0.999))
        assert optimizer.defaults["fused"] is None and optimizer.defaults["betas"] == (0.5, 0.999)


@pytest.mark.cuda
def test_the_models_train_with_fused_adam_on_a_gpu():
    task = Pix2Pix(Pix2PixConfig().model, TrainConfig(), torch.device("cuda"))
    assert all(optimizer.defaults["fused"] for optimizer in task.optimizers().values())


def test_a_gpu_run_lets_cudnn_time_its_algorithms_unless_told_not_to(tmp_path, monkeypatch):
    # the trainer only reads the device here, so a CUDA context can stand without a GPU
    root = side_by_side_dataset(tmp_path / "data", count=4)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    for setting in (True, False):
        config = tiny_config(root, f"train.cudnn_benchmark={str(setting).lower()}")
        task = Pix2Pix(config.model, config.train)
        data = AlignedDataset(root, "train", config.data, multiple=task.multiple)
        Trainer(task, data, config.train, tmp_path / "run", DistContext(device=torch.device("cuda")), progress=False)
        assert torch.backends.cudnn.benchmark is setting
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    Trainer(task, data, tiny_config(root, "train.cudnn_benchmark=true").train, tmp_path / "cpu", progress=False)
    assert torch.backends.cudnn.benchmark is False  # a CPU run leaves it alone


def test_tensorboard_gets_scalars_and_images_when_installed(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir):
            calls.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, step))

        def add_image(self, tag, image, step, dataformats):
            calls.append(("image", tag, image.shape, dataformats))

        def close(self):
            calls.append(("close",))

    fake = type(sys)("torch.utils.tensorboard")
    fake.SummaryWriter = FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    root = side_by_side_dataset(tmp_path / "data", count=4)
    run_trainer(root, tmp_path / "run", max_iters=2, log_every=2)
    assert ("dir", str(tmp_path / "run" / "tensorboard")) in calls
    assert ("scalar", "loss/G_L1", 2) in calls and ("scalar", "loss/G_L1", 1) not in calls
    assert ("image", "samples/output", (32, 64, 3), "HWC") in calls  # the epoch's batch of 2, side by side
    assert calls[-1] == ("close",)


def test_two_process_ddp_keeps_parameters_identical(tmp_path):
    root = side_by_side_dataset(tmp_path / "data", count=8)
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "tests/ddp_worker.py", "pix2pix", str(root), str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "ddp_report.json").read_text())
    assert report["world_size"] == 2 and report["identical"] and report["changed"]
    # rank 0 alone writes: one loss record per iteration, not one per process
    assert [r["iteration"] for r in read_losses(tmp_path / "run")] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------ scripts


def run_script(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_train_and_test_scripts_with_the_builtin_demo(tmp_path):
    out = tmp_path / "run"
    result = run_script("scripts/train_pix2pix.py", "--output", str(out), "--max-iters", "2", "--quiet",
                        "model.ngf=8", "model.ndf=8")
    assert result.returncode == 0, result.stderr
    assert (out / "config.yaml").exists() and (out / "checkpoints" / "latest.pt").exists()
    assert len(list((out / "demo_data" / "train").glob("*.png"))) == 64

    result = run_script("scripts/train_pix2pix.py", "--output", str(out), "--max-iters", "3", "--quiet",
                        "model.ngf=8", "model.ndf=8")
    assert result.returncode == 1 and "already holds a run; pass --resume" in result.stderr
    result = run_script("scripts/train_pix2pix.py", "--output", str(out), "--resume", "--max-iters", "3",
                        "--quiet", "model.ngf=16", "model.ndf=8")
    assert result.returncode == 1 and "another config" in result.stderr
    result = run_script("scripts/train_pix2pix.py", "--output", str(out), "--resume", "--max-iters", "3",
                        "--quiet", "model.ngf=8", "model.ndf=8")
    assert result.returncode == 0, result.stderr
    assert "resumed and stopped at iteration 3" in result.stdout

    # any image size renders: odd sizes are padded for the U-Net and cropped back
    save(tmp_path / "inputs" / "odd.png", np.full((50, 70, 3), 255))
    result = run_script("scripts/test_pix2pix.py", "--run", str(out), "--input", str(tmp_path / "inputs"),
                        "--output", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "results" / "images" / "odd_output.png").size == (70, 50)
    assert "odd_output.png" in (tmp_path / "results" / "index.html").read_text()


def test_scripts_report_bad_input(tmp_path):
    result = run_script("scripts/train_pix2pix.py", "--output", str(tmp_path / "run"), "model.ngff=8")
    assert result.returncode == 1 and "did you mean model.ngf?" in result.stderr
    result = run_script("scripts/train_pix2pix.py", "--output", str(tmp_path / "run"),
                        f"data.root={tmp_path / 'nowhere'}")
    assert result.returncode == 1 and "nowhere does not exist" in result.stderr
    result = run_script("scripts/test_pix2pix.py", "--run", str(tmp_path / "none"), "--input", str(tmp_path))
    assert result.returncode == 1 and "no checkpoint" in result.stderr
    shutil.rmtree(tmp_path / "run", ignore_errors=True)


def test_the_command_line_gives_user_errors_one_line_and_bugs_their_traceback(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_pix2pix
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    tiny = ["--max-iters", "1", "--quiet", "model.ngf=4", "model.ndf=4", "model.netG=resnet_6blocks"]
    # settings the networks cannot take, found when they are built (not by the config's own checks): one line
    def refuse(self, *args, **kwargs):
        raise ValueError("these settings make no network")

    with monkeypatch.context() as patch:
        patch.setattr(Pix2Pix, "__init__", refuse)
        assert train_pix2pix.main(["--output", str(tmp_path / "a"), *tiny]) == 1
    assert capsys.readouterr().err == "error: these settings make no network\n"

    # a bug inside training is not the user's: it keeps its traceback
    def broken_step(self, batch, ctx):
        raise ValueError("a bug in a training step")

    monkeypatch.setattr(Pix2Pix, "train_step", broken_step)
    with pytest.raises(ValueError, match="a bug in a training step"):
        train_pix2pix.main(["--output", str(tmp_path / "b"), *tiny])
