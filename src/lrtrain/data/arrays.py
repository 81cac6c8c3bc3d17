"""Rows handed over in memory, as one source (``data.source: arrays``): numpy arrays, pandas
DataFrames and Series, torch tensors on any device, or anything ``numpy.asarray`` reads.

The rows are read as float64, without a copy when they already are (a tensor on a GPU is copied
to the CPU for it); checked as a CSV's cells are (shapes, at least two rows, a target that
exists, every value finite — that by the statistics pass, which reads every value anyway); then
they go the way of every source held whole (:func:`~lrtrain.data.dataset.dataset_from_rows`):
the exact answer from the float64 rows, and each process's shard copied once in the training
dtype — or lent, where the steps read only statistics. A DataFrame's column names become the
feature names.

    >>> run = lrtrain.fit(config, data=(X, y))              # doctest: +SKIP
    >>> run = lrtrain.fit(config, data=frame)               # data.target names y's column
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lrtrain.config.schema import DataConfig
from lrtrain.data.dataset import Dataset, dataset_from_rows
from lrtrain.data.distributed import World
from lrtrain.data.source import Holds, Table, hold_always
from lrtrain.data.table import select_columns
from lrtrain.errors import DataError

LABEL = "the rows handed over (data=…)"  # what messages call the data


class ArraySource:
    """``data.source: arrays``: rows handed over in memory, already checked (:func:`table_of`)."""

    held_in_memory = True

    def __init__(self, data: DataConfig, table: Table) -> None:
        self.data, self._table = data, table
        self.label = LABEL

    def row_count(self) -> int:
        return len(self._table.x)

    def truth(self) -> None:
        return None

    def table(self) -> Table:
        return self._table

    def dataset(self, dtype: torch.dtype, world: World, hold: Holds = hold_always) -> Dataset:
        t = self._table
        return dataset_from_rows(t.x, t.y, t.features, t.target, dtype, self.data.standardize,
                                 self.label, world, hold(len(t.x)))  # fmt: skip


def missing_rows(data: DataConfig, seed: int = 0) -> ArraySource:
    """``data.source: arrays`` without the rows (a saved config.yaml, the CLI): one message."""
    raise DataError(
        "data.source: arrays: the rows were handed over from Python (lrtrain.fit(config, "
        "data=(X, y))) and are not in the config; pass them again, or save them as a CSV and "
        "set data.source: csv, data.path: FILE"
    )


def table_of(data: Any, config: DataConfig) -> Table:
    """``data`` — a pair (X, y), or one table whose column ``config.target`` is y — as float64
    rows x [N, d], y [N, 1] and their names; every problem is one DataError naming the input,
    the row and the column."""
    if isinstance(data, tuple | list) and len(data) == 2:
        features, x = _features(data[0], config)
        y = _column(data[1], "y")
        target = _name_of(data[1]) or config.target
    elif isinstance(data, tuple | list):
        raise DataError(
            f"data: {len(data)} items; give (X, y), or one DataFrame whose column "
            f"'{config.target}' (data.target) is the target"
        )
    else:
        columns = _columns_of(data)
        if columns is None:
            raise DataError(
                "data: one array has no column names to find the target in; give (X, y), or a "
                f"DataFrame with a column '{config.target}' (data.target)"
            )
        wanted = select_columns("data", columns, config.target, config.features)
        features, x = wanted, _matrix(data[wanted], "X")
        y, target = _column(data[config.target], config.target), config.target
    if len(x) != len(y):
        raise DataError(f"data: X has {len(x)} rows and y has {len(y)}; give one y per row")
    if len(x) < 2:
        raise DataError(f"data: {len(x)} row(s); a regression needs at least 2")
    if x.shape[1] == 0:
        raise DataError("data: X has no feature columns")
    return Table(features, target, x, y)  # checked finite by the statistics pass that reads it


def _features(x: Any, config: DataConfig) -> tuple[list[str], torch.Tensor]:
    columns = _columns_of(x)
    if columns is not None:
        wanted = select_columns("data", columns, None, config.features)
        return wanted, _matrix(x[wanted], "X")
    matrix = _matrix(x, "X")
    if config.features is not None and len(config.features) != matrix.shape[1]:
        raise DataError(
            f"data.features names {len(config.features)} column(s); X has {matrix.shape[1]}"
        )
    return list(config.features or [f"x_{i}" for i in range(matrix.shape[1])]), matrix


def _columns_of(value: Any) -> list[str] | None:
    """A DataFrame's column names (anything with ``columns`` and name lookup), else None."""
    columns = getattr(value, "columns", None)
    if columns is None or not hasattr(value, "__getitem__"):
        return None
    return [str(c) for c in columns]


def _name_of(value: Any) -> str | None:
    name = getattr(value, "name", None)  # a pandas Series
    return str(name) if isinstance(name, str) and name else None


def _matrix(value: Any, what: str) -> torch.Tensor:
    """Rows [N, d] in float64 on the CPU: one column for a 1-D input."""
    rows = _float64(value, what)
    if rows.dim() == 1:
        rows = rows.unsqueeze(1)
    if rows.dim() != 2:
        raise DataError(f"data: {what} has {rows.dim()} dimensions; give rows × features (2)")
    return rows


def _column(value: Any, what: str) -> torch.Tensor:
    """One value per row, [N, 1] in float64 ([N] and [N, 1] are both accepted)."""
    values = _float64(value, what)
    if values.dim() == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.dim() != 1:
        raise DataError(
            f"data: {what} has shape {tuple(values.shape)}; give one target value per row"
        )
    return values.unsqueeze(1)


def _float64(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise DataError(f"data: {what} holds complex numbers; give real ones")
        return value.detach().to("cpu", torch.float64)
    to_numpy = getattr(value, "to_numpy", None)  # pandas: values, not the index
    array = to_numpy() if callable(to_numpy) else value
    try:
        numbers = np.asarray(array, dtype=np.float64)  # no copy when already float64
    except (TypeError, ValueError) as exc:
        raise DataError(f"data: {what} is not numeric ({exc})") from None
    if not numbers.flags.writeable or any(step < 0 for step in numbers.strides):
        numbers = numbers.copy()  # torch takes over only writable, forward-strided memory
    return torch.from_numpy(numbers)  # read, never written: the data set makes its own copy
