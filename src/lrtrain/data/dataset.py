"""Data: synthetic rows generated in counter-seeded blocks, or a CSV file.

Synthetic rows come in fixed blocks of ``BLOCK_ROWS`` rows; block k is drawn from its own CPU
generator seeded from (seed, k). Any row range can therefore be produced on its own, and the data
set is the same whatever chunk size a caller asks for, whichever shard a process holds and whatever
device it trains on (rows are drawn on the CPU and moved afterwards).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from lrtrain.config.schema import ArangeX, Config, DataConfig, NormalX, UniformX
from lrtrain.data import stats as st
from lrtrain.data.devices import torch_dtype
from lrtrain.data.distributed import SINGLE, World, shard
from lrtrain.data.table import read_rows
from lrtrain.errors import DataError

if TYPE_CHECKING:
    from lrtrain.data.validation import Validation

BLOCK_ROWS = 8192  # the unit of random generation; changing it changes every data set
CHUNK_BYTES = 64 * 2**20  # float64 rows generated at a time: ≤ 16 blocks, ≤ ~64 MB (≥ 1 block)


def chunk_rows(d: int) -> int:
    """Rows generated at a time for ``d`` features: whole blocks, 16 of them (~1 MB per
    feature) for narrow data, fewer for wide data so that a chunk's float64 rows and their
    temporaries stay small beside the data set itself (one block at d ≥ 1 000)."""
    blocks = CHUNK_BYTES // (BLOCK_ROWS * 8 * (d + 1))
    return BLOCK_ROWS * max(1, min(16, blocks))


SAMPLE_ROWS = 2000  # rows of a one-feature data set kept for fit.png
_MASK64 = (1 << 64) - 1


@dataclass
class Dataset:
    """Features ``x`` [N, d] and targets ``y`` [N, 1], on the CPU, in the training dtype.

    ``x`` is stored feature-major (each feature's N values contiguous, strides (1, N)): the
    training pass then streams memory both for X·w and for rᵀX, which makes a full-batch step
    on millions of rows about twice as fast as row-major storage (see benchmarks/).

    ``x_mean``/``x_scale`` are set when the features were standardised: the model trains on
    (x − mean)/scale and :func:`to_original_units` maps its parameters back.

    ``exact`` is the least-squares answer for the data as given — statistics, θ*, loss* —
    computed in float64 from the source values before they were rounded to the training dtype,
    over every process's rows (in the units trained on: standardised when standardised).

    In a distributed run ``x``/``y`` hold only this process's rows, ``offset`` … ``offset +
    local_rows``, of ``total_rows``. With ``data.stream`` they hold nothing: ``stream`` names the
    synthetic data and :meth:`chunks` regenerates the rows on demand, a chunk at a time.
    """

    x: torch.Tensor
    y: torch.Tensor
    feature_names: list[str]
    target_name: str
    true_w: list[float] | None = None
    true_b: float | None = None
    x_mean: list[float] | None = None
    x_scale: list[float] | None = None
    raw_condition_number: float | None = None  # κ before standardising (when standardised)
    offset: int = 0
    total_rows: int | None = None  # rows over every process (None: all are here)
    stream: StreamSpec | None = None
    sample: tuple[torch.Tensor, torch.Tensor] | None = None  # rows for the fit plot (d = 1)
    exact: st.Exact | None = None
    validation: Validation | None = None  # data.validation_fraction: the held-out rows

    @property
    def n(self) -> int:
        """Rows of the whole data set (over every process)."""
        return self.total_rows if self.total_rows is not None else self.local_rows

    @property
    def local_rows(self) -> int:
        """Rows this process trains on."""
        return self.stream.stop - self.stream.start if self.stream else int(self.x.shape[0])

    @property
    def d(self) -> int:
        return int(self.x.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.x.dtype

    def chunks(self, rows: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's rows as (x [c, d], y [c, 1]) chunks on the CPU, in the training
        dtype and standardised as trained on: slices when in memory, regenerated when
        streaming (``rows`` at a time; default :func:`chunk_rows`)."""
        rows = rows or chunk_rows(self.d)
        if self.stream is None:
            for lo in range(0, self.local_rows, rows):
                yield self.x[lo : lo + rows], self.y[lo : lo + rows]
            return
        for _, x, y in iter_synthetic(
            self.stream.data, self.stream.seed, rows, self.stream.start, self.stream.stop
        ):
            yield self._as_trained(x), y.to(self.dtype)

    def answer(self) -> st.Exact:
        """:attr:`exact`: made by the loader, or — for a data set built by hand from tensors —
        now, in one read of its rows (and kept, for the analysis and the Gram steps alike)."""
        if self.exact is None:
            self.exact = st.exact_of_rows(lambda: self.chunks(st.CHUNK_ROWS), self.d)
        return self.exact

    def _as_trained(self, x64: torch.Tensor) -> torch.Tensor:
        """Source features (float64) as the model sees them: standardised in float64 when
        standardised, then rounded to the training dtype (once, at the end)."""
        return _trained_form(x64, self.dtype, self.x_mean, self.x_scale)


def _trained_form(
    x64: torch.Tensor, dtype: torch.dtype, mean: list[float] | None, scale: list[float] | None
) -> torch.Tensor:
    if mean is None or scale is None:
        return x64.to(dtype)
    m, s = torch.tensor(mean, dtype=torch.float64), torch.tensor(scale, dtype=torch.float64)
    return ((x64.to(torch.float64) - m) / s).to(dtype)


@dataclass(frozen=True)
class StreamSpec:
    """Synthetic rows ``start:stop`` regenerated on demand (``data.stream: true``)."""

    data: DataConfig
    seed: int
    start: int
    stop: int


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
    y = x @ w + data.true_b + data.noise_std * noise
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


def row_count(data: DataConfig) -> int:
    """Rows of the data set (a CSV is read to count them)."""
    if data.source == "synthetic":
        return data.n_samples
    path = Path(data.path or "")
    return len(read_rows(path, f"data.path: CSV file '{path}' not found")[1])


def load_dataset(config: Config, world: World = SINGLE) -> Dataset:
    """The config's data set on the CPU in ``train.dtype`` (standardised if asked): this
    process's shard of it in a distributed run, a handle to regenerate it when streaming —
    with the exact answer for the data computed in float64 on the way (``Dataset.exact``)."""
    dtype = torch_dtype(config.train.dtype)
    data = config.data
    if data.validation_fraction > 0:
        from lrtrain.data.validation import load_with_validation

        return load_with_validation(config, world)
    if data.source == "csv":
        from lrtrain.data.csv_source import read_csv

        return read_csv(data, dtype, world)
    if data.stream:
        return _streamed_dataset(data, config.seed, dtype, world)
    return _synthetic_dataset(data, config.seed, dtype, world)


def _check_range(peaks: dict[str, float], n: int, dtype: torch.dtype, source: str) -> None:
    """Refuse values whose squares, summed over the rows, overflow the training dtype (float32
    for the loss) or float64 (the closed form): the numbers would be inf, not an answer.
    ``peaks`` maps "features"/"target" to the largest absolute value, read in float64."""
    checks = [("float64", math.sqrt(torch.finfo(torch.float64).max / max(n, 1)) / 10)]
    if dtype == torch.float32:
        checks.append(("float32", math.sqrt(torch.finfo(torch.float32).max / max(n, 1)) / 10))
    for name, peak in peaks.items():
        for kind, limit in checks:
            if not peak <= limit:
                fix = (
                    "set train.dtype: float64, or rescale the data"
                    if kind == "float32"
                    else "rescale the data (divide the column by a power of ten)"
                )
                raise DataError(
                    f"{source}: the {name} reach {peak:.3g}; their squares summed over {n:,} rows "
                    f"overflow {kind} (limit ≈ {limit:.2g}): {fix}"
                )


_SYNTHETIC_SOURCE = "the synthetic data (data.x, data.true_w, data.noise_std)"


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
    peak_y = sum(abs(w) for w in data.true_w) * peak_x + abs(data.true_b) + 40 * data.noise_std
    return {"features": peak_x, "target": peak_y}


def _truth(data: DataConfig) -> torch.Tensor:
    """The true parameters [w, b]: the reference predictor the statistics are taken about."""
    return torch.tensor([*data.true_w, data.true_b], dtype=torch.float64)


def _synthetic_dataset(data: DataConfig, seed: int, dtype: torch.dtype, world: World) -> Dataset:
    # Fill preallocated tensors block by block so that peak memory is the data set itself plus
    # one float64 chunk, never a float64 copy of everything. The statistics are accumulated
    # from the same float64 chunks, before they are rounded to the training dtype.
    start, stop = shard(data.n_samples, world)
    n, d = stop - start, data.d
    x = torch.empty(d, n, dtype=dtype).t()  # feature-major, see Dataset
    y = torch.empty(n, 1, dtype=dtype)
    peaks = torch.zeros(2, dtype=torch.float64)
    acc = st.Accumulator(_truth(data))
    standardize = data.standardize
    for lo, xb, yb in iter_synthetic(data, seed, chunk_rows(data.d), start, stop):
        largest = [torch.maximum(t.max().abs(), t.min().abs()) for t in (xb, yb)]  # no copy
        torch.maximum(peaks, torch.stack(largest), out=peaks)
        if not standardize:  # standardised rows are written once the statistics are known
            x[lo - start : lo - start + len(xb)] = xb
        y[lo - start : lo - start + len(yb)] = yb
        acc.add(xb, yb, scratch=True)  # the chunk is not needed after this: centred in place
    _check_range(_named(world.all_max(peaks)), data.n_samples, dtype, _SYNTHETIC_SOURCE)
    names = [f"x_{i}" for i in range(d)]
    dataset = Dataset(x, y, names, "y", true_w=list(data.true_w), true_b=data.true_b)
    dataset.offset, dataset.total_rows = start, data.n_samples
    stats = _combined(acc.result(d), world)
    held = (start, stop) == (0, data.n_samples)

    def rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # regenerated, float64
        return ((xb, yb) for _, xb, yb in iter_synthetic(data, seed, chunk_rows(data.d)))

    _set_exact(dataset, st.exact_answer(stats, rows if held else None), standardize)
    if standardize:
        for lo, xb, _ in iter_synthetic(data, seed, chunk_rows(data.d), start, stop):
            x[lo - start : lo - start + len(xb)] = dataset._as_trained(xb)
    if d == 1 and world.is_main:  # rank 0 alone writes the sample
        if held:
            index = _sample_index(data.n_samples)
            dataset.sample = x[index], y[index]
        else:
            dataset.sample = _synthetic_sample(dataset, data, seed)
    return dataset


def _combined(local: st.Stats, world: World) -> st.Stats:
    """This process's statistics combined with every other process's (exactly); one process's
    are already whole (no flattened copies of the d × d sums, which wide data feels)."""
    if not world.distributed:
        return local
    return st.combine(world.all_gather(st.flat(local)), local.theta_ref)


def _set_exact(dataset: Dataset, exact: st.Exact, standardize: bool) -> None:
    """Keep the exact answer; when standardising, take the scaling from its float64 statistics
    and express the answer in the standardised units the model trains in."""
    if not standardize:
        dataset.exact = exact
        return
    raw = exact.stats
    mean = raw.x_mean
    scale = (raw.cov.diagonal().clamp_min(0.0) / raw.n).sqrt()
    constant = [dataset.feature_names[i] for i in range(raw.d) if scale[i] == 0]
    if constant:
        raise DataError(
            f"data.standardize: feature(s) {', '.join(constant)} are constant and cannot be "
            "standardised; drop them from data.features"
        )
    dataset.raw_condition_number = st.condition_number(raw)
    dataset.x_mean, dataset.x_scale = mean.tolist(), scale.tolist()
    dataset.exact = st.Exact(
        st.standardized(raw, mean, scale),
        st.standardized_theta(exact.theta_star, mean, scale),
        exact.loss_star,
        exact.rank,
        exact.method,
        exact.from_rows,
    )


def _streamed_dataset(data: DataConfig, seed: int, dtype: torch.dtype, world: World) -> Dataset:
    _check_range(synthetic_peaks(data), data.n_samples, dtype, _SYNTHETIC_SOURCE)
    start, stop = shard(data.n_samples, world)
    names = [f"x_{i}" for i in range(data.d)]
    empty = torch.empty(0, data.d, dtype=dtype)
    dataset = Dataset(empty, empty[:, :1], names, "y", true_w=list(data.true_w))
    dataset.true_b, dataset.offset, dataset.total_rows = data.true_b, start, data.n_samples
    dataset.stream = StreamSpec(data, seed, start, stop)
    # one generation pass for the statistics of this process's rows, in float64
    chunks = iter_synthetic(data, seed, chunk_rows(data.d), start, stop)
    local = st.chunk_stats(((xb, yb) for _, xb, yb in chunks), _truth(data), data.d)
    _set_exact(dataset, st.exact_answer(_combined(local, world), None), data.standardize)
    if data.d == 1 and world.is_main:
        dataset.sample = _synthetic_sample(dataset, data, seed)
    return dataset


def _named(peaks: torch.Tensor) -> dict[str, float]:
    return {"features": float(peaks[0]), "target": float(peaks[1])}


def _sample_index(n: int) -> torch.Tensor:
    """At most SAMPLE_ROWS evenly spaced row numbers of n (first and last included)."""
    return torch.linspace(0, n - 1, min(n, SAMPLE_ROWS), dtype=torch.float64).long().unique()


def _synthetic_sample(
    dataset: Dataset, data: DataConfig, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evenly spaced rows of the whole data set (whatever this process holds), as trained,
    for the plot; each block they fall in is generated once."""
    index = _sample_index(data.n_samples)
    xs, ys = [], []
    for block in index.div(BLOCK_ROWS, rounding_mode="floor").unique().tolist():
        x, y = _block(data, seed, block)
        inside = index[index.div(BLOCK_ROWS, rounding_mode="floor") == block] - block * BLOCK_ROWS
        xs.append(x[inside])
        ys.append(y[inside])
    return dataset._as_trained(torch.cat(xs)), torch.cat(ys).to(dataset.dtype)


def dataset_from_rows(
    x64: torch.Tensor,
    y64: torch.Tensor,
    features: list[str],
    target: str,
    dtype: torch.dtype,
    standardize: bool,
    source: str,
    world: World = SINGLE,
) -> Dataset:
    """A data set from float64 rows every process holds whole (a CSV's, or the training rows
    of a split): the exact answer from them, each process keeping its shard as trained."""
    peaks = {"features": float(x64.abs().max()), "target": float(y64.abs().max())}
    _check_range(peaks, len(x64), dtype, source)
    empty = torch.empty(0, len(features), dtype=dtype)
    dataset = Dataset(empty, empty[:, :1], list(features), target)

    def rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return ((x64[lo : lo + BLOCK_ROWS], y64[lo : lo + BLOCK_ROWS])
                for lo in range(0, len(x64), BLOCK_ROWS))  # fmt: skip

    # Every process holds all the rows, so each computes the answer for all of them alone.
    _set_exact(dataset, st.exact_of_rows(rows, len(features)), standardize)
    start, stop = shard(len(x64), world)
    x = dataset._as_trained(x64[start:stop])
    dataset.x, dataset.y = feature_major(x), y64[start:stop].to(dtype).contiguous()
    dataset.offset, dataset.total_rows = start, len(x64)
    if len(features) == 1 and world.is_main:
        index = _sample_index(len(x64))
        dataset.sample = dataset._as_trained(x64[index]), y64[index].to(dtype)
    return dataset


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` [N, d] with the storage layout of :class:`Dataset` (values unchanged)."""
    return x.t().contiguous().t()


def to_original_units(
    w: list[float], b: float, x_mean: list[float], x_scale: list[float]
) -> tuple[list[float], float]:
    """Map parameters learned on standardised features back to the original units."""
    w_orig = [wi / si for wi, si in zip(w, x_scale, strict=True)]
    b_orig = b - sum(wi * mi for wi, mi in zip(w_orig, x_mean, strict=True))
    return w_orig, b_orig


def write_synthetic_csv(data: DataConfig, seed: int, path: Path, overwrite: bool = False) -> int:
    """Write the synthetic data set a config generates as CSV (x_0 … x_{d-1}, y), block by
    block (memory bounded by one chunk), atomically (lrtrain.runs.atomic)."""
    from lrtrain.runs.atomic import atomic_file

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
