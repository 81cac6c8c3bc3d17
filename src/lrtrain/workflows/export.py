"""``lrtrain data``: the synthetic data set a config generates, written as CSV — block by block
(memory bounded by one chunk) and whole or not at all (:mod:`lrtrain.runs.atomic`)."""

from __future__ import annotations

import csv
from pathlib import Path

from lrtrain.config.schema import Config, DataConfig
from lrtrain.data.dataset import chunk_rows
from lrtrain.data.synthetic import iter_synthetic
from lrtrain.errors import ConfigError, DataError
from lrtrain.runs.atomic import atomic_file


def write_synthetic_csv(data: DataConfig, seed: int, path: Path, overwrite: bool = False) -> int:
    """Write the synthetic data set a config generates as CSV (x_0 … x_{d-1}, y), block by
    block (memory bounded by one chunk), atomically."""
    if path.exists() and not overwrite:
        raise DataError(f"{path}: exists; choose another file or pass --overwrite")
    names = [f"x_{i}" for i in range(data.d)]
    with atomic_file(path, "w", DataError, encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*names, "y"])
        for _, x, y in iter_synthetic(data, seed, chunk_rows(data.d)):
            writer.writerows(
                [*map(repr, xr), repr(yr)]
                for xr, yr in zip(x.tolist(), y[:, 0].tolist(), strict=True)
            )
    return data.n_samples


def export_data(config: Config, path: str | Path, overwrite: bool = False) -> int:
    """Write the synthetic data set ``config`` generates to a CSV; returns the row count."""
    if config.data.source != "synthetic":
        raise ConfigError(
            f"data.source is csv: the data already are in {config.data.path}; "
            "lrtrain data writes synthetic data sets"
        )
    return write_synthetic_csv(config.data, config.seed, Path(path), overwrite)
