"""Synthetic data, as one source: y = Xw + b + noise, the rows generated in counter-seeded blocks.

Rows come in fixed blocks of ``BLOCK_ROWS`` rows; block k is drawn from its own CPU generator
seeded from (seed, k). Any row range can therefore be produced on its own, and the data set is the
same whatever chunk size a caller asks for, whichever shard a process holds and whatever device it
trains on (rows are drawn on the CPU and moved afterwards). With ``data.stream`` nothing is held:
the rows are regenerated a chunk at a time whenever they are read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from lrtrain.config.schema import ArangeX, DataConfig, NormalX, UniformX
from lrtrain.data import stats as st
from lrtrain.data.dataset import (
    BLOCK_ROWS,
    Dataset,
    StreamSpec,
    check_range,
    chunk_rows,
    combined,
    named_peaks,
    sample_index,
    set_exact,
)
from lrtrain.data.distributed import World, shard
from lrtrain.data.source import Holds, Table, hold_always
from lrtrain.errors import DataError

LABEL = "the synthetic data (data.x, data.true_w, data.noise_std)"  # what messages call it
_MASK64 = (1 << 64) - 1


class SyntheticSource:
    """``data.source: synthetic``: the config's generator, its rows and its true parameters."""

    def __init__(self, data: DataConfig, seed: int) -> None:
        self.data, self.seed = data, seed
        self.label = LABEL

    @property
    def held_in_memory(self) -> bool:
        return not self.data.stream

    def row_count(self) -> int:
        return self.data.n_samples

    def truth(self) -> tuple[list[float], float] | None:
        if self.data.function != "linear":  # no line generated the rows
            return None
        return list(self.data.true_w), self.data.true_b

    def table(self) -> Table:
        x, y = synthetic_rows(self.data, self.seed, 0, self.data.n_samples)
        return Table([f"x_{i}" for i in range(self.data.d)], "y", x, y)

    def dataset(self, dtype: torch.dtype, world: World, hold: Holds = hold_always) -> Dataset:
        if self.data.stream:
            return _streamed_dataset(self.data, self.seed, dtype, world)
        return _synthetic_dataset(self.data, self.seed, dtype, world)


def block_seed(seed: int, block: int) -> int:
    """A well-mixed 63-bit seed for (seed, block): SplitMix64 of both, so no two pairs collide
    in practice (a plain ``seed * K + block`` would make seed 1's block 0 equal seed 0's block K).
    """
    z = (seed * 0x9E3779B97F4A7C15 + block + 1) & _MASK64
    for _ in range(2):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z & ((1 << 63) - 1)


