"""lrtrain.GDRegressor (workflows/estimator.py) against scikit-learn's own contract — every check
of ``check_estimator``, run as tests — and in its tools (Pipeline, GridSearchCV over lr,
cross_val_score); its exact answer against numpy's least squares and ``lrtrain.fit`` on the
same rows."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import lrtrain
from lrtrain import GDRegressor

CSV = Path(__file__).parents[1] / "src" / "lrtrain" / "config" / "bundled" / "data" / "diabetes.csv"


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(CSV)
    return frame.drop(columns="progression"), frame["progression"]


@parametrize_with_checks([GDRegressor()])
def test_scikit_learns_checks(estimator: GDRegressor, check: Callable[[Any], None]) -> None:
    check(estimator)


def test_the_exact_answer_beside_the_trained_one(diabetes, tmp_path: Path) -> None:
    """coef_ and intercept_ reach numpy's least squares (the target gap 1e-9); the closed form
    is numpy's; the rest is what lrtrain.fit reports for the same rows."""
    X, y = diabetes
    model = GDRegressor().fit(X, y)
    design = np.column_stack([X.to_numpy(), np.ones(len(X))])
    exact, *_ = np.linalg.lstsq(design, y.to_numpy(), rcond=None)
    assert model.closed_form_["coef"] == pytest.approx(exact[:-1], rel=1e-9)
    assert model.closed_form_["intercept"] == pytest.approx(exact[-1], rel=1e-9)
    assert model.coef_ == pytest.approx(exact[:-1], rel=1e-3, abs=1e-2)
    assert model.optimality_gap_ <= 1e-9
    assert list(model.feature_names_in_) == list(X.columns)
    assert [c["feature"] for c in model.statistics_["coefficients"][:-1]] == list(X.columns)
    config = lrtrain.load_config("diabetes", ["train.dtype=float64", "output.plots=[]",
                                              "train.max_iter=1000", "train.target_gap=1e-9",
                                              f"output.root={tmp_path}"])  # fmt: skip
    run = lrtrain.fit(config, draw=False)
    assert model.critical_lr_ == pytest.approx(run.analysis.critical_lr, rel=1e-12)
    assert model.n_iter_ == run.summary["steps"]
    assert model.verdict_["observed"] == run.summary["verdict"]["observed"]
    assert model.history_ == pytest.approx(run.result.replica_history(0)["loss"].numpy())
    assert model.score(X, y) == pytest.approx(model.statistics_["r2"], rel=1e-6)


def test_parameters_are_the_configs_keys(diabetes) -> None:
    X, y = diabetes
    model = GDRegressor(lr=0.1, momentum=0.5, schedule="cosine", max_iter=50, target_gap=None)
    config = model.config()
    assert (config.optimizer.lr, config.optimizer.momentum) == (0.1, 0.5)
    assert config.optimizer.schedule.kind == "cosine" and config.train.max_iter == 50
    adam = GDRegressor().set_params(optimizer="adam", lr=0.1)  # auto is gradient descent's rule
    assert adam.config().optimizer.name == "adam"
    with pytest.raises(ValueError, match="momentum is not a key of adam"):
        model.set_params(optimizer="adam").config()  # momentum 0.5 was set: Adam has none
    with pytest.raises(ValueError, match=r"optimizer\.name: must be one of"):
        GDRegressor(optimizer="bogus").fit(X, y)
    with pytest.raises(ValueError, match=r"optimizer\.lr"):
        GDRegressor(lr=-1.0).fit(X, y)


