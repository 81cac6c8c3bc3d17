"""``lrtrain validate``: check a config and its overrides without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrtrain.cli.running import (
    OverridesArg,
    console,
    resolve_config,
    user_errors,
)

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain validate my.yaml\n\n"
    "lrtrain validate lecture optimizer.lr=0.02 train.max_iter=500\n\n"
    "lrtrain validate data.x.step=0.05  (the embedded default with an override)"
)


def validate(
    config: Annotated[
        str | None,
        typer.Argument(help="Config file path or bundled config name (default: the lesson)."),
    ] = None,
    overrides: OverridesArg = None,
) -> None:
    """Check a config (and overrides) without running anything: every error, or the resolved
    values."""
    if config is not None and "=" in config and not Path(config).exists():
        overrides, config = [config, *(overrides or [])], None  # only overrides were given
    with user_errors():
        cfg = resolve_config(config, overrides, None, None)
    console.print(f"[green]config is valid[/]: {config or '<default>'}")
    console.print(cfg.to_yaml(), end="", markup=False)
