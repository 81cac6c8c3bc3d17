"""The run directory's tables: what each column of metrics.csv, sweep.csv, trajectories.csv,
replicas.csv, modes.csv and data_sample.csv holds, as numpy columns — which the figures of the
run that made them draw from — and as CSV text (``runs`` writes them)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from lrtrain.runs.network_summaries import NetworkSweepRow
    from lrtrain.runs.records import History, ModeHistory, ReplicaBand, Sample
    from lrtrain.runs.summaries import SweepRow


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV text: the header, then each row (None written as an empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


SWEEP_COLUMNS = [
    "lr", "verdict", "predicted_verdict", "final_loss", "diverged_at", "stopped_at",
    "steps_to_target",
]  # fmt: skip


# a network's sweep adds what its verdicts rest on (runs.network_summaries.NetworkSweepRow)
NETWORK_SWEEP_COLUMNS = ["initial_sharpness", "final_sharpness", "threshold", "rule", "differs"]


def sweep_csv(rows: list[SweepRow] | list[NetworkSweepRow]) -> str:
    extra = [c for c in NETWORK_SWEEP_COLUMNS if rows and c in rows[0]]
    columns = SWEEP_COLUMNS + extra
    return table(columns, ([cast(dict[str, Any], r)[c] for c in columns] for r in rows))


def trajectory_columns(
    lrs: list[float],
    histories: list[History],
    expected: list[list[float]] | None,
    parameters: bool = True,
) -> dict[str, np.ndarray]:
    """Every rate's rows as columns (lr, step, loss, grad_norm, the theory's expected loss —
    nan where not modelled — the sharpness where measured, and the parameters when
    ``parameters`` and kept; else they are in trajectories.npy, row for row, or — a
    network's — nowhere): trajectories.csv's table, or trajectories.npz's."""
    parameters = parameters and histories[0].theta.shape[1] > 0
    lengths = [len(h.step) for h in histories]
    columns: dict[str, np.ndarray] = {
        "lr": np.repeat(np.asarray(lrs, dtype=np.float64), lengths),
        "step": np.concatenate([h.step for h in histories]).astype(np.int64),
        "loss": np.concatenate([h.loss for h in histories]),
        "grad_norm": np.concatenate([h.grad_norm for h in histories]),
        "expected_loss": (np.full(sum(lengths), math.nan) if expected is None else
                          np.concatenate([np.asarray(e, dtype=np.float64) for e in expected])),
    }  # fmt: skip
    measured = [(h.sharpness, h.threshold) for h in histories]
    if all(s is not None and t is not None for s, t in measured):
        columns["sharpness"] = np.concatenate([s for s, _ in measured])
        columns["sharpness_threshold"] = np.concatenate([t for _, t in measured])
    if parameters:
        theta = np.concatenate([h.theta for h in histories])
        for i, name in enumerate(_parameter_names(theta.shape[1] - 1)):
            columns[name] = theta[:, i]
    return columns


def columns_csv(columns: dict[str, np.ndarray]) -> str:
    """A table given as columns as CSV text: the step (where there is one) as a whole number,
    the rest as Python writes floats (``repr``: read back, they are the same numbers)."""
    names = list(columns)
    steps = columns["step"].tolist() if "step" in columns else None
    others = [columns[name].tolist() for name in names if name != "step"]
    at = names.index("step") if steps is not None else len(names)

    def rows() -> Iterable[list[Any]]:
        for i in range(len(others[0]) if others else 0):
            values = [fmt(column[i]) for column in others]
            yield values if steps is None else [*values[:at], int(steps[i]), *values[at:]]

    return table(names, rows())


SHARPNESS_COLUMNS = ["sharpness", "sharpness_threshold"]


def _parameter_names(d: int) -> list[str]:
    return [*[f"w_{i}" for i in range(d)], "b"]


def fmt(value: float) -> str:
    return repr(float(value))


def replicas_columns(band: ReplicaBand, expected: list[float] | None) -> dict[str, np.ndarray]:
    """replicas.csv: per logged step the run's (replica 0's) full-batch loss, the replicas'
    mean, its 99% band and E[L]."""
    wanted = [math.nan] * len(band.steps) if expected is None else expected
    values = (band.run, band.mean, band.low, band.high, wanted)
    names = ("run_loss", "mean_loss", "band_low", "band_high", "expected_loss")
    return {"step": np.asarray(band.steps, dtype=np.int64)} | {
        name: np.asarray(column, dtype=np.float64)
        for name, column in zip(names, values, strict=True)
    }


def modes_columns(modes: ModeHistory) -> dict[str, np.ndarray]:
    """modes.csv: per logged step the shown modes' predicted |error| (``mode_i``; nan: no
    theory)."""
    predicted = modes.predicted
    if predicted is None:
        predicted = np.full((len(modes.steps), len(modes.shown)), math.nan)
    table = np.asarray(predicted, dtype=np.float64).reshape(len(modes.steps), len(modes.shown))
    return {"step": np.asarray(modes.steps, dtype=np.int64)} | {
        f"mode_{i}": table[:, k] for k, i in enumerate(modes.shown)
    }


def metrics_columns(
    history: History,
    expected: list[float] | None,
    parameters: bool = True,
    validation: list[float] | None = None,
) -> dict[str, np.ndarray]:
    """metrics.csv: one row per logged step, with the rate used at that step, the theory's
    expected loss (nan where not modelled) and, with held-out rows, the validation loss; the
    sharpness where measured; the parameter columns only when ``parameters`` (else in
    trajectory.npy, row for row)."""
    theta = history.theta
    parameters = parameters and theta.shape[1] > 0  # a network's θ is in model.pt
    rows = len(history.step)
    columns: dict[str, np.ndarray] = {
        "step": np.asarray(history.step, dtype=np.int64),
        "loss": np.asarray(history.loss, dtype=np.float64),
        "grad_norm": np.asarray(history.grad_norm, dtype=np.float64),
        "lr": np.asarray(history.lr, dtype=np.float64),
        "expected_loss": np.full(rows, math.nan) if expected is None else
                         np.asarray(expected, dtype=np.float64),
    }  # fmt: skip
    if validation is not None:
        columns["val_loss"] = np.asarray(validation, dtype=np.float64)
    if history.sharpness is not None and history.threshold is not None:
        columns["sharpness"] = np.asarray(history.sharpness, dtype=np.float64)
        columns["sharpness_threshold"] = np.asarray(history.threshold, dtype=np.float64)
    if parameters:
        for i, name in enumerate(_parameter_names(theta.shape[1] - 1)):
            columns[name] = np.asarray(theta[:, i], dtype=np.float64)
    return columns


def sample_columns(sample: Sample) -> dict[str, np.ndarray]:
    """data_sample.csv: the rows of a one-feature data set kept for fit.png."""
    return {sample.feature: np.asarray(sample.x, dtype=np.float64),
            sample.target: np.asarray(sample.y, dtype=np.float64)}  # fmt: skip
