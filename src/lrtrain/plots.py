"""Figures drawn from run data (numpy arrays): no torch, matplotlib imported inside functions.

Each function takes an optional matplotlib ``ax`` and returns the figure, so they work in a
notebook as well as for the files of a run directory (which ``runs.save_figures`` writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from lrtrain.surface import plane_axes, plane_loss, project

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs import RunData

GRID = 200  # contour resolution per axis
# With several features the contours are a slice, not the loss under the projected path.
SLICE_NOTE = "slice of the loss through θ* along H's top and bottom eigenvectors; path projected"
PATH_COLOR = "#d62728"


# Margins of the one-panel figures, in inches: room for tick labels, axis labels and a title
# of up to two lines (and a colorbar's labels on the right where there is one).
_MARGINS = {"left": 0.9, "bottom": 0.62, "top": 0.5, "right": 0.22}


def axes(
    ax: Axes | None, size: tuple[float, float] = (6.4, 4.8), right: float = _MARGINS["right"]
) -> tuple[Figure, Axes]:
    """The caller's axes, or a one-panel figure of ``size`` inches. One panel needs no layout
    engine: fixed margins fit its labels, and measuring every tick label for a constrained
    layout would double the time the figure takes to draw."""
    if ax is not None:
        return cast("Figure", ax.figure), ax  # a Figure: lrtrain draws on no subfigures
    width, height = size
    fig = figure(size, layout=None)
    fig.subplots_adjust(
        left=_MARGINS["left"] / width,
        right=1 - right / width,
        bottom=_MARGINS["bottom"] / height,
        top=1 - _MARGINS["top"] / height,
    )
    return fig, fig.add_subplot()


def figure(
    size: tuple[float, float], layout: Literal["constrained"] | None = "constrained"
) -> Figure:
    """A figure on an Agg canvas of its own. Without a canvas (a bare ``Figure``) every text
    measurement — the layout's, the contour labels' — would go through a whole print pass to
    find a renderer; with one it is a lookup: the figures draw several times faster."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def loss_figure(
    steps: np.ndarray,
    loss: np.ndarray,
    loss_star: float | None = None,
    title: str = "",
    ax: Axes | None = None,
    expected: np.ndarray | None = None,
    noise_floor: float | None = None,
) -> Figure:
    """Loss against step on a log scale, with the closed-form optimum as a reference line,
    the theory's expected loss (``expected``, metrics.csv's column) and, for mini-batches, the
    noise floor the expected loss settles at."""
    fig, ax = axes(ax)
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=np.float64)
    finite = np.isfinite(loss) & (loss > 0)
    if noise_floor is None:
        ax.plot(steps[finite], loss[finite], color="C0", lw=1.8, label="training loss")
    else:  # a batch's loss is noisy: drawn thin, under the expected curve
        ax.plot(steps[finite], loss[finite], color="C0", lw=0.6, alpha=0.5,
                label="training loss (the batch's)")  # fmt: skip
    if expected is not None:
        expected = np.asarray(expected, dtype=np.float64)
        shown = np.isfinite(expected) & (expected > 0)
        if shown.any():
            ax.plot(steps[shown], expected[shown], color="C1", ls="--", lw=1.8, zorder=3,
                    label="expected loss (theory)")  # fmt: skip
    if loss_star is not None and loss_star > 0:
        ax.axhline(
            loss_star, color="k", ls="--", lw=1, label=f"closed-form optimum {loss_star:.6g}"
        )
        if noise_floor is not None and noise_floor > 0:
            ax.axhline(loss_star + noise_floor, color="C3", ls=":", lw=1.2,
                       label=f"noise floor +{noise_floor:.3g}")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean squared error)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    return fig


