"""The documentation cannot rot: its runnable commands run, its links and the troubleshooting
anchors that errors print lead somewhere."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))

# what makes each script's documented command cheap here (appended to it)
TINY_VID2VID = ["model.ngf=8", "model.n_downsample_G=2", "model.n_blocks=2", "model.n_blocks_local=1", "model.ndf=8",
                "model.n_layers_D=2", "model.num_D=1", "model.n_scales_temporal=2", "schedule.n_frames_start=4",
                "schedule.n_frames_total=4", "train.workers=0"]
TINY = {
    "train_vid2vid.py": ["--max-iters", "1", "--quiet", *TINY_VID2VID],
    "render_vid2vid.py": ["--max-frames", "3", "--quiet"],
    "train_pix2pixhd.py": ["--max-iters", "1", "--quiet", "model.ngf=8", "model.n_blocks_global=1", "train.workers=0"],
    "encode_features.py": ["--clusters", "2"],
    "test_pix2pixhd.py": [],
    "demo_ops.py": ["--size", "64x96"],
    "train_unpaired.py": ["--max-iters", "1", "--quiet", "model.ngf=8", "model.ndf=8", "data.load_size=36",
                          "data.crop_size=32"],
    "translate.py": [],
}


def tiny_settings(script: str | None, argv: list[str]) -> list[str]:
    """What makes a documented command cheap here: its script's settings; a plan costs as much as its model
    (a Python-level pass over every op on the meta device), so a vid2vid config plans the tiny vid2vid."""
    if script == "plan_gpu.py":
        return TINY_VID2VID if any("vid2vid" in word for word in argv) else []
    return TINY.get(script, [])


def runnable_commands(text: str) -> list[list[str]]:
    """The commands of the ```bash blocks that follow a ``<!-- runnable -->`` line, continuation
    lines joined, comments dropped, each script's tiny settings appended."""
    commands = []
    for block in re.findall(r"<!-- runnable -->\n```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                script = Path(argv[1]).name if len(argv) > 1 and argv[1].startswith("scripts/") else None
                commands.append(argv + tiny_settings(script, argv))
    return commands


@pytest.mark.parametrize("page", [p for p in DOCS if "<!-- runnable -->" in p.read_text()], ids=lambda p: p.name)
def test_the_runnable_commands_of_each_page_run(page, tmp_path):
    # in a scratch folder beside links to scripts/ and configs/, so that runs/ and results/ land there
    for name in ("scripts", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    commands = runnable_commands(page.read_text())
    assert commands
    for argv in commands:
        assert argv[0] == "python", argv
        result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=tmp_path,
                                timeout=600)
        assert result.returncode == 0, f"{page.name}: {shlex.join(argv)}\n{result.stderr[-3000:]}"


def test_links_between_pages_resolve():
    for page in [ROOT / "README.md", *DOCS]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to {target}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_troubleshooting_anchor_that_errors_print_exists():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", page, re.M)}
    sources = [*ROOT.glob("vid2vid/**/*.py"), *ROOT.glob("flownet/*.py"), *ROOT.glob("scripts/*.py"), ROOT / "setup.py"]
    used = set()
    for path in sources:
        text = path.read_text()
        used |= set(re.findall(r'see\("([\w-]+)"\)', text)) | set(re.findall(r"troubleshooting\.md#([\w-]+)", text))
    assert len(used) >= 7
    assert used <= anchors, used - anchors
