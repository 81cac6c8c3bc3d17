"""Held-out data (data.validation_fraction) and scoring a CSV with `lrtrain predict`, against
plain numpy computations on the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lrtrain.api import fit, score
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.data.synthetic import synthetic_rows
from lrtrain.data.validation import held_out
from lrtrain.errors import DataError
from lrtrain.runs.directory import load_run

DIABETES = (
    Path(__file__).parents[1] / "src" / "lrtrain" / "config" / "bundled" / "data" / "diabetes.csv"
)


def test_the_split_is_drawn_row_by_row() -> None:
    """The same rows are held out whatever else is drawn: a row's fate depends on (seed, row)
    only, so a prefix of the data is split as it is within the whole."""
    whole = held_out(10_000, 0.25, 3)
    assert 0.23 < float(whole.float().mean()) < 0.27
    assert np.array_equal(held_out(1234, 0.25, 3).numpy(), whole[:1234].numpy())
    assert not np.array_equal(held_out(10_000, 0.25, 4).numpy(), whole.numpy())


def test_training_never_sees_the_held_out_rows(tmp_path) -> None:
    """The closed form is least squares on the kept rows; the val_loss column is the held-out
    rows' mean squared error at each logged θ — both computed here with numpy."""
    over = ["device=cpu", "train.dtype=float64", "data.validation_fraction=0.3",
            "optimizer.lr=0.02", "output.plots=[loss]", f"output.root={tmp_path}"]  # fmt: skip
    cfg = load_config(None, over)
    run = fit(cfg, draw=False)
    x, y = (t.numpy() for t in synthetic_rows(cfg.data, cfg.seed, 0, cfg.data.n_samples))
    out = held_out(len(x), 0.3, cfg.seed).numpy()
    design = np.column_stack([x, np.ones(len(x))])
    star = np.linalg.lstsq(design[~out], y[~out, 0], rcond=None)[0]
    assert run.analysis.theta_star == pytest.approx(star.tolist(), rel=1e-10)
    assert run.dataset.n == int((~out).sum())
    data = load_run(run.run_dir)
    theta = data.theta
    want = (((design[out] @ theta.T) - y[out]) ** 2).mean(axis=0)
    assert data.metrics["val_loss"] == pytest.approx(want, rel=1e-10)
    held = run.summary["validation"]
    assert held["rows"] == int(out.sum()) and held["final_loss"] == pytest.approx(want[-1])
    from lrtrain.plots.figures import run_figures

    labels = [ln.get_label() for ln in run_figures(data)["loss"].axes[0].lines]
    assert "validation loss (held-out rows)" in labels


def test_standardised_csv_with_held_out_rows(tmp_path) -> None:
    """The standardisation is the kept rows' (no peeking at the held-out ones)."""
    cfg = load_config("diabetes", ["device=cpu", "data.validation_fraction=0.2",
                                   "output.plots=[]", f"output.root={tmp_path}"])  # fmt: skip
    run = fit(cfg, draw=False)
    table = np.genfromtxt(DIABETES, delimiter=",", names=True)
    x = np.column_stack([table[c] for c in table.dtype.names if c != "progression"])
    out = held_out(len(x), 0.2, cfg.seed).numpy()
    assert run.dataset.standardization.mean == pytest.approx(
        x[~out].mean(axis=0).tolist(), rel=1e-12
    )


@pytest.mark.parametrize("extra", [["data.stream=true"]])
def test_streamed_data_is_not_split_yet(tmp_path, extra) -> None:
    cfg = load_config(None, ["data.validation_fraction=0.2", *extra, f"output.root={tmp_path}"])
    with pytest.raises(DataError, match="held in memory"):
        fit(cfg, draw=False)


def test_predict_scores_a_csv_with_the_target(tmp_path) -> None:
    cfg = load_config("diabetes", ["device=cpu", "output.plots=[]", f"output.root={tmp_path}"])
    run = fit(cfg, draw=False)
    got = score(run.run_dir, DIABETES)
    assert got is not None
    table = np.genfromtxt(DIABETES, delimiter=",", names=True)
    x = np.column_stack([table[c] for c in table.dtype.names if c != "progression"])
    final = run.summary["final_original"]
    error = table["progression"] - (x @ np.asarray(final["w"]) + final["b"])
    assert got["rows"] == len(error)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-9)
    assert got["mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-9)
    sst = ((table["progression"] - table["progression"].mean()) ** 2).sum()
    assert got["r2"] == pytest.approx(1 - (error**2).sum() / sst, rel=1e-9)
    assert got["r2"] == pytest.approx(run.summary["statistics"]["r2"], rel=1e-6)  # same rows
    result = CliRunner().invoke(app, ["predict", str(run.run_dir), str(DIABETES), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == pytest.approx(got)
    features_only = tmp_path / "x.csv"
    features_only.write_text("age,sex,bmi,bp,tc,ldl,hdl,tch,ltg,glu\n" + "1,1,1,1,1,1,1,1,1,1\n")
    assert score(run.run_dir, features_only) is None
    refused = CliRunner().invoke(app, ["predict", str(run.run_dir), str(features_only), "--json"])
    assert refused.exit_code == 2 and "no target column" in refused.output
