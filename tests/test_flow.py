"""Gradient flow (theory.flow) against the matrix exponential and small-step gradient descent,
and on the figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from lrtrain.api import fit
from lrtrain.config.schema import load_config
from lrtrain.plots.figures import run_figures
from lrtrain.runs.directory import load_run
from lrtrain.theory.flow import flow_times, gradient_flow


def _lesson(tmp_path, *overrides: str):
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", "output.plots=[]",
                             f"output.root={tmp_path}", *overrides])  # fmt: skip
    return fit(cfg, draw=False)


@pytest.mark.parametrize("weight_decay", [0.0, 0.5])
def test_the_flow_is_the_matrix_exponential(tmp_path, weight_decay) -> None:
    run = _lesson(tmp_path, f"optimizer.weight_decay={weight_decay}")
    a = run.analysis
    hessian = a.hessian + weight_decay * np.eye(2)
    target = np.asarray(a.target_theta)
    times = np.array([0.0, 0.01, 0.3, 2.0, 40.0])
    flow = gradient_flow(times, np.zeros(2), np.asarray(a.theta_star), target, a.loss_star,
                         np.asarray(a.eigenvalues), a.eigenvectors, weight_decay)  # fmt: skip
    for s, theta, loss in zip(times, flow.theta, flow.loss, strict=True):
        want = target + expm(-s * hessian) @ (np.zeros(2) - target)
        assert theta == pytest.approx(want, rel=1e-10, abs=1e-12)
        error = want - np.asarray(a.theta_star)
        assert loss == pytest.approx(a.loss_star + 0.5 * error @ a.hessian @ error, rel=1e-10)


def test_small_steps_follow_the_flow_and_large_ones_part_from_it(tmp_path) -> None:
    """At lr 1e-4 gradient descent's loss stays within 1% of the flow's at s = η·t (they
    differ at O(η): (1 − ηλ)ᵗ against e^(−ηλt)); at 0.028, just below the critical rate, the
    steep direction overshoots and the losses part by more than a factor 2."""
    for lr, close in ((1e-4, True), (0.028, False)):
        run = _lesson(tmp_path, f"optimizer.lr={lr}", "train.max_iter=200")
        data = load_run(run.run_dir)
        times = flow_times(data.metrics["step"], data.metrics["lr"])
        assert times[-1] == pytest.approx(lr * 200)
        a = run.analysis
        flow = gradient_flow(times, data.theta[0], np.asarray(a.theta_star),
                             np.asarray(a.target_theta), a.loss_star, np.asarray(a.eigenvalues),
                             a.eigenvectors)  # fmt: skip
        gap = np.abs(data.metrics["loss"] - flow.loss) / flow.loss
        assert gap.max() < 0.01 if close else gap.max() > 1.0, (lr, gap.max())


def test_the_figures_draw_the_flow(tmp_path) -> None:
    run = _lesson(tmp_path, "optimizer.lr=0.02", "output.plots=[loss, contour]")
    figures = run_figures(load_run(run.run_dir))
    for name in ("loss", "contour"):
        labels = [line.get_label() for line in figures[name].axes[0].lines]
        assert "gradient flow (s = η·t)" in labels, (name, labels)
    adam = _lesson(tmp_path, "optimizer.name=adam", "optimizer.lr=0.1", "output.plots=[loss]")
    labels = [ln.get_label() for ln in run_figures(load_run(adam.run_dir))["loss"].axes[0].lines]
    assert "gradient flow (s = η·t)" not in labels  # no rate × gradient: no flow time
