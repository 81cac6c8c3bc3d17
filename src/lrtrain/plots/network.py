"""The figures of a network's run (``model.kind: mlp``) and of any run that measured its
sharpness, drawn from numpy arrays (no torch): the loss above the sharpness against its
threshold 2(1+β)/η, the fitted function over the one feature, the loss surface sliced through
the end point along the top two Hessian eigenvectors, and a sweep's curves per rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.plots.canvas import axes, figure, log_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrtrain.runs.directory import RunData


def sharpness_figure(
    steps: np.ndarray,
    loss: np.ndarray,
    measured_at: np.ndarray,
    sharpness: np.ndarray,
    threshold: np.ndarray,
    title: str = "",
    best_line: float | None = None,
    validation: np.ndarray | None = None,
) -> Figure:
    """Two panels sharing the step axis: the loss (log scale; the held-out rows' too, with
    ``validation``) and the measured sharpness λ_max(θ_t) with the stability threshold
    2(1+β)/η_t (Cohen et al.'s Fig. 1 in form)."""
    fig = figure((7.0, 6.4))
    top, bottom = fig.subplots(2, 1, sharex=True)
    finite = np.isfinite(loss) & (loss > 0)
    top.plot(steps[finite], loss[finite], color="C0", lw=1.6, label="training loss")
    if validation is not None:
        held = np.isfinite(validation) & (validation > 0)
        top.plot(steps[held], validation[held], color="C2", lw=1.4,
                 label="validation loss (held-out rows)")  # fmt: skip
    if best_line is not None and best_line > 0:
        top.axhline(best_line, color="0.4", ls=":", lw=1.2,
                    label=f"best straight line {best_line:.4g}")  # fmt: skip
    log_scale(top)
    top.set_ylabel("loss (mean squared error)")
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper right")
    top.set_title(title, fontsize=10)
    shown = np.isfinite(sharpness)
    bottom.plot(measured_at[shown], sharpness[shown], "o-", color="C3", ms=3, lw=1.4,
                label="sharpness λ_max (Lanczos)")  # fmt: skip
    limit = np.isfinite(threshold)
    if limit.any():
        bottom.plot(steps[limit], threshold[limit], color="k", ls="--", lw=1.2,
                    label="2(1+β)/η: the stability threshold")  # fmt: skip
    bottom.set_xlabel("step")
    bottom.set_ylabel("top Hessian eigenvalue")
    bottom.grid(True, alpha=0.3)
    bottom.legend(loc="best")
    return fig


def function_figure(
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    prediction: np.ndarray,
    names: tuple[str, str] = ("x", "y"),
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """The data and the function the network learned, over the one feature."""
    fig, ax = axes(ax)
    ax.scatter(x, y, s=10, color="C0", alpha=0.6, label="data")
    ax.plot(grid, prediction, color="C3", lw=2, label="the network's prediction")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return fig


def surface_figure(
    a: np.ndarray,
    b: np.ndarray,
    loss: np.ndarray,
    eigenvalues: np.ndarray,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Contours of L(θ_T + a·u₁ + b·u₂): a slice of the loss surface through the end point,
    in the plane of the two top Hessian eigenvectors there."""
    fig, ax = axes(ax, right=1.1)
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if finite.size:
        levels = np.geomspace(finite.min(), finite.max(), 20) if finite.max() > finite.min() else 5
        shown = np.where(np.isfinite(loss) & (loss > 0), loss, np.nan)
        aa, bb = np.meshgrid(a, b, indexing="ij")
        filled = ax.contourf(aa, bb, shown, levels=levels, cmap="viridis",
                             norm=_log_norm(finite))  # fmt: skip
        fig.colorbar(filled, ax=ax, label="loss", format="%.3g")
    ax.plot([0], [0], marker="*", ms=14, color="w", mec="k", label="end point θ_T")
    ax.set_xlabel(f"along u₁ (λ₁ = {eigenvalues[0]:.4g})")
    ax.set_ylabel(f"along u₂ (λ₂ = {eigenvalues[1]:.4g})")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right")
    return fig


def _log_norm(values: np.ndarray) -> Any:
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=float(values.min()), vmax=float(values.max()))


def network_sweep_figure(curves: list[dict[str, Any]], title: str = "") -> Figure:
    """Every rate's loss (top) and sharpness over its threshold, λ_max·η/(2(1+β)) (bottom,
    1 is the edge of stability)."""
    fig = figure((7.4, 6.6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    colors = _colors(len(curves))
    for color, curve in zip(colors, curves, strict=True):
        loss = curve["loss"]
        finite = np.isfinite(loss) & (loss > 0)
        label = f"lr {curve['lr']:.4g}: {curve['verdict']}"
        top.plot(curve["steps"][finite], loss[finite], color=color, lw=1.4, label=label)
        ratio = curve["ratio"]
        shown = np.isfinite(ratio)
        if shown.any():
            bottom.plot(curve["measured_at"][shown], ratio[shown], "o-", ms=2.5, lw=1.2,
                        color=color)  # fmt: skip
    log_scale(top)
    top.set_ylabel("loss")
    top.grid(True, which="both", alpha=0.3)
    top.legend(loc="upper right", fontsize=8)
    top.set_title(title, fontsize=10)
    bottom.axhline(1.0, color="k", ls="--", lw=1.2, label="λ_max = 2(1+β)/η")
    log_scale(bottom)
    bottom.set_xlabel("step")
    bottom.set_ylabel("λ_max / (2(1+β)/η)")
    bottom.grid(True, which="both", alpha=0.3)
    bottom.legend(loc="lower right")
    return fig


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def network_figures(run: RunData) -> dict[str, Figure]:
    """The figures a network's fit asks for (``output.plots``): ``loss`` the loss and the
    sharpness, ``fit`` the function learned, ``contour`` the surface slice at the end."""
    summary, arrays, metrics = run.summary, run.arrays, run.metrics
    wanted = run.config.get("output", {}).get("plots", ["loss", "contour", "fit"])
    final = summary["final"]["loss"]
    model = summary["model"]
    shape = "–".join(str(w) for w in [len(summary["data"]["features"]), *model["hidden"], 1])
    final_text = f"{final:.4g}" if final is not None else "non-finite"
    title = (f"{model['activation']} MLP {shape}, lr = {summary['lr']:g}: "
             f"{summary['verdict']['observed']}, final loss {final_text}")  # fmt: skip
    figures: dict[str, Figure] = {}
    if "loss" in wanted:
        figures["loss"] = sharpness_figure(
            metrics["step"], metrics["loss"], arrays["sharpness_steps"],
            arrays["sharpness"][:, 0], metrics["sharpness_threshold"], title,
            summary["best_line"]["loss"], metrics.get("val_loss"),
        )  # fmt: skip
    if "loss" in wanted and run.replicas is not None:
        from lrtrain.plots.minibatch import replica_figure

        count = summary["replicas"]["count"]
        figures["replicas"] = replica_figure(run.replicas, None, None,
                                             f"{count} batch streams — {title}")  # fmt: skip
    if "fit" in wanted and "function_x" in arrays and run.sample is not None:
        columns = list(run.sample)
        figures["fit"] = function_figure(
            run.sample[columns[0]], run.sample[columns[1]], arrays["function_x"],
            arrays["function_y"], (columns[0], columns[1]), title,
        )  # fmt: skip
    if "contour" in wanted and "surface_loss" in arrays:
        figures["surface"] = surface_figure(
            arrays["surface_a"], arrays["surface_b"], arrays["surface_loss"],
            arrays["surface_eigenvalues"],
            "Loss surface: a slice through the end point\nalong the top two Hessian eigenvectors",
        )  # fmt: skip
    return figures


def network_sweep_figures(run: RunData) -> dict[str, Figure]:
    """A network sweep's figure (``loss`` in ``output.plots``): every rate's loss and its
    sharpness against its threshold."""
    wanted = run.config.get("output", {}).get("plots", ["loss"])
    if "loss" not in wanted:
        return {}
    summary, metrics, arrays = run.summary, run.metrics, run.arrays
    curves = []
    measured_at = arrays["sharpness_steps"]
    for k, row in enumerate(summary["results"]):
        rows = metrics["lr"] == row["lr"]
        steps = metrics["step"][rows]
        # the threshold at each measured step: its logged row's (the last at or before it)
        at = np.clip(np.searchsorted(steps, measured_at, side="right") - 1, 0, len(steps) - 1)
        threshold = metrics["sharpness_threshold"][rows][at]
        threshold = np.where(np.isfinite(threshold), threshold, np.nan)  # adaptive: no rule
        curves.append({
            "lr": row["lr"], "verdict": row["verdict"], "steps": steps,
            "loss": metrics["loss"][rows], "measured_at": measured_at,
            "ratio": arrays["sharpness"][:, k] / threshold,
        })  # fmt: skip
    model = summary["model"]
    title = f"{model['activation']} MLP, hidden {model['hidden']}: {len(curves)} learning rates"
    return {"sweep_loss": network_sweep_figure(curves, title)}
