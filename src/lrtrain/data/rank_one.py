"""The eigen-decomposition of a diagonal matrix plus a rank-one update, D + ρzzᵀ (ρ > 0), in
O(n²) operations: how the Hessian's spectrum comes from the centred covariance's.

H = (2/N) X̃ᵀX̃ with X̃ = [X 1] is, in the basis diag(Q, 1) of the covariance's eigenvectors
C = QΛQᵀ, (2/N)(diag(Λ, 0) + N uuᵀ) with u = [Qᵀx̄; 1]. So once C is decomposed — which the
optimum and the rank need anyway — H's eigenvalues are the roots of the secular equation

    f(μ) = 1 + ρ Σⱼ zⱼ² / (dⱼ − μ) = 0,

one in each gap of the sorted dⱼ and one above the largest, and H's eigenvectors are Q times
those of D + ρzzᵀ: a matrix product instead of a second d × d eigendecomposition (several times
its cost at d = 2 000).

The method is the divide-and-conquer step of LAPACK's symmetric eigensolvers (``dlaed2``–
``dlaed9``): deflation of the entries whose zⱼ is negligible or whose dⱼ coincide (a rotation
gathers their weight into one), the roots by the rational iteration of Bunch, Nielsen and
Sorensen (1978) — each step solves a two-pole model of f, from the nearer pole as origin so that
a root close to a pole keeps its digits — and the eigenvectors from the roots by the formula of
Gu and Eisenstat (1994), which recomputes z from the computed roots so that the vectors come out
orthogonal to working precision.
"""

from __future__ import annotations

import torch

F64 = torch.float64
EPS = torch.finfo(F64).eps
MAX_ITERATIONS = 80  # each root converges quadratically; a bisection step guards every one


def eigh_rank_one(
    d: torch.Tensor, z: torch.Tensor, rho: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues ascending, eigenvectors as columns) of diag(d) + ρ zzᵀ, ``d`` in any order,
    ρ ≥ 0; float64."""
    d, z = d.to(F64), z.to(F64)
    n = len(d)
    order = torch.argsort(d)
    d, z = d[order], z[order].clone()
    scale = max(float(d.abs().max()), rho * float(z @ z), float(torch.finfo(F64).tiny))
    tol = 8.0 * EPS * scale
    rotations, kept = _deflate(d, z, rho, tol)
    values = d.clone()
    vectors = torch.eye(n, dtype=F64)
    if kept:
        at = torch.tensor(kept)
        roots, vecs = _secular(d[at], z[at], rho)
        values[at] = roots
        vectors[at.unsqueeze(1), at.unsqueeze(0)] = vecs
    for i, j, c, s in reversed(rotations):  # V = Gᵀ W: undo the deflating rotations
        row_i, row_j = vectors[i].clone(), vectors[j].clone()
        vectors[i] = c * row_i + s * row_j
        vectors[j] = -s * row_i + c * row_j
    sort = torch.argsort(values)
    back = torch.empty_like(vectors)
    back[order] = vectors  # rows back in the caller's order of d
    return values[sort], back[:, sort]


def _deflate(
    d: torch.Tensor, z: torch.Tensor, rho: float, tol: float
) -> tuple[list[tuple[int, int, float, float]], list[int]]:
    """Deflate in place (``d`` sorted): an entry whose ρ|zᵢ| is below ``tol`` is an eigenpair
    (dᵢ, eᵢ) as it is; of two entries closer than ``tol`` (weighted by the rotation), a rotation
    moves the first's weight onto the second and leaves the first as an eigenpair. Returns the
    rotations (i, j, c, s) and the entries left to the secular equation."""
    rotations: list[tuple[int, int, float, float]] = []
    kept: list[int] = []
    values, weights = d.tolist(), z.tolist()
    norm_z = float(z.norm())
    for j in range(len(values)):
        if rho * abs(weights[j]) * norm_z <= tol:  # zeroing it moves D + ρzzᵀ by ≤ tol
            weights[j] = 0.0
            continue
        if kept:
            i = kept[-1]
            norm = (weights[i] ** 2 + weights[j] ** 2) ** 0.5
            c, s = weights[j] / norm, weights[i] / norm
            if abs((values[j] - values[i]) * c * s) <= tol:
                # rotate (i, j) so that z's weight lies on j; i keeps a value of its own
                d_i = c * c * values[i] + s * s * values[j]
                values[j] = s * s * values[i] + c * c * values[j]
                values[i] = d_i
                weights[i], weights[j] = 0.0, norm
                rotations.append((i, j, c, s))
                kept[-1] = j
                continue
        kept.append(j)
    d.copy_(torch.tensor(values, dtype=F64))
    z.copy_(torch.tensor(weights, dtype=F64))
    return rotations, kept


def _secular(d: torch.Tensor, z: torch.Tensor, rho: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The roots of 1 + ρ Σ zⱼ²/(dⱼ − μ) for ``d`` strictly increasing and every zⱼ ≠ 0, and
    the eigenvectors."""
    upper = torch.cat([d[1:], d[-1:] + rho * float((z * z).sum())])  # root i in (dᵢ, upperᵢ)
    origin, tau = _roots(d, z * z, rho, upper)
    return origin + tau, _vectors(d, z, rho, upper, origin, tau)


