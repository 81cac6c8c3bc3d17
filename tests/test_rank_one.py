"""Eigenpairs of D + ρzzᵀ by the secular equation, against LAPACK's eigh of the same matrix:
eigenvalues to rounding, eigenvectors orthogonal and with residuals at rounding, whatever the
deflation (zero weights, repeated or clustered diagonals, a dominant update); and the Hessian
spectrum built on it equal to eigh(H)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hs

from lrtrain.data import spectrum as sp
from lrtrain.data import stats as st
from lrtrain.data.rank_one import eigh_rank_one

F64 = torch.float64


def _check(d: torch.Tensor, z: torch.Tensor, rho: float, tol: float = 1e-13) -> None:
    matrix = torch.diag(d) + rho * torch.outer(z, z)
    values, vectors = eigh_rank_one(d, z, rho)
    size = float(torch.linalg.matrix_norm(matrix, ord=2)) or 1.0
    assert torch.all(values[1:] >= values[:-1])
    assert torch.allclose(values, torch.linalg.eigvalsh(matrix), rtol=0, atol=tol * size)
    identity = torch.eye(len(d), dtype=F64)
    assert float((vectors.T @ vectors - identity).abs().max()) <= tol
    assert float((matrix @ vectors - vectors * values).abs().max()) <= tol * size


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "case",
    ["random", "dominant update", "equal diagonal", "repeated zeros", "zero weights",
     "one weight", "graded", "clustered", "unsorted", "one entry"],
)  # fmt: skip
def test_eigenpairs_equal_lapacks(case: str) -> None:
    n, g = 120, _gen(1)
    d = torch.rand(n, generator=g, dtype=F64)
    z = torch.randn(n, generator=g, dtype=F64)
    rho = 1.0
    if case == "dominant update":
        d, rho = d * 1e-6, 1e3
    elif case == "equal diagonal":
        d = torch.full((n,), 2.0, dtype=F64)
    elif case == "repeated zeros":
        d[:7] = 0.0
    elif case == "zero weights":
        z[::3] = 0.0
    elif case == "one weight":
        z = torch.zeros(n, dtype=F64)
        z[5] = 1.0
    elif case == "graded":
        d, z = torch.logspace(-12, 0, n, dtype=F64), z * 1e-3
    elif case == "clustered":
        d = torch.repeat_interleave(torch.rand(n // 4, generator=g, dtype=F64), 4)
        d = d + 1e-15 * torch.rand(n, generator=g, dtype=F64)
    elif case == "unsorted":
        d = d[torch.randperm(n, generator=g)]
    elif case == "one entry":
        d, z = d[:1], z[:1]
    _check(d, z, rho)


@settings(max_examples=60, deadline=None)
@given(
    n=hs.integers(1, 40),
    seed=hs.integers(0, 2**31 - 1),
    repeats=hs.integers(0, 5),
    rho=hs.floats(1e-3, 1e3),
)
def test_any_diagonal_and_update(n: int, seed: int, repeats: int, rho: float) -> None:
    g = _gen(seed)
    d = torch.randn(n, generator=g, dtype=F64)
    d[: min(repeats, n)] = d[0]  # some exactly repeated diagonal entries
    z = torch.randn(n, generator=g, dtype=F64)
    z[torch.rand(n, generator=g) < 0.2] = 0.0  # some weights exactly zero
    _check(d, z, rho)


@pytest.mark.parametrize(("offset", "d"), [(0.0, 30), (3.0, 30), (50.0, 250)])
def test_the_hessian_spectrum_equals_eigh_of_h(offset: float, d: int, monkeypatch) -> None:
    """From the covariance's eigenpairs and one product: H's eigenvalues and vectors as
    LAPACK's eigh of H gives them (vectors up to sign) — at sizes where hessian_spectrum would
    take eigh itself, told to take the update."""
    monkeypatch.setattr(sp, "RANK_ONE_MIN_P", 0)
    g = _gen(2)
    x = torch.randn(4 * d, d, generator=g, dtype=F64) * torch.logspace(0, 1, d, dtype=F64)
    y = torch.randn(4 * d, 1, generator=g, dtype=F64)
    stats = st.chunk_stats([(x + offset, y)])
    spectrum = sp.hessian_spectrum(stats)
    values, vectors = torch.linalg.eigh(spectrum.hessian)
    top = float(values[-1])
    assert torch.allclose(spectrum.values, values, rtol=0, atol=1e-12 * top)
    overlap = (spectrum.vectors.T @ vectors).abs().diagonal()  # distinct eigenvalues here
    assert torch.allclose(overlap, torch.ones_like(overlap), atol=1e-8)
