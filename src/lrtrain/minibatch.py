"""Mini-batch SGD on least squares, exactly in expectation: the mean and second moment of the
error e = θ − θ* under batches of B rows drawn uniformly with replacement (docs/mathematics.md,
"Mini-batch SGD").

With x̃ = [x, 1], A_i = 2 x̃_i x̃_iᵀ, r_i = x̃_iᵀθ* − y_i and c_i = 2 x̃_i r_i, a row's gradient is
A_i e + c_i; E_i[A_i] = H and E_i[c_i] = 0 (the normal equations). One step of plain SGD maps

    m' = (I − ηH) m
    S' = S − η(HS + SH) + η²[ F(S)/B + (1 − 1/B) H S H ] + (η²/B)(2 G m + Q)

with F(S) = E_i[A_i S A_i], G m = E_i[A_i m c_iᵀ] (a symmetric matrix) and Q = E_i[c_i c_iᵀ],
and E[L] = L* + ½ tr(H S). Full batch is 1/B = 0: the same map, exact and deterministic.

F, G and Q are moments of the rows up to the fourth — p⁴ numbers for p parameters, made in one
pass (:func:`row_moments`); beyond :data:`MAX_PARAMETERS` they are not made and the theory says
so instead of predicting. Everything here is float64 torch on the CPU and never prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

F64 = torch.float64
# p⁴ float64 numbers (the fourth moments) and a p² × p² map per step: 32 parameters are 8 MB
MAX_PARAMETERS = 32


@dataclass(frozen=True)
class RowMoments:
    """The moments of the rows the mini-batch recursion needs, vectorised over S (row-major
    vec of a p × p matrix): ``fourth`` [p², p²] is F, ``third`` [p², p] is G, ``noise`` [p²]
    is vec Q, ``hessian`` [p, p] is H."""

    hessian: torch.Tensor
    fourth: torch.Tensor
    third: torch.Tensor
    noise: torch.Tensor

    @property
    def p(self) -> int:
        return int(self.hessian.shape[0])


def row_moments(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], theta_star: torch.Tensor
) -> RowMoments:
    """F, G, Q and H from (x [c, d], y [c, 1]) chunks in one pass, about θ* (float64).

    With z_i = vec(x̃_i x̃_iᵀ): F = (4/N) Σ z_i z_iᵀ, G = (4/N) Σ r_i z_i x̃_iᵀ,
    Q = (4/N) Σ r_i² x̃_i x̃_iᵀ, H = (2/N) Σ x̃_i x̃_iᵀ."""
    theta = theta_star.to(F64)
    p = theta.shape[0]
    if p > MAX_PARAMETERS:
        raise ValueError(f"{p} parameters: the mini-batch theory needs p⁴ numbers (p ≤ 32)")
    fourth = torch.zeros(p * p, p * p, dtype=F64)
    third = torch.zeros(p * p, p, dtype=F64)
    second = torch.zeros(p, p, dtype=F64)
    noise = torch.zeros(p, p, dtype=F64)
    n = 0
    for x, y in chunks:
        rows = torch.cat([x.to(F64), torch.ones(x.shape[0], 1, dtype=F64)], dim=1)
        r = rows @ theta - y.reshape(-1).to(F64)
        z = (rows.unsqueeze(2) * rows.unsqueeze(1)).reshape(rows.shape[0], p * p)
        fourth.addmm_(z.T, z)
        third.addmm_(z.T, rows * r.unsqueeze(1))
        second.addmm_(rows.T, rows)
        noise.addmm_(rows.T, rows * (r * r).unsqueeze(1))
        n += rows.shape[0]
    return RowMoments(
        hessian=second * (2.0 / n),
        fourth=fourth * (4.0 / n),
        third=third * (4.0 / n),
        noise=noise.reshape(-1) * (4.0 / n),
    )


def step_map(moments: RowMoments, lr: float, batch: int | None) -> torch.Tensor:
    """K [p², p²]: the homogeneous part of one step's map on vec S (``batch`` None: full)."""
    h = moments.hessian
    eye = torch.eye(moments.p, dtype=F64)
    inv = 0.0 if batch is None else 1.0 / batch
    # row-major vec: vec(HS) = (H ⊗ I) vec S, vec(SH) = (I ⊗ H) vec S, vec(HSH) = (H ⊗ H) vec S
    drift = torch.kron(h, eye) + torch.kron(eye, h)
    k = torch.eye(moments.p**2, dtype=F64) - lr * drift
    return k + lr * lr * (inv * moments.fourth + (1.0 - inv) * torch.kron(h, h))


@dataclass(frozen=True)
class ExpectedRun:
    """E[L(θ_t)] at the steps asked for, and the mean error at the last of them."""

    steps: list[int]
    expected_loss: list[float]
    mean_error: torch.Tensor  # [p]: E[θ_T] − θ* at the last step asked for


def expected_losses(
    moments: RowMoments,
    loss_star: float,
    error0: torch.Tensor,
    lr: float,
    batch: int | None,
    steps: Iterable[int],
) -> ExpectedRun:
    """E[L(θ_t)] = L* + ½ tr(H S_t) for SGD from the deterministic θ_0 = θ* + ``error0``, at
    each step in ``steps`` (ascending): the recursion run once up to the last."""
    asked = sorted(set(steps))
    k = step_map(moments, lr, batch)
    h = moments.hessian
    contract = torch.eye(moments.p, dtype=F64) - lr * h
    inv = 0.0 if batch is None else 1.0 / batch
    m = error0.to(F64).clone()
    s = torch.outer(m, m).reshape(-1)
    vec_h = h.reshape(-1)
    out, t = [], 0
    for step in asked:
        while t < step:
            forcing = (2.0 * (moments.third @ m) + moments.noise) * (lr * lr * inv)
            s = k @ s + forcing
            m = contract @ m
            t += 1
        out.append(loss_star + 0.5 * float(vec_h @ s))
    return ExpectedRun(asked, out, m)


def spectral_radius(moments: RowMoments, lr: float, batch: int | None) -> float:
    """ρ of the map on S: the mean square converges (to the noise floor) iff it is < 1."""
    return float(torch.linalg.eigvals(step_map(moments, lr, batch)).abs().max())


def critical_lr(moments: RowMoments, batch: int | None, tol: float = 1e-10) -> float:
    """The mean-square critical learning rate: the smallest η > 0 where ρ(K(η)) reaches 1
    (bisection; 2/λ_max for full batch). Below it E[L_t] converges, above it E[L_t] grows."""
    lam_max = float(torch.linalg.eigvalsh(moments.hessian)[-1])
    if not lam_max > 0:
        return math.inf
    hi = 2.0 / lam_max  # mean-square stability needs the mean's: η < 2/λ_max
    if spectral_radius(moments, hi * (1 - 1e-12), batch) < 1.0:
        return hi
    lo = 0.0
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        if spectral_radius(moments, mid, batch) < 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def noise_floor(moments: RowMoments, lr: float, batch: int | None) -> float:
    """E[L_∞] − L* at a constant lr below the critical one: ½ tr(H S_∞), where S_∞ solves
    S = K S + (η²/B) Q (the mean error has vanished). 0 for full batch; inf above critical."""
    if batch is None:
        return 0.0
    k = step_map(moments, lr, batch)
    if spectral_radius(moments, lr, batch) >= 1.0:
        return math.inf
    eye = torch.eye(k.shape[0], dtype=F64)
    s = torch.linalg.solve(eye - k, moments.noise * (lr * lr / batch))
    return 0.5 * float(moments.hessian.reshape(-1) @ s)
