"""The statistics pass in one read of the rows: a fused kernel (numba) for narrow data.

A chunk's float64 moments about the shift — Σ x̃x̃ᵀ, Σ x̃z, Σ z², Σ x̃, Σ z for x̃ = x − shift and
z = (y − y_center) − x̃·w_ref — are what :class:`~lrtrain.data.stats.Accumulator` adds up. Done
with tensor operations that is a float64 copy of the chunk, the centring, the reference's
residuals, and a matrix product whose BLAS runs at a few percent of the cores' peak on a
9 × 65 536 panel: 5–18 reads of the data (``python -m benchmarks --only reads``). Here each
block of 512 rows is read from memory once, converted and centred into a buffer that stays in
the core's cache, and all the products are taken from it in 3 × 3 register tiles (each value
loaded serves three products): ~1.5 reads of float64 rows, ~3.4 of float32 ones (whose read
is half as long: docs/performance.md says why).

Numba is optional (the ``fast`` extra). Importing it and loading the compiled kernel from its
cache costs ~0.7 s per process (compiling it the first time, ~4 s per dtype and layout, once
per machine), against a saving of ~4 reads of the data, so a pass takes it only for rows that
make it :data:`FUSED_AFTER_VALUES` values or more (where the kernel repays its start-up: the
rows held in memory come as one chunk, streamed rows switch once that many are read) — or at
once where the kernel is loaded already, or ``LRTRAIN_FUSED_KERNEL=always``. ``never`` keeps
the tensor path. Wide data keeps the BLAS product, which is faster there (:data:`MAX_D`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch

MAX_D = 256  # measured faster than the tensor path at d = 32, 64, 256 (1.1–1.2 × numpy XᵀX)
MIN_ROWS = 4096  # a chunk smaller than this is not worth the threads' start
# Where ~0.7 s of loading is repaid: the kernel saves ~4 reads of float64 rows (5.5–6.5 → 1.7)
# at ~18 GB/s here, so 0.7 s is ~2.9 GB, 2²⁸ values of float64 (float32 rows save more)
FUSED_AFTER_VALUES = 1 << 28
BLOCK_ROWS = 512  # rows converted into the buffer at a time: [d + 1, 512] float64 stays in L1/L2
SETTING = "LRTRAIN_FUSED_KERNEL"  # auto (default) · always · never

_kernel: Callable[..., np.ndarray] | None = None
_unavailable = False
_threads = 1  # numba's threads: a prange over more would run some parts one after another


def mode() -> str:
    value = os.environ.get(SETTING, "auto").strip().lower()
    return value if value in ("auto", "always", "never") else "auto"


def wanted(x: torch.Tensor, values_read: int) -> bool:
    """Whether this chunk should go through the kernel: rows on the CPU in float32/float64,
    narrow, enough of them, and the kernel either loaded already, asked for, or repaid by
    what this pass reads — ``values_read`` before this chunk, and this chunk's own."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return False
    if x.ndim != 2 or not 0 < x.shape[1] <= MAX_D or x.shape[0] < MIN_ROWS:
        return False
    if not (x.is_contiguous() or x.t().is_contiguous()):
        # a strided view: numba would compile the kernel anew for its layout (seconds, on
        # first use); row-major and feature-major rows are the layouts :func:`warm` compiles
        return False
    setting = mode()
    if setting == "never" or _unavailable:
        return False
    repaid = values_read + x.numel() >= FUSED_AFTER_VALUES
    return setting == "always" or _kernel is not None or repaid


def available() -> bool:
    """Whether numba imports (the ``fast`` extra): the kernel is loaded on the way."""
    return _load() is not None


def moments(
    x: torch.Tensor, y: torch.Tensor, shift: torch.Tensor, y_center: float, w_ref: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(G, s, peaks): G [d+1, d+1] = Σ vvᵀ and s [d+1] = Σ v over the rows, v = [x̃, z],
    float64; peaks [d+1] the largest |x_j| and |y| as given (inf or NaN where a value is).

    ``x`` [c, d] in any layout, float32 or float64 (read as it is: no float64 copy); ``y``
    [c] or [c, 1]. The caller checked :func:`wanted` (the kernel is loaded on the way)."""
    kernel = _load()
    if kernel is None:
        raise RuntimeError("the fused statistics kernel needs numba (pip install 'lrtrain[fast]')")
    d = x.shape[1]
    columns = x.detach().numpy().T  # [d, c]: contiguous rows when x is feature-major
    # one contiguous vector in the rows' dtype: the kernel's compiled signatures (warm)
    target = np.ascontiguousarray(y.detach().reshape(-1).numpy(), dtype=columns.dtype)
    threads = max(1, min(_threads, torch.get_num_threads(), x.shape[0] // MIN_ROWS))
    bits = np.uint64 if columns.dtype == np.float64 else np.uint32
    magnitude = bits(np.iinfo(bits).max >> 1)  # every bit but the sign's
    out, top = kernel(
        columns,
        target,
        columns.view(bits),
        target.view(bits),
        magnitude,
        shift.to(torch.float64).numpy(),
        float(y_center),
        w_ref.to(torch.float64).numpy(),
        bool(w_ref.any()),
        BLOCK_ROWS,
        threads,
    )
    tiles = out.shape[1]
    upper = out[: d + 1, : d + 1]  # above the diagonal only
    gram = np.triu(upper) + np.triu(upper, 1).T  # numpy: a 9 × 9 copy costs µs, not a thread pool
    peaks = top.view(columns.dtype).astype(np.float64)
    return (
        torch.from_numpy(gram),
        torch.from_numpy(out[tiles, : d + 1].copy()),
        torch.from_numpy(peaks),
    )


def warm() -> bool:
    """Compile the kernel for float32 and float64 rows in both layouts into numba's on-disk
    cache (``make`` does it at install), so that no run pays the compilation; False without
    numba."""
    if _load() is None:
        return False
    shift, w_ref = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    for dtype in (torch.float32, torch.float64):
        rows = torch.ones(MIN_ROWS, 2, dtype=dtype)
        for x in (rows, rows.T.contiguous().T):  # row-major, feature-major
            moments(x, rows[:, 0], shift, 0.0, w_ref)
    return True


def _load() -> Callable[..., np.ndarray] | None:
    global _kernel, _unavailable, _threads
    if _kernel is None and not _unavailable:
        try:
            import numba  # the fast extra
        except ImportError:
            _unavailable = True
            return None
        from lrtrain.data import _gram_kernel  # compiled, or loaded from numba's cache

        _threads = numba.get_num_threads()
        _kernel = _gram_kernel.gram
    return _kernel
