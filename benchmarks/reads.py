"""Full-batch work in reads of the data (issue 33): the statistics pass and an exact fit
against a physical read of the same tensor (``X.sum()``), measured side by side in one run —
a unit that does not reward a slow pass, where issue 15's "statistics passes" did."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from benchmarks.common import CaseResult, in_units
from lrtrain.api import resolve_auto
from lrtrain.config.schema import load_config
from lrtrain.data import fused
from lrtrain.data import stats as st
from lrtrain.data.dataset import Dataset, feature_major
from lrtrain.engine.train import train
from lrtrain.theory.analysis import analyse_dataset

TARGET_PASS_READS = 2.0  # the statistics pass at d = 8 (issue 33)
TARGET_FIT_READS = 3.0  # a fit to a 1e-6 gap at κ ≈ 100, lr and momentum auto
TARGET_WIDE_NUMPY = 1.5  # the statistics pass at d = 256 against numpy's XᵀX, compute-bound
TARGET_ESTIMATOR_READS = 4.0  # GDRegressor.fit on float64 arrays, its input checks included


def _median_time(func: Callable[[], object], repeats: int) -> float:
    func()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _on_one_thread(
    read: Callable[[], object], pass_: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """(read, pass through the kernel) median times with torch — and so the kernel, which
    takes no more threads than torch has — on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _kernel_setting("always" if fused.available() else "never"):
            return _median_time(read, repeats), _median_time(pass_, repeats)
    finally:
        torch.set_num_threads(threads)


@contextmanager
def _kernel_setting(value: str) -> Iterator[None]:
    """The statistics pass's path for the measurements inside (data.fused's setting)."""
    before = os.environ.get(fused.SETTING)
    os.environ[fused.SETTING] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[fused.SETTING]
        else:
            os.environ[fused.SETTING] = before


