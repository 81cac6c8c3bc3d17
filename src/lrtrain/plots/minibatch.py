"""Figures of the mini-batch theory against what training observed: the replicas' band, the
lr × batch-size map (matplotlib, numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.plots.canvas import axes, figure, log_scale
from lrtrain.runs.directory import FINDERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs.directory import RunData


def replica_figure(
    replicas: dict[str, np.ndarray],
    loss_star: float | None,
    noise_floor: float | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """The excess loss E[L_t] − L* of K batch streams: their mean with its 99% band (from
    replicas.csv's columns) against the theory's expected loss, log scale, the run's own
    path (replica 0) and the noise floor the expectation settles at (``loss_star`` None — a
    network, which has no L* — the loss itself)."""
    fig, ax = axes(ax)
    ylabel = "loss − loss* (full batch)" if loss_star is not None else "loss (full batch)"
    loss_star = loss_star or 0.0
    steps = replicas["step"]
    mean, low, high = (replicas[c] - loss_star for c in ("mean_loss", "band_low", "band_high"))
    shown = np.isfinite(high) & (mean > 0)
    floor = np.where(low > 0, low, mean * 1e-3)  # a band reaching below 0 is cut on a log axis
    ax.fill_between(steps[shown], floor[shown], high[shown], color="C2", alpha=0.3, lw=0,
                    label="replicas' mean, 99% band")  # fmt: skip
    ax.plot(steps[shown], mean[shown], color="C2", lw=1.2)
    if "run_loss" in replicas:  # this run: replica 0, one path of the K
        run = replicas["run_loss"] - loss_star
        mine = np.isfinite(run) & (run > 0)
        ax.plot(steps[mine], run[mine], color="C0", lw=0.6, alpha=0.6, label="this run (replica 0)")
    expected = replicas["expected_loss"] - loss_star
    theory = np.isfinite(expected) & (expected > 0)
    if theory.any():
        ax.plot(steps[theory], expected[theory], color="C1", ls="--", lw=1.6,
                label="expected (theory)")  # fmt: skip
    if noise_floor is not None and noise_floor > 0:
        ax.axhline(noise_floor, color="C3", ls=":", lw=1.2, label=f"noise floor {noise_floor:.3g}")
    log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    return fig


def batch_map_figures(run: RunData) -> dict[str, Figure]:
    """The figure of a ``sweep-lr --batch-sizes`` directory, from its files."""
    return {"batch_map": batch_map_figure(run.summary, run.metrics)}


def batch_map_figure(summary: dict[str, Any], table: dict[str, np.ndarray]) -> Figure:
    """Left: every batch size's steps to the target gap against the rate — the theory's
    expectation (lines) beside the mean of the batch streams (dots), each size's mean-square
    critical lr dotted.
    Right: the fastest rate against the batch size, predicted and observed, with the
    linear-scaling line from the smallest size and the critical batch size."""
    fig = figure((12.5, 5.0))
    left, right = fig.subplots(1, 2)
    rows = summary["rows"]
    sizes = summary["sizes"]
    for i, size in enumerate(sizes):
        batch = size["batch_size"]
        color = f"C{i % 10}"
        mine = table["batch_size"] == (np.inf if batch is None else batch)
        lr = table["lr"][mine]
        label = "full batch" if batch is None else f"batch {batch}"
        left.plot(lr, table["predicted_steps"][mine], color=color, lw=1.6, label=f"{label}: theory")
        left.plot(lr, table["observed_steps"][mine], "o", color=color, ms=4, alpha=0.8,
                  label=f"{label}: observed")  # fmt: skip
        left.axvline(size["critical_lr"], color=color, ls=":", lw=1)
    log_scale(left, "x")
    steps = np.concatenate([table["predicted_steps"], table["observed_steps"]])
    max_iter = summary["max_iter"]
    _log_or_say(left, steps, f"no rate reached the target within {max_iter} steps")
    if bool(np.isfinite(table["predicted_steps"]).any()):  # the theory drawn in full: mark where
        left.axhline(max_iter, color="0.35", ls="--", lw=1,  # the streams stopped
                     label=f"max_iter {max_iter}: the streams stop")  # fmt: skip
    if not bool(np.isfinite(table["observed_steps"]).any()):
        left.text(0.5, 0.5, f"no stream reached the target within {max_iter} steps",
                  transform=left.transAxes, ha="center", va="center", fontsize=9)  # fmt: skip
    left.set_xlabel("learning rate (dotted: each size's mean-square critical lr)")
    left.set_ylabel(f"steps to a relative gap of {summary['target_gap']:g}")
    paths = summary["paths"]
    left.set_title(f"Steps to the target: expected (lines), mean of {paths} batch streams (dots)",
                   fontsize=10)  # fmt: skip
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7, ncol=2, loc="best")

    def at(batch: int | None) -> float:
        return float(rows if batch is None else batch)

    xs = [at(s["batch_size"]) for s in sizes]
    predicted = [s["predicted_fastest_lr"] or np.nan for s in sizes]
    observed = [s["observed_best_lr"] or np.nan for s in sizes]
    right.plot(xs, predicted, "-o", color="C0", label="fastest lr (theory)")
    right.plot(
        xs, observed, "x", color="C3", ms=8, mew=2, label="fastest lr of the grid (observed)"
    )
    first = next((i for i, v in enumerate(predicted) if np.isfinite(v)), None)
    if first is not None:
        scale = np.array(xs) / xs[first] * predicted[first]
        right.plot(xs, scale, "--", color="0.5", lw=1, label="linear scaling: lr ∝ batch")
    critical = summary.get("critical_batch_size")
    if critical is not None:
        right.axvline(critical, color="C2", ls=":", lw=1.4, label=f"critical batch size {critical}")
    log_scale(right, "x")
    _log_or_say(
        right, np.array([*predicted, *observed]), "no fastest rate: nothing reached the target"
    )
    right.set_xticks(
        xs, [("full" if s["batch_size"] is None else str(s["batch_size"])) for s in sizes]
    )
    right.set_xlabel("batch size")
    right.set_ylabel("learning rate")
    right.set_title("The fastest rate per batch size", fontsize=10)
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8, loc="best")
    return fig


def _loggable(values: np.ndarray) -> bool:
    """Whether a log axis can show any of the values: one finite and above 0."""
    values = np.asarray(values, dtype=np.float64)
    return bool((np.isfinite(values) & (values > 0)).any())


def _log_or_say(ax: Axes, values: np.ndarray, nothing: str) -> None:
    """A log y-axis where there is something positive to show; else the panel says why it is
    empty (a log axis over nothing cannot even be drawn)."""
    if _loggable(values):
        log_scale(ax)
    else:
        ax.text(0.5, 0.5, nothing, transform=ax.transAxes, ha="center", va="center", fontsize=9)
        ax.set_yticks([])


def find_lr_figures(run: RunData) -> dict[str, Figure]:
    """The figure of a ``find-lr`` directory, from its files."""
    return {"find_lr": find_lr_figure(run.summary, run.metrics)}


def find_lr_figure(
    summary: dict[str, Any], table: dict[str, np.ndarray], ax: Axes | None = None
) -> Figure:
    """Each range test's smoothed loss against the rate (repeat 0 bold, the others thin), its
    suggestions as markers, and the exact thresholds as vertical lines: the critical lr, η*,
    the mean-square critical lr, the fastest rate of a sweep."""
    fig, ax = axes(ax, (8.0, 5.0))
    # a loss of 0 throughout (y ≡ 0: every θ is optimal) has no logarithm: a linear axis then
    positive = _loggable(table["smoothed"])
    for code, finder in enumerate(FINDERS):  # finder.csv's finder column, as loaded
        mine, color = table["finder"] == code, ("C0", "C1", "C8")[code]
        for repeat in np.unique(table["repeat"][mine]):
            rows = mine & (table["repeat"] == repeat)
            smooth = table["smoothed"][rows]
            kept = np.isfinite(smooth) & ((smooth > 0) | (not positive))
            ax.plot(table["lr"][rows][kept], smooth[kept], color=color,
                    lw=1.6 if repeat == 0 else 0.6, alpha=1.0 if repeat == 0 else 0.5,
                    label=f"{finder} (smoothed loss)" if repeat == 0 else None)  # fmt: skip
    marks = ("o", "s", "^", "v", "D", "P")
    for (name, lr), mark in zip(sorted(summary["suggestions"].items()), marks * 2, strict=False):
        ax.axvline(lr, color="0.5", lw=0.6)
        ax.plot([lr], [0.04], mark, color="k", ms=7, transform=ax.get_xaxis_transform(),
                label=f"{name} {lr:.3g}")  # fmt: skip
    measured = summary.get("optimal_lr") is None  # a network's: 2/λ_max at θ₀, measured
    thresholds = [("2/λ_max(θ₀), measured" if measured else "critical lr 2/λ_max",
                   summary["critical_lr"], "C3", "--"),
                  ("η*", summary["optimal_lr"], "C2", "--"),
                  ("mean-square critical lr", summary.get("minibatch_critical_lr"), "C4", ":"),
                  ("fastest rate of a sweep", summary.get("fastest_lr"), "k", "-.")]  # fmt: skip
    for label, value, color, style in thresholds:
        if value:
            ax.axvline(value, color=color, ls=style, lw=1.4, label=f"{label} {value:.3g}")
    log_scale(ax, "x")
    if positive:
        log_scale(ax)
    ax.set_xlabel("learning rate (the range test's ramp)")
    ax.set_ylabel("smoothed training loss")
    which = "measured" if measured else "exact"
    ax.set_title(f"Learning-rate finders against the {which} thresholds — {summary['name']}",
                 fontsize=10)  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=7)
    return fig
