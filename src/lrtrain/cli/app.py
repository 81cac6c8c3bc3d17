"""The ``lrtrain`` command: the Typer app, one module per command beside it (torchtune's
``_cli/``), the version and the entry point. Each command parses its options, calls
:mod:`lrtrain.api`, renders with rich (``cli.report``) and maps errors to exit codes
(``cli.running``).

Everything heavy (torch, pydantic, matplotlib) is imported inside the commands, so
``lrtrain --help`` answers at once.

Exit codes (docs/design.md): 0 success · 2 bad usage, config or input · 3 training diverged (results
still written) · 130 interrupted · 1 unexpected internal error.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from lrtrain.cli import data, explore, find_lr, fit, plot, predict, schema, sweep_lr, validate
from lrtrain.cli.configs import configs_app
from lrtrain.cli.running import EXIT_INTERRUPTED, console, err_console

app = typer.Typer(
    name="lrtrain",
    help="Train and study linear regression with PyTorch and gradient descent.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.command("fit", epilog=fit.EXAMPLES)(fit.fit)
app.command("sweep-lr", epilog=sweep_lr.EXAMPLES)(sweep_lr.sweep_lr)
app.command("find-lr", epilog=find_lr.EXAMPLES)(find_lr.find_lr)
app.command("plot", epilog=plot.EXAMPLES)(plot.plot)
app.add_typer(configs_app, name="configs")
app.command("explore", epilog=explore.EXAMPLES)(explore.explore)
app.command("validate", epilog=validate.EXAMPLES)(validate.validate)
app.command("schema", epilog=schema.EXAMPLES)(schema.schema)
app.command("data", epilog=data.EXAMPLES)(data.data)
app.command("predict", epilog=predict.EXAMPLES)(predict.predict)


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


def main() -> NoReturn:
    """Console-script entry point."""
    try:
        app()  # standalone: it ends in SystemExit with the command's exit code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        code: int | str | None = EXIT_INTERRUPTED
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    end(code)


def end(code: int | str | None) -> NoReturn:
    """End the process as ``sys.exit(code)`` would, less the interpreter's tear-down of its
    modules: with torch imported that takes ~0.2–0.3 s (and ~0.4 s with the exit handlers
    that still run here), where the lesson's whole answer takes ~1.3 s beyond the import.
    Nothing is left for it to do: every file is written atomically and closed, the drawers
    are done. The exit handlers (``atexit``) still run and the output is flushed; where a
    tracer or profiler is active (coverage, ``python -m cProfile``), or a thread other than
    this one is still running, the process ends the ordinary way."""
    import threading

    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if (
        sys.gettrace() is not None
        or sys.getprofile() is not None
        or any(t.is_alive() and not t.daemon for t in others)
    ):
        sys.exit(code)
    import atexit
    import contextlib
    import os

    if isinstance(code, str):  # as sys.exit: the message to stderr, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # what the handlers would do at the ordinary exit (CPython's)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(code or 0)