def test_numpy_parameters_and_noiseless_targets() -> None:
    """A grid search's numpy scalars are parameters like any other (no YAML in between), and
    targets a line fits exactly are fitted to the closed form, not stopped at the start."""
    gen = np.random.default_rng(3)
    X = gen.standard_normal((500, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 4.0
    model = GDRegressor(lr=np.float64(0.2), momentum=np.float64(0.0), max_iter=np.int64(400))
    model.fit(X, y)
    assert model.config().train.max_iter == 400 and model.n_iter_ > 10
    assert model.coef_ == pytest.approx([1.0, -2.0, 0.5], abs=1e-3)
    assert model.intercept_ == pytest.approx(4.0, abs=1e-3)
    assert model.optimality_gap_ <= 1e-6  # of the initial loss: loss* is rounding here


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_target_far_from_zero_trains_as_well_as_one_near_it(dtype: str) -> None:
    """Standardised training centres the target as well as the features: y + 1e10 trains to
    the coefficients y does. Uncentred, float32 residuals at 1e8 were ~8 apart (coefficients
    5.6 % off, 2 100 % at 1e10, a negative "gap"), and float64 ones lost 3.5e-7 at 1e12."""
    from sklearn.linear_model import LinearRegression

    gen = np.random.default_rng(0)
    X = gen.standard_normal((500, 3)) * [1, 10, 100] + [5, -3, 50]
    noise = gen.standard_normal(500)
    errors = []
    for offset in (0.0, 1e8, 1e10, 1e12):
        y = X @ [2.0, -1.0, 0.3] + offset + noise
        model = GDRegressor(dtype=dtype).fit(X, y)
        reference = LinearRegression().fit(X, y)
        assert model.optimality_gap_ >= 0
        assert model.intercept_ == pytest.approx(reference.intercept_, rel=1e-12, abs=0.01)
        errors.append(np.max(np.abs(model.coef_ / reference.coef_ - 1)))
    limit = 1e-3 if dtype == "float32" else 1e-6  # what a relative gap of 1e-9 or the floor allow
    assert max(errors) < limit
    assert max(errors) < 1.5 * errors[0]  # the offset costs nothing


def test_weight_decay_on_standardised_data_is_scikit_learns_ridge() -> None:
    """torch's weight decay decays the bias too. Trained on the target as given, that pulled a
    standardised fit's intercept towards 0 (1.4 off Ridge's here, 49 with y + 1000); on the
    centred target the bias's optimum is 0 and the decay leaves it there: the fit is Ridge
    with an unpenalised intercept, α = N·λ/2 for the mean squared error."""
    from sklearn.linear_model import Ridge

    gen = np.random.default_rng(0)
    X = gen.standard_normal((400, 3)) * [1, 10, 100] + [5, -3, 50]
    decay = 0.1
    for offset in (0.0, 1e3):
        y = X @ [2.0, -1.0, 0.3] + offset + gen.standard_normal(400)
        model = GDRegressor(weight_decay=decay, lr=0.3, momentum=0.0, max_iter=300,
                            target_gap=None).fit(X, y)  # fmt: skip
        scaler = StandardScaler().fit(X)
        ridge = Ridge(alpha=len(X) * decay / 2).fit(scaler.transform(X), y)
        coef = ridge.coef_ / scaler.scale_
        assert model.coef_ == pytest.approx(coef, rel=1e-12)
        assert model.intercept_ == pytest.approx(ridge.intercept_ - coef @ scaler.mean_, rel=1e-12)


def test_nothing_is_written_unless_asked(diabetes, tmp_path: Path, monkeypatch) -> None:
    X, y = diabetes
    monkeypatch.chdir(tmp_path)
    GDRegressor(max_iter=20).fit(X, y)
    assert os.listdir(tmp_path) == []
    model = GDRegressor(max_iter=20, out=tmp_path / "runs").fit(X, y)
    assert (model.run_dir_ / "summary.json").is_file()
    assert model.run_dir_.parent == tmp_path / "runs"  # a run directory of its own in out
    again = GDRegressor(max_iter=20, out=tmp_path / "runs").fit(X, y)
    assert again.run_dir_ != model.run_dir_  # each fit its own: a grid search keeps them all
    assert lrtrain.load_run(model.run_dir_).summary["data"]["features"] == list(X.columns)


def test_in_scikit_learns_tools(diabetes) -> None:
    """A Pipeline, cross_val_score, and a grid over lr: with plain gradient descent for 50
    steps, scored on the training rows, the grid's best rate is the grid point next to η*
    (×0.89: one step of the grid below it) — what lr: auto computes without a search."""
    X, y = diabetes
    scores = cross_val_score(make_pipeline(StandardScaler(), GDRegressor()), X, y, cv=5)
    assert len(scores) == 5 and float(np.mean(scores)) > 0.4
    plain = GDRegressor(momentum=0.0, max_iter=50, target_gap=None)
    eta = plain.fit(X, y).summary_["lr"]  # lr: auto is η* = 2/(λ_min + λ_max)
    every = np.arange(len(X))
    rates = {"lr": list(np.geomspace(eta / 4, eta * 4, 25))}
    grid = GridSearchCV(plain, rates, cv=[(every, every)], scoring="neg_mean_squared_error")
    grid.fit(X, y)
    assert grid.best_params_["lr"] / eta == pytest.approx(4 ** (-1 / 12))


def test_without_scikit_learn_the_estimator_says_how_to_get_it() -> None:
    """A fresh interpreter where scikit-learn cannot be imported (the extra not installed):
    ``import lrtrain`` works, and the estimator names the extra to install."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['sklearn'] = None\nimport lrtrain\n"
            "try:\n    lrtrain.GDRegressor\nexcept ImportError as e:\n    print(e)\n")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lrtrain[sklearn]'" in out.stdout
