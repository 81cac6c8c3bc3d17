"""A CSV file as one source: its header checked against data.target and data.features, its
cells parsed as float64 (every problem names the file, row and column)."""

from __future__ import annotations

from pathlib import Path

import torch

from lrtrain.config.schema import DataConfig
from lrtrain.data.dataset import Dataset, dataset_from_rows
from lrtrain.data.distributed import World
from lrtrain.data.source import Holds, Table, hold_always
from lrtrain.data.table import numbers, read_rows, select_columns
from lrtrain.errors import DataError


class CsvSource:
    """``data.source: csv``: the rows of ``data.path``, every process parsing the whole file and
    keeping its shard of the rows."""

    held_in_memory = True

    def __init__(self, data: DataConfig, seed: int = 0) -> None:
        self.data = data
        self.path = Path(data.path or "")
        self.label = str(data.path)

    def row_count(self) -> int:
        return len(read_rows(self.path, self._missing())[1])

    def truth(self) -> None:
        return None

    def table(self) -> Table:
        features, x, y = csv_table(self.data)
        return Table(features, self.data.target, x, y)

    def dataset(self, dtype: torch.dtype, world: World, hold: Holds = hold_always) -> Dataset:
        table = self.table()
        return dataset_from_rows(table.x, table.y, table.features, table.target, dtype,
                                 self.data.standardize, self.label, world,
                                 hold(len(table.x)))  # fmt: skip

    def _missing(self) -> str:
        return f"data.path: CSV file '{self.path}' not found"


def csv_table(data: DataConfig) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The CSV's feature names and its rows as float64 x [N, d], y [N, 1]; every problem names
    the file, row and column."""
    path = Path(data.path or "")
    header, body = read_rows(path, f"data.path: CSV file '{path}' not found")
    features = select_columns(str(path), header, data.target, data.features)
    if len(body) < 2:
        raise DataError(f"{path}: {len(body)} data row(s); a regression needs at least 2")
    columns = [header.index(f) for f in features]
    target = header.index(data.target)
    table = torch.tensor(numbers(path, header, body, [*columns, target]), dtype=torch.float64)
    return list(features), table[:, :-1], table[:, -1:]
