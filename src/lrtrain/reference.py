"""What lrtrain says about its configs: the key reference (docs/config.md, ``lrtrain schema
--reference``), the JSON Schema editors validate against (``lrtrain schema``), the bundled
configs' descriptions and editable copies of them (``lrtrain configs``)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lrtrain.config import SCHEMA_LINE, Config, bundled_config_source, bundled_config_text
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
    folder = Path(str(resources.files("lrtrain") / "configs"))
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


# What each key means: the config reference in docs/config.md is generated from this
# (`lrtrain schema --reference`, kept in sync by a test) and editors show it from the schema.
FIELD_DOCS: dict[str, str] = {
    "name": "run name (letters, digits, `_ . -`)",
    "seed": "seeds the data, the shuffling and `model.init: normal`",
    "device": "`auto` (CUDA if available) · `cpu` · `cuda` · `cuda:N`",
    "data.source": "`synthetic` or `csv`",
    "data.n_samples": "rows (≥ 2)",
    "data.x": "`arange` (one feature) · `uniform {low, high}` · `normal {mean, std}`",
    "data.true_w": "one weight per feature; its length is d",
    "data.true_b": "true intercept",
    "data.noise_std": "y = x·true_w + true_b + noise_std·N(0, 1)",
    "data.path": (
        "CSV file (header row required); relative paths in a config file are relative to that file"
    ),
    "data.target": "CSV target column",
    "data.features": "CSV feature columns (default: all but the target)",
    "data.standardize": "train on features scaled to zero mean, unit variance",
    "data.stream": (
        "`true`: synthetic rows are regenerated chunk by chunk every pass instead of held in "
        "memory (bounded memory, any `n_samples`; full batch only)"
    ),
    "model.init": "`zeros` (the lesson) or `normal` (small, seeded)",
    "optimizer.lr": (
        "> 0, or `auto`: the fastest constant step for this data (η* = 2/(λ_min+λ_max); "
        "with `momentum: auto`, Polyak's pair; with a fixed momentum, the lr minimising "
        "the worst mode's rate)"
    ),
    "optimizer.momentum": (
        "in [0, 1), or `auto` (needs `lr: auto`): Polyak's heavy ball, or with `nesterov:"
        " true` the textbook Nesterov setting"
    ),
    "optimizer.nesterov": "needs momentum > 0",
    "optimizer.weight_decay": "≥ 0 (as torch.optim.SGD)",
    "train.max_iter": "steps",
    "train.batch_size": (
        "`null` = full batch (gradient descent); k = mini-batch SGD, reshuffled each epoch"
    ),
    "train.tol": (
        "`fit` only: stop (status `converged`) when the loss changes by less than tol in one "
        "step (`sweep-lr` refuses it; its target is `train.target_gap`)"
    ),
    "train.target_gap": (
        "the relative optimality gap (loss − loss*)/loss* to reach, loss* from the closed form"
        " (relative to the initial loss when loss* is 0): `fit` stops there (status "
        "`converged`; the summary puts the steps the theory predicts beside the steps taken); "
        "`sweep-lr` counts each rate's steps to it (1e-3 when unset)"
    ),
    "train.log_every": "keep every k-th step in `metrics.csv` (and the last)",
    "train.dtype": "`float32` or `float64`",
    "sweep.lrs": "learning rates for the sweep",
    "output.root": "where run directories go",
    "output.plots": "which figures to draw",
    "output.format": "`png` · `svg` · `pdf`",
}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the config (what ``lrtrain schema`` prints), with each key's meaning
    as its description."""
    schema = Config.model_json_schema()
    schema["title"] = "lrtrain config"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    for dotted, meaning in FIELD_DOCS.items():
        *sections, leaf = dotted.split(".")
        node = schema
        for section in sections:
            ref = node["properties"][section].get("$ref", "")
            node = schema["$defs"][ref.rsplit("/", 1)[-1]]
        node["properties"][leaf]["description"] = meaning
    return schema


def config_reference() -> str:
    """The Markdown table of every key, its default and its meaning (docs/config.md)."""
    defaults = Config().to_dict()
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for dotted, meaning in FIELD_DOCS.items():
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
