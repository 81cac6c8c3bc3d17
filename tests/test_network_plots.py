"""A network's figures (plots.network) checked through their axes and data, and redrawn from
the run's files alone, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lrtrain import api
from lrtrain.config.schema import load_config
from lrtrain.plots.network import network_figures, network_sweep_figures
from lrtrain.runs.directory import load_run


@pytest.fixture(scope="module")
def network_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("net") / "run"
    api.fit(load_config("mlp", ["train.max_iter=60"]), out=out, draw=False)
    return out


def test_the_figures_draw_the_runs_numbers(network_run: Path) -> None:
    run = load_run(network_run)
    figures = network_figures(run)
    assert sorted(figures) == ["fit", "loss", "surface"]
    loss_ax, sharp_ax = figures["loss"].axes[:2]
    assert np.array_equal(loss_ax.lines[0].get_ydata(), run.metrics["loss"])
    measured = run.arrays["sharpness"][:, 0]
    assert np.allclose(sharp_ax.lines[0].get_ydata(), measured[np.isfinite(measured)])
    threshold = sharp_ax.lines[1].get_ydata()
    assert np.allclose(threshold, 2 / 0.1)  # 2/η at every logged step
    fit_ax = figures["fit"].axes[0]
    assert np.array_equal(fit_ax.lines[0].get_ydata(), run.arrays["function_y"])
    surface_ax = figures["surface"].axes[0]
    assert "λ₁" in surface_ax.get_xlabel() and "slice" in surface_ax.get_title()


def test_output_plots_chooses_them(network_run: Path) -> None:
    run = load_run(network_run)
    run.config["output"]["plots"] = ["loss"]
    assert sorted(network_figures(run)) == ["loss"]
    run.config["output"]["plots"] = []
    assert network_figures(run) == {}


def test_a_sweep_draws_each_rates_sharpness_over_its_threshold(tmp_path: Path) -> None:
    sweep = api.sweep_lr(load_config("mlp", ["train.max_iter=30", "train.sharpness_every=10"]),
                         lrs=[0.01, 0.1], out=tmp_path / "s", draw=False)  # fmt: skip
    run = load_run(sweep.run_dir)
    figure = network_sweep_figures(run)["sweep_loss"]
    _, ratio_ax = figure.axes[:2]
    for k, (lr, line) in enumerate(zip([0.01, 0.1], ratio_ax.lines, strict=False)):
        assert np.allclose(line.get_ydata(), run.arrays["sharpness"][:, k] * lr / 2)


def test_redraw_of_a_network_run_without_torch(network_run: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lrtrain.api import redraw\n"
        f"paths = redraw({str(network_run)!r}, 'svg')\n"
        "assert sorted(p.name for p in paths) == ['fit.svg', 'loss.svg', 'surface.svg'], paths\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