def _roots(
    d: torch.Tensor, z2: torch.Tensor, rho: float, upper: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every root at once, each as (origin, τ) with μ = origin + τ: the origin the pole nearer
    the root, so that τ — and μ's distance to that pole — keeps its digits."""
    k = len(d)
    # the origin: the pole nearer the root (the interval's midpoint says which side it is on)
    middle = (d + upper) / 2
    f_middle = 1 + rho * (z2 / (d.unsqueeze(0) - middle.unsqueeze(1))).sum(1)
    from_left = f_middle >= 0  # f increases across the interval: the root lies left of middle
    from_left[-1] = True  # the last root: from d_k (no pole above it)
    origin = torch.where(from_left, d, upper)
    delta = d.unsqueeze(0) - origin.unsqueeze(1)  # [root, j]: dⱼ − origin, accurate
    zero = torch.zeros_like(d)
    lo = torch.where(from_left, zero, middle - upper)  # τ's bracket: the half holding the root
    hi = torch.where(from_left, middle - d, zero)
    # the last interval's middle may lie left of its root: its bracket is the whole interval
    lo[-1], hi[-1] = 0.0, float(upper[-1] - d[-1])
    tau = (lo + hi) / 2
    a = torch.where(from_left, zero, d - upper)  # the root's poles, from its origin
    b = torch.where(from_left, upper - d, zero)
    b[-1] = torch.inf  # no pole above the last root
    active = torch.arange(k)  # the roots still moving: later iterations touch only those
    ones = torch.ones(k, dtype=F64)
    for _ in range(MAX_ITERATIONS):
        t, lo_a, hi_a, a_a, b_a = tau[active], lo[active], hi[active], a[active], b[active]
        # dⱼ − μ = delta − t ⊗ 1 (torch broadcasts a column several times slower); then the
        # terms zⱼ²/(dⱼ − μ) in the same k × k buffer: these temporaries are the memory of a
        # wide fit's analysis, so each is written in place
        if len(active) == k:
            terms = torch.addr(delta, t, ones, alpha=-1)
        else:
            terms = delta[active].addr_(t, ones, alpha=-1)
        terms.reciprocal_().mul_(z2)
        # ψ's terms (poles at or left of the root's interval) are the negative ones, φ's the
        # positive: their sums apart, without a mask
        left_terms = terms.clamp(max=0.0)
        right_terms = terms.sub_(left_terms)  # exactly the positive terms
        psi, phi = rho * left_terms.sum(1), rho * right_terms.sum(1)
        f = 1 + psi + phi
        # the bracket from f's sign (f increases with τ)
        lo_a = torch.where(f < 0, t, lo_a)
        hi_a = torch.where(f > 0, t, hi_a)
        scale = 1 + psi.abs() + phi.abs()  # Σ|terms|: the rounding error of f is ~ε·scale
        done = (f.abs() <= 8 * EPS * scale) | (hi_a - lo_a <= 2 * EPS * torch.maximum(
            lo_a.abs(), hi_a.abs()))  # fmt: skip
        # the two-pole model  C + q/(a − τ) + s/(b − τ), matched to ψ and φ at τ
        # the slopes zⱼ²/(dⱼ − μ)² are the terms squared over zⱼ²
        dpsi = rho * left_terms.square_().div_(z2).sum(1)
        dphi = rho * right_terms.square_().div_(z2).sum(1)
        del terms, left_terms, right_terms
        one_pole = torch.isinf(b_a)
        q = dpsi * (a_a - t) ** 2
        s = torch.where(one_pole, 0.0, dphi * (b_a - t) ** 2)
        c = 1 + (psi - q / (a_a - t)) + torch.where(one_pole, phi, phi - s / (b_a - t))
        step = _model_root(c, q, s, a_a, b_a)
        inside = (step > lo_a) & (step < hi_a) & torch.isfinite(step)
        tau[active] = torch.where(done, t, torch.where(inside, step, (lo_a + hi_a) / 2))
        lo[active], hi[active] = lo_a, hi_a
        active = active[~done]
        if not len(active):
            break
    return origin, tau


def _vectors(
    d: torch.Tensor,
    z: torch.Tensor,
    rho: float,
    upper: torch.Tensor,
    origin: torch.Tensor,
    tau: torch.Tensor,
) -> torch.Tensor:
    """The eigenvectors, column j for root j = origin_j + τ_j."""
    k = len(d)
    # Gu–Eisenstat: the z for which the computed roots are exact, then the vectors from it.
    # ẑᵢ² = (μ_k − dᵢ)/ρ · Π_{j<i} (μⱼ − dᵢ)/(dⱼ − dᵢ) · Π_{i≤j<k} (μⱼ − dᵢ)/(dⱼ₊₁ − dᵢ): each
    # ratio positive and about 1 (the roots interlace the poles), so their logs are small and
    # the product keeps its digits where logs of the raw differences would lose k·log-size ε
    lam_minus_d = (origin.unsqueeze(0) - d.unsqueeze(1)).add_(tau)  # [i, j]: μⱼ − dᵢ
    left = torch.arange(k).unsqueeze(0) < torch.arange(k).unsqueeze(1)  # [i, j]: j < i
    ratios = torch.where(left, d.unsqueeze(0), upper.unsqueeze(0))  # [i, j]: dⱼ (j < i) or dⱼ₊₁
    del left
    ratios = ratios[:, :-1].sub_(d.unsqueeze(1)).reciprocal_().mul_(lam_minus_d[:, :-1])
    log_z2 = ratios.log_().sum(1) + (lam_minus_d[:, -1] / rho).log()
    del ratios
    z_hat = torch.exp(0.5 * log_z2) * torch.sign(z)
    vectors = lam_minus_d.reciprocal_().mul_(-z_hat.unsqueeze(1))  # [i, j]: ẑᵢ / (dᵢ − μⱼ)
    vectors.div_(torch.linalg.vector_norm(vectors, dim=0, keepdim=True))
    return vectors


def _model_root(
    c: torch.Tensor, q: torch.Tensor, s: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """The root in (a, b) of c + q/(a − τ) + s/(b − τ) (q, s ≥ 0; b = inf: no second pole),
    i.e. of c(a − τ)(b − τ) + q(b − τ) + s(a − τ) = 0, by the cancellation-free formula."""
    one_pole = torch.isinf(b)
    finite_b = torch.where(one_pole, torch.zeros_like(b), b)
    # c τ² − (c(a + b) + q + s) τ + (c a b + q b + s a) = 0
    qa = c
    qb = -(c * (a + finite_b) + q + s)
    qc = c * a * finite_b + q * finite_b + s * a
    disc = (qb * qb - 4 * qa * qc).clamp_min(0.0).sqrt()
    big = -(qb + torch.copysign(disc, qb)) / 2
    r1, r2 = big / qa, qc / big
    inside1 = (r1 > a) & (r1 < finite_b)
    two = torch.where(inside1, r1, r2)
    one = a + q / c  # c + q/(a − τ) = 0
    return torch.where(one_pole, one, two)
