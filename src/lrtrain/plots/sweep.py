"""The figures of a learning-rate sweep: every rate's loss curve, and final gap and steps per
rate against the critical and optimal learning rates (from a run's files, no torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.plots.canvas import axes, log_scale
from lrtrain.plots.contours import contour_grid_figure, true_theta_as_trained

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs.directory import RunData


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

    fig, ax = axes(ax, (7.5, 4.8), right=0.3)  # the colorbar takes its room from the axes
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
    title = "Loss per learning rate (× = diverged"
    if loss_star is not None and loss_star > 0:
        # named in the title, not a legend: a legend's corner is where a diverging curve ends
        ax.axhline(loss_star, color="k", ls="--", lw=1)
        title += f"; dashed: the optimum {loss_star:.6g}"
    log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean squared error)")
    ax.set_title(title + ")", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="learning rate")
    return fig


def sweep_summary_figure(
    results: list[dict[str, Any]],
    monotone_lr: float,
    optimal_lr: float,
    critical_lr: float,
    ax: Axes | None = None,
    minibatch_critical_lr: float | None = None,
) -> Figure:
    """Final loss against lr on log axes, coloured by verdict, with the monotone limit, η* and
    the critical lr marked (and for mini-batches the mean-square critical lr): the
    learning-rate finder picture, done exactly."""
    fig, ax = axes(ax, (7.5, 4.8))
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
        (optimal_lr, "η* (best asymptotic rate)", "--"),
        (critical_lr, "critical 2/λ_max", "-"),
    ):
        if np.isfinite(x):
            ax.axvline(x, color="k", ls=style, lw=1, label=f"{label} = {x:.4g}")
    if minibatch_critical_lr is not None:
        label = f"mean-square critical (mini-batches) = {minibatch_critical_lr:.4g}"
        ax.axvline(minibatch_critical_lr, color="C3", ls="-", lw=1.2, label=label)
    log_scale(ax, "x")
    log_scale(ax)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final loss")
    ax.set_title("Final loss against learning rate", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def sweep_modes_figure(
    curves: list[tuple[float, np.ndarray, np.ndarray]],
    eigenvalues: tuple[float, float],
    ax: Axes | None = None,
) -> Figure:
    """Per learning rate (lr, steps, errors [R, 2]) the error along the flattest (solid) and
    the steepest (dashed) eigen-direction, coloured by lr: the flat one sets the pace, the
    steep one decides oscillation and divergence."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, LogNorm

    fig, ax = axes(ax, (7.5, 4.8), right=0.3)
    lrs = [c[0] for c in curves]
    norm = LogNorm(min(lrs), max(lrs) if max(lrs) > min(lrs) else min(lrs) * 10)
    cmap = ListedColormap(colormaps["plasma"](np.linspace(0.0, 0.85, 256)))
    for lr, steps, errors in curves:
        for column, style in ((0, "-"), (1, "--")):
            keep = np.isfinite(errors[:, column]) & (errors[:, column] > 0)
            ax.plot(steps[keep], errors[keep, column], color=cmap(norm(lr)), ls=style, lw=1.2)
    flat, steep = eigenvalues
    ax.plot([], [], color="0.3", ls="-", label=f"flattest direction (λ = {flat:.4g})")
    ax.plot([], [], color="0.3", ls="--", label=f"steepest direction (λ = {steep:.4g})")
    log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("|uᵢᵀ(θ − θ*)|")
    ax.set_title("The slowest and fastest eigen-modes per learning rate", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="learning rate")
    return fig


def sweep_figures(run: RunData) -> dict[str, Figure]:
    """The figures of a sweep directory that its ``output.plots`` asks for: ``contour`` the
    paths at every rate, ``loss`` the loss curves and the final gap and steps per rate,
    ``modes`` the flattest and steepest modes' errors (``fit`` has no sweep figure)."""
    wanted = run.config.get("output", {}).get("plots", ["loss", "contour", "fit", "modes"])
    summary, analysis = run.summary, run.summary["analysis"]
    lr_col = run.metrics["lr"]
    results = summary["results"]
    thetas, titles, curves = [], [], []
    for row in results:
        mask = lr_col == row["lr"]
        theta = run.theta[mask]
        thetas.append(theta)
        predicted = row["predicted_verdict"]
        said = f"predicted {predicted}" if predicted is not None else "observed only"
        titles.append(f"lr {row['lr']:.4g}: {row['verdict']} ({said})")
        curves.append(
            (row["lr"], run.metrics["step"][mask], run.metrics["loss"][mask], row["verdict"])
        )
    true_theta = true_theta_as_trained(summary)
    figures: dict[str, Figure] = {}
    if "contour" in wanted:
        figures["sweep_contours"] = contour_grid_figure(
            thetas,
            titles,
            analysis["theta_star"],
            analysis["loss_star"],
            run.hessian,
            true_theta,
            suptitle=f"Gradient descent at {len(results)} learning rates "
            f"(critical lr {summary['critical_lr']:.4g})",
            diverged=[row["verdict"] == "diverged" for row in results],
            eigenvectors=run.eigenvectors,
        )
    if "loss" in wanted:
        figures["sweep_loss"] = sweep_loss_figure(curves, summary["closed_form"]["loss"])
        figures["sweep_summary"] = sweep_summary_figure(
            results,
            summary["monotone_lr_limit"],
            # run directories before 0.4 called it optimal_lr
            summary.get("asymptotically_optimal_lr", summary.get("optimal_lr", np.nan)),
            summary["critical_lr"],
            minibatch_critical_lr=summary.get("minibatch_critical_lr"),  # absent before 0.4
        )
    if "modes" in wanted and run.eigenvectors is not None:  # format ≥ 2: eigenvectors saved
        from lrtrain.theory.modes import observed_errors

        ends = [0, len(analysis["hessian_eigenvalues"]) - 1]
        closed = summary["closed_form"]
        target = np.asarray([*closed["w"], closed["b"]])
        modes = [
            (row["lr"], run.metrics["step"][lr_col == row["lr"]],
             observed_errors(theta, target, run.eigenvectors, ends))
            for row, theta in zip(results, thetas, strict=True)
        ]  # fmt: skip
        lams = analysis["hessian_eigenvalues"]
        figures["sweep_modes"] = sweep_modes_figure(modes, (lams[0], lams[-1]))
    return figures
