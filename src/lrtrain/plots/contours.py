"""The exact loss contours with descent paths: one panel, a grid of panels, and the
:class:`Surface` they share (the frame, the levels, the plane of a slice) — numpy and
matplotlib, no torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.plots.canvas import MARGINS, axes, figure
from lrtrain.theory.surface import plane_axes, plane_loss, project

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GRID = 200  # contour resolution per axis
# With several features the contours are a slice, not the loss under the projected path.
SLICE_NOTE = "slice of the loss through θ* along H's top and bottom eigenvectors; path projected"
PATH_COLOR = "#d62728"


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
    flow: np.ndarray | None = None,
) -> Figure:
    """Exact loss contours with the descent path, start, end, θ* and the true parameters, and
    ``flow`` (θ(s) of the gradient flow, [T, p]) dashed beside the path.

    One feature: the (w, b) plane. Several: the plane through θ* spanned by the Hessian's top and
    bottom eigenvectors, with the path projected onto it. A path that leaves the frame (divergence)
    is clipped, with an arrow showing where it went.
    """
    fig, ax = axes(ax)
    surface = Surface([theta], theta_star, loss_star, hessian, true_theta, [diverged], eigenvectors)
    if flow is not None:
        s, t = project(np.asarray(flow, dtype=np.float64), surface.origin, surface.e1, surface.e2)
        ax.plot(s, t, color="C0", ls="--", lw=1.6, label="gradient flow (s = η·t)", zorder=5)
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
    """Fixed margins for a grid of contour panels (see ``MARGINS``): each panel keeps room
    for its tick labels, axis labels and one-line title; the figure's title sits on top."""
    width, height = fig.get_size_inches()
    left, right, bottom = MARGINS["left"], MARGINS["right"], MARGINS["bottom"]
    top = 0.25 + 0.25 * title_lines + MARGINS["top"]
    gap_w, gap_h = left + right, bottom + MARGINS["top"]
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
        h = np.asarray(hessian, dtype=np.float64)
        curvature = (float(self.e1 @ h @ self.e1), float(self.e2 @ h @ self.e2))
        self.xlim, self.ylim = _frame(s_all, t_all, self.marks, curvature)
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
            draw_path(ax, *self.paths[index], self.xlim, self.ylim, diverged=diverged)
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


def true_theta_as_trained(summary: Mapping[str, Any]) -> list[float] | None:
    """The true θ (``summary["true"]``, in the data's units) in the units the run trained in —
    those of its loss surface and descent path: standardised, where it was (a run of lrtrain
    before 0.5 records no ``target_mean``: its target was not centred)."""
    true = summary.get("true")
    if not true:
        return None
    w, b = list(true["w"]), float(true["b"])
    units = summary.get("standardization")
    if units is None:
        return [*w, b]
    mean, scale = units["mean"], units["scale"]
    b += sum(wi * mi for wi, mi in zip(w, mean, strict=True)) - units.get("target_mean", 0.0)
    return [*(wi * si for wi, si in zip(w, scale, strict=True)), b]


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
    s: np.ndarray,
    t: np.ndarray,
    marks: list[tuple[float, float]],
    curvature: tuple[float, float] | None = None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits showing the points given, θ* and θ_true, with a margin.

    An axis the points barely spread along — under a tenth of the other's span: a path along
    the other, as with a centred target, whose bias never moves — is widened to show the level
    sets: to half the other's span, scaled by how much further they reach along it
    (``curvature``, the plane's second derivatives along s and t), never beyond the other's
    span, and to 5 % of it at least."""
    finite = np.isfinite(s) & np.isfinite(t)
    inside = np.stack([s[finite], t[finite]], axis=1)
    allpts = np.concatenate([inside, np.array(marks)]) if len(inside) else np.array(marks)
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    span = np.maximum(hi - lo, 1e-9 * np.maximum(np.abs(hi), 1.0))
    other = span[::-1]
    floor = 0.05 * other
    if curvature is not None and min(curvature) > 0:
        reach = np.sqrt(np.array([curvature[1] / curvature[0], curvature[0] / curvature[1]]))
        level_sets = np.minimum(1.0, 0.5 * reach) * other
        floor = np.where(span < 0.1 * other, np.maximum(floor, level_sets), floor)
    span = np.maximum(span, floor)
    mid = (lo + hi) / 2
    lo, hi = mid - 0.62 * span, mid + 0.62 * span  # a margin of 12 % each side
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _levels(zz: np.ndarray, loss_star: float) -> np.ndarray:
    excess = zz - loss_star
    top = float(np.nanmax(excess))
    positive = excess[excess > 0]
    bottom = max(float(positive.min()) if positive.size else top * 1e-4, top * 1e-4)
    if not top > 0:
        return np.array([loss_star])
    return loss_star + np.geomspace(bottom * 2, top, 14)


def draw_path(
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
