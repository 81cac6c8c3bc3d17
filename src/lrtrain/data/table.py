"""Numeric CSV tables (header row, then data rows) read with messages that name the file, line
and column — shared by the CSV data source and ``lrtrain predict``; no torch, no numpy."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from lrtrain.errors import DataError


def read_rows(path: Path, not_found: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank data rows, each with its line number in the file."""
    if not path.is_file():
        raise DataError(not_found)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: drop a BOM
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(fh))]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    rows = [(line, r) for line, r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows")
    return [h.strip() for h in rows[0][1]], rows[1:]


def numbers(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], columns: list[int]
) -> list[list[float]]:
    """The given columns of every row as finite floats."""
    return [[_cell(path, line, row, c, header) for c in columns] for line, row in rows]


def _cell(path: Path, line: int, row: list[str], col: int, header: list[str]) -> float:
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
        raise DataError(
            f"{path}: line {line}, column '{header[col]}': {text} is not a finite number"
        )
    return value


def select_columns(
    where: str, columns: list[str], target: str | None, features: list[str] | None
) -> list[str]:
    """The feature columns of the table ``where`` names (a file; ``data`` for rows handed
    over): ``features`` (``data.features``), else every column but the target — each checked to
    be a column, the target (``data.target``, None: not among these columns) to be one and not
    to be a feature."""
    if target is not None and target not in columns:
        raise DataError(
            f"{where}: no column '{target}' (data.target); columns are: {', '.join(columns)}"
        )
    chosen = list(features or [c for c in columns if c != target])
    if target is not None and target in chosen:
        raise DataError(
            f"{where}: the target '{target}' is also listed in data.features; a model that "
            "sees its own answer learns nothing — remove it from data.features"
        )
    missing = [f for f in chosen if f not in columns]
    if missing:
        raise DataError(
            f"{where}: no column {', '.join(repr(m) for m in missing)} (data.features); "
            f"columns are: {', '.join(columns)}"
        )
    if not chosen:
        besides = f" besides the target '{target}'" if target is not None else ""
        raise DataError(f"{where}: no feature columns{besides}")
    return chosen
