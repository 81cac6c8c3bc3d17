"""A saved run's figures drawn again from its files alone (no torch): ``lrtrain plot``, its
``--compare`` and ``--animate``, and the loggers fed from a finished run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lrtrain.config.schema import Config
from lrtrain.errors import RunDirError
from lrtrain.runs import directory as runs

if TYPE_CHECKING:
    from lrtrain.workflows.loggers import Logged


def redraw(
    run_dir: str | Path, fmt: str | None = None, plots: Sequence[str] | None = None
) -> list[Path]:
    """Draw every figure of a saved fit or sweep from its files alone (no torch)."""
    return draw_run(runs.load_run(run_dir), fmt, plots)


def draw_run(
    run: runs.RunData, fmt: str | None = None, plots: Sequence[str] | None = None
) -> list[Path]:
    """Draw every figure of a run into its directory: read back by :func:`redraw`, or as the
    process that wrote it holds it (``runs.save_fit``/``save_sweep`` return it), which draws
    from the numbers in memory instead of reading back the files it has just written.

    ``plots``: only those of the run's ``output.plots`` kinds (a fit's or a sweep's; the one
    figure of a batch map or a finder is every kind's), where two drawers share the work."""
    from lrtrain.plots.figures import run_figures
    from lrtrain.plots.sweep import sweep_figures

    output = run.config.get("output", {})
    fmt = fmt or output.get("format", "png")
    if plots is not None:
        asked = output.get("plots", plots)
        narrowed = {**output, "plots": [p for p in asked if p in plots]}
        run = replace(run, config={**run.config, "output": narrowed})
    if run.kind in ("batch-map", "find-lr"):
        from lrtrain.plots.minibatch import batch_map_figures, find_lr_figures

        drawn = batch_map_figures(run) if run.kind == "batch-map" else find_lr_figures(run)
        return runs.save_figures(run.path, drawn, fmt)
    if "model" in run.summary:  # a network's run: measured, not solved
        from lrtrain.plots.network import network_figures, network_sweep_figures

        figures = network_sweep_figures(run) if run.kind == "sweep" else network_figures(run)
    else:
        figures = sweep_figures(run) if run.kind == "sweep" else run_figures(run)
    return runs.save_figures(run.path, figures, fmt)


def log(run_dir: str | Path, config: Config) -> list[Logged]:
    """Write a saved fit or sweep, figures included, into ``output.loggers``' stores."""
    if not config.output.loggers:
        return []
    from lrtrain.workflows.loggers import log_run

    return log_run(Path(run_dir), list(config.output.loggers), config.output.mlflow_uri)


def compare(run_dirs: list[str | Path], path: str | Path) -> Path:
    """One figure comparing fits of the same problem: paths on one contour plot, gap curves."""
    from lrtrain.plots.figures import compare_figure

    loaded = [runs.load_run(d) for d in run_dirs]
    if any(run.kind != "fit" for run in loaded):
        raise RunDirError("--compare: every directory must be a fit run (not a sweep)")
    reference = loaded[0].summary["analysis"]["theta_star"]
    for run in loaded[1:]:
        theta = run.summary["analysis"]["theta_star"]
        if len(theta) != len(reference) or any(
            abs(a - b) > 1e-6 * (1 + abs(b)) for a, b in zip(theta, reference, strict=True)
        ):
            raise RunDirError(
                f"--compare: {run.path} fits another problem than {loaded[0].path} "
                "(different data: different optimum); compare runs of one data set"
            )
    return runs.save_figure(compare_figure(loaded), Path(path))


def animate(run_dir: str | Path, frames: int = 40) -> Path:
    """Write ``plots/descent.gif``: the path growing over the contours, the loss beside it."""
    from lrtrain.plots.animation import descent_frames

    run = runs.load_run(run_dir)
    if run.kind != "fit":
        raise RunDirError(f"{run.path}: --animate draws one fit's descent; this is a sweep")
    return runs.save_animation(descent_frames(run, frames), run.path)
