"""Predictions of a saved run for new rows — numpy only (no torch): a trained linear model is
its parameters, and ``summary.json`` holds them with the standardisation that goes with them."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from lrtrain.errors import DataError, RunDirError
from lrtrain.runs import RunData


def predict_rows(run: RunData, path: str | Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Read ``path`` (a CSV with the run's feature columns, any others carried along) and
    return its header, its rows and the run's predictions for them."""
    if run.kind != "fit":
        raise RunDirError(f"{run.path}: a sweep directory has no single model to predict with")
    features = run.summary["data"]["features"]
    header, rows = _read(Path(path))
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(m) for m in missing)}; the model was trained on "
            f"{', '.join(features)} (columns here: {', '.join(header)})"
        )
    columns = [header.index(f) for f in features]
    x = np.array(
        [[_number(path, i + 2, row, c, header) for c in columns] for i, row in enumerate(rows)],
        dtype=np.float64,
    ).reshape(len(rows), len(features))
    return header, rows, x @ np.asarray(_weights(run.summary)[0]) + _weights(run.summary)[1]


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


def _read(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            table = [r for r in csv.reader(fh) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    if not table:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    return [h.strip() for h in table[0]], table[1:]


def _number(path: str | Path, line: int, row: list[str], col: int, header: list[str]) -> float:
    if col >= len(row):
        raise DataError(f"{path}: line {line} has no value in column '{header[col]}'")
    text = row[col].strip()
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{path}: line {line}, column '{header[col]}': '{text}' is not a number"
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{path}: line {line}, column '{header[col]}': {text} is not finite")
    return value
