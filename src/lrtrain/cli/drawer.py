"""Figures drawn by a second process, so that drawing costs the command as little as it can.

A command that will draw starts the drawer as soon as it knows its config: the drawer imports
matplotlib and lrtrain's plotting code (and loads the fonts) while the command imports torch and
trains — on two cores, at the same time. When the run directory is written, the command prints
its answer and hands the directory over; the drawer draws every figure from the files alone
(exactly what ``lrtrain plot`` draws) and the command waits for it, so every file is complete
when it exits. If the drawer is not there or fails, the command draws in its own process, as it
would without it. (Rendering the figures in forked processes side by side was tried and measured
slower on this project's 2-core virtual machines: copy-on-write faults cost more than they saved.)

The drawer runs in its own session (a Ctrl-C at the terminal stops the command, which then ends
the drawer) and ends by itself when the command's end of the pipe closes, whatever happened to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class Drawer:
    """The command's side: start the drawer, hand it a run directory, collect the figures."""

    def __init__(self, kind: str = "fit") -> None:
        self.kind = kind  # "fit" or "sweep": which figures to warm up for
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Drawer:
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lrtrain.cli.drawer", self.kind],
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
            self.process = None  # no second process: the command draws itself
        return self

    def draw(self, run_dir: Path, fmt: str) -> list[Path]:
        """Every figure of the run, drawn by the drawer (or here, if it cannot)."""
        process, self.process = self.process, None
        if process is not None:
            try:
                out, _ = process.communicate(f"{run_dir}\t{fmt}\n", timeout=600)
            except (OSError, subprocess.SubprocessError):
                process.kill()
                process.wait()
            else:
                if process.returncode == 0:
                    return [Path(line) for line in out.splitlines() if line]
        from lrtrain.api import redraw

        return redraw(run_dir, fmt)

    def close(self) -> None:
        """End a drawer that was not used (the command failed or stopped)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()

    def __enter__(self) -> Drawer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warm_up(kind: str) -> None:
    """Import and exercise what drawing needs — matplotlib, the fonts, log axes, contours and
    their labels, the PNG writer — by drawing small figures of each kind that are thrown away.
    The drawer does this while the command imports torch, so it is time the command does not
    wait for."""
    import io

    import numpy as np

    from lrtrain import plots
    from lrtrain.plots import sweep as sweep_plots

    steps = np.arange(20)
    path = np.stack([np.linspace(0, 1, 20), np.linspace(0, 0.5, 20)], axis=1)
    loss = 1 + 100 * 0.7**steps
    hessian = [[2.0, 0.5], [0.5, 1.0]]
    if kind == "sweep":
        rows = [{"lr": lr, "final_loss": 1.5, "verdict": "monotone"} for lr in (0.1, 0.2)]
        figures = [
            plots.contour_grid_figure([path, path], ["a", "b"], [1.0, 0.5], 1.0, hessian),
            sweep_plots.sweep_loss_figure([(0.1, steps, loss, "monotone")], 1.0),
            sweep_plots.sweep_summary_figure(rows, 0.1, 0.15, 0.2),
        ]
    else:
        figures = [
            plots.loss_figure(steps, loss, 1.0, title="warm-up"),
            plots.contour_figure(path, [1.0, 0.5], 1.0, hessian, [1.0, 0.4]),
            plots.fit_figure(steps, 2 * steps + 1, 2.0, 1.0, 2.0, 1.0, title="warm-up"),
        ]
    for fig in figures:
        fig.savefig(io.BytesIO(), format="png", dpi=30)


def main() -> int:
    """The drawer's side: warm up, wait for a run directory, draw it, print each file."""
    try:
        _warm_up(sys.argv[1] if len(sys.argv) > 1 else "fit")
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # the command did not need a drawing after all
        run_dir, fmt = line.rstrip("\n").split("\t")
        from lrtrain.api import redraw

        for path in redraw(run_dir, fmt):
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
