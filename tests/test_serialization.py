"""Loading never runs code from a file, malformed files get one-line errors,
weights export to safetensors, and one run folder has one writer."""

import builtins
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import flownet
from flownet.training import checkpoint_paths, train_flownet
from tests.test_flownet_training import tiny as tiny_flownet_config
from tests.test_pix2pix import side_by_side_dataset, tiny_config
from vid2vid.config import save_config
from vid2vid.data.aligned import AlignedDataset
from vid2vid.inference import load_networks, load_run
from vid2vid.models.pix2pix import Pix2Pix, Pix2PixConfig
from vid2vid.models.vgg import load_vgg19
from vid2vid.serialization import CheckpointError
from vid2vid.training import Trainer
from vid2vid.training.checkpoint import set_rng_state
from vid2vid.training.run_lock import RunLockedError, run_lock
from vid2vid.training.trainer import seed_everything

ROOT = Path(__file__).resolve().parent.parent


class Payload:
    """What a crafted checkpoint carries: unpickling it creates a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


def craft(path: Path, marker: Path, around: dict | None = None) -> Path:
    """A checkpoint whose every key holds tensors but one, the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**(around or {}), "payload": Payload(marker)}, path)
    return path


def assert_refused(error: BaseException | str, path: Path, marker: Path) -> None:
    message = str(error)
    assert not marker.exists(), "the payload ran"
    assert f"refused to load {path}: its pickle calls exec" in message, message
    assert "\n" not in message.strip()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained pix2pix run folder (config.yaml, checkpoints/latest.pt)."""
    base = tmp_path_factory.mktemp("serialization")
    root = side_by_side_dataset(base / "data", count=4)
    config = tiny_config(root, max_iters=2)
    seed_everything(0)
    task = Pix2Pix(config.model, config.train)
    Trainer(task, AlignedDataset(root, "train", config.data, multiple=task.multiple), config.train, base / "run",
            progress=False).fit()
    save_config(config, base / "run" / "config.yaml")
    return base / "run"


def fresh_trainer(run: Path, output: Path) -> Trainer:
    config = tiny_config(run.parent / "data", max_iters=4)
    task = Pix2Pix(config.model, config.train)
    return Trainer(task, AlignedDataset(run.parent / "data", "train", config.data, multiple=task.multiple),
                   config.train, output, progress=False)


def copy_run(run: Path, to: Path) -> Path:
    (to / "checkpoints").mkdir(parents=True)
    (to / "config.yaml").write_text((run / "config.yaml").read_text())
    return to


# ------------------------------------------------------------------ payloads


def test_the_payload_is_real(tmp_path):
    # the same file, loaded the way this library loaded checkpoints before, runs the payload
    path = craft(tmp_path / "bad.pt", tmp_path / "ran")
    torch.load(path, weights_only=False)
    assert (tmp_path / "ran").exists()


def test_trainer_resume_refuses_a_payload(tmp_path, run):
    folder = copy_run(run, tmp_path / "run")
    latest = craft(folder / "checkpoints" / "latest.pt", tmp_path / "ran", torch.load(
        run / "checkpoints" / "latest.pt", weights_only=True))
    with pytest.raises(CheckpointError) as e:
        fresh_trainer(run, folder).resume()
    assert_refused(e.value, latest, tmp_path / "ran")


def test_rendering_refuses_a_payload(tmp_path, run):
    folder = copy_run(run, tmp_path / "run")
    latest = craft(folder / "checkpoints" / "latest.pt", tmp_path / "ran")
    with pytest.raises(CheckpointError) as e:
        load_networks(latest, torch.device("cpu"))
    assert_refused(e.value, latest, tmp_path / "ran")


def test_flownet_loaders_refuse_a_payload(tmp_path):
    path = craft(tmp_path / "FlowNet2-S_checkpoint.pth.tar", tmp_path / "ran")
    with pytest.raises(CheckpointError) as e:
        flownet.load_checkpoint(path)
    assert_refused(e.value, path, tmp_path / "ran")

    config = tiny_flownet_config(steps=2)
    latest, _ = checkpoint_paths(tmp_path / "train", config.model)
    craft(latest, tmp_path / "ran")
    with pytest.raises(CheckpointError) as e:
        train_flownet(config, tmp_path / "train", resume=True, progress=False)
    assert_refused(e.value, latest, tmp_path / "ran")


def test_vgg_weights_refuse_a_payload(tmp_path):
    path = craft(tmp_path / "vgg19.pth", tmp_path / "ran")
    with pytest.raises(CheckpointError) as e:
        load_vgg19(path)
    assert_refused(e.value, path, tmp_path / "ran")


def test_scripts_refuse_a_payload_in_one_line(tmp_path, run):
    folder = copy_run(run, tmp_path / "run")
    latest = craft(folder / "checkpoints" / "latest.pt", tmp_path / "ran")
    for args in (["scripts/test_pix2pix.py", "--run", str(folder), "--input", str(run.parent / "data" / "train"),
                  "--output", str(tmp_path / "out")],
                 ["scripts/train_pix2pix.py", "--output", str(folder), "--resume", "--quiet",
                  f"data.root={run.parent / 'data'}", "model.netG=resnet_6blocks", "model.ngf=8", "model.ndf=8",
                  "data.load_size=36", "data.crop_size=32", "train.batch_size=2", "train.epochs=2",
                  "train.epochs_decay=2", "train.checkpoint_every=2", "train.log_every=1", "train.workers=0",
                  "train.device=cpu"]):
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert_refused(result.stderr, latest, tmp_path / "ran")


# ----------------------------------------------------------- what still loads


def test_trainer_checkpoints_hold_only_tensors_and_plain_values(run):
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)  # torch's own allowlist, nothing more
    assert isinstance(state["rng"]["numpy"][1], torch.Tensor)


def test_a_run_written_before_holds_numpy_arrays_and_resumes(tmp_path, run):
    folder = copy_run(run, tmp_path / "run")
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    np.random.seed(123)
    old_numpy = np.random.get_state()
    state["rng"]["numpy"] = old_numpy  # what rng_state stored until 2026-11: a uint32 array in a tuple
    torch.save(state, folder / "checkpoints" / "latest.pt")
    with pytest.raises(Exception):
        torch.load(folder / "checkpoints" / "latest.pt", weights_only=True)
    np.random.seed(0)
    assert fresh_trainer(run, folder).resume()
    np.random.set_state(old_numpy)
    expected = np.random.random(4)
    set_rng_state(state["rng"])
    assert np.array_equal(np.random.random(4), expected)


def test_official_flownet2_files_load(tmp_path):
    # NVIDIA's files: legacy serialization, best_EPE a numpy 1.x float64 (numpy.core)
    model = flownet.FlowNet2S()
    path = tmp_path / "FlowNet2-S_checkpoint.pth.tar"
    torch.save({"arch": "FlowNet2S", "epoch": 3, "best_EPE": np.float64(2.5), "state_dict": model.state_dict()},
               path, _use_new_zipfile_serialization=False)
    old = path.read_bytes().replace(b"numpy._core.multiarray\nscalar", b"numpy.core.multiarray\nscalar")
    assert b"numpy.core.multiarray\nscalar" in old
    path.write_bytes(old)
    assert flownet.read_checkpoint(path)["best_EPE"] == 2.5
    loaded = flownet.load_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


# ------------------------------------------------------------ malformed files


def test_malformed_checkpoints_get_one_line_naming_the_file(tmp_path, run):
    folder = copy_run(run, tmp_path / "run")
    latest = folder / "checkpoints" / "latest.pt"
    good = (run / "checkpoints" / "latest.pt").read_bytes()
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    cases = {
        "truncated": (lambda: latest.write_bytes(good[: len(good) // 2]), "is not a readable PyTorch checkpoint"),
        "empty": (lambda: latest.write_bytes(b""), "is not a readable PyTorch checkpoint"),
        "missing key": (lambda: torch.save({k: v for k, v in state.items() if k != "optimizers"}, latest),
                        "has no 'optimizers'"),
        "another model": (lambda: torch.save({**state, "networks": {**state["networks"], "G": {}}}, latest),
                          "does not fit this run"),
    }
    for name, (write, message) in cases.items():
        write()
        with pytest.raises(CheckpointError) as e:
            fresh_trainer(run, folder).resume()
        assert message in str(e.value) and str(latest) in str(e.value), name
        assert "\n" not in str(e.value), name


# ----------------------------------------------------------------- safetensors


def test_exported_weights_render_like_the_run(tmp_path, run):
    pytest.importorskip("safetensors")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "config.yaml").write_text((run / "config.yaml").read_text())
    result = subprocess.run([sys.executable, "scripts/export_weights.py", str(run), "--output",
                             str(shared / "generator.safetensors")], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0 and "wrote networks G to" in result.stdout, result.stderr

    def make(config, device):
        return Pix2Pix(config.model, config.train, device)

    trained, _, _ = load_run(run, Pix2PixConfig, make, torch.device("cpu"))
    exported, _, folder = load_run(shared / "generator.safetensors", Pix2PixConfig, make, torch.device("cpu"))
    assert folder == shared
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.manual_seed(0)
    want = trained.translate(x, eval_mode=True)
    torch.manual_seed(0)
    assert torch.equal(exported.translate(x, eval_mode=True), want)

    (shared / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="broken.safetensors is not a readable safetensors file"):
        load_run(shared / "broken.safetensors", Pix2PixConfig, make, torch.device("cpu"))


# ----------------------------------------------------------------- run lock


def hold_lock_in_a_child(folder: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from vid2vid.training.run_lock import run_lock\n"
        "with run_lock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"), str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_trainer_stops_naming_the_holder(tmp_path):
    child = hold_lock_in_a_child(tmp_path / "run")
    try:
        with pytest.raises(RunLockedError) as e:
            with run_lock(tmp_path / "run"):
                pass
        message = str(e.value)
        assert str(tmp_path / "run") in message and f"process {child.pid} on host {socket.gethostname()}" in message
        assert "since 20" in message

        result = subprocess.run([sys.executable, "scripts/train_pix2pix.py", "--output", str(tmp_path / "run"),
                                 "--quiet", "model.ngf=8", "model.ndf=8"], capture_output=True, text=True,
                                cwd=ROOT, timeout=300)
        assert result.returncode == 1 and "is in use by another trainer" in result.stderr, result.stderr
        assert not (tmp_path / "run" / "config.yaml").exists()  # stopped before touching the run
    finally:
        child.kill()
        child.wait()


def test_a_lock_left_by_a_killed_trainer_never_blocks(tmp_path):
    child = hold_lock_in_a_child(tmp_path / "run")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert (tmp_path / "run" / "run.lock").exists()
    with run_lock(tmp_path / "run"):
        assert f"process {os.getpid()}" in (tmp_path / "run" / "run.lock").read_text()
