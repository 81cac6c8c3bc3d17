"""The sufficient statistics of least squares and the exact answer they give, in float64.

The data sources accumulate them while they read or generate the rows — from the float64 values
of the source, before the rows are rounded to the training dtype — and ``theory.analysis`` builds
everything else (the Hessian spectrum, the learning-rate limits) on them. The theory imports the
data package, never the reverse (the layers ``make lint`` checks).

Two devices keep the answer exact:

- the features are accumulated about a shift (the first chunk's means), so the centred moments
  stay accurate for features like 10⁶ ± 1, where X̃ᵀX̃ − (Σx)(Σx)ᵀ/N would cancel to noise;
- the target is accumulated as the residual z = y − X̃θ_ref of a reference predictor (the true
  parameters of synthetic data; a first solve for a CSV), so the residual sum of squares at the
  optimum is a small number computed from small numbers, not the difference of two large ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property

import torch

from lrtrain.data import fused

CHUNK_ROWS = 1 << 16  # rows per chunk of a statistics pass
LSTSQ_MAX_BYTES = 256 * 2**20  # above this, the optimum comes from the sufficient statistics
NORMAL_EQUATIONS_MAX_COND = 1e6  # above this κ of the centred covariance, SVD of the data
# Rows whose own answer is the reference of a one-pass answer: its residuals are then within
# a fraction ~d/REFERENCE_ROWS of the optimum's for rows in no particular order
REFERENCE_ROWS = 4096
# Above this ratio of the reference's centred residual sum of squares to the optimum's, the
# answer of one pass may have lost digits to cancellation, and a second pass is made about it
REFINE_ABOVE = 2.0

Chunks = Iterable[tuple[torch.Tensor, torch.Tensor]]
F64 = torch.float64


@dataclass
class Stats:
    """Sufficient statistics of least squares with a bias column X̃ = [X 1], in float64.

    ``cxy``, ``cyy`` and ``y_mean`` are those of z = y − X̃ θ_ref (``theta_ref`` zero: of y
    itself); ``xty`` and ``yty`` are always those of y.
    """

    n: int
    xtx: torch.Tensor  # X̃ᵀX̃, [d+1, d+1]
    xty: torch.Tensor  # X̃ᵀy, [d+1]
    yty: float
    cov: torch.Tensor  # Σ (x − x̄)(x − x̄)ᵀ, [d, d]
    cxy: torch.Tensor  # Σ (x − x̄)(z − z̄), [d]
    x_mean: torch.Tensor  # [d]
    y_mean: float  # z̄
    cyy: float  # Σ (z − z̄)²
    theta_ref: torch.Tensor  # [d+1]

    @property
    def d(self) -> int:
        return int(self.cov.shape[0])

    @property
    def target_mean(self) -> float:
        """ȳ, from z̄ = ȳ − x̄ᵀw_ref − b_ref."""
        d = self.d
        return self.y_mean + float(self.x_mean @ self.theta_ref[:d]) + float(self.theta_ref[d])

    @cached_property
    def cov_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(eigenvalues ascending, eigenvectors) of ``cov``: computed once, shared by the
        optimum, the conditioning checks and the Hessian's spectrum — for wide data a d × d
        decomposition is the costliest step of the analysis."""
        values, vectors = torch.linalg.eigh(self.cov)
        return values, vectors

    def known_cov_eigen(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """:attr:`cov_eigen` where it has been computed already, else None (for a caller that
        can use it but should not pay for it)."""
        return self.__dict__.get("cov_eigen")


def peak(values: torch.Tensor) -> torch.Tensor:
    """The largest |value|, without an |values| copy of the rows (one read for both ends; NaN
    and ±inf carry through them)."""
    if not values.numel():
        return torch.zeros((), dtype=values.dtype)
    low, high = torch.aminmax(values)
    return torch.maximum(high.abs(), low.abs())


def chunk_stats(chunks: Chunks, theta_ref: torch.Tensor | None = None, d: int = 0) -> Stats:
    """Statistics of rows given as (x [c, d], y [c, 1]) chunks, any dtype (read as float64).
    ``d`` is needed only when there may be no rows at all."""
    acc = Accumulator(theta_ref)
    for x, y in chunks:
        acc.add(x, y)
    return acc.result(d)


class Accumulator:
    """Statistics built up chunk by chunk, for callers that do something else with each chunk
    (the data loader fills the training copy from the same float64 rows)."""

    def __init__(self, theta_ref: torch.Tensor | None = None, peaks: bool = False) -> None:
        """``peaks``: keep the largest |x| and |y| too (:attr:`peaks`) — free in the fused
        kernel, one aminmax of the rows through tensors, which a pass whose caller has its
        own (a streamed source's, a second pass) should not pay."""
        self.theta_ref = theta_ref
        self.track_peaks = peaks
        self.n, self.sy, self.syy = 0, 0.0, 0.0
        self.x_shift: torch.Tensor | None = None
        self.y_shift = self.y_center = 0.0
        self.sxx = self.sx = self.sxy = torch.empty(0, dtype=F64)
        # the largest |x| and |y| read (NaN-propagating maxima: inf or NaN where a value is)
        self.x_peak = self.y_peak = torch.zeros((), dtype=F64)

    @property
    def peaks(self) -> tuple[float, float]:
        """(max |x|, max |y|) over the rows added: not finite where a value is not."""
        return float(self.x_peak), float(self.y_peak)

    def _seen(self, x_peak: torch.Tensor, y_peak: torch.Tensor) -> None:
        self.x_peak = torch.maximum(self.x_peak, x_peak.to(F64))
        self.y_peak = torch.maximum(self.y_peak, y_peak.to(F64))

    def add(self, x: torch.Tensor, y: torch.Tensor, scratch: bool = False) -> None:
        """Add the rows (x [c, d], y [c, 1]), any number of them; ``scratch``: x is the
        caller's to discard, and may be centred in place (no copy of a wide chunk)."""
        if not y.numel():
            return
        if self.x_shift is None:
            first = slice(0, CHUNK_ROWS)
            self._start(x[first].to(device="cpu", dtype=F64), y[first].to("cpu", F64).reshape(-1))
        assert self.theta_ref is not None and self.x_shift is not None
        d = x.shape[1]
        if fused.wanted(x, self.n * (d + 1)):
            # one read of the rows, as they are (no float64 copy): narrow data
            gram, sums, peaks = fused.moments(x, y, self.x_shift, self.y_center, self.theta_ref[:d])
            if self.track_peaks:
                self._seen(peaks[:d].max(), peaks[d])
            self.sxx += gram[:d, :d]
            self.sxy += gram[:d, d]
            self.syy += float(gram[d, d])
            self.sx += sums[:d]
            self.sy += float(sums[d])
            self.n += x.shape[0]
            return
        if self.track_peaks:
            # over all the rows at once, in their storage order (aminmax reads a strided chunk
            # at ~7 GB/s, slower than memory: 0.56 ms per 4 MB against ~10 ms for 128 MB)
            self._seen(peak(x.t() if x.t().is_contiguous() else x), peak(y))
        for lo in range(0, x.shape[0], CHUNK_ROWS):  # float64 temporaries a chunk at a time
            self._add_chunk(x[lo : lo + CHUNK_ROWS], y[lo : lo + CHUNK_ROWS], scratch)

    def _add_chunk(self, x: torch.Tensor, y: torch.Tensor, scratch: bool) -> None:
        assert self.theta_ref is not None and self.x_shift is not None
        d = x.shape[1]
        x64 = x.to(device="cpu", dtype=F64)
        y64 = y.to(device="cpu", dtype=F64).reshape(-1)
        own = scratch or x64.data_ptr() != x.data_ptr()  # a float64 copy made here is ours
        xc = x64.sub_(self.x_shift) if own else x64 - self.x_shift
        zc = y64 - self.y_center  # a new vector: (y − y_center) − (x − x_shift)·w_ref below
        if bool(self.theta_ref[:d].any()):
            # from the centred rows just written, still in cache: the rows themselves are read
            # from memory once, as without a reference
            zc.addmv_(xc, self.theta_ref[:d], alpha=-1.0)
        self.sxx += xc.T @ xc
        self.sx += xc.sum(0)
        self.sxy += xc.T @ zc
        self.sy += float(zc.sum())
        self.syy += float(zc @ zc)
        self.n += x64.shape[0]

    def _start(self, x64: torch.Tensor, y64: torch.Tensor) -> None:
        """The shifts that keep the sums accurate: the first rows' means (up to a chunk's)."""
        d = x64.shape[1]
        if self.theta_ref is None:
            self.theta_ref = torch.zeros(d + 1, dtype=F64)
        self.x_shift, self.y_center = x64.mean(0), float(y64.mean())
        self.sxx = torch.zeros(d, d, dtype=F64)
        self.sx, self.sxy = torch.zeros(d, dtype=F64), torch.zeros(d, dtype=F64)
        # z = y − X̃θ_ref is accumulated about its first chunk's mean, which is the mean of y
        # less the reference's prediction at x_shift (the centred x average 0 there)
        reference_at_shift = float(self.x_shift @ self.theta_ref[:d] + self.theta_ref[d])
        self.y_shift = self.y_center - reference_at_shift

    def result(self, d: int = 0) -> Stats:
        ref = self.theta_ref if self.theta_ref is not None else torch.zeros(d + 1, dtype=F64)
        if self.x_shift is None:  # no rows at all
            zero = torch.zeros(len(ref) - 1, dtype=F64)
            return from_moments(0, torch.outer(zero, zero), zero, 0.0, zero, 0.0, ref)
        n = self.n
        dx, dy = self.sx / n, self.sy / n  # means of the shifted data
        cov = self.sxx - n * torch.outer(dx, dx)
        cxy = self.sxy - n * dx * dy
        return from_moments(
            n, cov, cxy, self.syy - n * dy * dy, self.x_shift + dx, self.y_shift + dy, ref
        )


def from_moments(
    n: int,
    cov: torch.Tensor,
    cxy: torch.Tensor,
    cyy: float,
    x_mean: torch.Tensor,
    y_mean: float,
    theta_ref: torch.Tensor,
) -> Stats:
    """Stats from the centred moments, with the uncentred ones the Hessian is built from."""
    d = cov.shape[0]
    xtx = torch.empty(d + 1, d + 1, dtype=F64)
    xtx[:d, :d] = cov + n * torch.outer(x_mean, x_mean)
    xtx[:d, d] = xtx[d, :d] = n * x_mean
    xtx[d, d] = n
    xtz = torch.cat([cxy + n * x_mean * y_mean, torch.tensor([n * y_mean], dtype=F64)])
    ztz = cyy + n * y_mean * y_mean
    # y = z + X̃θ_ref
    xty = xtz + xtx @ theta_ref
    yty = ztz + 2 * float(theta_ref @ xtz) + float(theta_ref @ xtx @ theta_ref)
    return Stats(int(n), xtx, xty, yty, cov, cxy, x_mean, y_mean, cyy, theta_ref)


def flat(stats: Stats) -> torch.Tensor:
    """[n, z̄, czz, x̄, C, cxz] as one float64 vector, to gather across processes."""
    scalars = torch.tensor([stats.n, stats.y_mean, stats.cyy], dtype=F64)
    return torch.cat([scalars, stats.x_mean, stats.cov.reshape(-1), stats.cxy])


def combine(parts: list[torch.Tensor], theta_ref: torch.Tensor) -> Stats:
    """The statistics of the union of disjoint row sets, from each set's (:func:`flat`, all
    about the same ``theta_ref``), by the pairwise-update formulas of Chan, Golub & LeVeque:
    centred sums are added with a correction for the difference of means, so no precision is
    lost to large offsets. Sets without rows are left out."""
    stacked = torch.stack(parts)
    stacked = stacked[stacked[:, 0] > 0]
    d = math.isqrt(stacked.shape[1] - 2) - 1  # the length is d² + 2d + 3
    n_i, y_i, cyy_i = stacked[:, 0], stacked[:, 1], stacked[:, 2]
    x_i = stacked[:, 3 : 3 + d]
    cov_i = stacked[:, 3 + d : 3 + d + d * d].reshape(-1, d, d)
    cxy_i = stacked[:, 3 + d + d * d :]
    if len(stacked) == 1:
        return from_moments(
            int(n_i[0]), cov_i[0], cxy_i[0], float(cyy_i[0]), x_i[0], float(y_i[0]), theta_ref
        )
    n = n_i.sum()
    x_mean = (n_i[:, None] * x_i).sum(0) / n
    y_mean = (n_i * y_i).sum() / n
    dx, dy = x_i - x_mean, y_i - y_mean
    cov = cov_i.sum(0) + torch.einsum("k,ki,kj->ij", n_i, dx, dx)
    cxy = cxy_i.sum(0) + (n_i[:, None] * dx * dy[:, None]).sum(0)
    cyy = float(cyy_i.sum() + (n_i * dy * dy).sum())
    return from_moments(int(n), cov, cxy, cyy, x_mean, float(y_mean), theta_ref)


def sum_of_squares(stats: Stats, theta: torch.Tensor) -> float:
    """Σ (y − X̃θ)² over the rows, from the statistics alone. With δ = θ − θ_ref the residual
    is (z − z̄) − (x − x̄)ᵀδ_w + (z̄ − x̄ᵀδ_w − δ_b), so
    Σ r² = czz − 2δ_wᵀcxz + δ_wᵀCδ_w + N(z̄ − x̄ᵀδ_w − δ_b)² — small terms when θ_ref is near."""
    d = stats.d
    delta = theta.to(F64) - stats.theta_ref
    dw, db = delta[:d], float(delta[d])
    centred = stats.cyy - 2 * float(dw @ stats.cxy) + float(dw @ stats.cov @ dw)
    offset = stats.y_mean - float(stats.x_mean @ dw) - db
    return max(centred, 0.0) + stats.n * offset * offset


def standardized(
    stats: Stats, mean: torch.Tensor, scale: torch.Tensor, target_mean: float
) -> Stats:
    """The statistics of the features (x − mean)/scale and the target y − target_mean, from
    those of x and y (exactly: an affine map of the moments). The reference predictor is
    mapped with them, so z is unchanged."""
    ref = standardized_theta(stats.theta_ref, mean, scale, target_mean)
    cov = stats.cov / torch.outer(scale, scale)
    x_mean = (stats.x_mean - mean) / scale
    return from_moments(stats.n, cov, stats.cxy / scale, stats.cyy, x_mean, stats.y_mean, ref)


def standardized_theta(
    theta: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, target_mean: float
) -> torch.Tensor:
    """Parameters of the original features and target as parameters of (x − mean)/scale and
    y − target_mean: the same predictions, less target_mean."""
    d = len(mean)
    w, b = theta[:d], theta[d]
    return torch.cat([w * scale, (b + mean @ w - target_mean).reshape(1)])


@dataclass
class Exact:
    """The least-squares answer for the data as given (float64, whatever dtype trains):
    statistics, optimum θ* = [w, b], its loss, its numerical rank and how it was computed."""

    stats: Stats
    theta_star: torch.Tensor
    loss_star: float
    rank: int
    method: str
    from_rows: bool = False  # θ* from an SVD of the rows (ill-conditioned), not the statistics


def exact_of_rows(
    rows: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    d: int,
    check: Callable[[float, float], None] | None = None,
) -> Exact:
    """The answer for rows held in memory, in one pass when that is as exact as two: the pass
    accumulates the residuals of a reference predictor fitted to the first ``REFERENCE_ROWS``
    rows alone, which leaves them about as small as the optimum's (Σ z² within a fraction
    ~d/REFERENCE_ROWS of the residual sum of squares), so the answer comes from small
    numbers. A second pass about the first answer (:func:`refined`) only where that reference
    was poor — the residuals it left more than ``REFINE_ABOVE`` times the optimum's (sorted
    rows whose first rows say little about the rest) — or where θ* came from an SVD of the
    rows. For fewer rows than ``REFERENCE_ROWS`` this is the two passes of old: the rows'
    answer, then a pass about it.

    ``check(max |x|, max |y|)``, called once the first pass has read the rows (not finite
    where a value is not) and before anything is solved, may refuse them: the caller's range
    and finiteness checks, without a read of their own."""
    first_chunk = next(iter(rows()), None)
    reference = None
    if first_chunk is not None:  # the first rows' own least-squares answer: a small read
        x, y = first_chunk[0][:REFERENCE_ROWS], first_chunk[1][:REFERENCE_ROWS]
        if bool(torch.isfinite(x).all() and torch.isfinite(y).all()):  # else the check says
            reference = _reference(x, y)
    acc = Accumulator(reference, peaks=check is not None)
    for x, y in rows():
        acc.add(x, y)
    if check is not None:
        check(*acc.peaks)
    first = exact_answer(acc.result(d), rows)
    residual = first.loss_star * first.stats.n
    if first.from_rows or not first.stats.cyy <= REFINE_ABOVE * residual:
        return refined(lambda theta: chunk_stats(rows(), theta, d), first)
    return first


def exact_answer(
    stats: Stats, rows: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None
) -> Exact:
    """θ* and loss* from the statistics (the centred normal equations, exact to about
    κ(C)·1e-16 relative of θ* − θ_ref), or — for ill-conditioned problems, when ``rows`` can
    give every row in float64 and they fit in memory — by SVD least squares on the rows."""
    dim = stats.d + 1
    cov_eig = stats.cov_eigen[0]
    well_posed = float(cov_eig[0]) > float(cov_eig[-1]) / NORMAL_EQUATIONS_MAX_COND
    fits = rows is not None and stats.n * dim * 8 <= LSTSQ_MAX_BYTES
    svd = fits and not well_posed
    if not svd:
        theta, rank, method = _normal_equations_optimum(stats)
    else:
        assert rows is not None
        x, y = (torch.cat(parts) for parts in zip(*rows(), strict=True))
        theta, rank, method = _lstsq_optimum(x, y)
    return Exact(stats, theta, sum_of_squares(stats, theta) / stats.n, rank, method, svd)


def _normal_equations_optimum(stats: Stats) -> tuple[torch.Tensor, int, str]:
    """θ* from the centred normal equations, about the statistics' reference."""
    dw, rank = _min_norm_solution(stats.cov_eigen, stats.cxy)
    db = stats.y_mean - stats.x_mean @ dw
    method = "normal equations (centred sufficient statistics)"
    if rank < stats.d:  # the bias column is always kept
        method = "pseudo-inverse of the normal equations (singular problem)"
    return stats.theta_ref + torch.cat([dw, db.reshape(1)]), rank + 1, method


def _min_norm_solution(
    eigen: tuple[torch.Tensor, torch.Tensor], cxy: torch.Tensor
) -> tuple[torch.Tensor, int]:
    """The minimum-norm solution of C w = cxy and the rank kept, from C's eigen-decomposition
    (what an SVD least-squares solver returns: C is symmetric positive semi-definite, so its
    singular values are its eigenvalues), dropping eigenvalues below ε·(d+1)·λ_max as gelsd
    does."""
    values, vectors = eigen
    keep = values > max(float(values[-1]), 0.0) * (len(values) + 1) * torch.finfo(F64).eps
    coefficients = vectors[:, keep].T @ cxy
    return vectors[:, keep] @ (coefficients / values[keep]), int(keep.sum())


def _reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The least-squares answer of a few rows (x [h, d], y [h, 1]), centred as the pass
    centres: the reference of a one-pass answer. Computed directly, without the statistics'
    bookkeeping (~0.25 against ~1 ms for the 4 096 rows of a fit's analysis): its accuracy
    only decides how small the pass's residuals are, and a poor one gets a second pass."""
    x64, y64 = x.to(device="cpu", dtype=F64), y.to(device="cpu", dtype=F64).reshape(-1)
    x_mean, y_mean = x64.mean(0), y64.mean()
    centred = x64 - x_mean
    w, _ = _min_norm_solution(torch.linalg.eigh(centred.T @ centred), centred.T @ (y64 - y_mean))
    return torch.cat([w, (y_mean - x_mean @ w).reshape(1)])


def _lstsq_optimum(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int, str]:
    # Centring the features first removes the bias column's collinearity with large offsets
    # (x ≈ 1e4 ± 1 would otherwise square a huge condition number), and SVD-based gelsd copes
    # with rank deficiency, returning the minimum-norm (pseudo-inverse) solution.
    x64 = x.to(device="cpu", dtype=F64)
    y64 = y.to(device="cpu", dtype=F64).reshape(-1, 1)
    x_mean, y_mean = x64.mean(0), y64.mean()
    centred = x64 - x_mean
    result = torch.linalg.lstsq(centred, y64 - y_mean, driver="gelsd")
    rank = int(result.rank)
    if rank < x64.shape[1]:
        full = torch.cat([x64, torch.ones(x64.shape[0], 1, dtype=F64)], dim=1)
        pinv = torch.linalg.lstsq(full, y64, driver="gelsd")
        return pinv.solution.reshape(-1), int(pinv.rank), "pseudo-inverse (singular problem)"
    w = result.solution.reshape(-1)
    b = y_mean - x_mean @ w
    return torch.cat([w, b.reshape(1)]), rank + 1, "least squares (SVD, centred features)"


def refined(stats_about: Callable[[torch.Tensor], Stats], first: Exact) -> Exact:
    """A second pass about a first answer's θ*: the residual sum of squares (and, through the
    normal equations, θ*) then come from small numbers. For data that can be read twice
    cheaply (a CSV held in memory while it is loaded)."""
    again = stats_about(first.theta_star)
    if first.from_rows:  # the SVD's θ* is the better one; only its loss is recomputed about it
        loss = sum_of_squares(again, first.theta_star) / again.n
        return replace(first, stats=again, loss_star=loss)
    return exact_answer(again, None)
