"""``lrtrain explore``: write the interactive page and open it in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrtrain.cli.running import ConfigOpt, console, user_errors
from lrtrain.errors import ConfigError

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain explore  (the lesson)\n\n"
    "lrtrain explore -c minibatch optimizer.momentum=0.9\n\n"
    "lrtrain explore runs/lecture-20261126-101500 -o lesson.html --no-open\n\n"
    "Links reproduce a view: file:///…/lecture-explore.html#lr=0.028&momentum=0&steps=100"
)


def explore(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="A fit run directory (its files are read, nothing is trained), or KEY=VALUE "
            "overrides of the config.",
            show_default=False,
            metavar="RUN_DIR | KEY=VALUE",
        ),
    ] = None,
    config: ConfigOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="The page's file (default: RUN_DIR/explore.html, or "
            "OUTPUT_ROOT/NAME-explore.html for a config: runs/lecture-explore.html).",
            show_default=False,
        ),
    ] = None,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Write the page without opening a browser.")
    ] = False,
) -> None:
    """Write one self-contained HTML page (offline, nothing fetched) with sliders for the
    learning rate, momentum, Nesterov, steps, batch size and the eigen-directions shown, and
    open it. For a config the analysis runs first (not the training)."""
    with user_errors():
        from lrtrain.api import explore as write_explore
        from lrtrain.config.schema import load_config

        args = targets or []
        if args and "=" not in args[0] and Path(args[0]).is_dir():
            if config is not None or len(args) > 1:
                raise ConfigError(
                    f"explore {args[0]}: a run directory is explored as it was trained; "
                    "-c and KEY=VALUE overrides apply to configs"
                )
            page = write_explore(Path(args[0]), output)
        else:
            if args and "=" not in args[0]:
                raise ConfigError(
                    f"explore: {args[0]} is neither a run directory nor a KEY=VALUE override"
                )
            page = write_explore(load_config(config, args), output)
    console.print(f"wrote {page.path}")
    if not no_open:
        import webbrowser

        if not webbrowser.open(page.path.resolve().as_uri()):
            console.print("no browser found: open the file above in one")
