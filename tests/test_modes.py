"""The eigen-modes of a run (lrtrain.theory.modes): predicted errors against a hand-written
iteration projected on numpy's own eigenvectors, the mini-batch RMS against replicas, the
summary and the figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrtrain.api import fit, sweep_lr
from lrtrain.config.schema import load_config
from lrtrain.plots.figures import run_figures
from lrtrain.plots.sweep import sweep_figures
from lrtrain.runs.directory import load_run


def _fit(tmp_path, *overrides: str):
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", "output.plots=[modes]",
                             f"output.root={tmp_path}", *overrides])  # fmt: skip
    return fit(cfg, draw=False)


@pytest.mark.parametrize(
    "extra",
    [
        ["optimizer.lr=0.028"],
        ["optimizer.lr=0.02", "optimizer.momentum=0.6"],
        ["optimizer.lr=0.02", "optimizer.momentum=0.5", "optimizer.nesterov=true"],
        ["optimizer.lr=0.025", "optimizer.schedule={kind: cosine}"],
    ],
)
def test_predicted_modes_are_the_iteration_written_out(tmp_path, extra) -> None:
    """Gradient descent by hand (PyTorch's rule) on the lesson, its error projected on the
    eigenvectors numpy finds for X̃ᵀX̃: the modes.csv prediction, to 1e-9."""
    run = _fit(tmp_path, "train.max_iter=60", *extra)
    x = np.column_stack([run.dataset.x.double().numpy(), np.ones(run.dataset.n)])
    y = run.dataset.y.double().numpy().reshape(-1)
    _, vectors = np.linalg.eigh(2 * x.T @ x / len(y))
    star = np.linalg.lstsq(x, y, rcond=None)[0]
    opt = run.config.optimizer
    factors = run.result.lr_factors
    theta, buf, errors = np.zeros(2), np.zeros(2), []
    for t in range(61):
        errors.append(np.abs(vectors.T @ (theta - star)))
        grad = 2 * x.T @ (x @ theta - y) / len(y)
        buf = opt.momentum_value * buf + grad
        step = grad + opt.momentum_value * buf if opt.nesterov else buf
        rate = opt.lr_value * (1.0 if factors is None else factors[min(t, 59)])
        theta = theta - rate * step
    saved = load_run(run.run_dir).modes
    assert saved is not None
    predicted = np.column_stack([saved["mode_0"], saved["mode_1"]])
    assert np.allclose(predicted, np.array(errors), rtol=1e-9, atol=1e-13)
    assert run.modes is not None and np.allclose(run.modes.observed, errors, rtol=1e-9, atol=1e-12)


def test_the_summary_per_mode(tmp_path) -> None:
    run = _fit(tmp_path, "optimizer.lr=0.01")
    modes = run.summary["modes"]
    assert modes["shown"] == [0, 1] and modes["prediction"].startswith("exact")
    hessian = run.analysis.hessian
    for mode in modes["modes"]:
        lam, u = mode["eigenvalue"], np.asarray(mode["eigenvector"])
        assert hessian @ u == pytest.approx(lam * u, rel=1e-9, abs=1e-12)
        assert mode["contraction"] == pytest.approx(abs(1 - 0.01 * lam))
        assert mode["steps_per_digit"] == pytest.approx(
            math.log(10) / -math.log(abs(1 - 0.01 * lam))
        )


def test_the_minibatch_prediction_is_the_rms_over_batch_streams(tmp_path) -> None:
    """512 batch streams of 4 at lr 0.01: their root mean square error along each mode
    against the predicted one (the second moment's), within 15%."""
    run = _fit(tmp_path, "train.batch_size=4", "train.sampling=replacement", "optimizer.lr=0.01",
               "train.max_iter=60", "train.replicas=512")  # fmt: skip
    assert run.modes is not None and run.modes.predicted is not None
    assert run.summary["modes"]["prediction"].startswith("mini-batch")
    theta = run.result.theta.numpy()  # [R, K, p]
    star = np.asarray(run.analysis.theta_star)
    rms = np.sqrt((((theta - star) @ run.analysis.eigenvectors) ** 2).mean(axis=1))
    for t in (1, 5, 20, 59):
        assert run.modes.predicted[t] == pytest.approx(rms[t], rel=0.15), t


def test_adaptive_optimizers_show_observed_modes_only(tmp_path) -> None:
    run = _fit(tmp_path, "optimizer.name=adam", "optimizer.lr=0.1", "train.max_iter=30")
    assert run.summary["modes"]["prediction"].startswith("none: adam")
    assert all(m["contraction"] is None for m in run.summary["modes"]["modes"])
    figure = run_figures(load_run(run.run_dir))["modes"]
    assert len(figure.axes[0].lines) == 2  # observed only


def test_the_figures(tmp_path) -> None:
    run = _fit(tmp_path, "optimizer.lr=0.028", "train.max_iter=50")
    data = load_run(run.run_dir)
    ax = run_figures(data)["modes"].axes[0]
    observed = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(observed) == 2
    assert np.allclose(observed[1].get_ydata(), run.modes.observed[:, 1])
    assert any("λ = 67.17" in line.get_label() for line in ax.lines)
    sweep = sweep_lr(load_config(None, ["device=cpu", f"output.root={tmp_path}"]), draw=False)
    modes = sweep_figures(load_run(sweep.run_dir))["sweep_modes"].axes[0]
    assert len(modes.lines) == 2 * len(sweep.result.lrs) + 2