def contour_figure(
    theta: np.ndarray,
    theta_star: list[float],
    loss_star: float,
    hessian: np.ndarray | list[list[float]],
    true_theta: list[float] | None = None,
    title: str = "",
    ax: Axes | None = None,
    diverged: bool = False,
    eigenvectors: np.ndarray | None = None,
) -> Figure:
    """Exact loss contours with the descent path, start, end, θ* and the true parameters.

    One feature: the (w, b) plane. Several: the plane through θ* spanned by the Hessian's top and
    bottom eigenvectors, with the path projected onto it. A path that leaves the frame (divergence)
    is clipped, with an arrow showing where it went.
    """
    fig, ax = axes(ax)
    surface = Surface([theta], theta_star, loss_star, hessian, true_theta, [diverged], eigenvectors)
    surface.panel(ax, 0, title, legend=True)
    return fig


def contour_grid_figure(
    thetas: list[np.ndarray],
    titles: list[str],
    theta_star: list[float],
    loss_star: float,
    hessian: np.ndarray | list[list[float]],
    true_theta: list[float] | None = None,
    suptitle: str = "",
    diverged: list[bool] | None = None,
    eigenvectors: np.ndarray | None = None,
) -> Figure:
    """One contour panel per path (the lesson's slides side by side), sharing frame and levels.

    ``diverged`` marks the paths that diverged: the common frame shows the others whole and
    leaves those out, so they do not shrink the others to a dot.
    """
    n = len(thetas)
    cols = min(n, 3 if n <= 6 else 4)
    rows = -(-n // cols)
    surface = Surface(thetas, theta_star, loss_star, hessian, true_theta, diverged, eigenvectors)
    fig = figure((4.2 * cols, 3.6 * rows), layout=None)
    _grid_margins(fig, rows, cols, title_lines=2 if surface.is_slice else 1)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i < n:
            surface.panel(ax, i, titles[i], legend=i == 0, note=False)
        else:
            ax.set_visible(False)
    fig.suptitle(f"{suptitle}\n{SLICE_NOTE}" if surface.is_slice else suptitle)
    return fig


def _grid_margins(fig: Figure, rows: int, cols: int, title_lines: int) -> None:
    """Fixed margins for a grid of contour panels (see ``_MARGINS``): each panel keeps room
    for its tick labels, axis labels and one-line title; the figure's title sits on top."""
    width, height = fig.get_size_inches()
    left, right, bottom = _MARGINS["left"], _MARGINS["right"], _MARGINS["bottom"]
    top = 0.25 + 0.25 * title_lines + _MARGINS["top"]
    gap_w, gap_h = left + right, bottom + _MARGINS["top"]
    panel_w = (width - left - right - (cols - 1) * gap_w) / cols
    panel_h = (height - bottom - top - (rows - 1) * gap_h) / rows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap_w / panel_w,
        hspace=gap_h / panel_h,
    )


