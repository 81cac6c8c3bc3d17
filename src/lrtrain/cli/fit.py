"""``lrtrain fit``: train one model as configured (or go on with ``--resume``) and report why it
converged, oscillated or diverged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lrtrain.api import ProgressBar
from lrtrain.cli.network_report import any_fit_report
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
    ReplicasOpt,
    SeedOpt,
    console,
    fit_ending,
    resolve_config,
    train_command,
)
from lrtrain.data.distributed import DEFAULT_TIMEOUT_S
from lrtrain.errors import RunDirError

if TYPE_CHECKING:
    from lrtrain.api import FitRun, NetworkRun
    from lrtrain.config.schema import Config

EXAMPLES = (
    "**Examples**\n\n"
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

    def run(cfg: Config, stopped: Callable[[], bool], draw: bool) -> FitRun | NetworkRun | None:
        return _fit_or_resume(cfg, resume, out, overwrite, quiet or json_out, stopped, draw)

    train_command(
        Command("fit", resolve, lambda cfg: None, run, any_fit_report, fit_ending),
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
) -> FitRun | NetworkRun | None:
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
