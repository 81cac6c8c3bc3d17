"""What lrtrain says about its configs: the key reference (docs/config.md, ``lrtrain schema
--reference``), the JSON Schema editors validate against (``lrtrain schema``), the bundled
configs' descriptions and editable copies of them (``lrtrain configs``)."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from lrtrain.config.schema import Config
from lrtrain.config.sections import Section
from lrtrain.config.sources import SCHEMA_LINE, bundled_config_source, bundled_config_text
from lrtrain.errors import ConfigError


def bundled_config_description(name: str) -> str:
    """The first sentence of a bundled config's header comment."""
    lines = [ln[1:].strip() for ln in bundled_config_text(name).splitlines() if ln.startswith("#")]
    text = " ".join(ln for ln in lines if ln and not ln.startswith(("yaml-language-server",
                                                                     "lrtrain ")))  # fmt: skip
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= 100 else first[:99].rsplit(" ", 1)[0] + " …"


def copy_bundled_config(name: str, dest: Path) -> None:
    """Write a bundled config to ``dest`` for editing: the schema line and a relative
    ``data.path`` are made to point at the installed files, so the copy works anywhere."""
    text = bundled_config_source(name)
    if dest.exists():
        raise ConfigError(f"{dest}: exists; lrtrain configs copy never overwrites — choose another")
    folder = Path(str(resources.files("lrtrain.config") / "bundled"))
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith(SCHEMA_LINE):
            line = f"{SCHEMA_LINE}{folder / 'config.schema.json'}\n"
        match = re.match(r"^(\s+path:\s*)([^#\s]+)(.*)$", line.rstrip("\n"))
        if match and not Path(match.group(2)).is_absolute() and match.group(2) != "null":
            line = f"{match.group(1)}{folder / match.group(2)}\n"
        lines.append(line)
    try:
        with dest.open("x", encoding="utf-8") as fh:
            fh.write("".join(lines))
    except FileExistsError:
        raise ConfigError(f"{dest}: exists; lrtrain configs copy never overwrites") from None
    except OSError as exc:
        raise ConfigError(f"{dest}: cannot write: {exc.strerror or exc}") from None


@cache
def described() -> None:
    """Give every config section's keys their docstrings as descriptions, once: the sections
    are built without them. Direct subclasses of Section in definition order — a section
    before any that holds it — each rebuilt so that its schema carries them."""
    for section in Section.__subclasses__():
        docs = attribute_docstrings(section)
        for name, field in section.model_fields.items():
            if field.description is None and name in docs:
                field.description = docs[name]
        section.model_rebuild(force=True)


def attribute_docstrings(cls: type) -> dict[str, str]:
    """A class's attribute docstrings: the string literal right after an annotated assignment,
    cleaned as inspect.cleandoc does (pydantic's use_attribute_docstrings, read on demand)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef), cls
    out = {}
    for node, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[node.target.id] = inspect.cleandoc(after.value.value)
    return out


def field_docs() -> dict[str, str]:
    """Every key of the config (dotted, in the schema's order) and what it means: the key's
    docstring in config.py, on one line."""
    described()
    out = {}
    for name, field in Config.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for key, inner in section.model_fields.items():
                out[f"{name}.{key}"] = " ".join((inner.description or "").split())
        else:
            out[name] = " ".join((field.description or "").split())
    return out


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config (what ``lrtrain schema`` prints), with each key's meaning
    as its description."""
    described()
    schema = Config.model_json_schema()
    schema["title"] = "lrtrain config"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def config_reference() -> str:
    """The Markdown table of every key, its default and its meaning (docs/config.md)."""
    defaults = Config().to_dict()
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for dotted, meaning in field_docs().items():
        value: Any = defaults
        for part in dotted.split("."):
            value = value[part]
        shown = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        shown = shown.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"| `{dotted}` | `{shown}` | {meaning} |")
    return "\n".join(lines) + "\n"


def config_schema_text() -> str:
    import json

    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"
