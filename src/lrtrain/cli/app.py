"""The ``lrtrain`` command: parse, call the core, render with rich, map errors to exit codes.

The only module that imports typer and rich. Everything heavy (torch, pydantic, matplotlib) is
imported inside the commands, so ``lrtrain --help`` answers at once.

Exit codes (docs/design.md): 0 success · 2 bad usage, config or input · 3 training diverged (results
still written) · 130 interrupted · 1 unexpected internal error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lrtrain.api import ProgressBar
from lrtrain.cli.configs import configs_app
from lrtrain.cli.explore import EXAMPLES as EXPLORE_EXAMPLES
from lrtrain.cli.explore import explore as explore_command
from lrtrain.cli.report import batch_map_report, find_lr_report, fit_report, sweep_report
from lrtrain.cli.running import (
    EXIT_INTERRUPTED,
    Command,
    ConfigOpt,
    DeviceOpt,
    DistTimeoutOpt,
    JsonOpt,
    LoggerOpt,
    NprocOpt,
    OutOpt,
    OverridesArg,
    OverwriteOpt,
    PrintConfigOpt,
    QuietOpt,
    ReplicasOpt,
    SeedOpt,
    console,
    err_console,
    fit_ending,
    resolve_config,
    sweep_ending,
    train_command,
    user_errors,
)
from lrtrain.data.distributed import DEFAULT_TIMEOUT_S
from lrtrain.errors import ConfigError, LrtrainError, RunDirError

if TYPE_CHECKING:
    from lrtrain.api import BatchMapRun, FindLrRun, FitRun, SweepRun
    from lrtrain.config.schema import Config


app = typer.Typer(
    name="lrtrain",
    help="Train and study linear regression with PyTorch and gradient descent.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


@app.command(
    epilog="**Examples**\n\n"
    "lrtrain fit  (the lesson: 100 points, lr 1e-3, 100 steps)\n\n"
    "lrtrain fit optimizer.lr=0.028 train.max_iter=500\n\n"
    "lrtrain fit -c multivariate --out runs/mv --quiet\n\n"
    "lrtrain fit optimizer.lr=auto optimizer.momentum=auto train.target_gap=1e-6\n\n"
    "lrtrain fit --resume runs/lecture-20261126-101500  (after Ctrl-C)\n\n"
    "lrtrain fit -c my.yaml --print-config\n\n"
    "lrtrain fit -c big.yaml --nproc 4  (4 processes; torchrun -m lrtrain fit … works too)"
)
def fit(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue this interrupted run in place, to train.max_iter (which may be "
            "raised with train.max_iter=N). Its config.yaml is used unless -c is given; "
            "changes to the problem are refused.",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    print_config: PrintConfigOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    replicas: ReplicasOpt = None,
    logger: LoggerOpt = None,
    nproc: NprocOpt = 1,
    dist_timeout: DistTimeoutOpt = DEFAULT_TIMEOUT_S,
) -> None:
    """Train one model, write a run directory (metrics, summary, model, plots) and report
    learned vs closed-form parameters and why training converged, oscillated or diverged."""

    def resolve() -> Config:
        source = str(resume / "config.yaml") if resume is not None and config is None else config
        return resolve_config(source, overrides, device, seed, replicas, logger)

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> FitRun | None:
        return _fit_or_resume(cfg, resume, out, overwrite, quiet or json_out, stopped, draw)

    train_command(
        Command("fit", resolve, lambda cfg: None, run, fit_report, fit_ending),
        print_config, quiet, json_out, nproc, dist_timeout,
    )  # fmt: skip


def _fit_or_resume(
    cfg: Config,
    resume: Path | None,
    out: Path | None,
    overwrite: bool,
    silent: bool,
    stopped: Callable[[], bool],
    draw: bool,
) -> FitRun | None:
    """The run ``fit`` trains (None: nothing to resume, said so)."""
    from lrtrain import api

    if resume is None:
        with ProgressBar(not silent, f"fit {cfg.name}", console) as bar:
            return api.fit(
                cfg, out=out, overwrite=overwrite, progress=bar, should_stop=stopped, draw=draw
            )
    from lrtrain.api import load_checkpoint

    if out is not None:
        raise RunDirError("--resume continues the run in place; drop --out")
    checkpoint = load_checkpoint(resume)
    nothing = api.resume_status(checkpoint, cfg)
    if nothing is not None:
        console.print(f"{resume}: {nothing}")
        return None
    with ProgressBar(not silent, f"resume {cfg.name}", console) as bar:
        return api.resume(resume, cfg, checkpoint, progress=bar, should_stop=stopped, draw=draw)


@app.command(
    "sweep-lr",
    epilog="**Examples**\n\n"
    "lrtrain sweep-lr  (the lesson's six learning rates)\n\n"
    "lrtrain sweep-lr --lrs 0.0005,0.001,0.005,0.025,0.028,0.03\n\n"
    "lrtrain sweep-lr -c multivariate --lr-range 1e-4:1e-1:40 train.max_iter=2000\n\n"
    "lrtrain sweep-lr --lr-range 1e-4:3e-2:40 --nproc 2  (the rates dealt out over 2 processes)",
)
def sweep_lr(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    lrs: Annotated[
        str | None,
        typer.Option("--lrs", help="Comma-separated learning rates.", show_default=False),
    ] = None,
    lr_range: Annotated[
        str | None,
        typer.Option(
            "--lr-range", help="LO:HI:N, N log-spaced learning rates.", show_default=False
        ),
    ] = None,
    batch_sizes: Annotated[
        str | None,
        typer.Option(
            "--batch-sizes",
            help="e.g. 1,4,16,full: the lr × batch-size map of steps to the target gap, "
            "expected beside observed (train.replicas streams per rate, 64 when 1).",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    print_config: PrintConfigOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    logger: LoggerOpt = None,
    nproc: NprocOpt = 1,
    dist_timeout: DistTimeoutOpt = DEFAULT_TIMEOUT_S,
) -> None:
    """Train at many learning rates at once (one vectorised run), predict each one's fate from
    the Hessian, check it against what happened, and recommend a learning rate. Without
    --lrs/--lr-range/sweep.lrs the rates are chosen to show all three regimes."""

    def resolve() -> Config:
        if lrs is not None and lr_range is not None:
            raise ConfigError("give either --lrs or --lr-range, not both")
        return resolve_config(config, overrides, device, seed, loggers=logger)

    def chosen() -> list[float] | None:
        from lrtrain.config.values import parse_lr_range, parse_lrs

        return parse_lrs(lrs) if lrs else parse_lr_range(lr_range) if lr_range else None

    def count(cfg: Config) -> int:
        from lrtrain.config.values import AUTO_POINTS

        return len(chosen() or cfg.sweep.lrs or [0.0] * AUTO_POINTS)

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> SweepRun:
        from lrtrain.api import sweep_lr as run_sweep

        with ProgressBar(not quiet, f"sweep {cfg.name}", console) as bar:
            return run_sweep(
                cfg, chosen(), out=out, overwrite=overwrite, progress=bar, should_stop=stopped,
                draw=draw,
            )  # fmt: skip

    def run_map(cfg: Config, stopped: Callable[[], bool], draw: bool) -> BatchMapRun:
        from lrtrain.api import batch_map
        from lrtrain.config.values import parse_batch_sizes

        assert batch_sizes is not None
        with ProgressBar(not quiet, f"batch map {cfg.name}", console) as bar:
            sizes = parse_batch_sizes(batch_sizes)
            return batch_map(cfg, sizes, chosen(), out, overwrite, bar, stopped, draw)

    command = (
        Command("sweep", resolve, count, run, sweep_report, sweep_ending)
        if batch_sizes is None
        else Command("batch-map", resolve, count, run_map, batch_map_report, lambda run: None)
    )
    train_command(command, print_config, quiet, json_out, nproc, dist_timeout)


@app.command(
    "find-lr",
    epilog="**Examples**\n\n"
    "lrtrain find-lr  (the lesson)\n\n"
    "lrtrain find-lr -c diabetes --repeats 5\n\n"
    "lrtrain find-lr train.batch_size=8 train.target_gap=0.01",
)
def find_lr(
    overrides: OverridesArg = None,
    config: ConfigOpt = None,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Run each test K times, moving the seed on.")
    ] = 1,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    print_config: PrintConfigOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
) -> None:
    """fastai's and PyTorch Lightning's learning-rate range tests, as published, on this
    model and data — every suggestion scored against the exact critical lr, η*, the
    mean-square critical lr and the fastest constant rate a sweep finds."""

    def resolve() -> Config:
        return resolve_config(config, overrides, device, seed)

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> FindLrRun:
        from lrtrain.api import find_lr as run_finder

        return run_finder(cfg, repeats, out, overwrite, draw=draw)

    command = Command("find-lr", resolve, lambda cfg: None, run, find_lr_report, lambda r: None)
    train_command(command, print_config, quiet, json_out, 1, DEFAULT_TIMEOUT_S)


@app.command(
    epilog="**Examples**\n\n"
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


app.add_typer(configs_app, name="configs")
app.command("explore", epilog=EXPLORE_EXAMPLES)(explore_command)


@app.command(
    epilog="**Examples**\n\n"
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


@app.command(
    epilog="**Examples**\n\n"
    "lrtrain schema > lrtrain.schema.json\n\n"
    "lrtrain schema --reference  (the Markdown table of docs/config.md)"
)
def schema(
    reference: Annotated[
        bool, typer.Option("--reference", help="Print the Markdown config reference instead.")
    ] = False,
) -> None:
    """Print the config's JSON Schema (for editors: the bundled YAMLs point to it)."""
    from lrtrain.config.reference import config_reference, config_schema_text

    sys.stdout.write(config_reference() if reference else config_schema_text())


@app.command(
    epilog="**Examples**\n\n"
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


@app.command(
    epilog="**Examples**\n\n"
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


def _version(value: bool) -> None:
    if value:
        from lrtrain._version import __version__

        console.print(f"lrtrain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Train and study linear regression with PyTorch and gradient descent.

    Shell completion: `lrtrain --install-completion` (bash, zsh, fish, PowerShell).
    """


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
