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
from typing import Annotated

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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
