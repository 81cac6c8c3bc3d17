"""What every run does before it writes anything: check the device, the loggers and the memory,
and load its rows — the config's, or rows handed over from Python."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrtrain.config.schema import Config
from lrtrain.data.distributed import SINGLE, World
from lrtrain.data.source import Holds, hold_always
from lrtrain.engine.memory import check_memory, check_network_path, check_sharpness
from lrtrain.errors import ConfigError

if TYPE_CHECKING:
    from lrtrain.data.dataset import Dataset


def load_rows(
    config: Config,
    world: World = SINGLE,
    data: Any = None,
    replicas: int | None = None,
    hold: Holds = hold_always,
) -> tuple[Config, Dataset]:
    """The checks every run makes before it writes anything (the device, the loggers installed,
    the memory of its data and of its ``replicas`` models' sharpness estimate — default
    ``train.replicas``), and its data set: the config's, or the rows ``data`` hands over from
    Python, the returned config then saying ``data.source: arrays``. ``hold``: whether training
    reads the rows themselves (:data:`~lrtrain.data.source.Holds`; a fit knows, by default
    they are held)."""
    from lrtrain.data.devices import resolve_device
    from lrtrain.data.load import load_dataset
    from lrtrain.workflows.loggers import check_installed

    resolve_device(config.device)
    check_installed(list(config.output.loggers))
    check_memory(config, replicas=config.train.replicas, share=world.machine_share)
    source = None
    if data is not None:
        from lrtrain.data.arrays import ArraySource, table_of

        table = table_of(data, config.data)
        arrays = config.data.model_copy(update={"source": "arrays", "features": table.features,
                                                "target": table.target, "path": None})  # fmt: skip
        config = config.model_copy(update={"data": arrays})
        source = ArraySource(config.data, table)
    dataset = load_dataset(config, world, source, hold)
    check_sharpness(config, dataset.d, replicas or config.train.replicas)
    check_network_path(config, dataset.d)
    return config, dataset


def check_replicas(config: Config, dataset: Dataset, world: World) -> None:
    """``train.replicas`` needs batches that differ, drawn in one process."""
    if config.train.replicas == 1:
        return
    if config.train.full_batch(dataset.n):
        raise ConfigError(
            f"train.replicas: batches of {config.train.batch_size} in shuffled epochs of "
            f"{dataset.n} rows are the whole data set every step: the replicas would all be "
            "the same run — use smaller batches, train.sampling: replacement, or replicas: 1"
        )
    if world.distributed:
        raise ConfigError(
            "train.replicas: independent batch streams run in one process — drop --nproc, "
            "or set replicas: 1"
        )
