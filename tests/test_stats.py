"""The exact answer of rows held in memory: one read of the rows when the first rows' own
answer leaves residuals as small as the optimum's, a second read about the first answer
otherwise — checked against least squares computed independently in extended precision."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from lrtrain.data import stats as st


def _rows(x: torch.Tensor, y: torch.Tensor, reads: list[int]):
    """A rows() factory over chunks of (x, y) that counts the chunks it hands out."""

    def rows() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for lo in range(0, len(x), st.CHUNK_ROWS):
            reads.append(lo)
            yield x[lo : lo + st.CHUNK_ROWS], y[lo : lo + st.CHUNK_ROWS]

    return rows


def _extended_reference(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, float]:
    """θ* by numpy's least squares on centred columns, and its mean squared residual summed
    in extended precision (np.longdouble): an answer computed independently of lrtrain."""
    xn, yn = x.numpy(), y.numpy()[:, 0]
    xm, ym = xn.mean(0), yn.mean()
    w, *_ = np.linalg.lstsq(xn - xm, yn - ym, rcond=None)
    theta = np.r_[w, ym - xm @ w]
    design = np.c_[xn, np.ones(len(xn))].astype(np.longdouble)
    residual = design @ theta.astype(np.longdouble) - yn.astype(np.longdouble)
    return theta, float((residual * residual).mean())


def _problem(n: int, noise: float, steady_start: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ≈ 1e3 ± 1…10, y linear in them plus noise; ``steady_start``: the last feature
    constant over the rows the reference is fitted to (sorted data)."""
    g = torch.Generator().manual_seed(3)
    x = 1e3 + torch.randn(n, 4, generator=g, dtype=torch.float64) * torch.tensor([1, 2, 5, 10])
    if steady_start:
        x[: st.REFERENCE_ROWS, 3] = 1e3
    w = torch.tensor([[1.5], [-2.0], [0.25], [3.0]], dtype=torch.float64)
    y = x @ w + 7.0 + noise * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return x, y


def test_rows_are_read_once_when_the_first_chunk_gives_a_good_reference() -> None:
    """Three and a bit chunks with noise: the first rows (for the reference) and one pass —
    no second pass — and the answer that of extended-precision least squares."""
    x, y = _problem(3 * st.CHUNK_ROWS + 17, noise=0.5)
    reads: list[int] = []
    exact = st.exact_of_rows(_rows(x, y, reads), 4)
    chunks = -(-len(x) // st.CHUNK_ROWS)
    assert len(reads) == 1 + chunks  # the first chunk (its head) twice, every other once
    theta, loss = _extended_reference(x, y)
    assert exact.theta_star.numpy() == pytest.approx(theta, rel=1e-10)
    assert exact.loss_star == pytest.approx(loss, rel=1e-12)


def test_a_poor_reference_gets_a_second_pass() -> None:
    """Sorted rows whose first rows never vary one feature: their answer cannot know that
    feature's slope, the residuals it leaves are far above the optimum's, and the rows are
    read again about the first answer, as before."""
    x, y = _problem(2 * st.CHUNK_ROWS + 5, noise=0.5, steady_start=True)
    reads: list[int] = []
    exact = st.exact_of_rows(_rows(x, y, reads), 4)
    chunks = -(-len(x) // st.CHUNK_ROWS)
    assert len(reads) == 1 + 2 * chunks
    theta, loss = _extended_reference(x, y)
    assert exact.theta_star.numpy() == pytest.approx(theta, rel=1e-10)
    assert exact.loss_star == pytest.approx(loss, rel=1e-12)


def test_one_pass_equals_two_passes_to_rounding() -> None:
    """The one-pass answer and the two-pass answer of old (a pass about zero, then one about
    its θ*) are equally close to the extended-precision reference, and to each other."""
    x, y = _problem(2 * st.CHUNK_ROWS + 3, noise=2.0)
    rows = _rows(x, y, [])
    first = st.exact_answer(st.chunk_stats(rows(), d=4), None)
    two = st.refined(lambda theta: st.chunk_stats(rows(), theta, 4), first)
    one = st.exact_of_rows(rows, 4)
    theta, loss = _extended_reference(x, y)
    for answer in (one, two):  # the intercept of features ≈ 1e3 carries 1e3 × slopes' error
        assert answer.theta_star.numpy() == pytest.approx(theta, rel=1e-11)
        assert answer.loss_star == pytest.approx(loss, rel=1e-13)
    assert one.loss_star == pytest.approx(two.loss_star, rel=1e-14)
