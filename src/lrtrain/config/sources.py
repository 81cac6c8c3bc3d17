"""Where a config's text comes from: the configs shipped with lrtrain (``-c NAME``; the
embedded default is the lesson's), or a file (``-c PATH``), read into a raw mapping — before
any override or validation (:mod:`lrtrain.config.schema`)."""

from __future__ import annotations

import difflib
import functools
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrain.config.yaml_io import parse_yaml
from lrtrain.errors import ConfigError

if TYPE_CHECKING:  # importlib.resources.abc from Python 3.11 on
    from importlib.abc import Traversable


def _bundled() -> Traversable:
    """The folder of the configs shipped with lrtrain (``configs/`` in the repository)."""
    return resources.files("lrtrain.config") / "bundled"


def bundled_config_names() -> list[str]:
    """Names of the configs shipped with lrtrain (``-c NAME``)."""
    folder = _bundled()
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def bundled_config_text(name: str) -> str:
    return (_bundled() / f"{name}.yaml").read_text(encoding="utf-8")


SCHEMA_LINE = "# yaml-language-server: $schema="
DEFAULT_CONFIG = "lecture"  # the bundled config that is also the embedded default
DEFAULT_SOURCE = "<default>"  # how errors name the embedded default


def bundled_config_source(name: str) -> str:
    """A bundled config's text, or a ConfigError naming the ones there are."""
    names = bundled_config_names()
    if name not in names:
        hint = difflib.get_close_matches(name, names, n=1)
        extra = f" Did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"'{name}' is not a bundled config ({', '.join(names)}).{extra}")
    return bundled_config_text(name)


def read_config_source(spec: str | None) -> tuple[dict[str, Any], str]:
    """Return the raw mapping and a display name for ``-c SPEC`` (a path or a bundled name)."""
    if spec is None:
        # The embedded default is the lesson's file itself, so that every override behaves
        # exactly as on `-c lecture` (its sweep.lrs are the lesson's six rates, too).
        return deep_copy(_parsed_bundled(DEFAULT_CONFIG, DEFAULT_SOURCE)), DEFAULT_SOURCE
    path = Path(spec)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{spec}: cannot read the config file: {exc}") from None
        source, folder = str(path), path.parent
    elif re.fullmatch(r"[A-Za-z0-9_-]+", spec) and spec in bundled_config_names():
        text, source = None, f"{spec}.yaml (bundled)"
        folder = Path(str(_bundled()))
    else:
        names = bundled_config_names()
        hint = difflib.get_close_matches(spec, names, n=1)
        extra = f" Did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(
            f"{spec}: no such config file, and not a bundled config ({', '.join(names)}).{extra}"
        )
    raw = deep_copy(_parsed_bundled(spec, source)) if text is None else parse_yaml(text, source)
    if raw is None:
        raise ConfigError(
            f"{source}: the config file is empty; write at least one key, e.g. 'name: myrun'"
        )
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of keys (name:, data:, optimizer:, …), "
            f"not a {type(raw).__name__}"
        )
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("path"), str):
        # A relative data.path in a config file means relative to that file (so configs and
        # their data travel together); on the command line it is relative to where you are.
        data_path = Path(data["path"]).expanduser()
        if not data_path.is_absolute():
            data["path"] = str(folder / data_path)
    return raw, source


@functools.cache
def _parsed_bundled(name: str, source: str) -> Any:
    """A bundled config parsed once per process (13 ms of YAML each time: GDRegressor.fit
    loads the embedded default on every call); callers take a copy, as they may change it."""
    return parse_yaml(bundled_config_text(name), source)


def deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value
