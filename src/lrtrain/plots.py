"""Figures drawn from run data (numpy arrays): no torch, matplotlib imported inside functions.

Each function takes an optional matplotlib ``ax`` and returns the figure, so they work in a
notebook as well as for the files of a run directory (which ``runs.save_figures`` writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.surface import plane_axes, plane_loss, project

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs import RunData

GRID = 200  # contour resolution per axis
PATH_COLOR = "#d62728"


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.8)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def loss_figure(
    steps: np.ndarray,
    loss: np.ndarray,
    loss_star: float | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Loss against step on a log scale, with the closed-form optimum as a reference line."""
    fig, ax = _axes(ax)
    steps, loss = np.asarray(steps), np.asarray(loss, dtype=np.float64)
    finite = np.isfinite(loss) & (loss > 0)
    ax.plot(steps[finite], loss[finite], color="C0", lw=1.8, label="training loss")
    if loss_star is not None and loss_star > 0:
        ax.axhline(
            loss_star, color="k", ls="--", lw=1, label=f"closed-form optimum {loss_star:.6g}"
        )
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
    hessian: list[list[float]],
    true_theta: list[float] | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Exact loss contours with the descent path, start, end, θ* and the true parameters.

    One feature: the (w, b) plane. Several: the plane through θ* spanned by the Hessian's top and
    bottom eigenvectors, with the path projected onto it. A path that leaves the frame (divergence)
    is clipped, with an arrow showing where it went.
    """
    fig, ax = _axes(ax)
    surface = _Surface([theta], theta_star, loss_star, hessian, true_theta)
    surface.panel(ax, 0, title, legend=True)
    return fig


def contour_grid_figure(
    thetas: list[np.ndarray],
    titles: list[str],
    theta_star: list[float],
    loss_star: float,
    hessian: list[list[float]],
    true_theta: list[float] | None = None,
    suptitle: str = "",
    frame_paths: list[bool] | None = None,
) -> Figure:
    """One contour panel per path (the lesson's slides side by side), sharing frame and levels.

    ``frame_paths`` says which paths the common frame must show (by default all); diverging
    paths are best left out so they do not shrink the others to a dot.
    """
    from matplotlib.figure import Figure

    n = len(thetas)
    cols = min(n, 3 if n <= 6 else 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    surface = _Surface(thetas, theta_star, loss_star, hessian, true_theta, frame_paths)
    for i, ax in enumerate(axes):
        if i < n:
            surface.panel(ax, i, titles[i], legend=i == 0)
        else:
            ax.set_visible(False)
    fig.suptitle(suptitle)
    return fig


class _Surface:
    """The loss surface in the plot plane, framed to show every path, θ* and θ_true."""

    def __init__(
        self,
        thetas: list[np.ndarray],
        theta_star: list[float],
        loss_star: float,
        hessian: list[list[float]],
        true_theta: list[float] | None,
        frame_paths: list[bool] | None = None,
    ) -> None:
        self.origin, self.e1, self.e2, self.labels = plane_axes(theta_star, hessian)
        self.paths = [
            project(np.asarray(th, dtype=np.float64), self.origin, self.e1, self.e2)
            for th in thetas
        ]
        self.marks = [self._point(theta_star)]
        self.has_true = true_theta is not None
        if true_theta is not None:
            self.marks.append(self._point(true_theta))
        framed = [p for i, p in enumerate(self.paths) if frame_paths is None or frame_paths[i]]
        framed = framed or [(p[0][:1], p[1][:1]) for p in self.paths]  # at least the start
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

    def panel(self, ax: Axes, index: int, title: str, legend: bool) -> None:
        cs = ax.contour(*self.grid, self.zz, levels=self.levels, cmap="viridis", linewidths=0.9)
        ax.clabel(cs, fontsize=7, fmt="%.3g")
        _draw_path(ax, *self.paths[index], self.xlim, self.ylim)
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
        ax.set_title(title, fontsize=10)
        if legend:
            ax.legend(loc="best", fontsize=8)


def _frame(
    s: np.ndarray, t: np.ndarray, marks: list[tuple[float, float]]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits showing the whole path, θ* and θ_true — except a diverging tail, which is
    cut at 3× the start's distance from θ* so the interesting region stays readable."""
    star = np.array(marks[0])
    finite = np.isfinite(s) & np.isfinite(t)
    pts = np.stack([s[finite], t[finite]], axis=1)
    reach = 3 * max(np.linalg.norm(pts[0] - star), 1e-12) if len(pts) else 1.0
    inside = pts[np.linalg.norm(pts - star, axis=1) <= reach] if len(pts) else pts
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
    ax: Axes, s: np.ndarray, t: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]
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
        color=PATH_COLOR,
        lw=1.2,
        marker="o",
        ms=2.5,
        markevery=max(1, len(s_shown) // 40),
        label="descent path",
    )
    ax.plot(
        s[0], t[0], marker="o", ms=8, color="white", mec=PATH_COLOR, mew=2, ls="none", label="start"
    )
    if not leaves:
        ax.plot(s[-1], t[-1], marker="s", ms=7, color=PATH_COLOR, mec="k", ls="none", label="end")
        return
    edge = (float(np.clip(s[exit_index], *xlim)), float(np.clip(t[exit_index], *ylim)))
    ax.annotate(
        f"diverges (leaves the frame at step {exit_index})",
        xy=edge,
        xytext=(0.5, 0.06),
        textcoords="axes fraction",
        ha="center",
        arrowprops={"arrowstyle": "->", "color": PATH_COLOR, "lw": 1.5},
        color=PATH_COLOR,
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": PATH_COLOR, "alpha": 0.9},
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
    fig, ax = _axes(ax)
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


def _run_title(summary: dict[str, Any]) -> str:
    final = summary["final"]["loss"]
    final_text = f"{final:.5g}" if final is not None else "non-finite"
    return f"lr = {summary['lr']:g}, {summary['steps']} steps, final loss {final_text}"


def run_figures(run: RunData) -> dict[str, Figure]:
    """Every figure a saved fit run asks for (``output.plots``), by file stem."""
    summary, analysis = run.summary, run.summary["analysis"]
    wanted = run.config.get("output", {}).get("plots", ["loss", "contour", "fit"])
    title = _run_title(summary)
    verdict = summary.get("verdict", {}).get("observed")
    figures: dict[str, Figure] = {}
    if "loss" in wanted:
        figures["loss"] = loss_figure(
            run.metrics["step"],
            run.metrics["loss"],
            summary["closed_form"]["loss"],
            title=f"Loss — {title}",
        )
    true = summary.get("true")
    true_theta = [*true["w"], true["b"]] if true else None
    if "contour" in wanted:
        figures["contour"] = contour_figure(
            run.theta,
            analysis["theta_star"],
            analysis["loss_star"],
            analysis["hessian"],
            true_theta,
            title=f"Descent path ({verdict}) — {title}",
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


VERDICT_COLORS = {"monotone": "#2ca02c", "oscillating": "#ff7f0e", "diverged": "#d62728"}


def sweep_loss_figure(
    curves: list[tuple[float, np.ndarray, np.ndarray, str]],
    loss_star: float | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Every loss curve (lr, steps, loss, verdict) on a log scale, coloured by lr on a log
    colour scale; a diverged curve ends with a cross."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm

    fig, ax = _axes(ax, (7.5, 4.8))
    lrs = [c[0] for c in curves]
    norm = LogNorm(min(lrs), max(lrs) if max(lrs) > min(lrs) else min(lrs) * 10)
    # plasma without its palest yellow, which vanishes on a white background
    cmap = ListedColormap(colormaps["plasma"](np.linspace(0.0, 0.85, 256)))
    for lr, steps, loss, verdict in curves:
        keep = np.isfinite(loss) & (loss > 0)
        color = cmap(norm(lr))
        ax.plot(steps[keep], loss[keep], color=color, lw=1.3)
        if verdict == "diverged" and keep.any():
            ax.plot(steps[keep][-1], loss[keep][-1], marker="x", ms=8, mew=2, color=color)
    if loss_star is not None and loss_star > 0:
        ax.axhline(loss_star, color="k", ls="--", lw=1, label=f"optimum {loss_star:.6g}")
        ax.legend(loc="upper right")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean squared error)")
    ax.set_title("Loss per learning rate (× = diverged)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="learning rate")
    return fig


def sweep_summary_figure(
    results: list[dict[str, Any]],
    monotone_lr: float,
    optimal_lr: float,
    critical_lr: float,
    ax: Axes | None = None,
) -> Figure:
    """Final loss against lr on log axes, coloured by verdict, with the monotone limit, η* and
    the critical lr marked: the learning-rate finder picture, done exactly."""
    fig, ax = _axes(ax, (7.5, 4.8))
    for verdict, color in VERDICT_COLORS.items():
        pts = [
            (r["lr"], r["final_loss"])
            for r in results
            if r["verdict"] == verdict and r["final_loss"] is not None and r["final_loss"] > 0
        ]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "o", color=color, label=verdict)
    order = sorted(
        (r["lr"], r["final_loss"])
        for r in results
        if r["final_loss"] is not None and r["final_loss"] > 0
    )
    if order:
        ax.plot(*zip(*order, strict=True), color="0.6", lw=1, zorder=0)
    for x, label, style in (
        (monotone_lr, "monotone limit 1/λ_max", ":"),
        (optimal_lr, "optimal η*", "--"),
        (critical_lr, "critical 2/λ_max", "-"),
    ):
        if np.isfinite(x):
            ax.axvline(x, color="k", ls=style, lw=1, label=f"{label} = {x:.4g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final loss")
    ax.set_title("Final loss against learning rate", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def sweep_figures(run: RunData) -> dict[str, Figure]:
    """The three figures of a sweep directory."""
    summary, analysis = run.summary, run.summary["analysis"]
    lr_col = run.metrics["lr"]
    results = summary["results"]
    thetas, titles, curves = [], [], []
    for row in results:
        mask = lr_col == row["lr"]
        theta = run.theta[mask]
        thetas.append(theta)
        predicted = row["predicted_verdict"]
        titles.append(f"lr {row['lr']:.4g}: {row['verdict']} (predicted {predicted})")
        curves.append(
            (row["lr"], run.metrics["step"][mask], run.metrics["loss"][mask], row["verdict"])
        )
    true = summary.get("true")
    true_theta = [*true["w"], true["b"]] if true else None
    return {
        "sweep_contours": contour_grid_figure(
            thetas,
            titles,
            analysis["theta_star"],
            analysis["loss_star"],
            analysis["hessian"],
            true_theta,
            suptitle=f"Gradient descent at {len(results)} learning rates "
            f"(critical lr {summary['critical_lr']:.4g})",
            frame_paths=[row["verdict"] != "diverged" for row in results],
        ),
        "sweep_loss": sweep_loss_figure(curves, summary["closed_form"]["loss"]),
        "sweep_summary": sweep_summary_figure(
            results, summary["monotone_lr_limit"], summary["optimal_lr"], summary["critical_lr"]
        ),
    }
