"""The :class:`Dataset` training reads, and what every source shares in making one: the range
check, the exact answer (and the standardisation taken from it), the sample kept for the fit
figure, a data set from float64 rows held whole (:func:`dataset_from_rows`).

The sources themselves are :mod:`~lrtrain.data.synthetic` and :mod:`~lrtrain.data.csv_source`;
:mod:`~lrtrain.data.load` picks one for a config.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch

from lrtrain.data import stats as st
from lrtrain.data.distributed import SINGLE, World, shard
from lrtrain.data.spectrum import condition_number
from lrtrain.errors import DataError

BLOCK_ROWS = 8192  # the unit of random generation and of reading rows held whole
CHUNK_BYTES = 64 * 2**20  # float64 rows generated at a time: ≤ 16 blocks, ≤ ~64 MB (≥ 1 block)


def chunk_rows(d: int) -> int:
    """Rows generated at a time for ``d`` features: whole blocks, 16 of them (~1 MB per
    feature) for narrow data, fewer for wide data so that a chunk's float64 rows and their
    temporaries stay small beside the data set itself (one block at d ≥ 1 000)."""
    blocks = CHUNK_BYTES // (BLOCK_ROWS * 8 * (d + 1))
    return BLOCK_ROWS * max(1, min(16, blocks))


SAMPLE_ROWS = 2000  # rows of a one-feature data set kept for fit.png


@dataclass
class Validation:
    """The held-out rows' float64 statistics, in the units the model trains in — and the rows
    themselves (float64, as trained on), which a network's loss is computed from."""

    stats: st.Stats
    fraction: float
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None

    @property
    def n(self) -> int:
        return self.stats.n

    def losses(self, theta: torch.Tensor) -> list[float]:
        """The validation loss at each row of θ [R, p]."""
        return [st.sum_of_squares(self.stats, t) / self.n for t in theta.to(torch.float64)]


