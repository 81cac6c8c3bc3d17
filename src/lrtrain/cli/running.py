"""How the CLI runs a command: the core's user errors become one message and exit code 2,
Ctrl-C asks training to stop and save (exit 130), ``--nproc`` starts processes, a second process
draws the figures, and :func:`train_command` is the skeleton ``fit`` and ``sweep-lr`` share.
Also the options the commands share. Part of the CLI (it imports typer and rich); the commands
themselves are in ``cli``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from lrtrain.cli.network_report import is_network
from lrtrain.errors import DistributedError, LrtrainError

if TYPE_CHECKING:
    from lrtrain.api import FitRun, SweepRun
    from lrtrain.cli.drawer import Drawer
    from lrtrain.config.schema import Config

EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130
_SIGNAL_REPEAT_S = 5.0  # signals this close to the first are the same Ctrl-C (see interruptible)


class _Stdout:
    """Standard output as the commands' console writes to it, whatever it is at the time
    (``CliRunner`` swaps it), and a reader that has gone away included: ``lrtrain fit | head``
    closed the pipe after its lines, the next line raised ``BrokenPipeError``, and the command
    died with status 1 before drawing its figures. The rest of the output now goes nowhere
    and the command finishes its run."""

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except BrokenPipeError:
            _discard_stdout()
            return len(text)

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: stdout's own
        return getattr(sys.stdout, name)


def _discard_stdout() -> None:
    """Point file descriptor 1 at the null device: what is buffered, and every later write,
    go there (Python's documented way out of a closed pipe), not into another error."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, sys.stdout.fileno())
    finally:
        os.close(null)


console = Console(file=_Stdout(), highlight=False)  # type: ignore[arg-type]
err_console = Console(stderr=True, highlight=False)

# --------------------------------------------------------------------------- shared options

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
LoggerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--logger",
        help="Also log the run to tensorboard or mlflow (repeatable; output.loggers).",
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
ReplicasOpt = Annotated[
    int | None,
    typer.Option(
        "--replicas",
        min=1,
        help="Mini-batches: train K independent batch streams at once and compare their mean "
        "loss (99% band) with the theory's expected loss (same as train.replicas=K).",
        show_default=False,
    ),
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

# --------------------------------------------------------------------------- running a command


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the core's user errors into one clear message and exit code 2, no traceback.
    In a distributed run rank 0 speaks for all (every process meets the same error), except
    when processes lose each other: then each says what it saw, and exits 1."""

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
def distributed_run(
    cfg: Config, nproc: int, timeout: float, items: int | None = None
) -> Iterator[None]:
    """``--nproc N``: start N copies of this command through torchrun's launcher and exit with
    their code (never returns). Under torchrun: join the process group for the command's
    duration; processes other than rank 0 keep quiet (rank 0 reports for all)."""
    from lrtrain.data import distributed

    if nproc > 1 and not distributed.launched():
        from lrtrain.cli.launcher import launch

        code, message = launch(cfg, nproc, items, sys.argv[1:])
        if message is not None:
            err_console.print(f"[bold red]error:[/] {message}")
        raise typer.Exit(code)
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
def drawer_process(cfg: Config, nproc: int, kind: str = "fit") -> Iterator[Drawer | None]:
    """A second process that prepares to draw while this one imports torch and trains (see
    lrtrain.cli.drawer); None where figures are drawn here (several processes, or none wanted)."""
    from lrtrain.data.distributed import launched

    if nproc > 1 or launched() or not cfg.output.plots:
        yield None
        return
    from lrtrain.cli.drawer import Drawer

    with Drawer(kind, cfg.output.plots) as drawer:
        yield drawer


def is_main() -> bool:
    from lrtrain.data.distributed import current

    return current().is_main


@dataclass
class _StopRequest:
    stop: bool = False
    at: float = 0.0  # time.monotonic() of the first signal


@contextlib.contextmanager
def interruptible() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) or SIGTERM: the first asks training to stop after the current step and
    save everything (then exit 130); a second stops at once (every file already written is
    whole: writes are atomic). Yields the ``should_stop`` callback for the engine."""
    import signal
    import time

    from lrtrain.data.distributed import launched

    asked = _StopRequest()

    def handler(signum: int, frame: object) -> None:
        # Under torchrun one Ctrl-C arrives twice: from the terminal and, forwarded, from the
        # launcher. Within a few seconds of the first, a signal is the same request.
        repeat = launched() and time.monotonic() - asked.at < _SIGNAL_REPEAT_S
        if asked.stop and not repeat:
            # At once: no cleanup that could itself be interrupted. Files already written are
            # whole (every write is atomic); a write in flight leaves only its hidden temp file.
            os.write(2, b"\ninterrupted again: stopped at once\n")
            os._exit(EXIT_INTERRUPTED)
        if not asked.stop:
            asked.stop, asked.at = True, time.monotonic()
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
                os.write(2, b"\nstopping after this step, saving the run (again: stop at once)\n")

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. called from a worker): no handlers
        pass
    try:
        yield lambda: asked.stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def resolve_config(
    config: str | None,
    overrides: list[str] | None,
    device: str | None,
    seed: int | None,
    replicas: int | None = None,
    loggers: list[str] | None = None,
) -> Config:
    """The config with the overrides, then the options that are shortcuts for keys
    (``--device``, ``--seed``, ``--replicas``, ``--logger``) applied after them."""
    from lrtrain.config.schema import load_config

    shortcuts = {"device": device, "seed": seed, "train.replicas": replicas,
                 "output.loggers": f"[{','.join(loggers)}]" if loggers else None}  # fmt: skip
    extra = [*(overrides or []), *(f"{k}={v}" for k, v in shortcuts.items() if v is not None)]
    return load_config(config, extra)


@dataclass
class Command:
    """What ``fit`` and ``sweep-lr`` differ in; :func:`train_command` is what they share."""

    kind: str  # "fit" or "sweep": the drawer's figures
    resolve: Callable[[], Config]  # the config (its errors are the user's)
    items: Callable[[Config], int | None]  # learning rates dealt to processes (None: rows)
    run: Callable[[Config, Callable[[], bool], bool], Any]  # (config, should_stop, draw) → run
    report: Callable[[Any, Console], None]
    ending: Callable[[Any], tuple[str, int] | None]  # (message, exit code) when not a success


def train_command(
    command: Command,
    print_config: bool,
    quiet: bool,
    json_out: bool,
    nproc: int,
    dist_timeout: float,
) -> None:
    """The skeleton of a training command: signals (Ctrl-C saves), user errors (exit 2),
    ``--print-config``, the drawing process, ``--nproc``/torchrun, the report (rank 0), then
    the figures, then the exit code (3 diverged, 130 interrupted)."""
    # Errors are reported while the signal handlers are still in place: under a launcher, a
    # SIGTERM that follows another process's exit must not cut rank 0's message short.
    with interruptible() as stopped, user_errors():
        cfg = command.resolve()
        if print_config:
            console.print(cfg.to_yaml(), end="", markup=False)
            return
        with drawer_process(cfg, nproc, command.kind) as drawer:  # started before torch is imported
            with distributed_run(cfg, nproc, dist_timeout, command.items(cfg)):
                run = command.run(cfg, stopped, drawer is None)
                main_process = is_main()  # asked before the process group is left
            if run is None or not main_process:
                return
            # the answer first, then the figures
            if json_out:
                import json

                sys.stdout.write(json.dumps(run.summary, indent=2) + "\n")
            elif not quiet:
                command.report(run, console)
            if drawer is not None:
                from lrtrain.api import log

                run.figures = drawer.draw(run.run_dir, cfg.output.format)
                run.logged = log(run.run_dir, cfg)
            if not json_out and not quiet:
                label = "logged".ljust(13 if command.kind == "sweep" else 10)  # the report's
                for logged in run.logged:
                    console.print(f"{label}{logged.logger}: {logged.where}", soft_wrap=True)
    ending = command.ending(run)
    if ending is not None:
        message, code = ending
        err_console.print(message, soft_wrap=True)
        raise typer.Exit(code)


def fit_ending(run: FitRun) -> tuple[str, int] | None:
    """What a fit that did not finish says on stderr, and its exit code."""
    s = run.summary
    if s["status"] == "interrupted":
        return (
            f"[bold yellow]interrupted[/] at step {s['steps']}: checkpoint, metrics and summary "
            f"saved in {run.run_dir}; continue with: lrtrain fit --resume {run.run_dir}",
            EXIT_INTERRUPTED,
        )
    if s["status"] == "diverged" and is_network(s):  # no critical lr to name
        start, limit = s["sharpness"]["initial"], s["sharpness"]["thresholds"][0]
        # the rate whose threshold is λ_max(θ₀): limit(lr) = c/lr, so that rate is c/λ₀
        hint = f"; stable at θ₀ below lr {limit * s['lr'] / start:.3g}" if start and limit else ""
        return (
            f"[bold red]diverged[/]: the run stopped at step {s['steps']} (lr {s['lr']:g}"
            f"{hint}). Results and plots are in {run.run_dir}",
            EXIT_DIVERGED,
        )
    if s["status"] == "diverged":
        a = s["analysis"]
        began = s["verdict"]["diverged_at"]
        since = f"the loss rose above its initial value at step {began} and " if began else ""
        safe = min(a["asymptotically_optimal_lr"], 0.9 * a["critical_lr"])
        fix = f"optimizer.lr={safe:.3g}"
        if s["lr"] < a["critical_lr"]:  # stable in the end: a transient passed the guard
            below = 1 - s["lr"] / a["critical_lr"]
            why = (f"lr {s['lr']:g} is below the critical lr {a['critical_lr']:.4g} (by "
                   f"{below:.2g} of it), but the loss grew on the way (momentum's transient near "
                   "its limit) past the divergence guard, 10⁶× its start")  # fmt: skip
            kappa = a["condition_number"]
            if "standardization" not in s and kappa is not None and kappa > 1e4:
                fix = f"data.standardize=true (κ is {kappa:.2g})"
            else:
                fix = "a smaller optimizer.momentum"
        else:
            why = f"lr {s['lr']:g} is above the critical lr {a['critical_lr']:.4g}"
        return (
            f"[bold red]diverged[/]: {since}the run stopped at step {s['steps']}: {why}; try "
            f"{fix}. Results and plots are in {run.run_dir}",
            EXIT_DIVERGED,
        )
    return None


def sweep_ending(run: SweepRun) -> tuple[str, int] | None:
    s = run.summary
    assert s is not None, "rank 0 reports a sweep"
    if s["status"] == "interrupted":
        return (
            f"[bold yellow]interrupted[/] at step {s['steps_run']}: what the sweep had is saved "
            f"in {run.run_dir}",
            EXIT_INTERRUPTED,
        )
    if run.all_diverged and is_network(s):  # no critical lr to name
        return (f"[bold red]every learning rate diverged[/]. Results and plots are in "
                f"{run.run_dir}", EXIT_DIVERGED)  # fmt: skip
    if run.all_diverged:
        return (
            f"[bold red]every learning rate diverged[/]: the critical lr is "
            f"{s['critical_lr']:.4g}. Results and plots are in {run.run_dir}",
            EXIT_DIVERGED,
        )
    return None
