"""Time to accuracy: lrtrain with ``lr: auto`` (± ``momentum: auto``) against scikit-learn's
``SGDRegressor`` (its defaults, and the best ``eta0`` of a small grid), with
``LinearRegression`` as the exact reference — on the same data, in one run.

The clock runs over what each tool needs to get there: for lrtrain the analysis (closed form and
spectrum, which ``auto`` needs) and the training; for SGDRegressor its epochs. Evaluating the
gap after each SGDRegressor epoch (for the race, not part of its work) is left off its clock.
scikit-learn is a benchmark-only extra (``pip install -e '.[bench]'``), never a dependency.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import CaseResult, Timing
from lrtrain.api import resolve_auto
from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.dataset import Dataset, feature_major
from lrtrain.engine.train import train
from lrtrain.theory.analysis import analyse_dataset

GAPS = (1e-3, 1e-6)
# lrtrain's fits and the statistics pass they are measured in take tens of milliseconds, where
# this machine's timings vary by 20–50% from one to the next: the median of seven, alternating,
# for both (with three, the pass-bounded ratio below moved by ±0.2 between runs)
REPEATS = 7
ETA0_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
# Issue 15's bound on one race, the hardest (heavy ball to 1e-6 at κ ≈ 100): that fit within
# this many statistics passes. Every race is to be won by ≥ 3× against each baseline.
PASS_BOUND = ("κ ≈ 100", 1e-6, "lr: auto, momentum: auto", 1.5)


def problems(quick: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    n, d = (20_000, 8) if quick else (1_000_000, 8)
    rng = np.random.default_rng(0)
    w = rng.normal(size=d)
    out = []
    for label, scales in (("κ ≈ 1", np.ones(d)), ("κ ≈ 100", np.linspace(1.0, 10.0, d))):
        x = rng.normal(size=(n, d)) * scales
        y = x @ w + 0.5 + rng.normal(size=n)
        out.append((label, x, y))
    return out


def race(quick: bool) -> list[CaseResult]:
    try:
        from sklearn.linear_model import LinearRegression, SGDRegressor
    except ImportError:
        return [
            CaseResult(
                name="time to a relative gap vs scikit-learn",
                baseline="SGDRegressor",
                target="lrtrain faster to each gap",
                notes=["skipped: scikit-learn is not installed (pip install -e '.[bench]')"],
            )
        ]
    results = []
    max_epochs = 3 if quick else 20
    warm_x, warm_y = problems(True)[0][1:]
    _lrtrain(warm_x[:1000], warm_y[:1000], _LRTRAIN["lr: auto"])  # first-call costs off the clock
    for label, x, y in problems(quick):
        start = time.perf_counter()
        exact = LinearRegression().fit(x, y)
        exact_s = time.perf_counter() - start
        loss_star = float(np.mean((exact.predict(x) - y) ** 2))
        start = time.perf_counter()
        np.linalg.lstsq(np.hstack([x, np.ones((x.shape[0], 1))]), y, rcond=None)
        lstsq_s = time.perf_counter() - start
        passes, ours = [], {}
        for name, extra in _LRTRAIN.items():
            runs = []
            for _ in range(1 if quick else REPEATS):  # quick: the smoke run
                passes.append(_statistics_pass(x, y))
                runs.append(_lrtrain(x, y, extra))
            ours[name] = {gap: _median([run[gap] for run in runs]) for gap in GAPS}
        floor = {"exact": exact_s, "lstsq": lstsq_s, "pass": statistics.median(passes)}
        sgd = {"defaults": _sgd(SGDRegressor(random_state=0), x, y, loss_star, max_epochs)}
        for eta0 in ETA0_GRID:
            model = SGDRegressor(eta0=eta0, random_state=0)
            sgd[f"eta0={eta0:g}"] = _sgd(model, x, y, loss_star, max_epochs)
        for gap in GAPS:
            results.append(_row(label, gap, x.shape[0], ours, sgd, floor, loss_star, max_epochs))
    return results


_LRTRAIN = {
    "lr: auto": ["optimizer.lr=auto"],
    "lr: auto, momentum: auto": ["optimizer.lr=auto", "optimizer.momentum=auto"],
}


def _lrtrain(x: np.ndarray, y: np.ndarray, extra: list[str]) -> dict[float, float | None]:
    """Seconds to reach each gap (None: not reached), one run per gap."""
    times: dict[float, float | None] = {}
    for gap in GAPS:
        # float32 (the default) has about 7 digits: enough for a 1e-3 gap, not for 1e-6.
        dtype = "float32" if gap >= 1e-4 else "float64"
        torch_dtype = torch.float32 if dtype == "float32" else torch.float64
        xt = feature_major(torch.from_numpy(x).to(torch_dtype))
        yt = torch.from_numpy(y).to(torch_dtype).reshape(-1, 1)
        ds = Dataset(xt, yt, [f"x_{i}" for i in range(x.shape[1])], "y")
        cfg = load_config(
            None,
            ["device=cpu", f"train.dtype={dtype}", "train.max_iter=20000",
             f"train.target_gap={gap}", *extra],
        )  # fmt: skip
        start = time.perf_counter()
        # one read of the data: the statistics the analysis makes are the Gram steps' too
        analysis = analyse_dataset(ds, cfg.optimizer)
        cfg, analysis, _ = resolve_auto(cfg, analysis)
        result = train(ds, cfg, loss_ref=analysis.target_loss)
        elapsed = time.perf_counter() - start
        times[gap] = elapsed if result.statuses[0] == "converged" else None
    return times


def _median(times: list[float | None]) -> float | None:
    """The median time, or None if any run missed the gap."""
    done = [t for t in times if t is not None]
    return statistics.median(done) if len(done) == len(times) else None


def _statistics_pass(x: np.ndarray, y: np.ndarray) -> float:
    """Seconds of one read of the (float64) data into its statistics: the floor of any exact
    method, and the unit the Gram steps are measured in (issue 15)."""
    xt = feature_major(torch.from_numpy(x))
    yt = torch.from_numpy(y).reshape(-1, 1)
    ds = Dataset(xt, yt, [f"x_{i}" for i in range(x.shape[1])], "y")
    start = time.perf_counter()
    st.chunk_stats(ds.chunks(st.CHUNK_ROWS), d=ds.d)
    return time.perf_counter() - start


def _sgd(
    model: Any, x: np.ndarray, y: np.ndarray, loss_star: float, max_epochs: int
) -> dict[str, Any]:
    """Epoch by epoch (partial_fit, the defaults' schedule); seconds to reach each gap."""
    spent, reached, best = 0.0, dict.fromkeys(GAPS), math.inf
    for _ in range(max_epochs):
        start = time.perf_counter()
        model.partial_fit(x, y)
        spent += time.perf_counter() - start
        gap = float(np.mean((model.predict(x) - y) ** 2)) / loss_star - 1
        best = min(best, gap)
        for target in GAPS:
            if reached[target] is None and gap <= target:
                reached[target] = spent
        if all(v is not None for v in reached.values()):
            break
    return {"reached": reached, "spent": spent, "best_gap": best}


def _row(
    label: str,
    gap: float,
    n: int,
    ours: dict[str, dict[float, float | None]],
    sgd: dict[str, dict[str, Any]],
    floor: dict[str, float],
    loss_star: float,
    max_epochs: int,
) -> CaseResult:
    mine = {k: v[gap] for k, v in ours.items() if v[gap] is not None}
    best_ours = min(mine.items(), key=lambda kv: kv[1]) if mine else None
    theirs = {k: v["reached"][gap] for k, v in sgd.items() if v["reached"][gap] is not None}
    best_sgd = min(theirs.items(), key=lambda kv: kv[1]) if theirs else None
    longest = max(v["spent"] for v in sgd.values())
    lrtrain_text = ", ".join(f"{k} {_s(v[gap])}" for k, v in ours.items())
    sgd_text = ", ".join(
        f"{k} {_s(v['reached'][gap])} (best gap {v['best_gap']:.1e})" for k, v in sgd.items()
    )
    notes = [
        f"lrtrain: {lrtrain_text}",
        f"SGDRegressor: {sgd_text}",
        f"LinearRegression (exact): {floor['exact']:.3f} s; numpy.linalg.lstsq: "
        f"{floor['lstsq']:.3f} s; one statistics pass over the rows: {floor['pass']:.3f} s",
    ]
    # lrtrain's time against each baseline (how many times faster) and against one read
    ratios: dict[str, float | None] = {
        "LinearRegression": None,
        "lstsq": None,
        "SGDRegressor": None,
    }
    of_pass = None
    if best_ours is not None:
        t = best_ours[1]
        ratios = {
            "LinearRegression": floor["exact"] / t,
            "lstsq": floor["lstsq"] / t,
            "SGDRegressor": best_sgd[1] / t if best_sgd else None,
        }
        of_pass = t / floor["pass"]
        shown = ", ".join(f"{k} {v:.1f}×" for k, v in ratios.items() if v is not None)
        notes.append(f"lrtrain faster than {shown}; lrtrain = {of_pass:.2f} statistics passes")
    if best_sgd is None:
        notes.append(
            f"no SGDRegressor setting reached the gap (its longest run: {longest:.2f} s, "
            f"{max_epochs} epochs)"
        )
    known = [v for v in ratios.values() if v is not None]
    met = best_ours is not None and all(v >= 3 for v in known)
    target = "≥ 3× faster than each"
    bound_label, bound_gap, bound_fit, most = PASS_BOUND
    if (label, gap) == (bound_label, bound_gap):
        bounded = ours[bound_fit][gap]
        met = met and bounded is not None and bounded / floor["pass"] <= most
        target += f"; {bound_fit} ≤ {most:g} statistics passes"
    return CaseResult(
        name=f"time to relative gap {gap:g}, N = {n:,}, d = 8, {label}",
        baseline="SGDRegressor (defaults; best eta0 of "
        + ", ".join(f"{e:g}" for e in ETA0_GRID)
        + "), LinearRegression, numpy.linalg.lstsq",
        target=target,
        met=met,
        ratio=min(known) if known else None,
        baseline_time=Timing.of([best_sgd[1]]) if best_sgd else None,
        lrtrain_time=Timing.of([best_ours[1]]) if best_ours else None,
        figures={
            "lrtrain_s": {k: v[gap] for k, v in ours.items()},
            "sgd_s": {k: v["reached"][gap] for k, v in sgd.items()},
            "sgd_best_gap": {k: v["best_gap"] for k, v in sgd.items()},
            "linear_regression_s": floor["exact"],
            "lstsq_s": floor["lstsq"],
            "statistics_pass_s": floor["pass"],
            "times_faster": ratios,
            "statistics_passes": of_pass,
            "loss_star": loss_star,
            "best_lrtrain": best_ours[0] if best_ours else None,
            "best_sgd": best_sgd[0] if best_sgd else None,
        },
        notes=notes,
    )


def _s(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.2f} s"
