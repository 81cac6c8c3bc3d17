"""Predictions of a saved run for new rows — numpy only (no torch): a trained linear model is
its parameters, and ``summary.json`` holds them with the standardisation that goes with them; a
network's parameters and standardisation are in ``arrays.npz``, its layers in the summary."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from lrtrain.data.table import numbers, read_rows
from lrtrain.errors import DataError, RunDirError
from lrtrain.runs.directory import RunData, load_run


def predict_rows(run: RunData, path: str | Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Read ``path`` (a CSV with the run's feature columns, any others carried along) and
    return its header, its rows and the run's predictions for them."""
    if run.kind != "fit":
        raise RunDirError(
            f"{run.path}: a {run.kind} directory has no single model to predict with; give "
            "a fit's run directory"
        )
    features = run.summary["data"]["features"]
    path = Path(path)
    header, numbered = read_rows(path, f"{path}: no such file")
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(m) for m in missing)}; the model was trained on "
            f"{', '.join(features)} (columns here: {', '.join(header)})"
        )
    columns = [header.index(f) for f in features]
    x = np.array(numbers(path, header, numbered, columns), dtype=np.float64)
    x = x.reshape(len(numbered), len(features))
    rows = [row for _, row in numbered]
    if "model" in run.summary:
        return header, rows, network_outputs(run, x)
    return header, rows, x @ np.asarray(_weights(run.summary)[0]) + _weights(run.summary)[1]


def _gelu(z: np.ndarray) -> np.ndarray:
    """torch's GELU (the exact, erf form): z·Φ(z)."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "gelu": _gelu,
}


def network_outputs(run: RunData, x: np.ndarray) -> np.ndarray:
    """A network run's predictions for rows ``x`` [n, d] in the CSV's units, in float64: its
    final θ (``network_theta``) layer by layer as nn.Linear stores them, after the
    standardisation it trained with (``x_mean``/``x_scale``, and the target's centre ``y_mean``
    — absent from runs before lrtrain 0.5, which did not centre it)."""
    arrays, model = run.arrays, run.summary["model"]
    if "x_mean" in arrays:
        x = (x - arrays["x_mean"]) / arrays["x_scale"]
    shift = float(arrays["y_mean"]) if "y_mean" in arrays else 0.0
    theta = arrays["network_theta"]
    widths = [x.shape[1], *model["hidden"], 1]
    act = ACTIVATIONS[model["activation"]]
    h, at = x, 0
    for i in range(len(widths) - 1):
        inp, out = widths[i], widths[i + 1]
        weight = theta[at : at + out * inp].reshape(out, inp)
        at += out * inp
        h = h @ weight.T + theta[at : at + out]
        at += out
        if i + 2 < len(widths):
            h = act(h)
    return np.asarray(h[:, 0]) + shift


class Score(TypedDict):
    """How well a run predicts rows whose target is known."""

    rows: int
    r2: float | None  # 1 − SSE/SST (None: the target is constant)
    rmse: float
    mae: float


def score_rows(run: RunData, path: str | Path, y: np.ndarray) -> Score | None:
    """The run's predictions ``y`` for ``path`` scored against its target column (None when
    the CSV has none: then there is only predicting to do)."""
    target = run.summary["data"]["target"]
    path = Path(path)
    header, numbered = read_rows(path, f"{path}: no such file")
    if target not in header:
        return None
    column = numbers(path, header, numbered, [header.index(target)])
    truth = np.array(column, dtype=np.float64).reshape(-1)
    error = truth - y
    centred = truth - truth.mean()
    sst = float(centred @ centred)
    return {
        "rows": len(error),
        "r2": 1.0 - float(error @ error) / sst if sst > 0 else None,
        "rmse": float(np.sqrt(np.mean(error * error))),
        "mae": float(np.mean(np.abs(error))),
    }


def predictions_csv(header: list[str], rows: list[list[str]], y: np.ndarray, name: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*header, name])
    for row, value in zip(rows, y, strict=True):
        writer.writerow([*row, repr(float(value))])
    return out.getvalue()


def _weights(summary: dict[str, Any]) -> tuple[list[float], float]:
    """Parameters in the units of the CSV's columns (original units if standardised)."""
    final = summary.get("final_original") or summary["final"]
    return final["w"], final["b"]


def predict(run_dir: str | Path, csv_path: str | Path) -> str:
    """Predictions of a fitted run for the rows of a CSV, as CSV text (the input's columns and
    a ``<target>_predicted`` column). Uses only the run's files: no torch, no retraining."""
    run = load_run(run_dir)
    header, rows, y = predict_rows(run, csv_path)
    return predictions_csv(header, rows, y, f"{run.summary['data']['target']}_predicted")


def score(run_dir: str | Path, csv_path: str | Path) -> Score | None:
    """R², RMSE and MAE of a fitted run's predictions for a CSV that has the target column
    (None when it has not). Uses only the run's files."""
    run = load_run(run_dir)
    _, _, y = predict_rows(run, csv_path)
    return score_rows(run, csv_path, y)
