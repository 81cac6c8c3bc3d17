"""``lrtrain configs``: the bundled configs — list them, show one, copy one to edit."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrtrain.cli.running import console, user_errors

configs_app = typer.Typer(
    help="The bundled configs: list them, show one, copy one to edit.",
    no_args_is_help=False,
    rich_markup_mode="markdown",
)


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
    from lrtrain.config.reference import bundled_config_description
    from lrtrain.config.sources import bundled_config_names

    table = Table(title="bundled configs (lrtrain fit -c NAME)", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for name in bundled_config_names():
        table.add_row(name, bundled_config_description(name))
    console.print(table)


@configs_app.command("show", epilog="**Example**\n\nlrtrain configs show lecture")
def configs_show(name: Annotated[str, typer.Argument(help="A bundled config's name.")]) -> None:
    """Print a bundled config."""
    from lrtrain.config.sources import bundled_config_source

    with user_errors():
        text = bundled_config_source(name)
    sys.stdout.write(text)


@configs_app.command("copy", epilog="**Example**\n\nlrtrain configs copy diabetes my-diabetes.yaml")
def configs_copy(
    name: Annotated[str, typer.Argument(help="A bundled config's name.")],
    dest: Annotated[Path, typer.Argument(help="Where to write it (never overwritten).")],
) -> None:
    """Copy a bundled config to a file you can edit (refuses to overwrite)."""
    from lrtrain.config.reference import copy_bundled_config

    with user_errors():
        copy_bundled_config(name, dest)
    console.print(f"wrote {dest}; run it with: lrtrain fit -c {dest}")
