"""Figures drawn from run data (numpy arrays): no torch, matplotlib imported inside functions.

Each function takes an optional matplotlib ``ax`` and returns the figure, so they work in a
notebook as well as for the files of a run directory (which ``runs.save_figures`` writes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.plots.canvas import axes, figure, log_scale
from lrtrain.plots.contours import (
    PATH_COLOR,
    Surface,
    contour_figure,
    draw_path,
    true_theta_as_trained,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs.directory import RunData
    from lrtrain.theory.flow import Flow


def loss_figure(
    steps: np.ndarray,
    loss: np.ndarray,
    loss_star: float | None = None,
    title: str = "",
    ax: Axes | None = None,
    expected: np.ndarray | None = None,
    noise_floor: float | None = None,
    flow: np.ndarray | None = None,
    validation: np.ndarray | None = None,
) -> Figure:
    """Loss against step on a log scale, with the closed-form optimum as a reference line,
    the theory's expected loss (``expected``, metrics.csv's column), for mini-batches the
    noise floor the expected loss settles at, the gradient flow's loss at s = η·t and the
    held-out rows' loss (``validation``)."""
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
    if validation is not None:
        held = np.isfinite(validation) & (validation > 0)
        ax.plot(steps[held], validation[held], color="C2", lw=1.5,
                label="validation loss (held-out rows)")  # fmt: skip
    if flow is not None:
        ax.plot(
            steps, flow, color="0.25", ls=":", lw=1.4, zorder=2, label="gradient flow (s = η·t)"
        )
    if loss_star is not None and loss_star > 0:
        ax.axhline(
            loss_star, color="k", ls="--", lw=1, label=f"closed-form optimum {loss_star:.6g}"
        )
        if noise_floor is not None and noise_floor > 0:
            ax.axhline(loss_star + noise_floor, color="C3", ls=":", lw=1.2,
                       label=f"noise floor +{noise_floor:.3g}")  # fmt: skip
    log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean squared error)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    # a loss that ends above its start (diverged) ends in the upper right: the legend below it
    rose = finite.any() and loss[finite][-1] > loss[finite][0]
    ax.legend(loc="lower right" if rose else "upper right")
    return fig


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


def modes_figure(
    steps: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray | None,
    eigenvalues: list[float],
    contractions: list[float | None],
    title: str = "",
    ax: Axes | None = None,
    predicted_label: str = "predicted",
) -> Figure:
    """Each shown eigen-mode's error |u_iᵀ(θ_t − θ_target)| against the step, log scale:
    observed (solid) beside the prediction (dashed), the legend giving λ_i and the factor the
    error shrinks by per step."""
    fig, ax = axes(ax)
    for i in range(observed.shape[1]):
        color = f"C{i % 10}"
        rate = contractions[i]
        per_step = f", ×{rate:.4g}/step" if rate is not None else ""
        shown = np.isfinite(observed[:, i]) & (observed[:, i] > 0)
        ax.plot(steps[shown], observed[shown, i], color=color, lw=1.5,
                label=f"λ = {eigenvalues[i]:.4g}{per_step}")  # fmt: skip
        if predicted is not None:
            mine = np.isfinite(predicted[:, i]) & (predicted[:, i] > 0)
            ax.plot(steps[mine], predicted[mine, i], color=color, ls="--", lw=1.1)
    if predicted is not None:
        ax.plot([], [], color="0.4", ls="--", label=predicted_label)
    log_scale(ax)
    ax.set_xlabel("step")
    ax.set_ylabel("|uᵢᵀ(θ − θ*)| along each eigenvector")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
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
    flow = _flow(run)
    if "loss" in wanted:
        minibatch = summary.get("theory", {}).get("minibatch") or {}
        figures["loss"] = loss_figure(
            run.metrics["step"],
            run.metrics["loss"],
            summary["closed_form"]["loss"],
            title=f"Loss — {title}",
            expected=run.metrics.get("expected_loss"),  # absent before lrtrain 0.4
            noise_floor=minibatch.get("noise_floor"),
            flow=None if flow is None else flow.loss,
            validation=run.metrics.get("val_loss"),
        )
    if "loss" in wanted and run.replicas is not None:
        from lrtrain.plots.minibatch import replica_figure

        figures["replicas"] = replica_figure(
            run.replicas, summary["closed_form"]["loss"], minibatch.get("noise_floor"),
            title=f"{summary['replicas']['count']} batch streams — {title}",
        )  # fmt: skip
    if "modes" in wanted and run.modes is not None and run.eigenvectors is not None:
        figures["modes"] = _modes_of(run, f"Eigen-modes — {title}")
    if "contour" in wanted:
        figures["contour"] = contour_figure(
            run.theta,
            analysis["theta_star"],
            analysis["loss_star"],
            run.hessian,
            true_theta_as_trained(summary),
            title=f"Descent path ({verdict}) — {title}",
            diverged=summary["status"] == "diverged",
            eigenvectors=run.eigenvectors,
            flow=None if flow is None else flow.theta,
        )
    if "fit" in wanted and run.sample is not None and len(analysis["theta_star"]) == 2:
        columns = list(run.sample)
        (w, b), true = _fit_lines(summary)
        figures["fit"] = fit_figure(
            run.sample[columns[0]],
            run.sample[columns[1]],
            w,
            b,
            true[0] if true else None,
            true[1] if true else None,
            title=f"Fit — {title}",
        )
    return figures


