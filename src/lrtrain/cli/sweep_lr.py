"""``lrtrain sweep-lr``: many learning rates in one vectorised run, or the lr × batch-size map
(``--batch-sizes``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from lrtrain.api import ProgressBar
from lrtrain.cli.network_report import any_sweep_report
from lrtrain.cli.report import batch_map_report
from lrtrain.cli.running import (
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
    SeedOpt,
    console,
    resolve_config,
    sweep_ending,
    train_command,
)
from lrtrain.data.distributed import DEFAULT_TIMEOUT_S
from lrtrain.errors import ConfigError

if TYPE_CHECKING:
    from lrtrain.api import BatchMapRun, NetworkRun, SweepRun
    from lrtrain.config.schema import Config

EXAMPLES = (
    "**Examples**\n\n"
    "lrtrain sweep-lr  (the lesson's six learning rates)\n\n"
    "lrtrain sweep-lr --lrs 0.0005,0.001,0.005,0.025,0.028,0.03\n\n"
    "lrtrain sweep-lr -c multivariate --lr-range 1e-4:1e-1:40 train.max_iter=2000\n\n"
    "lrtrain sweep-lr --lr-range 1e-4:3e-2:40 --nproc 2  (the rates dealt out over 2 processes)"
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

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> SweepRun | NetworkRun:
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
        Command("sweep", resolve, count, run, any_sweep_report, sweep_ending)
        if batch_sizes is None
        else Command("batch-map", resolve, count, run_map, batch_map_report, lambda run: None)
    )
    train_command(command, print_config, quiet, json_out, nproc, dist_timeout)
