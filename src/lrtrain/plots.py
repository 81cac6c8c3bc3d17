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
    origin, e1, e2, labels = plane_axes(theta_star, hessian)
    s, t = project(np.asarray(theta, dtype=np.float64), origin, e1, e2)
    star = project(np.asarray([theta_star]), origin, e1, e2)
    marks = [(star[0][0], star[1][0])]
    if true_theta is not None:
        ts = project(np.asarray([true_theta]), origin, e1, e2)
        marks.append((ts[0][0], ts[1][0]))
    (s_lo, s_hi), (t_lo, t_hi) = _frame(s, t, marks)
    ss, tt = np.meshgrid(np.linspace(s_lo, s_hi, GRID), np.linspace(t_lo, t_hi, GRID))
    zz = plane_loss(ss, tt, origin, e1, e2, theta_star, loss_star, hessian)
    levels = _levels(zz, loss_star)
    cs = ax.contour(ss, tt, zz, levels=levels, cmap="viridis", linewidths=0.9)
    ax.clabel(cs, fontsize=7, fmt="%.3g")
    _draw_path(ax, s, t, (s_lo, s_hi), (t_lo, t_hi))
    ax.plot(*marks[0], marker="*", ms=15, color="gold", mec="k", ls="none", label="optimum θ*")
    if true_theta is not None:
        ax.plot(*marks[1], marker="X", ms=9, color="C2", mec="k", ls="none", label="true θ")
    ax.set_xlim(s_lo, s_hi)
    ax.set_ylim(t_lo, t_hi)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return fig


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
