"""Typed configs: YAML files and dotted command-line overrides, validated once.

A config is a tree of frozen dataclasses. :func:`load_config` builds one from
its defaults, a YAML file and ``key.sub=value`` overrides, checking every key
and type on the way, so that code never looks into raw dicts::

    config = load_config(Pix2PixConfig, "configs/pix2pix_facades.yaml", ["model.ngf=32", "train.lr=1e-4"])
    save_config(config, out_dir / "config.yaml")   # the resolved config, next to the checkpoints

An unknown key is an error that suggests the nearest valid one; a value of the
wrong type, an error that names the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from vid2vid.errors import UserError

C = TypeVar("C")


class ConfigError(UserError):
    """A config file or override that does not fit the config's schema."""


def describe_type(tp: Any) -> str:
    """A type hint in words, as errors and docs/configs.md show it: ``one of 'a', 'b'``, ``int or null``."""
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if origin in (tuple, list):
        args = get_args(tp)
        inner = describe_type(args[0]) if args else "value"
        return f"a list of {inner}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """value checked against (and, for nested configs and lists, built as) tp."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected {describe_type(tp)}, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: expected {describe_type(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _convert(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {describe_type(tp)}, got {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected {describe_type(tp)}, got {value!r}")
        args = [a for a in get_args(tp) if a is not Ellipsis]
        items = [_convert(v, args[0], f"{key}[{i}]") if args else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string; users mean the number
        try:
            return float(value)
        except ValueError:
            pass
    if tp is Any or (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        return value
    raise ConfigError(f"{key}: expected {describe_type(tp)}, got {value!r} ({type(value).__name__})")


def _build(cls: type[C], values: Mapping[str, Any], prefix: str = "") -> C:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; valid keys: {', '.join(names)}"
            raise ConfigError(f"unknown config key {prefix}{key}{hint}")
    default = cls()
    kwargs = {}
    for name in names:
        if name in values:
            current = getattr(default, name)
            value = values[name]
            if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
                value = {**_as_dict(current), **value}
            kwargs[name] = _convert(value, hints[name], prefix + name)
    try:
        return dataclasses.replace(default, **kwargs)
    except (ValueError, TypeError) as e:  # a __post_init__ check of the config class
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def _as_dict(config: Any) -> dict[str, Any]:
    """A config as plain YAML-ready values (tuples become lists)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {part} is not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"model.ngf=32"`` -> ("model.ngf", 32); the value is read as YAML (numbers, booleans, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def read_sections(path: str | os.PathLike) -> dict[str, Any]:
    """A config file's raw sections (for telling which model a file is for before loading it).

    Raises:
        ConfigError: unreadable file or YAML, or not a mapping of sections.
    """
    try:
        with open(path) as f:
            loaded = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config {os.fspath(path)!r}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {os.fspath(path)!r} is not valid YAML: {e}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config {os.fspath(path)!r} must be a mapping of sections, got {type(loaded).__name__}")
    return loaded or {}


def load_config(cls: type[C], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> C:
    """The config of type ``cls``: its defaults, updated by the YAML file at path, then by the overrides.

    Raises:
        ConfigError: unreadable YAML, an unknown key (with the nearest valid one), a wrong type.
    """
    tree = read_sections(path) if path is not None else {}
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    return _build(cls, tree)


def config_to_yaml(config: Any) -> str:
    """The config as YAML that :func:`load_config` reads back to an equal config."""
    return yaml.safe_dump(_as_dict(config), sort_keys=False)


def save_config(config: Any, path: str | os.PathLike) -> None:
    with open(path, "w") as f:
        f.write(config_to_yaml(config))


__all__ = ["ConfigError", "load_config", "save_config", "config_to_yaml", "parse_override", "describe_type"]