class Surface:
    """The loss surface in the plot plane, framed to show every path, θ* and θ_true."""

    def __init__(
        self,
        thetas: list[np.ndarray],
        theta_star: list[float],
        loss_star: float,
        hessian: np.ndarray | list[list[float]],
        true_theta: list[float] | None,
        diverged: list[bool] | None = None,
        eigenvectors: np.ndarray | None = None,
    ) -> None:
        self.origin, self.e1, self.e2, self.labels = plane_axes(theta_star, hessian, eigenvectors)
        self.is_slice = len(theta_star) > 2  # several features: a 2-D slice of the surface
        self.paths = [
            project(np.asarray(th, dtype=np.float64), self.origin, self.e1, self.e2)
            for th in thetas
        ]
        self.marks = [self._point(theta_star)]
        self.has_true = true_theta is not None
        if true_theta is not None:
            self.marks.append(self._point(true_theta))
        self.diverged = diverged or [False] * len(self.paths)
        # Converged paths are framed whole; diverged ones only when nothing else is there, and
        # then only up to 3× their start's distance from θ*, where the interesting part is.
        framed = [p for p, div in zip(self.paths, self.diverged, strict=True) if not div]
        if not framed:
            framed = [_near_start(*p, self.marks[0]) for p in self.paths]
        s_all = np.concatenate([p[0] for p in framed])
        t_all = np.concatenate([p[1] for p in framed])
        self.xlim, self.ylim = _frame(s_all, t_all, self.marks)
        ss, tt = np.meshgrid(np.linspace(*self.xlim, GRID), np.linspace(*self.ylim, GRID))
        self.grid = (ss, tt)
        self.zz = plane_loss(ss, tt, self.origin, self.e1, self.e2, theta_star, loss_star, hessian)
        self.levels = _levels(self.zz, loss_star)

    def _point(self, theta: list[float]) -> tuple[float, float]:
        s, t = project(np.asarray([theta]), self.origin, self.e1, self.e2)
        return float(s[0]), float(t[0])

    def panel(
        self, ax: Axes, index: int | None, title: str, legend: bool, note: bool = True
    ) -> None:
        """Contours, θ* and θ_true, and path ``index`` (None: no path, the caller draws);
        ``note``: say under the title when the contours are a slice."""
        cs = ax.contour(*self.grid, self.zz, levels=self.levels, cmap="viridis", linewidths=0.9)
        # every other level labelled: readable where the levels crowd in a narrow valley, and
        # label placement is the costliest part of drawing a panel
        ax.clabel(cs, np.asarray(cs.levels)[::2], fontsize=7, fmt="%.3g")
        if index is not None:
            diverged = self.diverged[index]
            _draw_path(ax, *self.paths[index], self.xlim, self.ylim, diverged=diverged)
        ax.plot(
            *self.marks[0], marker="*", ms=15, color="gold", mec="k", ls="none", label="optimum θ*"
        )
        if self.has_true:
            ax.plot(
                *self.marks[1], marker="X", ms=9, color="C2", mec="k", ls="none", label="true θ"
            )
        ax.set_xlim(*self.xlim)
        ax.set_ylim(*self.ylim)
        ax.set_xlabel(self.labels[0])
        ax.set_ylabel(self.labels[1])
        if note and self.is_slice:
            title = f"{title}\n{SLICE_NOTE}" if title else SLICE_NOTE
        ax.set_title(title, fontsize=10 if not (note and self.is_slice) else 8)
        if legend:
            ax.legend(loc="best", fontsize=8)


