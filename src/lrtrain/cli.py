"""The ``lrtrain`` command: parse, call the core, render with rich, map errors to exit codes.

The only module that imports typer and rich. Everything heavy (torch, pydantic, matplotlib) is
imported inside the commands, so ``lrtrain --help`` answers at once.

Exit codes (docs/design.md): 0 success · 2 bad usage, config or input · 3 training diverged (results
still written) · 130 interrupted · 1 unexpected internal error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lrtrain.progress import ProgressBar
from lrtrain.report import fit_report, sweep_report

if TYPE_CHECKING:
    from lrtrain.api import FitRun
    from lrtrain.config import Config
    from lrtrain.drawer import Drawer

EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130
_SIGNAL_REPEAT_S = 5.0

app = typer.Typer(
    name="lrtrain",
    help="Train and study linear regression with PyTorch and gradient descent.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "-c",
        "--config",
        help="Config file path, or a bundled config name (lecture, …).",
        show_default=False,
    ),
]
OverridesArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Dotted KEY=VALUE overrides, values parsed as YAML "
        "(optimizer.lr=0.01, data.true_w=[1,2]).",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the run to exactly this directory.", show_default=False),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Allow --out to be a non-empty directory.")
]
PrintConfigOpt = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved config as YAML and exit.")
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the run's summary.json to stdout (and nothing else)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device", help="auto, cpu, cuda or cuda:N (same as device=…).", show_default=False
    ),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed (same as seed=…).", show_default=False)
]
NprocOpt = Annotated[
    int,
    typer.Option(
        "--nproc",
        min=1,
        help="Train on N processes on this machine: data-parallel through torch.distributed "
        "(gloo on CPU, NCCL on CUDA), launched by torchrun's launcher with a loopback "
        "rendezvous. Same result as one process. Several machines: docs/scaling.md.",
    ),
]
DistTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--dist-timeout",
        min=1,
        help="Seconds a process of a distributed run waits for the others before it stops "
        "with an error (a process that died or hangs).",
    ),
]


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the core's user errors into one clear message and exit code 2, no traceback.
    In a distributed run rank 0 speaks for all (every process meets the same error), except
    when processes lose each other: then each says what it saw, and exits 1."""
    from lrtrain.errors import DistributedError, LrtrainError

    try:
        yield
    except LrtrainError as exc:
        lost = isinstance(exc, DistributedError)
        speaker = Console(stderr=True, highlight=False) if lost else err_console
        from rich.markup import escape

        for line in exc.messages:  # escaped: messages quote user input and backend errors
            speaker.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
        raise typer.Exit(1 if lost else EXIT_USAGE) from None


@contextlib.contextmanager
def _distributed(
    cfg: Config, nproc: int, timeout: float, items: int | None = None
) -> Iterator[None]:
    """``--nproc N``: start N copies of this command through torchrun's launcher and exit with
    their code (never returns). Under torchrun: join the process group for the command's
    duration; processes other than rank 0 keep quiet (rank 0 reports for all)."""
    from lrtrain import distributed

    if nproc > 1 and not distributed.launched():
        _launch(cfg, nproc, items)
    if not distributed.launched():
        yield
        return
    world = distributed.setup(cfg.device, timeout)
    if not world.is_main:
        console.quiet = err_console.quiet = True
    try:
        yield
    finally:
        distributed.teardown()


@contextlib.contextmanager
def _drawer(cfg: Config, nproc: int, kind: str = "fit") -> Iterator[Drawer | None]:
    """A second process that prepares to draw while this one imports torch and trains (see
    lrtrain.drawer); None where figures are drawn here (several processes, or none wanted)."""
    from lrtrain.distributed import launched

    if nproc > 1 or launched() or not cfg.output.plots:
        yield None
        return
    from lrtrain.drawer import Drawer

    with Drawer(kind) as drawer:
        yield drawer


