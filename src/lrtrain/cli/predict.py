"""``lrtrain predict``: a trained run's predictions for a CSV, scored when it has the target."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lrtrain.cli.running import (
    JsonOpt,
    console,
    err_console,
    user_errors,
)
from lrtrain.errors import ConfigError

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain predict runs/diabetes-20261126-101500 new_patients.csv -o predicted.csv\n\n"
    "lrtrain predict runs/lecture-20261126-101500 points.csv  (CSV to stdout)"
)


def predict(
    run_dir: Annotated[Path, typer.Argument(help="A fit run directory.")],
    input_csv: Annotated[
        Path, typer.Argument(help="CSV with the run's feature columns (others are kept).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write here instead of stdout.", show_default=False),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Predict with a trained run: the input's columns plus a ``<target>_predicted`` column.
    Standardisation is applied as in training; runs on synthetic data take x_0 … x_{d-1}.
    When the CSV has the target column its R², RMSE and MAE are reported (on stderr when the
    predictions go to stdout; ``--json``: the scores alone, on stdout)."""
    with user_errors():
        from lrtrain.api import predict as run_predict
        from lrtrain.api import score

        text = run_predict(run_dir, input_csv)
        scores = score(run_dir, input_csv)
        if json_out and scores is None:
            raise ConfigError(f"--json: {input_csv} has no target column to score against")
        if output is not None:
            from lrtrain.runs.atomic import write_text

            write_text(output, text)
    if json_out:
        sys.stdout.write(json.dumps(scores, indent=2) + "\n")
        return
    if output is None:
        sys.stdout.write(text)
    else:
        console.print(f"wrote {output}")
    if scores is not None:
        r2 = "—" if scores["r2"] is None else f"{scores['r2']:.6g}"
        (err_console if output is None else console).print(
            f"score     {scores['rows']} rows: R² {r2} · RMSE {scores['rmse']:.6g} · "
            f"MAE {scores['mae']:.6g}"
        )