def _near_start(
    s: np.ndarray, t: np.ndarray, star: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The points of a path within 3× its start's distance from θ*."""
    finite = np.isfinite(s) & np.isfinite(t)
    s, t = s[finite], t[finite]
    if not len(s):
        return s, t
    dist = np.hypot(s - star[0], t - star[1])
    keep = dist <= 3 * max(float(dist[0]), 1e-12)
    return s[keep], t[keep]


def _frame(
    s: np.ndarray, t: np.ndarray, marks: list[tuple[float, float]]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits showing the points given, θ* and θ_true, with a margin."""
    finite = np.isfinite(s) & np.isfinite(t)
    inside = np.stack([s[finite], t[finite]], axis=1)
    allpts = np.concatenate([inside, np.array(marks)]) if len(inside) else np.array(marks)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    span = np.maximum(hi - lo, 1e-9 * np.maximum(np.abs(hi), 1.0))
    # Keep both axes in view even when the path is a nearly straight line along one of them.
    span = np.maximum(span, 0.05 * span.max())
    lo, hi = lo - 0.12 * span, hi + 0.12 * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _levels(zz: np.ndarray, loss_star: float) -> np.ndarray:
    excess = zz - loss_star
    top = float(np.nanmax(excess))
    positive = excess[excess > 0]
    bottom = max(float(positive.min()) if positive.size else top * 1e-4, top * 1e-4)
    if not top > 0:
        return np.array([loss_star])
    return loss_star + np.geomspace(bottom * 2, top, 14)


def _draw_path(
    ax: Axes,
    s: np.ndarray,
    t: np.ndarray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    color: str = PATH_COLOR,
    label: str = "descent path",
    ends: bool = True,
    diverged: bool = True,
) -> None:
    finite = np.isfinite(s) & np.isfinite(t)
    s, t = s[finite], t[finite]
    inside = (xlim[0] <= s) & (s <= xlim[1]) & (ylim[0] <= t) & (t <= ylim[1])
    leaves = not inside.all()
    # A diverging path is drawn up to its first point outside the frame (the axes clip that
    # last segment at the edge); the blown-up tail would only smear the picture.
    exit_index = int(np.argmin(inside)) if leaves else len(s) - 1
    s_shown, t_shown = s[: exit_index + 1], t[: exit_index + 1]
    ax.plot(
        s_shown,
        t_shown,
        color=color,
        lw=1.2,
        marker="o",
        ms=2.5,
        markevery=max(1, len(s_shown) // 40),
        label=label,
    )
    if ends:
        ax.plot(
            s[0], t[0], marker="o", ms=8, color="white", mec=color, mew=2, ls="none", label="start"
        )
    if not leaves or not diverged:
        if ends and not leaves:
            ax.plot(s[-1], t[-1], marker="s", ms=7, color=color, mec="k", ls="none", label="end")
        return
    edge = (float(np.clip(s[exit_index], *xlim)), float(np.clip(t[exit_index], *ylim)))
    ax.annotate(
        f"diverges (leaves the frame at step {exit_index})",
        xy=edge,
        xytext=(0.5, 0.06),
        textcoords="axes fraction",
        ha="center",
        arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5},
        color=color,
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": color, "alpha": 0.9},
    )


def fit_figure(
    x: np.ndarray,
    y: np.ndarray,
    w: float,
    b: float,
    true_w: float | None = None,
    true_b: float | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """One feature: the data, the learned line and the true line."""
    fig, ax = axes(ax)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ax.scatter(x, y, s=10, alpha=0.6, color="C0", label="data")
    grid = np.linspace(x.min(), x.max(), 2)
    ax.plot(grid, w * grid + b, color=PATH_COLOR, lw=2, label=f"learned: y = {w:.4g}·x + {b:.4g}")
    if true_w is not None and true_b is not None:
        ax.plot(
            grid,
            true_w * grid + true_b,
            color="k",
            ls="--",
            lw=1.2,
            label=f"true: y = {true_w:.4g}·x + {true_b:.4g}",
        )
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best")
    ax.grid(True, alpha=0.3)
    return fig


def run_title(summary: dict[str, Any]) -> str:
    final = summary["final"]["loss"]
    final_text = f"{final:.5g}" if final is not None else "non-finite"
    return f"lr = {summary['lr']:g}, {summary['steps']} steps, final loss {final_text}"


def run_figures(run: RunData) -> dict[str, Figure]:
    """Every figure a saved fit run asks for (``output.plots``), by file stem."""
    summary, analysis = run.summary, run.summary["analysis"]
    wanted = run.config.get("output", {}).get("plots", ["loss", "contour", "fit"])
    title = run_title(summary)
    verdict = summary.get("verdict", {}).get("observed")
    figures: dict[str, Figure] = {}
    if "loss" in wanted:
        minibatch = summary.get("theory", {}).get("minibatch") or {}
        figures["loss"] = loss_figure(
            run.metrics["step"],
            run.metrics["loss"],
            summary["closed_form"]["loss"],
            title=f"Loss — {title}",
            expected=run.metrics.get("expected_loss"),  # absent before lrtrain 0.4
            noise_floor=minibatch.get("noise_floor"),
        )
    if "loss" in wanted and run.replicas is not None:
        from lrtrain.minibatch_plots import replica_figure

        figures["replicas"] = replica_figure(
            run.replicas, summary["closed_form"]["loss"], minibatch.get("noise_floor"),
            title=f"{summary['replicas']['count']} batch streams — {title}",
        )  # fmt: skip
    true = summary.get("true")
    true_theta = [*true["w"], true["b"]] if true else None
    if "contour" in wanted:
        figures["contour"] = contour_figure(
            run.theta,
            analysis["theta_star"],
            analysis["loss_star"],
            run.hessian,
            true_theta,
            title=f"Descent path ({verdict}) — {title}",
            diverged=summary["status"] == "diverged",
            eigenvectors=run.eigenvectors,
        )
    if "fit" in wanted and run.sample is not None and len(analysis["theta_star"]) == 2:
        columns = list(run.sample)
        final = summary["final"]
        figures["fit"] = fit_figure(
            run.sample[columns[0]],
            run.sample[columns[1]],
            final["w"][0],
            final["b"],
            true["w"][0] if true else None,
            true["b"] if true else None,
            title=f"Fit — {title}",
        )
    return figures


def compare_figure(runs: list[RunData], labels: list[str] | None = None) -> Figure:
    """Several fits of one problem side by side: their descent paths on one contour plot of
    the loss, and their loss curves (relative optimality gap, log scale) beside it."""

    first = runs[0].summary["analysis"]
    labels = labels or [_compare_label(run) for run in runs]
    fig = figure((12.5, 5.0))
    left, right = fig.subplots(1, 2)
    true = runs[0].summary.get("true")
    diverged = [run.summary["status"] == "diverged" for run in runs]
    surface = Surface(
        [run.theta for run in runs],
        first["theta_star"],
        first["loss_star"],
        runs[0].hessian,
        [*true["w"], true["b"]] if true else None,
        diverged,
        runs[0].eigenvectors,
    )
    surface.panel(left, None, "Descent paths on the loss surface", legend=False)
    colors = [f"C{i}" for i in (3, 0, 2, 1, 4, 5, 6, 7, 8, 9)]
    loss_star = runs[0].summary["closed_form"]["loss"]
    # Drawn last first, so the first run (usually the lesson's) lies on top of the others.
    for i in reversed(range(len(runs))):
        run, label, color = runs[i], labels[i], colors[i % len(colors)]
        _draw_path(
            left, *surface.paths[i], surface.xlim, surface.ylim, color, label, False, diverged[i]
        )
        gap = (run.metrics["loss"] - loss_star) / (loss_star if loss_star > 0 else 1.0)
        keep = np.isfinite(gap) & (gap > 0)
        right.plot(run.metrics["step"][keep], gap[keep], color=color, lw=1.4, label=label)
    for ax in (left, right):
        handles, names = ax.get_legend_handles_labels()
        order = sorted(range(len(names)), key=lambda j: labels.index(names[j]) if names[j]
                       in labels else -1)  # fmt: skip
        ax.legend([handles[j] for j in order], [names[j] for j in order], loc="best", fontsize=8)
    right.set_xscale("symlog", linthresh=10)
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("(loss − loss*) / loss*")
    right.set_title("Relative optimality gap", fontsize=10)
    right.grid(True, which="both", alpha=0.3)
    return fig


def _compare_label(run: RunData) -> str:
    opt = run.summary.get("optimizer", {})
    lr = opt.get("lr", run.summary.get("lr"))
    momentum = opt.get("momentum") or 0
    auto = " (auto)" if opt.get("auto") else ""
    name = opt.get("name", "sgd")
    kind = (opt.get("schedule") or {}).get("kind", "constant")
    text = (
        ("" if name == "sgd" else f"{name} ")
        + f"lr {lr:.4g}"
        + (
            f", {'Nesterov ' if opt.get('nesterov') else ''}momentum {momentum:.3g}"
            if momentum
            else ""
        )
        + ("" if kind == "constant" else f", {kind}")
        + auto
    )
    return f"{text}: {run.summary['steps']} steps, {run.summary['status']}"
