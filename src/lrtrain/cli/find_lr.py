"""``lrtrain find-lr``: the published learning-rate range tests, scored against the exact
thresholds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from lrtrain.cli.report import find_lr_report
from lrtrain.cli.running import (
    Command,
    ConfigOpt,
    DeviceOpt,
    JsonOpt,
    OutOpt,
    OverridesArg,
    OverwriteOpt,
    PrintConfigOpt,
    QuietOpt,
    SeedOpt,
    resolve_config,
    train_command,
)
from lrtrain.data.distributed import DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    from lrtrain.api import FindLrRun
    from lrtrain.config.schema import Config

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain find-lr  (the lesson)\n\n"
    "lrtrain find-lr -c diabetes --repeats 5\n\n"
    "lrtrain find-lr train.batch_size=8 train.target_gap=0.01"
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
    """fastai's, PyTorch Lightning's and torch-lr-finder's learning-rate range tests, as
    published, on this model and data — every suggestion scored against the exact critical lr,
    η*, the mean-square critical lr and the fastest constant rate a sweep finds."""

    def resolve() -> Config:
        return resolve_config(config, overrides, device, seed)

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> FindLrRun:
        from lrtrain.api import find_lr as run_finder

        return run_finder(cfg, repeats, out, overwrite, draw=draw)

    command = Command("find-lr", resolve, lambda cfg: None, run, find_lr_report, lambda r: None)
    train_command(command, print_config, quiet, json_out, 1, DEFAULT_TIMEOUT_S)
