"""YAML as lrtrain reads and writes it: a safe loader (no Python tags, no duplicate keys, bounded
aliases) and a dumper in block style (one key per line, short lists inline), which reloads to
the same value."""

from __future__ import annotations

from typing import Any

import yaml

from lrtrain.errors import ConfigError

MAX_ALIASES = 100  # anchors/aliases allowed in one YAML file
MAX_NODES = 100_000  # values in a config once aliases are expanded ("billion laughs" bound)


_INLINE_LIST_WIDTH = 72  # a list of plain values up to this many characters stays on one line


class _BlockDumper(yaml.SafeDumper):
    """Block style for mappings (one key per line); flow style only for short lists of plain
    values (``true_w: [3.0]``, ``plots: [loss, contour, fit]``), which read best inline."""


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    plain = all(isinstance(v, str | int | float | bool) or v is None for v in value)
    short = plain and len(yaml.safe_dump(value, default_flow_style=True)) <= _INLINE_LIST_WIDTH
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=short)


_BlockDumper.add_representer(list, _represent_list)


def dump_yaml(value: Any) -> str:
    """YAML in lrtrain's style (see :class:`_BlockDumper`); it reloads to the same value."""
    return yaml.dump(
        value,
        Dumper=_BlockDumper,
        sort_keys=False,
        default_flow_style=False,
        width=10_000,
        allow_unicode=True,
    )


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and bounds the number of aliases."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} YAML aliases (*ref): refused to avoid an "
                    "exponential expansion; write the values out instead"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.YAMLError(
                    f"duplicate key '{key}' at line {mark.line + 1}: keep only one of them"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML safely: no Python tags, no duplicate keys, bounded aliases."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or str(exc)
        raise ConfigError(
            f"{source}: {tag.strip()} — only plain YAML (mappings, lists, numbers, strings) "
            "is accepted; remove the '!!' tag"
        ) from None
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if _count_nodes(data, MAX_NODES) > MAX_NODES:
        raise ConfigError(
            f"{source}: more than {MAX_NODES:,} values once YAML aliases are expanded; refused "
            "(a config is small — is this an alias bomb?)"
        )
    return data


def _count_nodes(value: Any, limit: int) -> int:
    """Count values as if aliases were expanded, stopping as soon as ``limit`` is passed."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count
