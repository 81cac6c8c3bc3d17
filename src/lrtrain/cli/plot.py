"""``lrtrain plot``: a saved run's figures drawn again from its files alone (``--compare``,
``--animate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrtrain.cli.running import (
    console,
    user_errors,
)
from lrtrain.errors import LrtrainError

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain plot  (the newest run under runs/)\n\n"
    "lrtrain plot runs/lecture-20261126-101500 --format svg\n\n"
    "lrtrain plot runs/a runs/b runs/c --compare three_ways.png\n\n"
    "lrtrain plot runs/lecture-20261126-101500 --animate  (writes plots/descent.gif)"
)


def plot(
    run_dirs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Run directories (default: the newest under runs/).", show_default=False
        ),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(
            "--compare",
            help="Draw one figure comparing the given fit runs (paths on one contour plot, "
            "optimality gaps) into this file (.png, .svg, .pdf or another format matplotlib "
            "writes).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="png, svg or pdf (default: the run's output.format).",
            show_default=False,
        ),
    ] = None,
    root: Annotated[Path, typer.Option("--root", help="Where to look for the newest run.")] = Path(
        "runs"
    ),
    animate: Annotated[
        bool,
        typer.Option(
            "--animate",
            help="Also write plots/descent.gif: the path growing over the contours, the loss "
            "curve beside it.",
        ),
    ] = False,
) -> None:
    """Redraw every figure of a saved run from its files alone (no retraining, no torch)."""

    with user_errors():
        if fmt is not None:
            from lrtrain.config.schema import FIGURE_FORMATS

            if fmt not in FIGURE_FORMATS:
                raise LrtrainError(f"--format: '{fmt}' is not one of {', '.join(FIGURE_FORMATS)}")
        from lrtrain.api import compare as compare_runs
        from lrtrain.api import redraw
        from lrtrain.runs import directory as runs

        targets = run_dirs or [runs.latest_run(root)]
        if compare is not None:
            written = [compare_runs(list(targets), compare)]
        else:
            written = [path for target in targets for path in redraw(target, fmt)]
        if animate:
            from lrtrain.api import animate as animate_run

            written += [animate_run(target) for target in targets]
    for path in written:
        console.print(f"wrote {path}")
