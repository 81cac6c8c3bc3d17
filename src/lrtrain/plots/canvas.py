"""The canvas every figure is drawn on: a figure on an Agg canvas of its own, and one-panel
axes with fixed margins (matplotlib imported inside the functions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# Margins of the one-panel figures, in inches: room for tick labels, axis labels and a title
# of up to two lines (and a colorbar's labels on the right where there is one).
MARGINS = {"left": 0.9, "bottom": 0.62, "top": 0.5, "right": 0.22}


def axes(
    ax: Axes | None, size: tuple[float, float] = (6.4, 4.8), right: float = MARGINS["right"]
) -> tuple[Figure, Axes]:
    """The caller's axes, or a one-panel figure of ``size`` inches. One panel needs no layout
    engine: fixed margins fit its labels, and measuring every tick label for a constrained
    layout would double the time the figure takes to draw."""
    if ax is not None:
        return cast("Figure", ax.figure), ax  # a Figure: lrtrain draws on no subfigures
    from matplotlib import rc_context

    width, height = size
    fig = figure(size, layout=None)
    fig.subplots_adjust(
        left=MARGINS["left"] / width,
        right=1 - right / width,
        bottom=MARGINS["bottom"] / height,
        top=1 - MARGINS["top"] / height,
    )
    # The title at a fixed height above the axes (nothing is drawn above them): matplotlib's
    # automatic placement measures every tick label of the figure first, ~20% of a draw
    with rc_context({"axes.titley": 1.0}):
        return fig, fig.add_subplot()


def log_scale(ax: Axes, axis: Literal["x", "y"] = "y") -> None:
    """A log axis with minor ticks (and their grid lines) at 2 and 5 of each decade, not at
    every digit: each minor tick is a mark, a grid line and a label to lay out, and the seven
    a decade took ~20 ms of a log figure's ~130 ms draw (the lesson's loss and modes figures:
    259 against 213 ms)."""
    from matplotlib.ticker import LogLocator

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    (ax.xaxis if axis == "x" else ax.yaxis).set_minor_locator(LogLocator(subs=(2.0, 5.0)))


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
