"""The template of a new model (vid2vid/models/template.py, docs/adding_a_model.md) trains."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vid2vid.config import ConfigError, load_config
from vid2vid.models.template import Template, TemplateConfig

ROOT = Path(__file__).resolve().parent.parent


def test_the_template_trains_from_its_script_and_resumes(tmp_path):
    def train(*args):
        result = subprocess.run([sys.executable, "scripts/train_template.py", "--output", str(tmp_path / "run"),
                                 "--quiet", "train.lr=1e-3", *args], capture_output=True, text=True, cwd=ROOT,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["L1"] for line in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]

    losses = train("--max-iters", "6")
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert len(train("--max-iters", "8", "--resume")) == 8
    saved = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["iteration"] == 8 and set(saved["networks"]) == {"G"}


def test_the_template_config_checks_its_keys():
    config = load_config(TemplateConfig, ROOT / "configs" / "template_demo.yaml", ["model.ngf=8"])
    task = Template(config.model, config.train)
    assert config.model.ngf == 8 and task.multiple > 1
    with pytest.raises(ConfigError, match="model: lambda_L1 must be positive"):
        load_config(TemplateConfig, ROOT / "configs" / "template_demo.yaml", ["model.lambda_L1=0"])
