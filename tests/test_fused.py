"""The fused statistics kernel: the same float64 moments as the tensor path and as numpy's
products in extended precision, whatever the rows' dtype, layout and offset; and the policy that
chooses it (never for what it cannot read, at once where loaded or asked for, otherwise only
once a pass has read enough to repay loading it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrtrain.data import fused
from lrtrain.data import stats as st
from lrtrain.data.dataset import Dataset, feature_major

numba = pytest.importorskip("numba", reason="the fused kernel is the fast extra's")


def _rows(n: int, d: int, dtype: torch.dtype, layout: str, offset: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, 1, d, dtype=torch.float64)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * scales + offset
    w = torch.linspace(-1, 1, d, dtype=torch.float64)
    y = (x @ w + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)).reshape(-1, 1)
    x, y = x.to(dtype), y.to(dtype)
    return (feature_major(x) if layout == "feature-major" else x), y, torch.cat([w, w[:1] * 0])


def _both_paths(monkeypatch, chunks, reference) -> tuple[st.Stats, st.Stats]:
    monkeypatch.setenv(fused.SETTING, "never")
    tensors = st.chunk_stats(chunks(), reference)
    monkeypatch.setenv(fused.SETTING, "always")
    kernel = st.chunk_stats(chunks(), reference)
    return tensors, kernel


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["feature-major", "row-major"])
@pytest.mark.parametrize("d", [1, 2, 3, 8, 13])
def test_the_kernel_gives_the_tensor_paths_moments(monkeypatch, dtype, layout, d):
    """Offsets of 10³ (the shift keeps the centred sums accurate), a reference predictor (z's
    residuals), chunks that leave a ragged last block and d that leaves padded tile columns."""
    x, y, reference = _rows(50_001, d, dtype, layout, offset=1e3)

    def chunks():  # each chunk its own tensor, in the layout of x, as the sources make them
        for lo in range(0, len(x), 20_000):
            part = x[lo : lo + 20_000]
            yield feature_major(part) if layout == "feature-major" else part, y[lo : lo + 20_000]

    tensors, kernel = _both_paths(monkeypatch, chunks, reference)
    assert kernel.n == tensors.n == len(x)
    for name in ("cov", "cxy", "x_mean"):
        a, b = getattr(tensors, name), getattr(kernel, name)
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12 * float(a.abs().max())), name
    assert kernel.cyy == pytest.approx(tensors.cyy, rel=1e-12)
    assert kernel.y_mean == pytest.approx(tensors.y_mean, rel=1e-12, abs=1e-12)


def test_a_strided_view_of_the_rows(monkeypatch):
    """Rows that are a view into a larger table (every other row) take the tensor path: the
    kernel would be compiled anew for their layout. The moments are the same either way."""
    x, y, reference = _rows(30_001, 3, torch.float64, "row-major", offset=10.0, seed=2)
    monkeypatch.setenv(fused.SETTING, "always")
    assert not fused.wanted(x[::2], 0) and fused.wanted(x, 0)
    tensors, kernel = _both_paths(monkeypatch, lambda: [(x[::2], y[::2])], reference)
    assert torch.allclose(tensors.cov, kernel.cov, rtol=1e-12)
    assert kernel.cyy == pytest.approx(tensors.cyy, rel=1e-12)


def test_the_kernel_against_extended_precision(monkeypatch):
    """Σ vvᵀ and Σ v for v = [x − shift, z] against numpy's sums in np.longdouble."""
    monkeypatch.setenv(fused.SETTING, "always")
    x, y, reference = _rows(30_000, 5, torch.float32, "feature-major", offset=50.0, seed=3)
    shift = torch.tensor([50.0, 49.0, 51.0, 50.5, 48.0], dtype=torch.float64)
    gram, sums, peaks = fused.moments(x, y, shift, 2.0, reference[:5])
    xs = x.double().numpy().astype(np.longdouble) - shift.numpy()
    z = (y.double().numpy()[:, 0] - 2.0).astype(np.longdouble) - xs @ reference[:5].numpy()
    v = np.c_[xs, z]
    assert np.allclose(gram.numpy(), (v.T @ v).astype(np.float64), rtol=1e-13, atol=1e-9)
    assert np.allclose(sums.numpy(), v.sum(0).astype(np.float64), rtol=1e-13, atol=1e-9)
    assert peaks.tolist() == [*x.abs().amax(0).tolist(), float(y.abs().max())]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("layout", ["feature-major", "row-major"])
