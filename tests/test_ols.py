"""The statistics of the fit (lrtrain.theory.ols) against statsmodels' OLS and NIST's certified
standard deviations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lrtrain.cli.report import truth_inside
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.theory.ols import fit_statistics

sm = pytest.importorskip(
    "statsmodels.api", reason="statsmodels is the reference (make test has it)"
)

DATA = Path(__file__).parent / "data"

# NIST StRD certified standard deviations of the estimates [w_1 … w_d, b], the residual
# standard deviation and R² (https://www.itl.nist.gov/div898/strd/lls/lls.shtml)
CERTIFIED = {
    "longley": (
        [84.9149257747669, 0.334910077722432e-01, 0.488399681651699, 0.214274163161675,
         0.226073200069370, 455.478499142212, 890420.383607373],
        304.854073561965, 0.995479004577296,
    ),
    "norris": ([0.429796848199937e-03, 0.232818234301152], 0.884796396144373, 0.999993745883712),
}  # fmt: skip


def _load(*overrides: str):
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", *overrides])
    ds = load_dataset(cfg)
    return ds, fit_statistics(ds.answer(), ds.feature_names, ds.standardization)


def _statsmodels(x: np.ndarray, y: np.ndarray):
    return sm.OLS(y, np.column_stack([x, np.ones(len(y))])).fit()


def _csv(name: str) -> tuple[np.ndarray, np.ndarray]:
    table = np.genfromtxt(DATA / f"{name}.csv", delimiter=",", names=True)
    columns = table.dtype.names
    target = "y"
    x = np.column_stack([table[c] for c in columns if c != target])
    return x, table[target]


CASES = {
    "lesson": [],
    "multivariate": ["-c", "multivariate"],
    "diabetes": ["-c", "diabetes"],
    "diabetes standardised": ["-c", "diabetes", "data.standardize=true"],
    "norris": ["data.source=csv", f"data.path={DATA / 'norris.csv'}"],
    "longley": ["data.source=csv", f"data.path={DATA / 'longley.csv'}"],
    "longley standardised": ["data.source=csv", f"data.path={DATA / 'longley.csv'}",
                             "data.standardize=true"],
}  # fmt: skip


@pytest.mark.parametrize("decomposed", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_statistics_equal_statsmodels(case: str, decomposed: bool) -> None:
    """``decomposed``: the covariance's eigendecomposition made already, as a fit's analysis
    makes it — C⁻¹ then comes from it where C is well-conditioned (the others: Longley)."""
    over = CASES[case]
    name = over[1] if over[:1] == ["-c"] else None
    rest = over[2:] if name else over
    cfg = load_config(name, ["device=cpu", "train.dtype=float64", *rest])
    ds = load_dataset(cfg)
    if decomposed:
        assert ds.answer().stats.cov_eigen is not None
    ours = fit_statistics(ds.answer(), ds.feature_names, ds.standardization)
    x, y = _raw_rows(cfg)
    ref = _statsmodels(x, y)
    got = ours["coefficients"]
    rel = 1e-8
    assert [c["estimate"] for c in got] == pytest.approx(ref.params.tolist(), rel=rel, abs=1e-12)
    assert [c["se"] for c in got] == pytest.approx(ref.bse.tolist(), rel=rel)
    assert [c["t"] for c in got] == pytest.approx(ref.tvalues.tolist(), rel=rel)
    assert [c["p"] for c in got] == pytest.approx(ref.pvalues.tolist(), rel=1e-6, abs=1e-300)
    ci = ref.conf_int(alpha=0.05)
    assert [c["ci_low"] for c in got] == pytest.approx(ci[:, 0].tolist(), rel=rel)
    assert [c["ci_high"] for c in got] == pytest.approx(ci[:, 1].tolist(), rel=rel)
    assert ours["r2"] == pytest.approx(ref.rsquared, rel=rel)
    assert ours["adj_r2"] == pytest.approx(ref.rsquared_adj, rel=rel)
    assert ours["sigma"] == pytest.approx(np.sqrt(ref.scale), rel=rel)
    assert ours["dof"] == ref.df_resid
    assert ours["rmse"] == pytest.approx(np.sqrt(ref.ssr / len(y)), rel=rel)


def _raw_rows(cfg) -> tuple[np.ndarray, np.ndarray]:
    """The rows in their original units, read independently of lrtrain's statistics."""
    raw = cfg.model_copy(update={"data": cfg.data.model_copy(update={"standardize": False})})
    ds = load_dataset(raw)
    return ds.x.double().numpy(), ds.y.double().numpy().reshape(-1)


@pytest.mark.parametrize("name", sorted(CERTIFIED))
def test_nist_certified_standard_deviations(name: str) -> None:
    _, ours = _load("data.source=csv", f"data.path={DATA / f'{name}.csv'}")
    sds, residual_sd, r2 = CERTIFIED[name]
    assert [c["se"] for c in ours["coefficients"]] == pytest.approx(sds, rel=1e-8)
    assert ours["sigma"] == pytest.approx(residual_sd, rel=1e-9)
    assert ours["r2"] == pytest.approx(r2, rel=1e-12)


def test_the_lessons_true_parameters_lie_in_their_intervals() -> None:
    """b = 0.2007 against a true 0 is within one standard error: the intervals say so."""
    _, ours = _load()
    b = ours["coefficients"][1]
    assert b["estimate"] == pytest.approx(0.200662, rel=1e-5)
    assert abs(b["estimate"]) < b["se"]
    assert truth_inside(ours, [3.0, 0.0]) == [True, True]


def test_weight_decay_and_singular_data_say_what_is_not_reported(tmp_path) -> None:
    ds, _ = _load()
    ridge = fit_statistics(ds.answer(), ds.feature_names, weight_decay=0.1)
    assert ridge["note"] is not None and "ridge" in ridge["note"]
    assert ridge["coefficients"][0]["se"] is not None  # the least-squares estimate's, labelled
    rows = "\n".join(f"{i},{2 * i},{3 * i + (i % 3)}" for i in range(20))
    (tmp_path / "twice.csv").write_text("x1,x2,y\n" + rows + "\n")
    _, singular = _load("data.source=csv", f"data.path={tmp_path / 'twice.csv'}")
    assert singular["note"] is not None and "linearly dependent" in singular["note"]
    assert all(c["se"] is None and c["p"] is None for c in singular["coefficients"])


@pytest.mark.parametrize("dof", [1, 2, 5, 30, 98, 431, 10_000, 1_000_000, 2_000_000])
def test_students_t_against_scipy(dof: int) -> None:
    """lrtrain's Student t (its own incomplete beta: importing scipy.stats would cost every fit
    1.3 s) against scipy's, in both tails, to the smallest p-values."""
    from scipy import stats

    from lrtrain.theory.ols import t_quantile, t_sf

    for t in (0.0, 0.3, 1.0, 2.5, 8.0, 50.0, 400.0):
        assert t_sf(t, dof) == pytest.approx(stats.t.sf(t, dof), rel=1e-10, abs=1e-300)
        assert t_sf(-t, dof) == pytest.approx(stats.t.sf(-t, dof), rel=1e-10)
    for q in (0.6, 0.975, 0.995, 1 - 1e-9):
        assert t_quantile(q, dof) == pytest.approx(stats.t.ppf(q, dof), rel=1e-10)