def _launch(cfg: Config, nproc: int, items: int | None) -> None:
    """Run this very command line (without --nproc) on ``nproc`` local processes."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from lrtrain.data import row_count
    from lrtrain.distributed import check_gpus, check_sweep_size, check_world_size

    if items is None:
        check_world_size(row_count(cfg.data), nproc)
    else:
        check_sweep_size(items, nproc)
    if cfg.device != "cpu":
        from lrtrain.train import resolve_device

        if resolve_device(cfg.device).type == "cuda":
            check_gpus(nproc)
    args = get_args_parser().parse_args(
        ["--nnodes=1", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
         "--rdzv-endpoint=127.0.0.1:0", "--max-restarts=0", "--module", "lrtrain",
         *_without_nproc(sys.argv[1:])]
    )  # fmt: skip
    # Each process gets its share of the cores (torchrun would say 1, with a warning).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # The launcher's own log lines (rendezvous, "shutting down workers") are noise here: the
    # processes report for themselves. Its loggers exist once torch.distributed.run is imported.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(args)
    except ChildFailedError as exc:
        raise typer.Exit(_launch_exit_code(exc.failures)) from None
    except SignalException:
        # Ctrl-C reached the processes too: they stopped together at a step and rank 0 saved
        # the run (its message says where); the launcher passed the signal on and ends here.
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(0)


def _launch_exit_code(failures: dict[int, Any]) -> int:
    """The exit code that tells what happened: rank 0's own code, else the lowest rank's. A
    process the launcher stopped with a signal (after another one ended) says nothing of its
    own, so codes from signals count only when there is no other."""
    main = failures.get(0)
    if main is not None and main.exitcode > 0:
        return int(main.exitcode)
    own = [failures[rank].exitcode for rank in sorted(failures) if failures[rank].exitcode > 0]
    if own:
        return int(own[0])
    signal_number = -failures[min(failures)].exitcode
    err_console.print(f"[bold red]error:[/] a process was killed by signal {signal_number}")
    return 1


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _is_main() -> bool:
    from lrtrain.distributed import current

    return current().is_main


@contextlib.contextmanager
def _interruptible() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) or SIGTERM: the first asks training to stop after the current step and
    save everything (then exit 130); a second stops at once (every file already written is
    whole: writes are atomic). Yields the ``should_stop`` callback for the engine."""
    import signal
    import time

    from lrtrain.distributed import launched

    asked = {"stop": False, "at": 0.0}

    def handler(signum: int, frame: object) -> None:
        # Under torchrun one Ctrl-C arrives twice: from the terminal and, forwarded, from the
        # launcher. Within a few seconds of the first, a signal is the same request.
        repeat = launched() and time.monotonic() - asked["at"] < _SIGNAL_REPEAT_S
        if asked["stop"] and not repeat:
            # At once: no cleanup that could itself be interrupted. Files already written are
            # whole (every write is atomic); a write in flight leaves only its hidden temp file.
            os.write(2, b"\ninterrupted again: stopped at once\n")
            os._exit(EXIT_INTERRUPTED)
        if not asked["stop"]:
            asked["stop"], asked["at"] = True, time.monotonic()

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. called from a worker): no handlers
        pass
    try:
        yield lambda: asked["stop"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _resolve_config(
    config: str | None, overrides: list[str] | None, device: str | None, seed: int | None
) -> Config:
    from lrtrain.config import load_config

    extra = list(overrides or [])
    if device is not None:
        extra.append(f"device={device}")
    if seed is not None:
        extra.append(f"seed={seed}")
    return load_config(config, extra)


def _report(run: Any, quiet: bool, json_out: bool, human: Callable[[Any], None]) -> None:
    if json_out:
        import json

        sys.stdout.write(json.dumps(run.summary, indent=2) + "\n")
    elif not quiet:
        human(run)


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
    nproc: NprocOpt = 1,
    dist_timeout: DistTimeoutOpt = 300.0,
) -> None:
    """Train one model, write a run directory (metrics, summary, model, plots) and report
    learned vs closed-form parameters and why training converged, oscillated or diverged."""
    # Errors are reported while the signal handlers are still in place: under a launcher, a
    # SIGTERM that follows another process's exit must not cut rank 0's message short.
    with _interruptible() as stopped, _user_errors():
        if resume is not None and config is None:
            config = str(resume / "config.yaml")
        cfg = _resolve_config(config, overrides, device, seed)
        if print_config:
            console.print(cfg.to_yaml(), end="", markup=False)
            return
        with _distributed(cfg, nproc, dist_timeout), _drawer(cfg, nproc) as drawer:
            run = _fit_or_resume(
                cfg, resume, out, overwrite, quiet or json_out, stopped, drawer is None
            )
            if run is None or not _is_main():
                return
            _report(
                run, quiet, json_out, lambda r: fit_report(r, console)
            )  # the answer first, then the figures
            if drawer is not None:
                run.figures = drawer.draw(run.run_dir, cfg.output.format)
    if run.summary["status"] == "interrupted":
        err_console.print(
            f"[bold yellow]interrupted[/] at step {run.summary['steps']}: checkpoint, metrics "
            f"and summary saved in {run.run_dir}; continue with: lrtrain fit --resume "
            f"{run.run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if run.summary["status"] == "diverged":
        a = run.summary["analysis"]
        began = run.summary["verdict"].get("diverged_at")
        since = f"the loss rose above its initial value at step {began} and " if began else ""
        err_console.print(
            f"[bold red]diverged[/]: {since}the run stopped at step {run.summary['steps']}: lr "
            f"{run.summary['lr']:g} "
            f"is above the critical lr {a['critical_lr']:.4g}; try optimizer.lr="
            f"{_safe_lr(a):.3g}. Results and plots are in {run.run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_DIVERGED)


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
    from lrtrain.errors import RunDirError
    from lrtrain.runs import load_checkpoint

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
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
    print_config: PrintConfigOpt = False,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    nproc: NprocOpt = 1,
    dist_timeout: DistTimeoutOpt = 300.0,
) -> None:
    """Train at many learning rates at once (one vectorised run), predict each one's fate from
    the Hessian, check it against what happened, and recommend a learning rate. Without
    --lrs/--lr-range/sweep.lrs the rates are chosen to show all three regimes."""
    from lrtrain.errors import ConfigError

    with _interruptible() as stopped, _user_errors():  # see fit
        if lrs is not None and lr_range is not None:
            raise ConfigError("give either --lrs or --lr-range, not both")
        cfg = _resolve_config(config, overrides, device, seed)
        if print_config:
            console.print(cfg.to_yaml(), end="", markup=False)
            return
        with _drawer(cfg, nproc, "sweep") as drawer:  # started before torch is imported
            from lrtrain.api import sweep_lr as run_sweep
            from lrtrain.sweep import AUTO_POINTS, parse_lr_range, parse_lrs

            chosen = parse_lrs(lrs) if lrs else parse_lr_range(lr_range) if lr_range else None
            count = len(chosen or cfg.sweep.lrs or [0.0] * AUTO_POINTS)
            with (
                _distributed(cfg, nproc, dist_timeout, items=count),
                ProgressBar(not quiet, f"sweep {cfg.name}", console) as bar,
            ):
                run = run_sweep(
                    cfg,
                    chosen,
                    out=out,
                    overwrite=overwrite,
                    progress=bar,
                    should_stop=stopped,
                    draw=drawer is None,
                )
                main_process = _is_main()  # asked before the process group is left
            if not main_process:
                return
            _report(
                run, quiet, json_out, lambda r: sweep_report(r, console)
            )  # the answer first, then the figures
            if drawer is not None:
                run.figures = drawer.draw(run.run_dir, cfg.output.format)
    if run.summary.get("status") == "interrupted":
        err_console.print(
            f"[bold yellow]interrupted[/] at step {run.summary['steps_run']}: what the sweep had "
            f"is saved in {run.run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if run.all_diverged:
        err_console.print(
            f"[bold red]every learning rate diverged[/]: the critical lr is "
            f"{run.summary['critical_lr']:.4g}. Results and plots are in {run.run_dir}",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_DIVERGED)


def _safe_lr(analysis: dict[str, Any]) -> float:
    return min(analysis["asymptotically_optimal_lr"], 0.9 * analysis["critical_lr"])


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
            "optimality gaps) into this file (.png, .svg or .pdf).",
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
    from lrtrain.errors import LrtrainError

    with _user_errors():
        if fmt is not None and fmt not in ("png", "svg", "pdf"):
            raise LrtrainError(f"--format: '{fmt}' is not one of png, svg, pdf")
        from lrtrain import runs
        from lrtrain.api import compare as compare_runs
        from lrtrain.api import redraw

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


configs_app = typer.Typer(
    help="The bundled configs: list them, show one, copy one to edit.",
    no_args_is_help=False,
    rich_markup_mode="markdown",
)
app.add_typer(configs_app, name="configs")


@configs_app.callback(
    invoke_without_command=True,
    epilog="**Examples**\n\n"
    "lrtrain configs\n\n"
    "lrtrain configs show diabetes\n\n"
    "lrtrain configs copy lecture my.yaml  (then: lrtrain fit -c my.yaml)",
)
def configs(ctx: typer.Context) -> None:
    """List the bundled configs with one-line descriptions (``-c NAME`` runs one)."""
    if ctx.invoked_subcommand is not None:
        return
    from lrtrain.config import bundled_config_description, bundled_config_names

    table = Table(title="bundled configs (lrtrain fit -c NAME)", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for name in bundled_config_names():
        table.add_row(name, bundled_config_description(name))
    console.print(table)


@configs_app.command("show", epilog="**Example**\n\nlrtrain configs show lecture")
def configs_show(name: Annotated[str, typer.Argument(help="A bundled config's name.")]) -> None:
    """Print a bundled config."""
    from lrtrain.config import bundled_config_source

    with _user_errors():
        text = bundled_config_source(name)
    sys.stdout.write(text)


@configs_app.command("copy", epilog="**Example**\n\nlrtrain configs copy diabetes my-diabetes.yaml")
def configs_copy(
    name: Annotated[str, typer.Argument(help="A bundled config's name.")],
    dest: Annotated[Path, typer.Argument(help="Where to write it (never overwritten).")],
) -> None:
    """Copy a bundled config to a file you can edit (refuses to overwrite)."""
    from lrtrain.config import copy_bundled_config

    with _user_errors():
        copy_bundled_config(name, dest)
    console.print(f"wrote {dest}; run it with: lrtrain fit -c {dest}")


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
    with _user_errors():
        cfg = _resolve_config(config, overrides, None, None)
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
    from lrtrain.config import config_reference, config_schema_text

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
    with _user_errors():
        cfg = _resolve_config(config, overrides, None, seed)
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
) -> None:
    """Predict with a trained run: the input's columns plus a ``<target>_predicted`` column.
    Standardisation is applied as in training; runs on synthetic data take x_0 … x_{d-1}."""
    with _user_errors():
        from lrtrain.api import predict as run_predict

        text = run_predict(run_dir, input_csv)
        if output is not None:
            from lrtrain.runs import atomic_write_text

            atomic_write_text(output, text)
    if output is None:
        sys.stdout.write(text)
    else:
        console.print(f"wrote {output}")


def _version(value: bool) -> None:
    if value:
        from lrtrain import __version__

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
