"""A CSV as a data set: its header checked against data.target and data.features, its cells
parsed as float64 (every problem names the file, row and column)."""

from __future__ import annotations

from pathlib import Path

import torch

from lrtrain.config.schema import DataConfig
from lrtrain.data.dataset import Dataset, dataset_from_rows
from lrtrain.data.distributed import SINGLE, World
from lrtrain.data.table import numbers, read_rows
from lrtrain.errors import DataError


def csv_table(data: DataConfig) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The CSV's feature names and its rows as float64 x [N, d], y [N, 1]; every problem names
    the file, row and column."""
    path = Path(data.path or "")
    header, body = read_rows(path, f"data.path: CSV file '{path}' not found")
    if data.target not in header:
        raise DataError(
            f"{path}: no column '{data.target}' (data.target); columns are: {', '.join(header)}"
        )
    features = data.features or [h for h in header if h != data.target]
    if data.target in features:
        raise DataError(
            f"{path}: the target '{data.target}' is also listed in data.features; a model that "
            "sees its own answer learns nothing — remove it from data.features"
        )
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(
            f"{path}: no column {', '.join(repr(m) for m in missing)} (data.features); "
            f"columns are: {', '.join(header)}"
        )
    if not features:
        raise DataError(f"{path}: no feature columns besides the target '{data.target}'")
    if len(body) < 2:
        raise DataError(f"{path}: {len(body)} data row(s); a regression needs at least 2")
    columns = [header.index(f) for f in features]
    target = header.index(data.target)
    table = torch.tensor(numbers(path, header, body, [*columns, target]), dtype=torch.float64)
    return list(features), table[:, :-1], table[:, -1:]


def read_csv(data: DataConfig, dtype: torch.dtype, world: World = SINGLE) -> Dataset:
    """Read a CSV with a header; every problem names the file, row and column. In a
    distributed run every process parses the file and keeps its shard of the rows."""
    features, x64, y64 = csv_table(data)
    return dataset_from_rows(x64, y64, features, data.target, dtype, data.standardize,
                             str(data.path), world)  # fmt: skip