@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf])
def test_both_paths_find_the_peaks_and_what_is_not_finite(monkeypatch, dtype, layout, bad):
    """The range check's max |x| and max |y|, read by the pass itself: exact, and NaN or inf
    where a value is (which the finiteness check then names), through either path."""
    x, y, reference = _rows(20_003, 3, dtype, layout, offset=-7.0, seed=4)
    x[0, 0] = -1e4  # the peak is a negative value
    if bad is not None:
        x[12_345, 2] = bad
    found = []
    for setting in ("never", "always"):
        monkeypatch.setenv(fused.SETTING, setting)
        acc = st.Accumulator(reference, peaks=True)
        acc.add(x, y)
        found.append(acc.peaks)
    expected = float(x.double().abs().max()) if bad is None else abs(bad)
    for x_peak, y_peak in found:
        assert x_peak == expected or (math.isnan(x_peak) and math.isnan(expected))
        assert y_peak == float(y.double().abs().max())


def test_an_exact_answer_through_the_kernel_is_the_same_answer(monkeypatch):
    """A data set's θ* and loss* (one pass, and the second pass about the first answer) read
    through the kernel equal those read through tensor operations."""
    x, y, _ = _rows(40_000, 4, torch.float64, "feature-major", offset=1e6, seed=1)
    answers = []
    for setting in ("never", "always"):
        monkeypatch.setenv(fused.SETTING, setting)
        answers.append(Dataset(x, y, ["a", "b", "c", "d"], "y").answer())
    assert torch.allclose(answers[0].theta_star, answers[1].theta_star, rtol=1e-9, atol=1e-9)
    assert answers[1].loss_star == pytest.approx(answers[0].loss_star, rel=1e-9)


def test_what_the_kernel_reads_and_when(monkeypatch):
    rows = torch.zeros(fused.MIN_ROWS, 3)
    monkeypatch.setenv(fused.SETTING, "always")
    assert fused.wanted(rows, 0)
    assert not fused.wanted(rows[:-1], 0)  # too few rows for the threads to repay
    assert not fused.wanted(torch.zeros(fused.MIN_ROWS, fused.MAX_D + 1), 0)  # BLAS is faster
    assert not fused.wanted(rows.to(torch.float16), 0)
    assert not fused.wanted(rows.to(torch.int64), 0)
    monkeypatch.setenv(fused.SETTING, "never")
    assert not fused.wanted(rows, 10**12)
    monkeypatch.setenv(fused.SETTING, "auto")
    monkeypatch.setattr(fused, "_kernel", None)  # as in a fresh process
    assert not fused.wanted(rows, fused.FUSED_AFTER_VALUES - rows.numel() - 1)
    assert fused.wanted(rows, fused.FUSED_AFTER_VALUES - rows.numel())  # loading it pays
    monkeypatch.setattr(fused, "FUSED_AFTER_VALUES", rows.numel())
    assert fused.wanted(rows, 0)  # one chunk that alone reaches the threshold: rows in memory
    monkeypatch.setattr(fused, "_kernel", lambda *args: None)
    assert fused.wanted(rows, 0)  # loaded already: it costs nothing more
    monkeypatch.setenv(fused.SETTING, "sometimes")  # not a setting: auto
    assert fused.mode() == "auto"


def test_without_numba_every_pass_takes_the_tensor_path(monkeypatch):
    monkeypatch.setenv(fused.SETTING, "always")
    monkeypatch.setattr(fused, "_kernel", None)
    monkeypatch.setattr(fused, "_unavailable", True)
    rows = torch.randn(fused.MIN_ROWS, 2, dtype=torch.float64)
    assert not fused.wanted(rows, 10**12)
    assert not fused.available()
    assert st.chunk_stats([(rows, rows[:, :1])]).n == fused.MIN_ROWS


def test_warm_compiles_every_signature():
    assert fused.warm()
    assert len(fused._kernel.signatures) >= 4  # type: ignore[union-attr]
