"""The descent animation: the path growing over the loss contours, the loss curve beside it
(from a run's files, no torch), for notebooks and for ``lrtrain plot --animate``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np

from lrtrain.plots.canvas import figure, log_scale
from lrtrain.plots.contours import PATH_COLOR, Surface, true_theta_as_trained
from lrtrain.plots.figures import run_title

if TYPE_CHECKING:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lrtrain.runs.directory import RunData


def descent_animation(run: RunData, frames: int = 40) -> Any:
    """The descent path growing over the loss contours, the loss curve growing beside it
    (a ``matplotlib.animation.FuncAnimation`` that redraws only what moves, for notebooks;
    :func:`descent_frames` renders the same frames as images)."""
    from matplotlib.animation import FuncAnimation

    scene = DescentScene(run, frames)
    return FuncAnimation(scene.fig, scene.update, frames=scene.count, interval=80, blit=True)


def descent_frames(run: RunData, frames: int = 40, dpi: float = 72) -> list[np.ndarray]:
    """The frames of :func:`descent_animation` as RGB arrays, drawn by blitting: the contours,
    their labels, the axes and the layout are drawn once; each frame restores that background
    and draws only the path, its head, the loss curve and the title over it."""
    scene = DescentScene(run, frames)
    fig = scene.fig
    fig.set_dpi(dpi)
    canvas = cast("FigureCanvasAgg", fig.canvas)  # _figure's canvas
    canvas.draw()  # the background, without the animated artists
    fig.set_layout_engine("none")  # keep the layout of that draw for every frame
    background = canvas.copy_from_bbox(fig.bbox)
    out = []
    for i in range(scene.count):
        canvas.restore_region(background)
        for artist in scene.update(i):
            fig.draw_artist(artist)
        out.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    return out


class DescentScene:
    """The figure of the descent animation and the artists that move in it."""

    def __init__(self, run: RunData, frames: int) -> None:
        summary, analysis = run.summary, run.summary["analysis"]
        surface = Surface(
            [run.theta],
            analysis["theta_star"],
            analysis["loss_star"],
            run.hessian,
            true_theta_as_trained(summary),
            [summary["status"] == "diverged"],
            run.eigenvectors,
        )
        self.fig = figure((11.0, 4.4))
        left, right = self.fig.subplots(1, 2)
        surface.panel(left, None, f"Descent path — {run_title(summary)}", legend=False)
        self.s, self.t = surface.paths[0]
        self.steps, self.loss = run.metrics["step"], run.metrics["loss"]
        (self.path_line,) = left.plot([], [], color=PATH_COLOR, lw=1.4, marker="o", ms=2.5)
        (self.head,) = left.plot([], [], marker="o", ms=8, color=PATH_COLOR, mec="k", ls="none")
        self.keep = np.isfinite(self.loss) & (self.loss > 0)
        log_scale(right)
        right.set_xlim(0, max(float(self.steps[-1]), 1.0))
        if self.keep.any():
            right.set_ylim(self.loss[self.keep].min() * 0.8, self.loss[self.keep].max() * 1.25)
        right.axhline(summary["closed_form"]["loss"], color="k", ls="--", lw=1, label="optimum")
        (self.curve,) = right.plot([], [], color=PATH_COLOR, lw=1.4, label="loss")
        right.set_xlabel("step")
        right.set_ylabel("loss (mean squared error)")
        right.grid(True, which="both", alpha=0.3)
        right.legend(loc="upper right", fontsize=8)
        self.title = right.set_title("", fontsize=10)
        for artist in self.moving:
            artist.set_animated(True)
        count = min(frames, len(self.steps))
        self.shown = np.unique(np.linspace(0, len(self.steps) - 1, count).astype(int))
        self.count = len(self.shown)

    @property
    def moving(self) -> tuple[Any, ...]:
        return self.path_line, self.head, self.curve, self.title

    def update(self, i: int) -> tuple[Any, ...]:
        upto = self.shown[i] + 1
        self.path_line.set_data(self.s[:upto], self.t[:upto])
        self.head.set_data(self.s[upto - 1 : upto], self.t[upto - 1 : upto])
        mask = self.keep[:upto]
        self.curve.set_data(self.steps[:upto][mask], self.loss[:upto][mask])
        self.title.set_text(f"step {int(self.steps[upto - 1])}: loss {self.loss[upto - 1]:.6g}")
        return self.moving
