"""The statistics of the least-squares fit (summary.json ``statistics``): R², the residual
standard error, and per coefficient its standard error, t, p and 95% interval — the plain OLS
formulas, from the float64 statistics the analysis already made (no pass over the data).

Stably: the slopes' covariance is σ̂² C⁻¹ with C = Σ (x − x̄)(x − x̄)ᵀ, centred and inverted
through the correlation matrix (scaled to a unit diagonal, so the features' units cost no
precision); the intercept's is σ̂²(1/N + x̄ᵀC⁻¹x̄) and their covariance −σ̂² C⁻¹x̄ — never the
inverse of the uncentred X̃ᵀX̃, whose condition number is far worse. With standardised features
the estimates and their covariance are mapped back to the original units (θ_orig = J θ_std,
cov J Σ Jᵀ). p-values and t quantiles come from Student's t distribution through the regularised
incomplete beta function, computed here (:func:`t_sf`; tested against scipy): importing
scipy.stats for two numbers would add 1.3 s (scipy.special 0.4 s) to every fit's start.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lrtrain.runs.summaries import Coefficient, FitStatistics

if TYPE_CHECKING:
    import torch

    from lrtrain.data.dataset import Standardization
    from lrtrain.data.stats import Exact, Stats

LEVEL = 0.95  # the intervals' confidence
EIGEN_INVERSE_MAX_COND = 1e3  # κ(C) up to which C⁻¹ comes from C's eigenpairs (κ²ε ≤ 2e-10)


def fit_statistics(
    exact: Exact,
    names: list[str],
    standardization: Standardization | None = None,
    weight_decay: float = 0.0,
) -> FitStatistics:
    """The OLS statistics of ``exact`` (its stats and θ*); ``names`` the features'. With
    ``standardization`` (the units trained in) in the data's own units."""
    s = exact.stats
    n, d = s.n, s.d
    p = d + 1
    rss = max(exact.loss_star * n, 0.0)
    dof = n - p
    inverse = _centred_inverse(s.cov.numpy(), s.known_cov_eigen())
    full_rank = exact.rank == p and inverse is not None
    notes = []
    if weight_decay:
        notes.append(
            "these are the least-squares estimate's; the trained ridge estimate (weight decay) "
            "is biased towards 0, so standard errors, t and p are not given for it"
        )
    theta = exact.theta_star.numpy().astype(np.float64)
    cov = None
    sigma = math.sqrt(rss / dof) if dof > 0 else None
    if not full_rank:
        notes.append("the features are linearly dependent: the coefficients are not identified")
    elif sigma is not None and inverse is not None:
        x_bar = s.x_mean.numpy()
        cov = np.empty((p, p))
        cov[:d, :d] = inverse
        cov[:d, d] = cov[d, :d] = -inverse @ x_bar
        cov[d, d] = 1.0 / n + x_bar @ inverse @ x_bar
        cov *= sigma**2
    if standardization is not None:
        # θ_data = Jθ + (0, …, 0, ȳ): the target's centring shifts the bias, not its spread
        jacobian = np.eye(p)
        scale, mean = np.asarray(standardization.scale), np.asarray(standardization.mean)
        jacobian[:d, :d] = np.diag(1.0 / scale)
        jacobian[d, :d] = -mean / scale
        theta = jacobian @ theta
        theta[d] += standardization.target_mean
        cov = None if cov is None else jacobian @ cov @ jacobian.T
    tss = _total_sum_of_squares(s)
    r2 = 1.0 - rss / tss if tss > 0 else None
    adj = 1.0 - (1.0 - r2) * (n - 1) / dof if r2 is not None and dof > 0 else None
    quantile = t_quantile(0.5 + LEVEL / 2, dof) if dof > 0 else math.nan
    coefficients = []
    for i, feature in enumerate([*names, None]):
        estimate = float(theta[i])
        se = math.sqrt(cov[i, i]) if cov is not None and cov[i, i] >= 0 else None
        t = estimate / se if se else None
        coefficients.append(Coefficient(
            name="b" if feature is None else f"w_{i}", feature=feature, estimate=estimate,
            se=se, t=t,
            p=2.0 * t_sf(abs(t), dof) if t is not None else None,
            ci_low=estimate - quantile * se if se is not None else None,
            ci_high=estimate + quantile * se if se is not None else None,
        ))  # fmt: skip
    return {
        "estimator": "ols",
        "note": "; ".join(notes) or None,
        "n": n,
        "dof": dof,
        "r2": r2,
        "adj_r2": adj,
        "rmse": math.sqrt(rss / n),
        "sigma": sigma,
        "level": LEVEL,
        "coefficients": coefficients,
        "coefficients_file": None,
    }


