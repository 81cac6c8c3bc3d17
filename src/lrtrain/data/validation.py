"""Held-out data (``data.validation_fraction``): rows set aside from training, drawn from the
seed row by row — row i is held out when a hash of (seed, i) falls below the fraction, so the
same rows are held out however the data is chunked — and the validation loss, exact from their
float64 statistics (L_val(θ) = Σ (y − x̃ᵀθ)²/N_val: O(p²) per logged step, no pass over rows).

Split before anything is computed from the data: the closed form, the Hessian, the
standardisation and training all see the training rows only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from lrtrain.data import stats as st
from lrtrain.data.dataset import (
    Dataset,
    Validation,
    dataset_from_rows,
    finite_peaks,
)
from lrtrain.data.source import Holds, hold_always
from lrtrain.errors import DataError

if TYPE_CHECKING:
    from lrtrain.data.distributed import World
    from lrtrain.data.source import Source

_SPLIT_STREAM = 0x5A11_DA7A  # separates the split's hashes from the data's seeds
_MASK64 = (1 << 64) - 1


def held_out(n: int, fraction: float, seed: int) -> torch.Tensor:
    """[n] bool: whether each row is held out — SplitMix64 of (seed, row) below the fraction."""
    rows = torch.arange(n, dtype=torch.int64)
    z = rows + _signed(((seed ^ _SPLIT_STREAM) * 0x9E3779B97F4A7C15 + 1) & _MASK64)
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = _times(z ^ _shift_right(z, shift), factor)
    z = z ^ _shift_right(z, 31)
    unit = _shift_right(z, 11).to(torch.float64) / float(1 << 53)  # 53 bits in [0, 1)
    return unit < fraction


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical shift of int64 values holding uint64 bits."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def _times(z: torch.Tensor, factor: int) -> torch.Tensor:
    """uint64 multiplication modulo 2⁶⁴ on int64 tensors (two's complement wraps alike)."""
    return z * _signed(factor)


def _signed(value: int) -> int:
    """A uint64 as the int64 with the same bits."""
    return value - (1 << 64) if value >= 1 << 63 else value


def with_validation(
    source: Source,
    fraction: float,
    seed: int,
    dtype: torch.dtype,
    standardize: bool,
    world: World,
    hold: Holds = hold_always,
) -> Dataset:
    """The source's data set without its held-out rows, the rows' statistics attached as
    ``dataset.validation``. Every process splits all the rows alike (the split is the rows' own)
    and keeps its shard of the training rows; data that is never held whole (streamed) is not
    split, and is refused with the reason."""
    if not source.held_in_memory:
        raise DataError(
            "data.validation_fraction: held-out rows are split from data held in memory — "
            "set data.stream: false, or validation_fraction: 0"
        )
    table = source.table()
    x64, y64 = table.x, table.y
    out = held_out(len(x64), fraction, seed)
    kept = int((~out).sum())
    if kept < 2 or int(out.sum()) < 1:
        raise DataError(
            f"data.validation_fraction: {fraction:g} of {len(x64)} rows leaves {kept} to train "
            f"on and {len(x64) - kept} held out; both need rows"
        )
    # checked here, on every row (a cell named by its row in the table, not in the split)
    peaks = finite_peaks(x64, y64, table.features, table.target)
    dataset = dataset_from_rows(x64[~out], y64[~out], table.features, table.target, dtype,
                                standardize, source.label, world, hold(kept), peaks)  # fmt: skip
    truth = source.truth()
    if truth is not None:
        dataset.true_w, dataset.true_b = truth
    x_val = dataset.as_trained(x64[out], torch.float64)
    y_val = dataset.target_as_trained(y64[out], torch.float64)
    stats = st.chunk_stats([(x_val, y_val)], d=len(table.features))
    dataset.validation = Validation(stats, fraction, x_val, y_val)
    return dataset
