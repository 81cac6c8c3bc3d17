"""The run directory's CSV tables as text: what each row of metrics.csv, sweep.csv,
trajectories.csv, replicas.csv and data_sample.csv holds (``runs`` writes them)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:
    from lrtrain.runs.records import History, ModeHistory, ReplicaBand, Sample
    from lrtrain.runs.summaries import NetworkSweepRow, SweepRow


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


# a network's sweep adds what its verdicts rest on (runs.summaries.NetworkSweepRow)
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


def trajectories_csv(columns: dict[str, np.ndarray]) -> str:
    """:func:`trajectory_columns` as CSV text (the step as a whole number, the rest as Python
    writes floats)."""
    names = list(columns)
    steps = columns["step"].tolist()
    others = [columns[name].tolist() for name in names if name != "step"]
    at = names.index("step")

    def rows() -> Iterable[list[Any]]:
        for i, step in enumerate(steps):
            values = [fmt(column[i]) for column in others]
            yield [*values[:at], int(step), *values[at:]]

    return table(names, rows())


SHARPNESS_COLUMNS = ["sharpness", "sharpness_threshold"]


def _sharpness_cells(history: History, i: int) -> list[str]:
    """Row i's sharpness (nan where not measured) and threshold, when the run measured it."""
    if history.sharpness is None or history.threshold is None:
        return []
    return [fmt(float(history.sharpness[i])), fmt(float(history.threshold[i]))]


def _parameter_names(d: int) -> list[str]:
    return [*[f"w_{i}" for i in range(d)], "b"]


def fmt(value: float) -> str:
    return repr(float(value))


def replicas_csv(band: ReplicaBand, expected: list[float] | None) -> str:
    """Per logged step: the run's (replica 0's) full-batch loss, the replicas' mean, its 99%
    band and E[L]."""
    wanted = [math.nan] * len(band.steps) if expected is None else expected
    columns = (band.run, band.mean, band.low, band.high, wanted)
    return table(
        ["step", "run_loss", "mean_loss", "band_low", "band_high", "expected_loss"],
        ([int(t), *(fmt(v) for v in values)]
         for t, *values in zip(band.steps.tolist(), *columns, strict=True)),
    )  # fmt: skip


def modes_csv(modes: ModeHistory) -> str:
    """Per logged step the shown modes' predicted |error| (``mode_i``; nan: no theory)."""
    predicted = modes.predicted
    if predicted is None:
        predicted = np.full((len(modes.steps), len(modes.shown)), math.nan)
    return table(
        ["step", *(f"mode_{i}" for i in modes.shown)],
        ([int(t), *(fmt(v) for v in row)] for t, row in zip(modes.steps, predicted, strict=True)),
    )


def metrics_csv(
    history: History,
    expected: list[float] | None,
    parameters: bool = True,
    validation: list[float] | None = None,
) -> str:
    """One row per logged step, with the rate used at that step, the theory's expected loss
    (nan where not modelled) and, with held-out rows, the validation loss; the parameter
    columns only when ``parameters`` (else in trajectory.npy, row for row)."""
    theta = history.theta
    parameters = parameters and theta.shape[1] > 0  # a network's θ is in model.pt
    names = _parameter_names(theta.shape[1] - 1) if parameters else []
    held = ["val_loss"] if validation is not None else []
    measured = SHARPNESS_COLUMNS if history.sharpness is not None else []

    def rows() -> Iterable[list[Any]]:
        for i in range(len(history.step)):
            want = math.nan if expected is None else expected[i]
            yield [
                int(history.step[i]), fmt(history.loss[i]), fmt(history.grad_norm[i]),
                fmt(history.lr[i]), fmt(want),
                *([fmt(validation[i])] if validation is not None else []),
                *_sharpness_cells(history, i),
                *(fmt(v) for v in (theta[i].tolist() if parameters else [])),
            ]  # fmt: skip

    header = ["step", "loss", "grad_norm", "lr", "expected_loss", *held, *measured, *names]
    return table(header, rows())


def sample_csv(sample: Sample) -> str:
    header = [sample.feature, sample.target]
    return table(header, ([fmt(xi), fmt(yi)] for xi, yi in zip(sample.x, sample.y, strict=True)))
