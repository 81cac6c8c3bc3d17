"""Figures of the mini-batch theory against what replicas observed (matplotlib, numpy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lrtrain.plots import axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def replica_figure(
    replicas: dict[str, np.ndarray],
    loss_star: float,
    noise_floor: float | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """The excess loss E[L_t] − L* of K batch streams: their mean with its 99% band (from
    replicas.csv's columns) against the theory's expected loss, log scale, and the noise
    floor the expectation settles at."""
    fig, ax = axes(ax)
    steps = replicas["step"]
    mean, low, high = (replicas[c] - loss_star for c in ("mean_loss", "band_low", "band_high"))
    shown = np.isfinite(high) & (mean > 0)
    floor = np.where(low > 0, low, mean * 1e-3)  # a band reaching below 0 is cut on a log axis
    ax.fill_between(steps[shown], floor[shown], high[shown], color="C2", alpha=0.3, lw=0,
                    label="replicas' mean, 99% band")  # fmt: skip
    ax.plot(steps[shown], mean[shown], color="C2", lw=1.2)
    expected = replicas["expected_loss"] - loss_star
    theory = np.isfinite(expected) & (expected > 0)
    if theory.any():
        ax.plot(steps[theory], expected[theory], color="C1", ls="--", lw=1.6,
                label="expected (theory)")  # fmt: skip
    if noise_floor is not None and noise_floor > 0:
        ax.axhline(noise_floor, color="C3", ls=":", lw=1.2, label=f"noise floor {noise_floor:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss − loss* (full batch)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    return fig
