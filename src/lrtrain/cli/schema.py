"""``lrtrain schema``: the config's JSON Schema, or its Markdown key reference."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

EXAMPLES = (
    "**Examples**\n\n"
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
