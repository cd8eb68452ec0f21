"""pix2pixHD: generators, encoder and pooling, multiscale discriminator, losses,
label data, training phases, K-means features, multimodal sampling, scripts."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vid2vid.config import load_config
from vid2vid.data.demo import DEMO_LABEL_NC, build_label_demo_dataset
from vid2vid.data.images import DatasetError
from vid2vid.data.label_maps import instance_boundaries, one_hot_labels
from vid2vid.data.labels import LabelDataConfig, LabelDataset
from vid2vid.models.discriminators import MultiscaleDiscriminator
from vid2vid.models.feature_clusters import cluster_features, load_clusters, sample_feature_map, save_clusters
from vid2vid.models.generators import FeatureEncoder, GlobalGenerator, LocalEnhancer, instance_average
from vid2vid.models.losses import feature_matching_loss
from vid2vid.models.pix2pixhd import Pix2PixHD, Pix2PixHDConfig, label_dataset
from vid2vid.models.vgg import SLICE_ENDS, VGG19Features, VGGLoss, load_vgg19, vgg_loss_or_none
from vid2vid.training import DistContext, StepContext, Trainer, read_losses, seed_everything

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------ components


def test_generator_shapes_and_phases():
    g = GlobalGenerator(7, 3, ngf=4, n_downsampling=3, n_blocks=2)
    assert g(torch.randn(2, 7, 32, 48)).shape == (2, 3, 32, 48) and g.multiple == 8
    local = LocalEnhancer(7, 3, ngf=4, n_downsampling=2, n_blocks=2, n_local_enhancers=2, n_blocks_local=1)
    assert local.multiple == 16
    assert local(torch.randn(1, 7, 64, 96)).shape == (1, 3, 64, 96)
    assert local(torch.randn(1, 7, 64, 96), global_only=True).shape == (1, 3, 16, 24)


def test_encoder_output_is_constant_over_each_instance():
    encoder = FeatureEncoder(3, 3, ngf=4, n_downsampling=2)
    instances = torch.zeros(2, 1, 16, 16, dtype=torch.long)
    instances[:, :, :, 8:] = 7
    instances[1, :, :4] = 9
    features = encoder(torch.randn(2, 3, 16, 16), instances)
    for b in range(2):
        for i in instances[b].unique():
            values = features[b][:, instances[b, 0] == i]
            assert torch.allclose(values, values[:, :1].expand_as(values), atol=1e-6)


def test_instance_average_on_a_known_map():
    features = torch.arange(8.0).view(1, 2, 2, 2)  # channel 0: [[0, 1], [2, 3]], channel 1: [[4, 5], [6, 7]]
    instances = torch.tensor([[[[1, 1], [2, 5]]]])
    out = instance_average(features, instances)
    expected = torch.tensor([[[[0.5, 0.5], [2, 3]], [[4.5, 4.5], [6, 7]]]])
    torch.testing.assert_close(out, expected)
    # the same ids in two images are two instances
    both = instance_average(torch.cat((features, features + 10)), torch.cat((instances, instances)))
    torch.testing.assert_close(both[1], expected[0] + 10)


def test_boundary_map_of_a_known_instance_map():
    instances = torch.tensor([[[[1, 1, 2], [1, 1, 2], [3, 3, 3]]]])
    expected = torch.tensor([[[[0, 1, 1], [1, 1, 1], [1, 1, 1]]]], dtype=torch.float32)
    torch.testing.assert_close(instance_boundaries(instances), expected)
    assert instance_boundaries(torch.zeros(1, 1, 4, 4, dtype=torch.long)).sum() == 0


def test_one_hot_labels():
    labels = torch.tensor([[[[0, 2], [1, 2]]]])
    out = one_hot_labels(labels, 3)
    assert out.shape == (1, 3, 2, 2) and torch.equal(out.argmax(1, keepdim=True), labels)


def test_multiscale_discriminator_and_feature_matching():
    d = MultiscaleDiscriminator(5, ndf=4, n_layers=3, num_D=3)
    outputs = d(torch.randn(1, 5, 64, 64))
    assert len(outputs) == 3 and all(len(scale) == 5 for scale in outputs)
    assert [scale[-1].shape[-1] for scale in outputs] == [11, 7, 5]
    assert feature_matching_loss(outputs, outputs).item() == 0
    shifted = [[f + 1 for f in scale] for scale in outputs]
    # every compared layer differs by 1: 3 scales x 4 layers x (4 / 4) / 3 scales x weight 10
    assert feature_matching_loss(shifted, outputs, weight=10).item() == pytest.approx(40.0)


def torchvision_style_vgg19(path):
    """A VGG19 state dict laid out as torchvision's (random weights; with a classifier entry)."""
    state = {f"features.{k}": v for k, v in VGG19Features().features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return state


def test_vgg_weights_load_from_a_torchvision_state_dict(tmp_path):
    state = torchvision_style_vgg19(tmp_path / "vgg19.pth")
    vgg = load_vgg19(tmp_path / "vgg19.pth")
    assert torch.equal(vgg.features[0].weight, state["features.0.weight"])
    assert [f.shape[1] for f in vgg(torch.zeros(1, 3, 32, 32))] == [64, 128, 256, 512, 512]
    assert len(SLICE_ENDS) == 5 and not any(p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    loss = VGGLoss(vgg)
    assert loss(x, x).item() == 0 and loss(x, -x).item() > 0
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="is not a torchvision VGG19 state dict"):
        load_vgg19(tmp_path / "bad.pth")


def test_without_vgg_weights_a_warning_or_an_error(tmp_path):
    with pytest.warns(UserWarning, match="training without the VGG perceptual loss"):
        assert vgg_loss_or_none(tmp_path / "missing.pth", required=False) is None
    with pytest.raises(ValueError, match="the VGG loss is required .*troubleshooting.md#missing-weights-files"):
        vgg_loss_or_none(tmp_path / "missing.pth", required=True)
    torchvision_style_vgg19(tmp_path / "vgg.pth")
    assert isinstance(vgg_loss_or_none(tmp_path / "vgg.pth", required=True), VGGLoss)


# ------------------------------------------------------------------------------ data


def test_label_dataset_reads_the_pix2pixhd_layout(tmp_path):
    root = build_label_demo_dataset(tmp_path, train=2, test=1, size=32)
    data = LabelDataset(root, "train", LabelDataConfig(preprocess="none", flip=False), label_nc=DEMO_LABEL_NC,
                        use_instance=True)
    item = data[0]
    assert item["label"].shape == item["instance"].shape == (1, 32, 32) and item["image"].shape == (3, 32, 32)
    assert item["label"].dtype == item["instance"].dtype == torch.int64
    # Cityscapes-style instance ids: class * 1000 + number
    assert torch.equal(item["instance"] // 1000, item["label"])
    test = LabelDataset(root, "test", LabelDataConfig(preprocess="none"), label_nc=DEMO_LABEL_NC, use_instance=True,
                        train=False, need_images=False)
    assert "image" not in test[0]


def save_map(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)


def test_extra_input_channels(tmp_path):
    root = build_label_demo_dataset(tmp_path / "data", train=2, test=1, size=32)
    for i in range(2):
        save_map(root / "train_depth" / f"{i:04d}.png", np.full((32, 32), 64 * i, np.uint8))
    config = tiny_config(root, "data.extra=[depth]", "model.extra_nc=1", max_iters=1)
    task, data = make_task(config)
    assert data[1]["extra"].shape == (1, 32, 32) and data[1]["extra"].mean().item() == pytest.approx(64 / 127.5 - 1)
    batch = {k: v.unsqueeze(0) for k, v in data[1].items() if torch.is_tensor(v)}
    assert task.encode_labels(batch).shape[1] == DEMO_LABEL_NC + 1 + 1
    assert task.synthesize(batch).shape == (1, 3, 32, 32)
    with pytest.raises(DatasetError, match="have 1 channels but model.extra_nc is 3"):
        make_task(tiny_config(root, "data.extra=[depth]", "model.extra_nc=3"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("label_too_large", "holds label 9, but model.label_nc is 6"),
        ("instance_size", r"0000.png is 16x8 but its label map .* is 16x16"),
        ("missing_images", "2 label maps .* but 1 files"),
        ("rgb_label", "is an RGB image; label and instance maps hold one id per pixel"),
        ("no_labels", "no label maps"),
    ],
)
def test_bad_label_data_names_the_file(tmp_path, case, message):
    for i in range(2):
        save_map(tmp_path / "train_label" / f"{i:04d}.png", np.full((16, 16), 9 if case == "label_too_large" else 1,
                                                                 np.uint8))
        save_map(tmp_path / "train_inst" / f"{i:04d}.png",
                 np.zeros((8, 16) if case == "instance_size" and i == 0 else (16, 16), np.uint16))
        if case != "missing_images" or i == 0:
            save_map(tmp_path / "train_img" / f"{i:04d}.png", np.zeros((16, 16, 3), np.uint8))
    if case == "rgb_label":
        save_map(tmp_path / "train_label" / "0000.png", np.zeros((16, 16, 3), np.uint8))
    if case == "no_labels":
        for f in (tmp_path / "train_label").iterdir():
            f.unlink()
    with pytest.raises(DatasetError, match=message):
        LabelDataset(tmp_path, "train", LabelDataConfig(preprocess="none"), label_nc=6, use_instance=True)


# -------------------------------------------------------------------------- training


def tiny_config(root, *overrides, **train):
    settings = {"batch_size": 2, "epochs": 20, "epochs_decay": 0, "checkpoint_every": 100, "workers": 0,
                "device": "cpu", **train}
    return load_config(Pix2PixHDConfig, None, [
        f"model.label_nc={DEMO_LABEL_NC}", "model.ngf=8", "model.n_downsample_global=2", "model.n_blocks_global=2",
        "model.ndf=8", "model.nef=4", "model.n_downsample_E=2", "model.lambda_vgg=0", f"data.root={root}",
        "data.preprocess=none", *[f"train.{k}={v}" for k, v in settings.items()], *overrides,
    ])


def make_task(config):
    seed_everything(config.train.seed)
    task = Pix2PixHD(config.model, config.train)
    data = label_dataset(config, config.data.root, "train", multiple=task.multiple)
    return task, data


def image_error(task, data):
    batch = {k: v.unsqueeze(0) for k, v in data[0].items() if torch.is_tensor(v)}
    return (task.synthesize(batch) - batch["image"]).abs().mean().item()


def test_a_few_steps_bring_the_output_closer_to_the_image(tmp_path):
    root = build_label_demo_dataset(tmp_path / "data", train=2, test=1, size=32)
    config = tiny_config(root, "model.use_features=true", "model.lambda_l1=1", max_iters=30, lr=1e-3)
    task, data = make_task(config)
    before = image_error(task, data)
    Trainer(task, data, config.train, tmp_path / "run", progress=False).fit()
    assert image_error(task, data) < 0.7 * before
    losses = read_losses(tmp_path / "run")
    assert {"G_GAN", "G_FM", "G_L1", "D_real", "D_fake"} <= set(losses[0])


def test_local_enhancer_phases(tmp_path):
    root = build_label_demo_dataset(tmp_path / "data", train=2, test=1, size=32)
    config = tiny_config(root, "model.netG=local", "model.global_epochs=1", "model.niter_fix_global=1")
    task, data = make_task(config)
    ctx = StepContext(config.train, DistContext(), task.optimizers())
    batch = {k: v.unsqueeze(0) for k, v in data[0].items() if torch.is_tensor(v)}
    assert [task._phase(e) for e in range(3)] == ["global", "fixed_global", "joint"]

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    g = task.generator
    ctx.epoch = 0  # G1 alone, at half resolution: the enhancer is untouched
    front = snapshot(g.front)
    task.train_step(batch, ctx)
    assert all(torch.equal(a, b) for a, b in zip(front, snapshot(g.front)))
    ctx.epoch = 1  # the enhancer alone: G1 is fixed
    body, front = snapshot(g.global_body), snapshot(g.front)
    task.train_step(batch, ctx)
    assert all(torch.equal(a, b) for a, b in zip(body, snapshot(g.global_body)))
    assert not all(torch.equal(a, b) for a, b in zip(front, snapshot(g.front)))
    ctx.epoch = 2
    body = snapshot(g.global_body)
    task.train_step(batch, ctx)
    assert not all(torch.equal(a, b) for a, b in zip(body, snapshot(g.global_body)))


# ------------------------------------------------------------------------ multimodal


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    blobs = np.concatenate((rng.normal(-1, 0.05, (40, 3)), rng.normal(1, 0.05, (40, 3))))
    centres = cluster_features({4: blobs, 7: blobs[:1]}, n_clusters=2)
    found = np.sort(centres[4][:, 0])
    assert np.allclose(found, [-1, 1], atol=0.05)
    assert centres[7].shape == (1, 3)  # fewer instances than clusters


def test_sampling_clusters_is_multimodal_and_repeatable():
    label = torch.tensor([[[[1, 1, 2, 2]]]])
    instance = torch.tensor([[[[1000, 1000, 2000, 2001]]]])
    centres = {1: np.array([[0.0, 0.0]], np.float32), 2: np.array([[1.0, 1.0], [-1.0, -1.0]], np.float32)}
    maps = [sample_feature_map(label, instance, centres, 2, torch.Generator().manual_seed(s)) for s in range(8)]
    assert all(torch.equal(m[0, :, 0, :2], torch.zeros(2, 2)) for m in maps)
    per_instance = {tuple(m[0, 0, 0, 2:].tolist()) for m in maps}
    assert len(per_instance) > 1  # different draws, different clusters
    again = sample_feature_map(label, instance, centres, 2, torch.Generator().manual_seed(3))
    assert torch.equal(again, maps[3])
    per_class = sample_feature_map(label, instance, centres, 2, torch.Generator().manual_seed(5), per_class=True)
    assert per_class[0, 0, 0, 2] == per_class[0, 0, 0, 3]  # one cluster for the whole class


def test_different_clusters_give_different_images(tmp_path):
    root = build_label_demo_dataset(tmp_path / "data", train=2, test=1, size=32)
    config = tiny_config(root, "model.use_features=true")
    task, data = make_task(config)
    batch = {k: v.unsqueeze(0) for k, v in data[0].items() if torch.is_tensor(v)}
    first = torch.full((1, 3, 32, 32), 0.5)
    assert torch.equal(task.synthesize(batch, first), task.synthesize(batch, first.clone()))
    assert not torch.allclose(task.synthesize(batch, first), task.synthesize(batch, -first))


def test_cluster_file_from_another_config_is_refused(tmp_path):
    model = Pix2PixHDConfig().model
    fields = {k: getattr(model, k) for k in ("label_nc", "feat_num", "nef", "n_downsample_E", "use_instance")}
    save_clusters(tmp_path / "c.npz", {1: np.zeros((2, 3), np.float32)}, fields)
    assert load_clusters(tmp_path / "c.npz", fields)[1].shape == (2, 3)
    with pytest.raises(DatasetError, match=r"c.npz was made for another config \(label_nc 35 != 6\)"):
        load_clusters(tmp_path / "c.npz", {**fields, "label_nc": 6})
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="cannot read the cluster file .*bad.npz"):
        load_clusters(tmp_path / "bad.npz", fields)


# --------------------------------------------------------------------------- scripts


def run_script(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_train_encode_and_render_multimodal_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    result = run_script("scripts/train_pix2pixhd.py", "--output", str(out), "--max-iters", "2", "--quiet",
                        "model.ngf=8", "model.n_blocks_global=1")
    assert result.returncode == 0, result.stderr
    assert "training without the VGG perceptual loss" in result.stderr
    result = run_script("scripts/encode_features.py", "--run", str(out), "--clusters", "3")
    assert result.returncode == 0, result.stderr
    assert (out / "features_clusters.npz").exists()
    result = run_script("scripts/test_pix2pixhd.py", "--run", str(out), "--input", str(out / "demo_data"),
                        "--n-samples", "2", "--output", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "results" / "images").glob("0000_*"))
    assert names == ["0000_input_label.png", "0000_real_image.png", "0000_synthesized_image_0.png",
                     "0000_synthesized_image_1.png"]

    result = run_script("scripts/train_pix2pixhd.py", "--output", str(tmp_path / "strict"), "--max-iters", "1",
                        "--quiet", "model.vgg_required=true", "--vgg-weights", str(tmp_path / "none.pth"))
    assert result.returncode == 1 and "the VGG loss is required" in result.stderr