@dataclass(frozen=True)
class Standardization:
    """``data.standardize``: the model trains on the features (x − ``mean``)/``scale`` and on the
    target y − ``target_mean``. Centring the target as well as the features puts the optimum's
    bias at 0, so residuals of a target far from 0 (prices, years) lose no digits to its
    offset — float32 has ~7 of them: at y ≈ 1e8 the uncentred residuals were ~8 apart. The
    loss is the same function of the fit; the bias alone moves, by ``target_mean``."""

    mean: list[float]
    scale: list[float]
    target_mean: float
    condition_before: float  # κ of the Hessian on the data as given (inf: singular)

    def features(self, x64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Source features as trained on: standardised in float64, rounded to ``dtype`` once."""
        m = torch.tensor(self.mean, dtype=torch.float64)
        s = torch.tensor(self.scale, dtype=torch.float64)
        return ((x64.to(torch.float64) - m) / s).to(dtype)

    def target(self, y64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Source targets as trained on: centred in float64, rounded to ``dtype`` once."""
        return (y64.to(torch.float64) - self.target_mean).to(dtype)

    def original(self, w: list[float], b: float) -> tuple[list[float], float]:
        """Parameters learned in the trained units, in the data's own."""
        w_orig = [wi / si for wi, si in zip(w, self.scale, strict=True)]
        b_orig = b + self.target_mean - sum(wi * mi for wi, mi in zip(w_orig, self.mean,
                                                                     strict=True))  # fmt: skip
        return w_orig, b_orig


@dataclass
class Dataset:
    """Features ``x`` [N, d] and targets ``y`` [N, 1], on the CPU, in the training dtype.

    ``x`` is stored feature-major (each feature's N values contiguous, strides (1, N)): the
    training pass then streams memory both for X·w and for rᵀX, which makes a full-batch step
    on millions of rows about twice as fast as row-major storage (see benchmarks/).

    ``standardization`` is set when the data were standardised (``data.standardize``): the
    model trains on standardised features and a centred target, and
    :meth:`Standardization.original` maps its parameters back.

    ``exact`` is the least-squares answer for the data as given — statistics, θ*, loss* —
    computed in float64 from the source values before they were rounded to the training dtype,
    over every process's rows (in the units trained on: standardised when standardised).

    In a distributed run ``x``/``y`` hold only this process's rows, ``offset`` … ``offset +
    local_rows``, of ``total_rows``. With ``data.stream`` they hold nothing: ``stream`` names the
    synthetic data and :meth:`chunks` regenerates the rows on demand, a chunk at a time. Rows
    a source holds anyway (a CSV's, arrays handed over) are lent the same way where training
    reads only their statistics (:func:`dataset_from_rows`).
    """

    x: torch.Tensor
    y: torch.Tensor
    feature_names: list[str]
    target_name: str
    true_w: list[float] | None = None
    true_b: float | None = None
    standardization: Standardization | None = None
    offset: int = 0
    total_rows: int | None = None  # rows over every process (None: all are here)
    stream: StreamSpec | None = None
    # rows for the fit plot (d = 1), float64 in the data's units (not standardised)
    sample: tuple[torch.Tensor, torch.Tensor] | None = None
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
        for x, y in self.stream.rows(rows, self.stream.start, self.stream.stop):
            yield self.as_trained(x), self.target_as_trained(y)

    def answer(self) -> st.Exact:
        """:attr:`exact`: made by the loader, or — for a data set built by hand from tensors —
        now, in one read of its rows (and kept, for the analysis and the Gram steps alike)."""
        if self.exact is None:
            self.exact = st.exact_of_rows(self.pass_chunks, self.d)
        return self.exact

    def pass_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The rows for a statistics pass: held in memory, all of them as one view (the
        accumulator takes them a piece at a time where it needs float64 copies, and whole
        where its fused kernel reads them once); streamed, a chunk at a time as made."""
        return self.chunks(self.local_rows if self.stream is None else None)

    def as_trained(self, x64: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Source features (float64) as the model sees them: standardised in float64 when
        standardised, then rounded to ``dtype`` (default the training dtype) once, at the end."""
        dtype = dtype or self.dtype
        s = self.standardization
        return x64.to(dtype) if s is None else s.features(x64, dtype)

    def target_as_trained(
        self, y64: torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Source targets as the model sees them: centred when standardised (as
        :meth:`as_trained`)."""
        dtype = dtype or self.dtype
        s = self.standardization
        return y64.to(dtype) if s is None else s.target(y64, dtype)


@dataclass(frozen=True)
class StreamSpec:
    """Rows ``start:stop`` regenerated on demand (``data.stream: true``): ``rows(chunk, start,
    stop)`` yields them as float64 (x, y) chunks of at most ``chunk`` rows, as the source made
    them."""

    rows: Callable[[int, int, int], Iterator[tuple[torch.Tensor, torch.Tensor]]]
    start: int
    stop: int


SMALLEST_SQUARED = math.sqrt(torch.finfo(torch.float64).tiny)  # ≈ 1.5e-154: its square is normal


def check_range(peaks: dict[str, float], n: int, dtype: torch.dtype, source: str) -> None:
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


def combined(local: st.Stats, world: World) -> st.Stats:
    """This process's statistics combined with every other process's (exactly); one process's
    are already whole (no flattened copies of the d × d sums, which wide data feels)."""
    if not world.distributed:
        return local
    return st.combine(world.all_gather(st.flat(local)), local.theta_ref)


def set_exact(dataset: Dataset, exact: st.Exact, standardize: bool) -> None:
    """Keep the exact answer; when standardising, take the scaling from its float64 statistics
    and express the answer in the standardised units the model trains in."""
    if not standardize:
        dataset.exact = exact
        return
    raw = exact.stats
    mean = raw.x_mean
    scale = (raw.cov.diagonal().clamp_min(0.0) / raw.n).sqrt()
    flat = [i for i in range(raw.d) if scale[i] == 0]
    # a spread whose squares underflow (values below ~1.5e-154) reads as none: say so, not
    # "constant" (a column of 1e-200-sized values is not constant; its statistics are zero)
    tiny = [dataset.feature_names[i] for i in flat if 0 < abs(float(mean[i])) < SMALLEST_SQUARED]
    if tiny:
        raise DataError(
            f"data: feature(s) {', '.join(tiny)} are below {SMALLEST_SQUARED:.2g} in size: "
            "their squares underflow float64, so their spread cannot be measured; rescale "
            "the data (multiply the column by a power of ten)"
        )
    constant = [dataset.feature_names[i] for i in flat]
    if constant:
        raise DataError(
            f"data.standardize: feature(s) {', '.join(constant)} are constant and cannot be "
            "standardised; drop them from data.features"
        )
    target_mean = raw.target_mean
    dataset.standardization = Standardization(
        mean.tolist(), scale.tolist(), target_mean, condition_number(raw)
    )
    dataset.exact = st.Exact(
        st.standardized(raw, mean, scale, target_mean),
        st.standardized_theta(exact.theta_star, mean, scale, target_mean),
        exact.loss_star,
        exact.rank,
        exact.method,
        exact.from_rows,
    )


def named_peaks(peaks: torch.Tensor) -> dict[str, float]:
    return {"features": float(peaks[0]), "target": float(peaks[1])}


def sample_index(n: int) -> torch.Tensor:
    """At most SAMPLE_ROWS evenly spaced row numbers of n (first and last included)."""
    return torch.linspace(0, n - 1, min(n, SAMPLE_ROWS), dtype=torch.float64).long().unique()


def finite_peaks(
    x64: torch.Tensor, y64: torch.Tensor, features: list[str], target: str
) -> dict[str, float]:
    """The range check's peaks of rows handed over, every value checked finite on the way (NaN
    and ±inf carry through the ends one aminmax finds: one read, no mask); the first value that
    is not is one DataError naming its row and column."""
    return {
        "features": _finite_peak(x64, "X", features),
        "target": _finite_peak(y64, "y", [target]),
    }


def _finite_peak(values: torch.Tensor, what: str, names: list[str]) -> float:
    top = float(st.peak(values))
    if math.isfinite(top):
        return top
    # an end that is not finite is a value that is not: find its cell
    row, column = (int(i) for i in (~torch.isfinite(values)).nonzero()[0])
    kind = "NaN" if bool(torch.isnan(values[row, column])) else "infinite"
    raise DataError(
        f"data: {what} row {row}, column '{names[column]}' is {kind}; every value must be a "
        "finite number (drop or fill the missing rows first)"
    )


def dataset_from_rows(
    x64: torch.Tensor,
    y64: torch.Tensor,
    features: list[str],
    target: str,
    dtype: torch.dtype,
    standardize: bool,
    source: str,
    world: World = SINGLE,
    hold: bool = True,
    peaks: dict[str, float] | None = None,
) -> Dataset:
    """A data set from float64 rows every process holds whole (a CSV's, or the training rows
    of a split): the exact answer from them, each process keeping its shard as trained — or,
    ``hold`` False (training reads only the statistics), lent: the data set then makes its
    chunks from these rows on demand, as a streamed one does, and no copy is made.

    The rows are checked finite and within range (:func:`check_range`) by the statistics
    pass itself, which finds their peaks on the way — or up front, ``peaks`` given, where the
    caller has read them (:func:`finite_peaks`)."""

    def check(x_peak: float, y_peak: float) -> None:
        if not (math.isfinite(x_peak) and math.isfinite(y_peak)):
            finite_peaks(x64, y64, features, target)  # names the first cell that is not
        check_range({"features": x_peak, "target": y_peak}, len(x64), dtype, source)

    if peaks is not None:
        check_range(peaks, len(x64), dtype, source)
    empty = torch.empty(0, len(features), dtype=dtype)
    dataset = Dataset(empty, empty[:, :1], list(features), target)

    def rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter([(x64, y64)])  # one view: the accumulator reads it as it needs

    # Every process holds all the rows, so each computes the answer for all of them alone.
    exact = st.exact_of_rows(rows, len(features), check if peaks is None else None)
    set_exact(dataset, exact, standardize)
    start, stop = shard(len(x64), world)
    dataset.offset, dataset.total_rows = start, len(x64)
    if len(features) == 1 and world.is_main:
        index = sample_index(len(x64))
        dataset.sample = x64[index].to(torch.float64), y64[index].to(torch.float64)
    if not hold:
        dataset.stream = StreamSpec(partial(_slices, x64, y64), start, stop)
        return dataset
    # This process's rows as trained, written once straight into the feature-major layout —
    # never a view of the rows given (rows handed over from Python stay the caller's to
    # change); standardised a chunk at a time, so the float64 temporaries stay in cache
    x = torch.empty(len(features), stop - start, dtype=dtype).t()
    y = torch.empty(stop - start, 1, dtype=dtype)
    standardized = dataset.standardization is not None
    for lo in range(start, stop, st.CHUNK_ROWS):
        hi = min(stop, lo + st.CHUNK_ROWS)
        x_given, y_given = x64[lo:hi], y64[lo:hi]
        x[lo - start : hi - start].copy_(dataset.as_trained(x_given) if standardized else x_given)
        y[lo - start : hi - start].copy_(
            dataset.target_as_trained(y_given) if standardized else y_given
        )
    dataset.x, dataset.y = x, y
    return dataset


def _slices(
    x64: torch.Tensor, y64: torch.Tensor, chunk: int, start: int, stop: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Rows ``start:stop`` lent by their source, ``chunk`` at a time (views: read, never kept)."""
    for lo in range(start, stop, chunk):
        yield x64[lo : min(stop, lo + chunk)], y64[lo : min(stop, lo + chunk)]


def feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` [N, d] with the storage layout of :class:`Dataset` (values unchanged)."""
    return x.t().contiguous().t()