def _fit_lines(
    summary: dict[str, Any],
) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """fit.png's learned and true lines (w, b) in the units of data_sample.csv: the data's own,
    the learned line mapped back where the run trained standardised. A standardised run of
    lrtrain before 0.5 kept its sample in the standardised units (and an uncentred target,
    so no ``target_mean``): its lines are drawn in those."""
    units = summary.get("standardization")
    own_units = units is None or "target_mean" in units
    final = summary.get("final_original", summary["final"]) if own_units else summary["final"]
    true = summary.get("true")
    theta = [*true["w"], true["b"]] if own_units and true else true_theta_as_trained(summary)
    return (final["w"][0], final["b"]), None if theta is None else (theta[0], theta[1])


def _modes_of(run: RunData, title: str) -> Figure:
    from lrtrain.theory.modes import observed_errors

    summary, modes = run.summary["modes"], run.modes
    assert modes is not None and run.eigenvectors is not None
    shown = summary["shown"]
    closed = run.summary["closed_form"]
    target = np.asarray([*closed["w"], closed["b"]])
    observed = observed_errors(run.theta, target, run.eigenvectors, shown)
    predicted = np.stack([modes[f"mode_{i}"] for i in shown], axis=1)
    by_index = {m["index"]: m for m in summary["modes"]}
    per_mode = [by_index[i] for i in shown]
    return modes_figure(
        run.metrics["step"], observed, None if np.isnan(predicted).all() else predicted,
        [m["eigenvalue"] for m in per_mode], [m["contraction"] for m in per_mode], title,
        predicted_label="predicted (RMS over batches)"
        if summary["prediction"].startswith("mini-batch") else "predicted (exact)",
    )  # fmt: skip


def _flow(run: RunData) -> Flow | None:
    """The gradient flow at the logged steps of an SGD run (None: no eigenvectors saved, or an
    adaptive optimizer, whose steps are not a rate times the gradient)."""
    from lrtrain.theory.flow import flow_times, gradient_flow

    summary, analysis = run.summary, run.summary["analysis"]
    opt = summary.get("optimizer", {})
    if run.eigenvectors is None or opt.get("name", "sgd") != "sgd" or "lr" not in run.metrics:
        return None
    times = flow_times(run.metrics["step"], run.metrics["lr"], opt.get("momentum") or 0.0)
    closed = summary["closed_form"]
    return gradient_flow(
        times, run.theta[0], np.asarray(analysis["theta_star"]),
        np.asarray([*closed["w"], closed["b"]]), analysis["loss_star"],
        np.asarray(analysis["hessian_eigenvalues"]), run.eigenvectors,
        opt.get("weight_decay") or 0.0,
    )  # fmt: skip


def compare_figure(runs: list[RunData], labels: list[str] | None = None) -> Figure:
    """Several fits of one problem side by side: their descent paths on one contour plot of
    the loss, and their loss curves (relative optimality gap, log scale) beside it."""

    first = runs[0].summary["analysis"]
    labels = labels or [_compare_label(run) for run in runs]
    fig = figure((12.5, 5.0))
    left, right = fig.subplots(1, 2)
    diverged = [run.summary["status"] == "diverged" for run in runs]
    surface = Surface(
        [run.theta for run in runs],
        first["theta_star"],
        first["loss_star"],
        runs[0].hessian,
        true_theta_as_trained(runs[0].summary),
        diverged,
        runs[0].eigenvectors,
    )
    surface.panel(left, None, "Descent paths on the loss surface", legend=False)
    colors = [f"C{i}" for i in (3, 0, 2, 1, 4, 5, 6, 7, 8, 9)]
    loss_star = runs[0].summary["closed_form"]["loss"]
    # Drawn last first, so the first run (usually the lesson's) lies on top of the others.
    for i in reversed(range(len(runs))):
        run, label, color = runs[i], labels[i], colors[i % len(colors)]
        draw_path(
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
    log_scale(right)
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
