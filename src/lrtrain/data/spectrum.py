"""The Hessian's spectrum from the sufficient statistics (:mod:`lrtrain.data.stats`): its
eigenpairs, accurate for the smallest eigenvalue even where κ is far beyond 1/ε, the condition
number and whether it is singular — one decomposition serving the analysis, the verdicts and
the figures."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lrtrain.data.rank_one import eigh_rank_one
from lrtrain.data.stats import F64, Stats

DIRECT_EIGH_MIN_RATIO = 1e-6  # λ_min/λ_max from which eigh(H) is accurate enough, not the SVD
# Parameters from which H's spectrum comes as a rank-one update of the covariance's: below it
# eigh(H) itself is faster (measured: 0.02 against 2.6 ms at p = 9, 4.6 against 7.5 at 257,
# 19 against 22 at 513; 0.89 s against 0.43 s at 2 001)
RANK_ONE_MIN_P = 512


@dataclass
class Spectrum:
    """The eigen-decomposition of H = (2/N) X̃ᵀX̃, and of the centred covariance it comes from."""

    hessian: torch.Tensor  # [p, p]: H = (2/N) X̃ᵀX̃
    values: torch.Tensor  # [p] ascending
    vectors: torch.Tensor  # [p, p]: column i is the eigenvector of values[i]
    cov_values: torch.Tensor  # [d] ascending: H is singular exactly when the smallest is 0


def hessian_spectrum(stats: Stats) -> Spectrum:
    """Eigenvalues and eigenvectors of H, the eigenvalues accurate even for the smallest when
    κ is far beyond 1/ε (features like 10⁴ ± 1, where eigvalsh(H) would return rounding noise).

    X̃ᵀX̃ = MᵀM with M = [[C^½, 0], [√N x̄ᵀ, √N]] (C the centred covariance sum), so the
    eigenvalues are (2/N) σ(M)² and the eigenvectors M's right singular vectors; the SVD finds
    each σ to within ε·σ_max — λ_min to within ε·√κ relative instead of ε·κ. One SVD serves
    the analysis, the verdicts and the figures (an eigendecomposition is the costliest step of
    a wide problem's analysis: do it once). Where H is well-conditioned, its spectrum comes
    from the covariance's eigendecomposition (made once, for the optimum and the rank too) as
    a rank-one update (:mod:`lrtrain.data.rank_one`), with no decomposition of its own, from
    :data:`RANK_ONE_MIN_P` parameters (below, eigh(H) is the faster).
    """
    n, d = stats.n, stats.d
    c_eig, c_vec = stats.cov_eigen
    hessian = 2.0 * stats.xtx / n
    if d + 1 < RANK_ONE_MIN_P:
        values, vectors = torch.linalg.eigh(hessian)
    else:
        values, vectors = _rank_one_update(stats, c_eig, c_vec)
    if float(values[0]) > float(values[-1]) * DIRECT_EIGH_MIN_RATIO:
        # well-conditioned: accurate to κ·ε relative (≤ 1e-10 here), as eigh of H would be
        return Spectrum(hessian, values, vectors, c_eig)
    root = c_vec @ torch.diag(c_eig.clamp_min(0.0).sqrt()) @ c_vec.T
    m = torch.zeros(d + 1, d + 1, dtype=F64)
    m[:d, :d] = root
    m[d, :d] = math.sqrt(n) * stats.x_mean
    m[d, d] = math.sqrt(n)
    _, sigma, vh = torch.linalg.svd(m, full_matrices=False)
    return Spectrum(hessian, (2.0 / n * sigma**2).flip(0), vh.flip(0).T.contiguous(), c_eig)


def _rank_one_update(
    stats: Stats, c_eig: torch.Tensor, c_vec: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """H = (2/N) B (diag(Λ, 0) + N uuᵀ) Bᵀ with B = diag(Q, 1), u = [Qᵀx̄; 1], C = QΛQᵀ: H's
    eigenpairs from C's by the secular equation and one product, not a second eigh."""
    n, d = stats.n, stats.d
    u = torch.cat([c_vec.T @ stats.x_mean, torch.ones(1, dtype=F64)])
    small_values, small_vectors = eigh_rank_one(
        torch.cat([c_eig, torch.zeros(1, dtype=F64)]), u, float(n)
    )
    vectors = torch.empty(d + 1, d + 1, dtype=F64)
    torch.matmul(c_vec, small_vectors[:d], out=vectors[:d])
    vectors[d] = small_vectors[d]
    return 2.0 / n * small_values, vectors


def hessian_eigenvalues(stats: Stats) -> torch.Tensor:
    """The eigenvalues of :func:`hessian_spectrum`, ascending."""
    return hessian_spectrum(stats).values


def condition_number(stats: Stats) -> float:
    """κ = λ_max/λ_min of the Hessian these statistics define (inf when singular)."""
    spectrum = hessian_spectrum(stats)
    eig = spectrum.values
    if float(eig[0]) <= 0 or is_singular(spectrum):
        return math.inf
    return float(eig[-1] / eig[0])


def is_singular(spectrum: Spectrum) -> bool:
    """H is singular exactly when the centred covariance is (to its rounding)."""
    cov = spectrum.cov_values
    return float(cov[0]) <= float(cov[-1]) * (len(cov) + 1) * torch.finfo(F64).eps
