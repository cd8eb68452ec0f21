"""Typed YAML configs with dotted overrides (vid2vid.config)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from vid2vid.config import ConfigError, config_to_yaml, load_config, parse_override, save_config
from vid2vid.models.pix2pix import Pix2PixConfig


@dataclass(frozen=True)
class Inner:
    size: int = 4
    scale: float = 1.0
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_defaults_file_and_overrides(tmp_path):
    assert load_config(Outer) == Outer()
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  size: 8\n  sizes: [3, 4, 5]\nflag: true\n")
    config = load_config(Outer, path, ["inner.scale=2", "inner.mode=b", "inner.limit=7", "inner.name=hello"])
    assert config == Outer(Inner(size=8, scale=2.0, name="hello", mode="b", sizes=(3, 4, 5), limit=7), flag=True)
    assert isinstance(config.inner.scale, float)
    # the file's other keys in a section stay when an override touches one
    assert load_config(Outer, path, ["inner.size=9"]).inner.sizes == (3, 4, 5)


def test_round_trip_through_yaml(tmp_path):
    config = load_config(Pix2PixConfig, None, ["model.ngf=32", "train.max_iters=5", "data.root=some/where"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(Pix2PixConfig, tmp_path / "config.yaml") == config
    assert "ngf: 32" in config_to_yaml(config)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["inner.sise=3"], "unknown config key inner.sise; did you mean inner.size?"),
        (["inr.size=3"], "unknown config key inr; did you mean inner?"),
        (["zzz=1"], "unknown config key zzz; valid keys: inner, flag"),
        (["inner.size=abc"], "inner.size: expected int, got 'abc'"),
        (["inner.size=1.5"], "inner.size: expected int, got 1.5"),
        (["inner.size=true"], "inner.size: expected int, got True"),
        (["flag=3"], "flag: expected bool, got 3"),
        (["inner.mode=c"], "inner.mode: expected one of 'a', 'b', got 'c'"),
        (["inner.sizes=[1, x]"], r"inner.sizes\[1\]: expected int, got 'x'"),
        (["inner.size=0"], "inner: size must be at least 1, got 0"),
        (["inner=5"], "inner: expected a mapping"),
        (["novalue"], "must look like section.key=value"),
    ],
)
def test_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(Outer, None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("inner: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(Outer, tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        load_config(Outer, tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(Outer, tmp_path / "empty.yaml") == Outer()


def test_override_values_are_read_as_yaml():
    assert load_config(Inner, None, ["scale=1e-4"]).scale == 1e-4  # YAML 1.1 reads 1e-4 as text
    assert parse_override("a=null") == ("a", None)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=text") == ("a", "text")


def test_shipped_configs_load():
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parent.parent / "configs").glob("pix2pix_*.yaml")):
        load_config(Pix2PixConfig, path)


def test_the_config_reference_in_docs_is_current():
    from vid2vid.config_reference import reference

    path = Path(__file__).resolve().parents[1] / "docs" / "configs.md"
    assert path.read_text() == reference(), \
        "docs/configs.md is stale: python -m vid2vid.config_reference > docs/configs.md"
