"""``lrtrain data``: the synthetic data set a config generates, as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrtrain.cli.running import (
    ConfigOpt,
    OverridesArg,
    SeedOpt,
    console,
    resolve_config,
    user_errors,
)

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain data -o lesson.csv  (the lesson's 100 points)\n\n"
    "lrtrain data -c multivariate -o mv.csv data.n_samples=5000"
)


def data(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="CSV file to write.", show_default=False)
    ] = Path("data.csv"),
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the CSV file if it exists.")
    ] = False,
    seed: SeedOpt = None,
) -> None:
    """Write the synthetic data set a config generates (x_0 … x_{d-1}, y) as CSV, to inspect it
    or fit it elsewhere."""
    with user_errors():
        cfg = resolve_config(config, overrides, None, seed)
        from lrtrain.api import export_data

        rows = export_data(cfg, output, overwrite)
    console.print(f"wrote {output}: {rows:,} rows × {cfg.data.d} feature(s) and y")
