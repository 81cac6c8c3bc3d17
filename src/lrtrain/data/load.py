"""A config's data set: the source its ``data.source`` names, wrapped with held-out rows when
``data.validation_fraction`` asks for them. The one place that maps a kind to its source."""

from __future__ import annotations

from collections.abc import Callable

from lrtrain.config.schema import Config, DataConfig
from lrtrain.data.arrays import missing_rows
from lrtrain.data.csv_source import CsvSource
from lrtrain.data.dataset import Dataset
from lrtrain.data.devices import torch_dtype
from lrtrain.data.distributed import SINGLE, World
from lrtrain.data.source import Holds, Source, hold_always
from lrtrain.data.synthetic import SyntheticSource
from lrtrain.data.validation import with_validation

# data.source → its source, made from the data section and the config's seed
SOURCES: dict[str, Callable[[DataConfig, int], Source]] = {
    "synthetic": SyntheticSource,
    "csv": CsvSource,
    "arrays": missing_rows,  # the rows come with the call (workflows.fit.prepare), never a config
}


def source_for(config: Config) -> Source:
    """The source the config's ``data.source`` names."""
    return SOURCES[config.data.source](config.data, config.seed)


def row_count(data: DataConfig) -> int:
    """Rows of the data set (a CSV is read to count them)."""
    return SOURCES[data.source](data, 0).row_count()


def load_dataset(
    config: Config, world: World = SINGLE, source: Source | None = None, hold: Holds = hold_always
) -> Dataset:
    """The config's data set on the CPU in ``train.dtype`` (standardised if asked): this
    process's shard of it in a distributed run, a handle to regenerate it when streaming —
    with the exact answer for the data computed in float64 on the way (``Dataset.exact``).
    ``source``: rows that came with the call (``data.source: arrays``) instead of the config's;
    ``hold``: whether training reads the rows themselves (:data:`~lrtrain.data.source.Holds`)."""
    source = source or source_for(config)
    dtype = torch_dtype(config.train.dtype)
    data = config.data
    if data.validation_fraction > 0:
        return with_validation(source, data.validation_fraction, config.seed, dtype,
                               data.standardize, world, hold)  # fmt: skip
    return source.dataset(dtype, world, hold)
