"""sweep-lr --batch-sizes: the lr × batch-size map, its expected steps against the mini-batch
theory computed directly and against the batch streams' mean, the CLI and the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lrtrain.api import batch_map
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.load import load_dataset
from lrtrain.errors import ConfigError
from lrtrain.runs.directory import load_run
from lrtrain.theory import minibatch as mb
from lrtrain.theory import minibatch_steps as ms

LRS = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016]
OVER = ["device=cpu", "train.dtype=float64", "train.sampling=replacement", "train.max_iter=600",
        "train.target_gap=0.1", "output.plots=[]"]  # fmt: skip


@pytest.fixture(scope="module")
def lesson_map(tmp_path_factory):
    root = tmp_path_factory.mktemp("map")
    run = batch_map(load_config(None, [*OVER, f"output.root={root}"]), [1, 4, None], LRS,
                    draw=False)  # fmt: skip
    return run


def test_expected_steps_are_the_theorys(lesson_map) -> None:
    """Each (size, rate)'s expected steps are minibatch_steps.steps_to_target's, computed
    again here from the rows' moments; the full batch's equal the path's (no noise)."""
    ds = load_dataset(load_config(None, OVER))
    exact = ds.answer()
    moments = mb.row_moments(ds.chunks(st.CHUNK_ROWS), exact.theta_star)
    target = lesson_map.summary["target_loss"]
    assert target == pytest.approx(exact.loss_star * 1.1)
    problem = ms.Problem(
        moments, exact.loss_star, exact.theta_star, torch.zeros(2, dtype=torch.float64), target
    )
    table = load_run(lesson_map.run_dir).metrics
    for size in (1, 4, None):
        mine = table["batch_size"] == (np.inf if size is None else size)
        critical = mb.critical_lr(moments, size)
        for lr, predicted, observed in zip(table["lr"][mine], table["predicted_steps"][mine],
                                           table["observed_steps"][mine], strict=True):  # fmt: skip
            want = ms.steps_to_target(problem, lr, size) if lr < critical else None
            assert (np.isnan(predicted) and want is None) or predicted == want
            if size is None and want is not None:
                assert observed == want
    assert lesson_map.summary["paths"] == 64


def test_the_streams_mean_follows_the_expectation(lesson_map) -> None:
    """Where the target is reachable well below the critical rate, the mean of 64 batch
    streams reaches it within a quarter of the expected steps (a noisy mean crosses a little
    early: its first crossing is a minimum over time)."""
    table = load_run(lesson_map.run_dir).metrics
    rows = (table["batch_size"] != np.inf) & np.isfinite(table["predicted_steps"])
    rows &= table["predicted_steps"] >= 20
    assert rows.sum() >= 5
    predicted, observed = table["predicted_steps"][rows], table["observed_steps"][rows]
    assert np.all(np.abs(observed - predicted) <= 0.25 * predicted + 2), (predicted, observed)


def test_the_map_from_the_cli_and_its_figure(tmp_path) -> None:
    out = tmp_path / "m"
    result = CliRunner().invoke(app, [
        "sweep-lr", "--batch-sizes", "2,full", "--lrs", "0.002,0.01", "--out", str(out),
        *[o for o in OVER if o != "output.plots=[]"],
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "lrtrain sweep-lr --batch-sizes — lecture" in text and "scaling" in text
    figure = out / "plots" / "batch_map.png"
    assert figure.is_file()
    from lrtrain.plots.minibatch import batch_map_figures

    left, right = batch_map_figures(load_run(out))["batch_map"].axes
    assert len(left.lines) == 2 * 2 + 2 + 1  # per size: theory, observed; critical lrs; max_iter
    assert [t.get_text() for t in right.get_xticklabels()] == ["2", "full"]


@pytest.mark.parametrize("extra", [["optimizer.name=adam"], ["optimizer.schedule={kind: cosine}"]])
def test_the_map_needs_sgd_at_a_constant_rate(tmp_path, extra) -> None:
    with pytest.raises(ConfigError, match="sgd at a constant rate"):
        batch_map(load_config(None, [*OVER, *extra, f"output.root={tmp_path}"]), [1, None])


def test_a_map_where_nothing_reaches_the_target_draws_and_says_so(tmp_path) -> None:
    """Too few steps for any rate to reach the gap: every step count is missing, and the figure
    (whose log axes would have nothing to show) says so instead of failing to draw."""
    out = tmp_path / "m"
    result = CliRunner().invoke(app, [
        "sweep-lr", "--batch-sizes", "4,full", "--lrs", "0.001,0.01", "--out", str(out),
        "train.max_iter=50", "train.sampling=replacement", f"output.root={tmp_path}",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    left, _ = batch_map_figures_of(out)
    assert "no stream reached the target within 50 steps" in [t.get_text() for t in left.texts]


def batch_map_figures_of(out):  # the redrawn figure's two panels
    from lrtrain.plots.minibatch import batch_map_figures

    return batch_map_figures(load_run(out))["batch_map"].axes