def _centred_inverse(
    cov: np.ndarray, eigen: tuple[torch.Tensor, torch.Tensor] | None = None
) -> np.ndarray | None:
    """C⁻¹ through the correlation matrix, C = D R D with D the columns' standard deviations:
    features on scales 10⁵ apart (Longley) make C far worse conditioned than R, and only R's
    conditioning — the collinearity — is the data's. None when C is singular.

    Where C's eigendecomposition is made already (the analysis's) and C is well-conditioned,
    C⁻¹ = QΛ⁻¹Qᵀ is one product: each entry then within κ²ε of its value, ≤ 2e-10 below
    :data:`EIGEN_INVERSE_MAX_COND`. Otherwise R⁻¹ from R's Cholesky factor; where the factor
    says R is near-singular (a pivot ratio below 10⁻⁷·⁵) or does not exist, R's eigenvalues
    decide."""
    if eigen is not None and cov.size:
        values, vectors = (t.numpy() for t in eigen)
        if values[0] > 0 and values[-1] <= values[0] * EIGEN_INVERSE_MAX_COND:
            return np.asarray((vectors / values) @ vectors.T)
    sd = np.sqrt(np.diag(cov))
    if cov.size and not np.all(sd > 0):
        return None
    scale = np.outer(sd, sd)
    correlation = cov / scale
    if cov.size:
        try:
            low = np.linalg.cholesky(correlation)
        except np.linalg.LinAlgError:
            low = None
        if low is not None:
            pivots = np.diag(low)
            if pivots.min() ** 2 > pivots.max() ** 2 * 1e-15:
                inv_low = np.linalg.inv(low)
                return (inv_low.T @ inv_low) / scale
    values, vectors = np.linalg.eigh(correlation)
    if cov.size and not values[0] > values[-1] * 1e-15:
        return None
    return ((vectors / values) @ vectors.T) / scale


def _total_sum_of_squares(s: Stats) -> float:
    """Σ (y − ȳ)²: the residual sum of squares of the constant predictor ȳ (the statistics
    hold z = y − X̃θ_ref: :attr:`~lrtrain.data.stats.Stats.target_mean`)."""
    import torch

    from lrtrain.data.stats import sum_of_squares

    constant = torch.zeros(s.d + 1, dtype=torch.float64)
    constant[s.d] = s.target_mean
    return sum_of_squares(s, constant)


# --- Student's t distribution -----------------------------------------------------------------


def t_sf(t: float, dof: float) -> float:
    """P(T > t) for Student's t with ``dof`` degrees of freedom: for t ≥ 0,
    ½ I_x(dof/2, ½) with x = dof/(dof + t²) — small for large t, so tiny p-values keep their
    relative precision. x, 1 − x and their logarithms are formed without cancelling."""
    if t < 0:
        return 1.0 - t_sf(-t, dof)
    if math.isinf(t):
        return 0.0
    ratio = t * t / dof
    x, one_minus_x = 1.0 / (1.0 + ratio), ratio / (1.0 + ratio)
    log_x = -math.log1p(ratio)
    log_1mx = math.log(ratio) + log_x if ratio > 0 else -math.inf
    a = dof / 2.0
    log_front = a * log_x + 0.5 * log_1mx - _log_beta_half(a)
    if x < (a + 1.0) / (a + 1.5 + 1.0):
        return 0.5 * math.exp(log_front) * _beta_fraction(a, 0.5, x) / a
    return 0.5 * (1.0 - math.exp(log_front) * _beta_fraction(0.5, a, one_minus_x) / 0.5)


def _log_beta_half(a: float) -> float:
    """ln B(a, ½) = ln Γ(½) − (ln Γ(a + ½) − ln Γ(a)); for large a the difference of two
    large ln Γ would cancel, so it comes from its asymptotic series (error < 1e-18 from 50)."""
    if a < 50.0:
        ratio = math.lgamma(a + 0.5) - math.lgamma(a)
    else:
        ratio = (
            0.5 * math.log(a) - 1.0 / (8.0 * a) + 1.0 / (192.0 * a**3) - 1.0 / (640.0 * a**5)
            + 17.0 / (14336.0 * a**7)
        )  # fmt: skip
    return 0.5 * math.log(math.pi) - ratio


def t_quantile(q: float, dof: float) -> float:
    """The t with P(T ≤ t) = q, for q in (½, 1): Newton's steps on :func:`t_sf` from the normal
    quantile, with the density in closed form: 3–8 evaluations of the tail at the usual levels,
    where bisection took ~60 (at 2M degrees of freedom each is ~70 µs; up to ~40 for the far
    tails of one or two degrees of freedom, which the normal start underestimates). The tail
    is convex in t > 0, so a step from below never overshoots; one from above may fall below
    the root, and a step that leaves the bracket kept so far is bisected instead."""
    from statistics import NormalDist  # ~5 ms of imports (decimal, fractions): not at start-up

    tail = 1.0 - q
    log_scale = -0.5 * math.log(dof) - _log_beta_half(dof / 2.0)  # the density's constant
    lo, hi, last = 0.0, math.inf, math.inf
    t = max(NormalDist().inv_cdf(q), 1e-3)
    for _ in range(200):
        excess = t_sf(t, dof) - tail
        if excess == 0.0:
            return t
        lo, hi = (t, hi) if excess > 0 else (lo, t)
        density = math.exp(log_scale - 0.5 * (dof + 1.0) * math.log1p(t * t / dof))
        step = excess / density if density > 0 else math.inf
        if abs(step) <= 1e-14 * t or (abs(step) <= 1e-9 * t and 2 * abs(step) >= abs(last)):
            # converged; or stalled where the tail's own rounding is larger than 1e-14 of t
            # (millions of degrees of freedom: ~1e-12), the steps then no longer shrinking
            return t + step if lo < t + step < hi else t
        last = step
        t = t + step if lo < t + step < hi else 2.0 * t if math.isinf(hi) else 0.5 * (lo + hi)
    return t


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz), quick for x < (a + 1)/(a + b + 2)."""
    tiny, eps = 1e-300, 1e-16
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    value = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            value *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return value