def _both_paths(func: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(through tensor operations, through the fused kernel loaded) median times of ``func``;
    the kernel's is the tensor path's again where numba is not installed."""
    with _kernel_setting("never"):
        tensors = _median_time(func, repeats)
    with _kernel_setting("always" if fused.available() else "never"):
        kernel = _median_time(func, repeats)  # the first call, not timed, loads it
    return tensors, kernel


def reads(quick: bool, repeats: int) -> list[CaseResult]:
    n, d = (200_000, 8) if quick else (4_000_000, 8)
    gen = np.random.default_rng(0)
    scales = np.geomspace(1.0, 10.0, d)  # κ of the Hessian ≈ 100 (columns 1 … 10 apart)
    x64 = gen.standard_normal((n, d)) * scales
    y64 = x64 @ np.linspace(-1, 1, d) + 0.1 * gen.standard_normal(n)
    out = []
    for dtype in (torch.float64, torch.float32):
        xt = feature_major(torch.from_numpy(x64).to(dtype))
        yt = torch.from_numpy(y64).to(dtype).reshape(-1, 1)
        ds = Dataset(xt, yt, [f"x_{i}" for i in range(d)], "y")
        read = _median_time(lambda xt=xt: xt.sum(), repeats)

        def pass_(ds: Dataset = ds) -> st.Stats:
            return st.chunk_stats(ds.pass_chunks(), d=d)

        tensors, passed = _both_paths(pass_, repeats)
        kernel = fused.available()
        # on one core, for the per-core picture: a read of a tensor the L3 holds scales ~3.5×
        # with the second core here, the kernel ~1.8×
        read_one, passed_one = _on_one_thread(lambda xt=xt: xt.sum(), pass_, repeats)
        numpy_xtx = _median_time(lambda: x64.T @ x64, repeats)
        name = "float64" if dtype == torch.float64 else "float32"
        path = "the fused kernel (numba, loaded)" if kernel else "tensors (numba not installed)"
        out.append(in_units(
            f"statistics pass, N = {n:,}, d = {d}, {name} rows, in reads of X",
            "one read of the same tensor (X.sum())", read, passed,
            f"≤ {TARGET_PASS_READS:g} reads", TARGET_PASS_READS,
            figures={"read_s": read, "pass_s": passed, "tensor_pass_s": tensors,
                     "tensor_pass_reads": tensors / read, "numpy_xtx_s": numpy_xtx,
                     "numpy_xtx_reads": numpy_xtx / read, "read_one_thread_s": read_one,
                     "pass_one_thread_s": passed_one,
                     "pass_one_thread_reads": passed_one / read_one},
            notes=[f"one read {read * 1e3:.1f} ms; the pass through {path} "
                   f"{passed * 1e3:.1f} ms ({passed / read:.1f} reads); through tensor "
                   f"operations {tensors * 1e3:.1f} ms ({tensors / read:.1f} reads); numpy's XᵀX "
                   f"on float64 rows {numpy_xtx * 1e3:.1f} ms ({numpy_xtx / read:.1f} reads); "
                   f"on one thread a read {read_one * 1e3:.1f} ms, the pass "
                   f"{passed_one * 1e3:.1f} ms ({passed_one / read_one:.2f} reads)"],
        ))  # fmt: skip
        if dtype == torch.float64:
            with _kernel_setting("always" if kernel else "never"):
                out.append(_fit_in_reads(xt, yt, read, n, repeats))
                if quick:  # the smoke run checks that the cases run: one fit is enough
                    continue
                # at a quarter of the rows the ~70 steps weigh about a read by themselves
                quarter = n // 4
                x_quarter = feature_major(xt[:quarter].contiguous())
                read_quarter = _median_time(lambda x=x_quarter: x.sum(), repeats)
                out.append(_fit_in_reads(x_quarter, yt[:quarter], read_quarter, quarter, repeats,
                                         judged=False))  # fmt: skip
    out.append(_wide_pass(quick, repeats))
    out.append(_estimator_in_reads(quick, repeats))
    return out


def _wide_pass(quick: bool, repeats: int) -> CaseResult:
    """At d = 256 the products dominate: the pass against numpy's XᵀX of the same rows."""
    n, d = (2_000, 256) if quick else (250_000, 256)
    x64 = np.random.default_rng(1).standard_normal((n, d))
    xt = feature_major(torch.from_numpy(x64))
    ds = Dataset(xt, torch.from_numpy(x64[:, :1].copy()), [f"x_{i}" for i in range(d)], "y")

    def pass_() -> st.Stats:
        return st.chunk_stats(ds.pass_chunks(), d=d)

    numpy_xtx = _median_time(lambda: x64.T @ x64, repeats)
    tensors, passed = _both_paths(pass_, repeats)
    return in_units(
        f"statistics pass, N = {n:,}, d = {d}, float64 rows, against numpy's XᵀX",
        "numpy's XᵀX of the same float64 rows", numpy_xtx, passed,
        f"≤ {TARGET_WIDE_NUMPY:g} × its time", TARGET_WIDE_NUMPY,
        figures={"tensor_pass_s": tensors, "tensor_pass_ratio": tensors / numpy_xtx},
        notes=[f"the pass through tensor operations {tensors * 1e3:.0f} ms "
               f"({tensors / numpy_xtx:.2f} × numpy's XᵀX)"],
    )  # fmt: skip


def _estimator_in_reads(quick: bool, repeats: int) -> CaseResult:
    """``GDRegressor.fit`` to a 1e-6 gap from float64 numpy arrays (row-major, as a user has
    them), scikit-learn's input checks and ours included, in reads of X (the rows are lent to
    the data set: its Gram steps read only their statistics)."""
    from lrtrain import GDRegressor

    n, d = (20_000, 8) if quick else (2_000_000, 8)
    gen = np.random.default_rng(2)
    x64 = gen.standard_normal((n, d)) * np.geomspace(1.0, 10.0, d)
    y64 = x64 @ np.linspace(-1, 1, d) + 0.1 * gen.standard_normal(n)
    read = _median_time(lambda: torch.from_numpy(x64).sum(), repeats)
    model = GDRegressor(target_gap=1e-6, max_iter=20_000, dtype="float64")
    # the tensor path: what auto does where the kernel is not loaded (this pass is small)
    tensors, wall = _both_paths(lambda: model.fit(x64, y64), repeats)
    return in_units(
        f"GDRegressor.fit to a 1e-6 gap, N = {n:,}, d = {d}, float64 arrays, in reads",
        "one read of the same float64 array", read, wall,
        f"≤ {TARGET_ESTIMATOR_READS:g} reads (issue 33)", TARGET_ESTIMATOR_READS,
        figures={"tensor_path_s": tensors, "tensor_path_reads": tensors / read},
        notes=[f"with the kernel loaded {wall * 1e3:.0f} ms ({wall / read:.1f} reads); in a "
               f"process that has not loaded it (auto: this pass is too small to repay "
               f"loading it) {tensors * 1e3:.0f} ms ({tensors / read:.1f} reads)"],
    )  # fmt: skip


def _fit_in_reads(
    xt: torch.Tensor, yt: torch.Tensor, read: float, n: int, repeats: int, judged: bool = True
) -> CaseResult:
    """A fit to a relative gap of 1e-6, lr and momentum auto, in process: the analysis's one
    pass, the Gram steps and the result, in reads of the same float64 tensor (a fresh data set
    each time: its statistics are cached once made)."""
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", "train.max_iter=20000",
                             "train.target_gap=1e-6", "optimizer.lr=auto",
                             "optimizer.momentum=auto"])  # fmt: skip

    def fit() -> object:
        ds = Dataset(xt, yt, [f"x_{i}" for i in range(xt.shape[1])], "y")
        analysis = analyse_dataset(ds, cfg.optimizer)
        config, analysis, _ = resolve_auto(cfg, analysis)
        return train(ds, config, loss_ref=analysis.target_loss)

    wall = _median_time(fit, repeats)
    return in_units(
        f"fit to a 1e-6 gap, κ ≈ 100, lr and momentum auto, N = {n:,}, d = 8, in reads",
        "one read of the same float64 tensor",
        read,
        wall,
        f"≤ {TARGET_FIT_READS:g} reads (issue 33; replaces issue 15's 1.5 passes)"
        if judged
        else "report (issue 33: the ~70 steps weigh about a read here)",
        TARGET_FIT_READS if judged else None,
    )
