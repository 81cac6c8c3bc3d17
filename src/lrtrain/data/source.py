"""What a source of data is to the rest of lrtrain: a :class:`Source` turns one kind of
``data.source`` (synthetic, a CSV file, …) into the :class:`~lrtrain.data.dataset.Dataset`
training reads. :mod:`~lrtrain.data.load` picks the source by the config's kind and wraps it
with held-out rows when asked; nothing else branches on the kind.

A new kind is one module: a class with these members, and its name in ``load.SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from lrtrain.data.dataset import Dataset
    from lrtrain.data.distributed import World


# Given the row count, whether training reads the rows themselves (a network's forward pass,
# mini-batches, autograd steps): the data set then holds a copy in the training dtype. Where
# training reads only their statistics (the linear model's full-batch Gram steps) a source that
# holds its float64 rows anyway (a CSV's, arrays handed over) lends them instead, no copy made.
Holds = Callable[[int], bool]


def hold_always(rows: int) -> bool:
    return True


@dataclass(frozen=True)
class Table:
    """Every row of a source as given, in float64: ``x`` [N, d], ``y`` [N, 1]."""

    features: list[str]
    target: str
    x: torch.Tensor
    y: torch.Tensor


class Source(Protocol):
    """One kind of data, as configured."""

    label: str  # what messages call the data: a file's path, "the synthetic data (…)"

    @property
    def held_in_memory(self) -> bool:
        """Whether the rows can be held whole (:meth:`table`); streamed data cannot."""
        ...

    def row_count(self) -> int:
        """Rows of the whole data set (before any split), as cheaply as the source allows."""
        ...

    def truth(self) -> tuple[list[float], float] | None:
        """The true (w, b) the rows were made from, where the source knows them."""
        ...

    def table(self) -> Table:
        """Every row in float64, held whole (for a split into training and held-out rows)."""
        ...

    def dataset(self, dtype: torch.dtype, world: World, hold: Holds = hold_always) -> Dataset:
        """The rows as training reads them — this process's shard, in ``dtype``, standardised
        when configured — with the exact answer computed in float64 on the way; ``hold``: see
        :data:`Holds` (synthetic data is made a chunk at a time: ``data.stream`` decides)."""
        ...