def _block(data: DataConfig, seed: int, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``BLOCK_ROWS`` rows of one block, float64, whatever part of it is wanted."""
    gen = torch.Generator().manual_seed(block_seed(seed, block))
    rows, d = BLOCK_ROWS, data.d
    spec = data.x
    f64 = torch.float64
    if isinstance(spec, ArangeX):
        index = torch.arange(block * rows, (block + 1) * rows, dtype=f64)
        x = (spec.start + spec.step * index).unsqueeze(1)
    elif isinstance(spec, UniformX):  # in place: a wide block is large, make no temporaries
        x = torch.rand(rows, d, generator=gen, dtype=f64).mul_(spec.high - spec.low)
        x.add_(spec.low)
    elif isinstance(spec, NormalX):
        x = torch.randn(rows, d, generator=gen, dtype=f64).mul_(spec.std).add_(spec.mean)
    else:  # pragma: no cover - the schema admits only the three kinds
        raise DataError(f"data.x.kind: unknown kind {spec!r}")
    noise = torch.randn(rows, generator=gen, dtype=f64)
    w = torch.tensor(data.true_w, dtype=f64)
    signal = x if data.function == "linear" else torch.sin(x)
    y = signal @ w + data.true_b + data.noise_std * noise
    return x, y.unsqueeze(1)


def synthetic_rows(
    data: DataConfig, seed: int, start: int, stop: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``start:stop`` of the synthetic data set (float64, CPU): x [n, d], y [n, 1]."""
    if not 0 <= start <= stop <= data.n_samples:
        raise DataError(f"row range {start}:{stop} outside 0:{data.n_samples}")
    xs, ys = [], []
    for block in range(start // BLOCK_ROWS, math.ceil(stop / BLOCK_ROWS)):
        x, y = _block(data, seed, block)
        lo = max(start - block * BLOCK_ROWS, 0)
        hi = min(stop - block * BLOCK_ROWS, BLOCK_ROWS)
        xs.append(x[lo:hi])
        ys.append(y[lo:hi])
    if not xs:
        return torch.empty(0, data.d, dtype=torch.float64), torch.empty(0, 1, dtype=torch.float64)
    if len(xs) == 1:  # a part of one block: a view, not a copy
        return xs[0], ys[0]
    return torch.cat(xs), torch.cat(ys)


def iter_synthetic(
    data: DataConfig, seed: int, chunk_rows: int, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield (first row, x, y) chunks of at most ``chunk_rows`` rows covering ``start:stop``."""
    stop = data.n_samples if stop is None else stop
    lo = start
    while lo < stop:
        # chunks end on multiples of chunk_rows (whole blocks), whatever row a shard starts at
        hi = min((lo // chunk_rows + 1) * chunk_rows, stop)
        x, y = synthetic_rows(data, seed, lo, hi)
        yield lo, x, y
        lo = hi


def synthetic_peaks(data: DataConfig) -> dict[str, float]:
    """Upper bounds of |x| and |y| over any number of rows, from the config alone (a normal
    draw beyond 40 σ has probability ~1e-350), so that a streamed data set is checked before
    its first pass and every process agrees without talking."""
    spec = data.x
    if isinstance(spec, ArangeX):
        peak_x = max(abs(spec.start), abs(spec.start + spec.step * (data.n_samples - 1)))
    elif isinstance(spec, UniformX):
        peak_x = max(abs(spec.low), abs(spec.high))
    else:
        peak_x = abs(spec.mean) + 40 * spec.std
    peak_signal = peak_x if data.function == "linear" else 1.0  # |sin| ≤ 1
    peak_y = sum(abs(w) for w in data.true_w) * peak_signal + abs(data.true_b) + 40 * data.noise_std
    return {"features": peak_x, "target": peak_y}


def _truth(data: DataConfig) -> torch.Tensor:
    """The true parameters [w, b]: the reference predictor the statistics are taken about
    (for a target no line generated, the constant true_b: the second pass refines it)."""
    w = data.true_w if data.function == "linear" else [0.0] * data.d
    return torch.tensor([*w, data.true_b], dtype=torch.float64)


def _synthetic_dataset(data: DataConfig, seed: int, dtype: torch.dtype, world: World) -> Dataset:
    # Fill preallocated tensors block by block so that peak memory is the data set itself plus
    # one float64 chunk, never a float64 copy of everything. The statistics are accumulated
    # from the same float64 chunks, before they are rounded to the training dtype.
    start, stop = shard(data.n_samples, world)
    n, d = stop - start, data.d
    x = torch.empty(d, n, dtype=dtype).t()  # feature-major, see Dataset
    y = torch.empty(n, 1, dtype=dtype)
    acc = st.Accumulator(_truth(data), peaks=True)  # the range check's, found on the way
    standardize = data.standardize
    held = (start, stop) == (0, data.n_samples)
    index = sample_index(data.n_samples) if d == 1 and held and world.is_main else None
    kept: list[tuple[torch.Tensor, torch.Tensor]] = []  # the sample's rows, as made
    for lo, xb, yb in iter_synthetic(data, seed, chunk_rows(data.d), start, stop):
        if not standardize:  # standardised rows are written once the statistics are known
            x[lo - start : lo - start + len(xb)] = xb
            y[lo - start : lo - start + len(yb)] = yb
        if index is not None:
            inside = index[(index >= lo) & (index < lo + len(xb))] - lo
            kept.append((xb[inside].clone(), yb[inside].clone()))
        acc.add(xb, yb, scratch=True)  # the chunk is not needed after this: centred in place
    peaks = torch.tensor(acc.peaks, dtype=torch.float64)
    check_range(named_peaks(world.all_max(peaks)), data.n_samples, dtype, LABEL)
    names = [f"x_{i}" for i in range(d)]
    dataset = Dataset(x, y, names, "y")
    truth = SyntheticSource(data, seed).truth()
    if truth is not None:
        dataset.true_w, dataset.true_b = truth
    dataset.offset, dataset.total_rows = start, data.n_samples
    stats = combined(acc.result(d), world)

    def rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # regenerated, float64
        return ((xb, yb) for _, xb, yb in iter_synthetic(data, seed, chunk_rows(data.d)))

    set_exact(dataset, st.exact_answer(stats, rows if held else None), standardize)
    if standardize:
        for lo, xb, yb in iter_synthetic(data, seed, chunk_rows(data.d), start, stop):
            x[lo - start : lo - start + len(xb)] = dataset.as_trained(xb)
            y[lo - start : lo - start + len(yb)] = dataset.target_as_trained(yb)
    if d == 1 and world.is_main:  # rank 0 alone writes the sample
        if kept:
            dataset.sample = torch.cat([r[0] for r in kept]), torch.cat([r[1] for r in kept])
        else:
            dataset.sample = _synthetic_sample(data, seed)
    return dataset


def _streamed_dataset(data: DataConfig, seed: int, dtype: torch.dtype, world: World) -> Dataset:
    check_range(synthetic_peaks(data), data.n_samples, dtype, LABEL)
    start, stop = shard(data.n_samples, world)
    names = [f"x_{i}" for i in range(data.d)]
    empty = torch.empty(0, data.d, dtype=dtype)
    dataset = Dataset(empty, empty[:, :1], names, "y")
    truth = SyntheticSource(data, seed).truth()
    if truth is not None:
        dataset.true_w, dataset.true_b = truth
    dataset.offset, dataset.total_rows = start, data.n_samples

    def rows(chunk: int, lo: int, hi: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return ((xb, yb) for _, xb, yb in iter_synthetic(data, seed, chunk, lo, hi))

    dataset.stream = StreamSpec(rows, start, stop)
    # one generation pass for the statistics of this process's rows, in float64
    chunks = iter_synthetic(data, seed, chunk_rows(data.d), start, stop)
    local = st.chunk_stats(((xb, yb) for _, xb, yb in chunks), _truth(data), data.d)
    set_exact(dataset, st.exact_answer(combined(local, world), None), data.standardize)
    if data.d == 1 and world.is_main:
        dataset.sample = _synthetic_sample(data, seed)
    return dataset


def _synthetic_sample(data: DataConfig, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Evenly spaced rows of the whole data set (whatever this process holds), as made
    (float64), for the plot; each block they fall in is generated once."""
    index = sample_index(data.n_samples)
    xs, ys = [], []
    for block in index.div(BLOCK_ROWS, rounding_mode="floor").unique().tolist():
        x, y = _block(data, seed, block)
        inside = index[index.div(BLOCK_ROWS, rounding_mode="floor") == block] - block * BLOCK_ROWS
        xs.append(x[inside])
        ys.append(y[inside])
    return torch.cat(xs), torch.cat(ys)
