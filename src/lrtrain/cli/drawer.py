"""Figures drawn by other processes, so that drawing costs the command as little as it can.

A command that will draw starts the drawers as soon as it knows its config: they import
matplotlib and lrtrain's plotting code (and load the fonts) while the command imports torch and
trains — on two cores, at the same time. When the run directory is written, the command prints
its answer and hands the directory over; the drawers draw the figures from the files alone
(exactly what ``lrtrain plot`` draws) and the command waits for them, so every file is complete
when it exits. Where there are two cores or more, a fit's or a sweep's figures are shared by two
drawers (:func:`shares`): the command only waits by then, so the drawing takes half the time
(the lecture sweep's 1.4 s of waiting became 0.7 s). The second prepares at the lowest priority,
in the time the first leaves idle, so that it does not slow the command's own start. If a drawer
is not there or fails, the command draws its share in its own process, as it would without it.
(Rendering the figures in processes forked from the command was tried and measured slower on
this project's 2-core virtual machines: copy-on-write faults cost more than they saved.)

The drawers run in their own sessions (a Ctrl-C at the terminal stops the command, which then
ends them) and end by themselves when the command's end of the pipe closes, whatever happened
to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# The figures apart: those over the parameters and the data (the contours, the fitted line)
# and those over the steps (the loss curves, the modes). Drawn alone, each half costs about the
# same: the lesson's 240 and 240 ms of 470, the lecture sweep's 600 and 510 ms of 1 170.
SURFACES = ("contour", "fit")
# The second drawer's niceness: it prepares in the time the first leaves idle, not in the time
# the command imports torch (at the same priority it delayed the command's training by 0.4 s
# on two cores, as much as it saved at the end)
BACKGROUND = 19
# The most drawers a command starts (default: one per core, up to two); ``1`` where the cores
# are taken anyway, as by a test suite's workers (tests/conftest.py)
SETTING = "LRTRAIN_DRAWERS"


def shares(kind: str, plots: Sequence[str], cores: int | None = None) -> list[list[str]]:
    """The plot kinds each drawer draws: a fit's or a sweep's two halves by two drawers where
    there are two cores or more (the command itself only waits by then) and
    ``LRTRAIN_DRAWERS`` allows two; one drawer for the rest — a single figure, one core."""
    if cores is None:
        cores = os.cpu_count() or 1
        setting = os.environ.get(SETTING, "").strip()
        if setting.isdigit():
            cores = min(cores, int(setting))
    halves = [[p for p in plots if p in SURFACES], [p for p in plots if p not in SURFACES]]
    if kind not in ("fit", "sweep") or cores < 2 or not all(halves):
        return [list(plots)]
    return halves


class Drawer:
    """The command's side: start the drawers, hand them a run directory, collect the figures.

    ``plots`` are the kinds of figure the run asks for (``output.plots``), dealt to one drawer
    or two by :func:`shares`; without them, one drawer draws whatever the run asks for."""

    def __init__(self, kind: str = "fit", plots: Sequence[str] = ()) -> None:
        self.kind = kind  # "fit" or "sweep": which figures to warm up for
        self.shares = shares(kind, plots) if plots else [[]]
        self.processes: list[subprocess.Popen[str] | None] = []

    def start(self) -> Drawer:
        self.processes = [self._spawn(share, i) for i, share in enumerate(self.shares)]
        return self

    def _spawn(self, share: list[str], index: int) -> subprocess.Popen[str] | None:
        try:
            niceness = str(BACKGROUND if index else 0)
            return subprocess.Popen(
                [sys.executable, "-m", "lrtrain.cli.drawer", self.kind, ",".join(share), niceness],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                env={
                    **os.environ,
                    "MPLBACKEND": "Agg",
                    "OMP_NUM_THREADS": "1",
                    "OPENBLAS_NUM_THREADS": "1",
                },
            )
        except OSError:
            return None  # no second process: the command draws this share itself

    def draw(self, run_dir: Path, fmt: str) -> list[Path]:
        """Every figure of the run, drawn by the drawers (or here, where one cannot)."""
        processes, self.processes = self.processes, []
        if not processes:
            processes = [None] * len(self.shares)
        for process in processes:  # every drawer starts before any is waited for
            if process is not None:
                try:
                    assert process.stdin is not None
                    process.stdin.write(f"{run_dir}\t{fmt}\n")
                    process.stdin.flush()
                except OSError:
                    pass  # it died: communicate() below sees it
        drawn: list[Path] = []
        for process, share in zip(processes, self.shares, strict=True):
            drawn += self._collect(process, run_dir, fmt, share)
        return drawn

    @staticmethod
    def _collect(
        process: subprocess.Popen[str] | None, run_dir: Path, fmt: str, share: list[str]
    ) -> list[Path]:
        if process is not None:
            try:
                out, _ = process.communicate(timeout=600)
            except (OSError, ValueError, subprocess.SubprocessError):
                process.kill()
                process.wait()
            else:
                if process.returncode == 0:
                    return [Path(line) for line in out.splitlines() if line]
        from lrtrain.api import redraw

        return redraw(run_dir, fmt, share or None)

    def close(self) -> None:
        """End drawers that were not used (the command failed or stopped)."""
        processes, self.processes = self.processes, []
        for process in processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()

    def __enter__(self) -> Drawer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warm_up(kind: str, share: Sequence[str] = ()) -> None:
    """Import and exercise what drawing needs — matplotlib, the fonts, log axes, contours and
    their labels, the PNG writer — by drawing small figures of each kind this drawer will draw
    (``share``; every kind where empty), thrown away. The drawer does this while the command
    imports torch, so it is time the command does not wait for."""
    import io

    import numpy as np

    from lrtrain import plots
    from lrtrain.plots import sweep as sweep_plots

    wanted = set(share) or {"loss", "contour", "fit", "modes"}
    steps = np.arange(20)
    path = np.stack([np.linspace(0, 1, 20), np.linspace(0, 0.5, 20)], axis=1)
    loss = 1 + 100 * 0.7**steps
    hessian = [[2.0, 0.5], [0.5, 1.0]]
    figures = []
    if kind == "sweep":
        rows = [{"lr": lr, "final_loss": 1.5, "verdict": "monotone"} for lr in (0.1, 0.2)]
        if "contour" in wanted:
            grid = plots.contour_grid_figure([path, path], ["a", "b"], [1.0, 0.5], 1.0, hessian)
            figures.append(grid)
        if wanted & {"loss", "modes"}:
            figures += [
                sweep_plots.sweep_loss_figure([(0.1, steps, loss, "monotone")], 1.0),
                sweep_plots.sweep_summary_figure(rows, 0.1, 0.15, 0.2),
            ]
    else:
        if wanted & {"loss", "modes"}:
            figures.append(plots.loss_figure(steps, loss, 1.0, title="warm-up"))
        if "contour" in wanted:
            figures.append(plots.contour_figure(path, [1.0, 0.5], 1.0, hessian, [1.0, 0.4]))
        if "fit" in wanted:
            line = plots.fit_figure(steps, 2 * steps + 1, 2.0, 1.0, 2.0, 1.0, title="warm-up")
            figures.append(line)
    for fig in figures:
        fig.savefig(io.BytesIO(), format="png", dpi=30)


def _lower_priority(niceness: int) -> None:
    """Nice this process; and, where Linux groups a session's processes for the scheduler
    (autogroups: each drawer has its own session), the group too, or the niceness would only
    rank it within its own group of one."""
    if niceness <= 0:
        return
    os.nice(niceness)
    try:
        with open("/proc/self/autogroup", "w", encoding="ascii") as group:
            group.write(str(niceness))
    except OSError:
        pass  # no autogroups (or not allowed): the process's own niceness is what there is


def main() -> int:
    """The drawer's side: warm up, wait for a run directory, draw it, print each file."""
    try:
        kind = sys.argv[1] if len(sys.argv) > 1 else "fit"
        share = [p for p in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if p]
        _lower_priority(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        _warm_up(kind, share)
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the command did not need a drawing after all
        run_dir, fmt = line.rstrip("\n").split("\t")
        from lrtrain.api import redraw

        for path in redraw(run_dir, fmt, share or None):
            print(path)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the command draws itself and reports any error there
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every figure is written (atomically, fsynced): skip the interpreter's tear-down of
    # matplotlib's modules, which the command would otherwise wait for.
    os._exit(code)
