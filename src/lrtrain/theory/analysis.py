"""What the lesson only shows, computed: the closed-form optimum, the Hessian spectrum and the
learning rates at which gradient descent stops being monotone and stops converging.

Everything here is float64 on the CPU, computed once per run from the data in chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from lrtrain.config.schema import OptimizerConfig
from lrtrain.data import stats as st
from lrtrain.data.dataset import Dataset
from lrtrain.data.distributed import SINGLE, World
from lrtrain.data.spectrum import (
    condition_number,
    hessian_eigenvalues,
    hessian_spectrum,
    is_singular,
)

__all__ = ["condition_number", "hessian_eigenvalues"]  # re-exported: part of the analysis

VERDICTS = ("monotone", "oscillating", "diverged")
AT_LIMIT = 1e-9  # a rate this close (relatively) to a regime's limit is at it
ARRAYS = ("hessian", "eigenvectors")  # Analysis fields of p × p numbers
EXACT_VECTORS = 200  # parameters up to which a run keeps H's eigenvectors in float64


@dataclass
class Analysis:
    """The quadratic the optimizer descends, and the learning-rate limits it implies.

    ``theta_star``/``loss_star`` are the least-squares optimum (what the contours are centred
    on); ``target`` is where the optimizer converges, which differs only with weight decay
    (ridge). Learning-rate limits account for momentum, Nesterov and weight decay.
    """

    hessian: np.ndarray  # [p, p] float64, p = d + 1 (saved in arrays.npz, not summary.json)
    eigenvalues: list[float]  # ascending
    eigenvectors: np.ndarray  # [p, p]: column i belongs to eigenvalues[i] (arrays.npz)
    condition_number: float  # inf when the problem is singular
    critical_lr: float
    monotone_lr_limit: float
    # η* = 2/(λ_min+λ_max): the constant lr whose slowest mode contracts fastest, (κ−1)/(κ+1)
    # per step — the best rate in the long run, not the fewest steps to a given gap
    asymptotically_optimal_lr: float
    theta_star: list[float]  # [w_0, …, w_{d-1}, b]
    loss_star: float
    target_theta: list[float]
    target_loss: float
    method: str  # how the optimum was computed
    rank: int
    momentum: float
    nesterov: bool
    weight_decay: float
    # the smallest relative gap training in its dtype can resolve (set when a target is asked)
    gap_floor: float | None = None

    @property
    def singular(self) -> bool:
        return self.rank < len(self.theta_star)

    def predict(self, lr: float) -> str:
        """Predicted verdict of full-batch gradient descent at ``lr``. A rate at the monotone
        limit — within ``AT_LIMIT`` of it, as η* = 2/(λ_min + λ_max) is when κ = 1 (any one
        standardised feature), up to the eigenvalues' rounding — takes the steepest direction
        to the optimum in one step: nothing is left there to flip sign, so it is monotone."""
        if lr >= self.critical_lr:
            return "diverged"
        if lr > self.monotone_lr_limit * (1 + AT_LIMIT):
            return "oscillating"
        return "monotone"

    def for_optimizer(self, momentum: float, nesterov: bool) -> Analysis:
        """The same problem analysed for another momentum setting."""
        lam = [lam + self.weight_decay for lam in self.eigenvalues]
        monotone, critical, optimal = lr_limits(max(min(lam), 0.0), max(lam), momentum, nesterov)
        return replace(
            self,
            momentum=momentum,
            nesterov=nesterov,
            monotone_lr_limit=monotone,
            critical_lr=critical,
            asymptotically_optimal_lr=optimal,
        )

    def to_json(self) -> dict[str, Any]:
        """The analysis for summary.json: O(p) numbers; the p × p arrays (:attr:`arrays`) go to
        the run's arrays.npz."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ARRAYS}
        out["hessian_eigenvalues"] = out.pop("eigenvalues")
        if not math.isfinite(self.condition_number):
            out["condition_number"] = None
        return out

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """What the run directory keeps of the p × p arrays: H's eigenvectors alone (H is
        V diag(λ) Vᵀ, λ in the summary) — in float32 beyond EXACT_VECTORS parameters, where
        only the figures read them (the explore page, which iterates them exactly, stops
        there): 16 MB at d = 2 000, where H and V in float64 were 64 MB."""
        vectors = np.asarray(self.eigenvectors, dtype=np.float64)
        if len(vectors) > EXACT_VECTORS:
            vectors = vectors.astype(np.float32)
        return {"eigenvectors": vectors}

    @property
    def top_eigenvector(self) -> np.ndarray:
        """H's eigenvector of λ_max: the direction that oscillates first."""
        return self.eigenvectors[:, -1]


def lr_limits(
    lam_min: float, lam_max: float, momentum: float = 0.0, nesterov: bool = False
) -> tuple[float, float, float]:
    """(monotone limit, critical lr, optimal constant lr) for SGD on a quadratic.

    Each eigen-mode λ obeys a linear recurrence; with a = ηλ its characteristic polynomial is
      heavy ball (PyTorch's momentum):  z² − (1 + μ − a) z + μ
      Nesterov (PyTorch's form):        z² − (1 + μ)(1 − a) z + μ(1 − a).
    A root reaches z = −1, the edge of stability, at a = 2(1 + μ), resp. 2(1 + μ)/(1 + 2μ); both
    roots stay real and positive (no sign flips: monotone) up to a = (1 − √μ)², resp.
    ((1 − μ)/(1 + μ))². With μ = 0 these are the familiar 2/λ_max and 1/λ_max.
    """
    mu = momentum
    if nesterov:
        critical = 2 * (1 + mu) / (1 + 2 * mu)
        monotone = ((1 - mu) / (1 + mu)) ** 2
    else:
        critical = 2 * (1 + mu)
        monotone = (1 - math.sqrt(mu)) ** 2
    if lam_max <= 0:
        return math.inf, math.inf, math.inf
    optimal = 2 / (lam_min + lam_max)
    return monotone / lam_max, critical / lam_max, optimal


def analyse(x: torch.Tensor, y: torch.Tensor, optimizer: OptimizerConfig) -> Analysis:
    """Closed form, Hessian spectrum and learning-rate limits for data (x [N, d], y [N, 1])
    held in memory, taken as they are (in float64)."""
    names = [f"x_{i}" for i in range(x.shape[1])]
    return analyse_dataset(Dataset(x, y, names, "y"), optimizer)


def analyse_dataset(dataset: Dataset, optimizer: OptimizerConfig) -> Analysis:
    """:func:`analyse` for a loaded data set: from the exact answer its loader computed (the
    float64 statistics of the source values, over every process's rows), or — for a data set
    built by hand from tensors — from those tensors."""
    exact = dataset.answer()
    stats = exact.stats
    n, dim = stats.n, stats.d + 1
    spectrum = hessian_spectrum(stats)
    hessian = spectrum.hessian
    eig = spectrum.values
    wd = optimizer.weight_decay
    eff = (eig + wd).clamp_min(0.0)  # weight decay adds wd·I to the Hessian
    lam_min, lam_max = float(eff[0]), float(eff[-1])
    singular = is_singular(spectrum)
    condition = lam_max / lam_min if lam_min > 0 and (wd > 0 or not singular) else math.inf
    theta, loss_star = exact.theta_star, exact.loss_star
    if wd > 0:
        # Gradient descent on mse + (wd/2)|θ|² (PyTorch's weight decay) converges to ridge;
        # its loss is exact from the quadratic form about θ*.
        ridge = hessian + wd * torch.eye(dim, dtype=torch.float64)
        target = torch.linalg.solve(ridge, 2.0 * stats.xty / n)
        target_loss = loss_star + 0.5 * float((target - theta) @ hessian @ (target - theta))
    else:
        target, target_loss = theta, loss_star
    # momentum: auto is resolved from this analysis (auto_settings), then for_optimizer
    momentum = 0.0 if optimizer.momentum == "auto" else optimizer.momentum_value
    monotone, critical, optimal = lr_limits(lam_min, lam_max, momentum, optimizer.nesterov)
    return Analysis(
        hessian=hessian.numpy(),
        eigenvalues=eig.tolist(),
        eigenvectors=spectrum.vectors.numpy(),
        condition_number=condition,
        critical_lr=critical,
        monotone_lr_limit=monotone,
        asymptotically_optimal_lr=optimal,
        theta_star=theta.tolist(),
        loss_star=loss_star,
        target_theta=target.tolist(),
        target_loss=target_loss,
        method=exact.method,
        rank=exact.rank,
        momentum=momentum,
        nesterov=optimizer.nesterov,
        weight_decay=wd,
    )


def gap_floor(
    dataset: Dataset, analysis: Analysis, world: World = SINGLE, target_gap: float = 0.0
) -> float:
    """The smallest relative optimality gap that training in the data set's dtype can see:
    the loss at θ* as training computes it — on the rows rounded to the dtype, in the dtype's
    arithmetic — against the exact loss*, and never below two units of the dtype's rounding.
    In float32 this is the float32 rounding of the data itself; in float64 it is negligible:
    where :func:`gap_floor_bound` — from the statistics alone — lies below ``target_gap``
    already, the floor cannot move the target, and the bound is returned without reading a
    row (float64 rows, nearly always; a read of the rows is ~1.5 reads of the data)."""
    dtype = dataset.dtype
    stats = dataset.answer().stats
    # relative to what training's gap is relative to: loss*, or where that is zero (noiseless
    # data) the loss at the start, here at θ = 0 (yᵀy/N). Relative to a zero loss* alone, the
    # rounding at θ* made the floor ~1e14 and a noiseless fit "converged" after one step
    start = float(stats.yty) / stats.n if stats.n else 0.0
    scale = gap_scale(analysis.target_loss, start)
    if scale > 0:
        bound = gap_floor_bound(stats, analysis, dtype) / scale
        if bound <= target_gap:
            return max(bound, 2 * torch.finfo(dtype).eps)
    theta = torch.tensor(analysis.target_theta, dtype=dtype)
    total = torch.zeros(1, dtype=torch.float64)
    for x, y in dataset.chunks(st.CHUNK_ROWS):
        r = x @ theta[:-1] + theta[-1] - y.reshape(-1)
        total += float((r * r).sum())
    measured = float(world.all_sum(total)) / dataset.n
    if not scale > 0:
        return 2 * torch.finfo(dtype).eps
    return max(abs(measured - analysis.target_loss) / scale, 2 * torch.finfo(dtype).eps)


def gap_floor_bound(stats: st.Stats, analysis: Analysis, dtype: torch.dtype) -> float:
    """A bound on |the loss at the target θ as :func:`gap_floor` computes it − the exact one|,
    from the statistics (Higham's γ_k = ku/(1 − ku), u the dtype's unit roundoff): each residual
    r = x·w + b − y, its values rounded to the dtype (standardised: 3 roundings), is off by at
    most γ_k·a with k = d + 5 and a = Σ|x_j w_j| + |b| + |y|, where Σa² ≤ (d + 2)(Σ θ_j² (XᵀX)_jj
    + yᵀy) (Cauchy–Schwarz); so Σr² is off by at most 2γ_k √(S Σa²) + γ_k² Σa², S = N·loss, and
    its sum, taken pairwise as torch sums, by γ_m of it (m = ⌈log₂ N⌉ + 2 + the chunks)."""
    n, d = stats.n, stats.d
    if n == 0:
        return 0.0
    u = torch.finfo(dtype).eps / 2

    def gamma(k: int) -> float:
        return k * u / (1 - k * u) if k * u < 1 else math.inf

    theta = torch.tensor(analysis.target_theta, dtype=torch.float64)
    a2 = (d + 2) * (float(theta.square() @ stats.xtx.diagonal()) + float(stats.yty))
    s = n * max(analysis.target_loss, 0.0)
    g = gamma(d + 5)
    chunks = -(-n // st.CHUNK_ROWS)
    summed = gamma(math.ceil(math.log2(max(n, 2))) + 2 + chunks)
    off = 2 * g * math.sqrt(s * a2) + g * g * a2 + summed * (math.sqrt(s) + g * math.sqrt(a2)) ** 2
    return off / n


def observed_verdict(
    loss: torch.Tensor, theta: torch.Tensor, status: str, top_eigenvector: np.ndarray
) -> str:
    """Read the regime off a trajectory (consecutive steps): diverged if the loss blew up or
    grew; oscillating if successive updates along H's top eigenvector alternate in sign;
    otherwise monotone. Updates along it smaller than 1e-4 of the largest step (of θ, in any
    direction) are rounding noise, ignored — also where the top eigenvector is a direction
    training does not move in (a centred target's bias, which rounding alone stirs).
    """
    if status == "diverged" or not bool(torch.isfinite(loss).all()):
        return "diverged"
    if len(loss) > 1 and float(loss[-1]) > float(loss[0]):
        return "diverged"
    u = theta @ torch.from_numpy(top_eigenvector)
    du = u[1:] - u[:-1]
    if len(du) < 2:
        return "monotone"
    largest_step = float((theta[1:] - theta[:-1]).norm(dim=-1).max())
    significant = du.abs() > 1e-4 * largest_step
    pairs = significant[1:] & significant[:-1]
    flips = (torch.sign(du[1:]) != torch.sign(du[:-1])) & pairs
    n_pairs = int(pairs.sum())
    if n_pairs and int(flips.sum()) > n_pairs // 2:
        return "oscillating"
    return "monotone"


def divergence_step(history: dict[str, torch.Tensor]) -> int:
    """Where a diverged run diverged: the first logged step whose loss is above the initial
    loss (or not finite) — from there on, training had made things worse than not training
    at all. Every run judged diverged has one: its last loss is above its first, or it was
    stopped by the divergence guard (non-finite, or 10⁶ × the initial loss)."""
    loss, steps = history["loss"], history["step"]
    worse = ~(loss <= loss[0])  # NaN compares False: it counts as worse
    worse[0] = False
    if not bool(worse.any()):
        return int(steps[-1])
    return int(steps[int(torch.nonzero(worse)[0])])


def explain(analysis: Analysis, lr: float) -> str:
    """One sentence saying why gradient descent at ``lr`` behaves as it does."""
    lam_max, lam_min = analysis.eigenvalues[-1], analysis.eigenvalues[0]
    ratio = lr / analysis.critical_lr
    verdict = analysis.predict(lr)
    head = (
        f"lr {lr:.4g} is {ratio:.3g}× the critical lr {analysis.critical_lr:.4g} "
        f"(2/λ_max, λ_max = {lam_max:.4g})"
    )
    if analysis.momentum:
        head = (
            f"lr {lr:.4g} is {ratio:.3g}× the critical lr {analysis.critical_lr:.4g} "
            f"for momentum {analysis.momentum:g}{' (Nesterov)' if analysis.nesterov else ''}"
        )
    if verdict == "diverged":
        return (
            f"{head}: the steepest direction grows every step, so training diverges; "
            f"use lr < {analysis.critical_lr:.4g}, e.g. η* = "
            f"{analysis.asymptotically_optimal_lr:.4g} (the best asymptotic rate)"
        )
    if verdict == "oscillating":
        return (
            f"{head}: the steepest direction overshoots and flips sign each step but shrinks, "
            f"so the loss oscillates towards the optimum"
        )
    slow = abs(1 - lr * (lam_min + analysis.weight_decay)) if not analysis.momentum else None
    tail = ""
    if slow is not None and 0 < slow < 1:
        tail = (
            f"; the flattest direction (λ_min = {lam_min:.4g}) keeps {slow:.6g} of its error "
            f"per step, about {math.log(10) / -math.log(slow):.0f} steps per decimal digit"
        )
    return f"{head}: every direction shrinks monotonically{tail}"


# --- Automatic step size and momentum (optimizer.lr: auto, optimizer.momentum: auto) ---------


@dataclass(frozen=True)
class AutoSettings:
    """The step size (and momentum) ``auto`` chose, and the rule that chose them."""

    lr: float
    momentum: float
    nesterov: bool
    rule: str
    rate: float  # the worst mode's error factor per step (spectral radius) at these settings


def curvature_range(analysis: Analysis) -> tuple[float, float]:
    """(λ_min, λ_max) of the directions gradient descent can move in: eigenvalues of H plus
    weight decay, the zero ones of a singular problem left out (they never change)."""
    wd = analysis.weight_decay
    eff = [lam + wd for lam in analysis.eigenvalues]
    top = max(eff)
    moving = [lam for lam in eff if lam > top * len(eff) * 2.2e-16]
    return min(moving), top


def auto_settings(analysis: Analysis, momentum: float | None, nesterov: bool) -> AutoSettings:
    """The fastest constant settings on this quadratic (``momentum=None``: momentum is auto too).

    - plain gradient descent: η* = 2/(λ_min + λ_max), rate (κ − 1)/(κ + 1);
    - heavy ball, both auto (Polyak): η = 4/(√λ_max + √λ_min)², μ = ((√κ − 1)/(√κ + 1))²,
      rate (√κ − 1)/(√κ + 1), the lower bound for first-order methods;
    - Nesterov, both auto: PyTorch's Nesterov step has the modes of Nesterov's accelerated
      gradient, z² − (1 + μ)(1 − ηλ)z + μ(1 − ηλ) (see ``lr_limits``), so the textbook
      strongly convex setting applies: η = 1/λ_max, μ = (√κ − 1)/(√κ + 1), rate about 1 − 1/√κ;
    - a fixed momentum μ > 0 with lr auto: the η that minimises the worst mode's rate for that
      μ, found numerically from the same characteristic polynomials.
    """
    lam_min, lam_max = curvature_range(analysis)
    kappa = lam_max / lam_min
    root = math.sqrt(kappa)
    if momentum is None and nesterov:
        lr, mu = 1 / lam_max, (root - 1) / (root + 1)
        rule = "Nesterov: lr = 1/λ_max, momentum = (√κ−1)/(√κ+1)"
    elif momentum is None:
        lr = 4 / (math.sqrt(lam_max) + math.sqrt(lam_min)) ** 2
        mu = ((root - 1) / (root + 1)) ** 2
        rule = "Polyak heavy ball: lr = 4/(√λ_max+√λ_min)², momentum = ((√κ−1)/(√κ+1))²"
    elif momentum == 0:
        lr, mu = 2 / (lam_min + lam_max), 0.0
        rule = "η* = 2/(λ_min+λ_max)"
    else:
        mu = momentum
        lr = _best_lr_for_momentum(lam_min, lam_max, mu, nesterov)
        rule = f"the lr minimising the worst mode's rate at momentum {mu:g}"
    rate = convergence_rate(lr, [lam_min, lam_max], mu, nesterov)
    return AutoSettings(lr, mu, nesterov, rule, rate)


def mode_rate(a: float, lam: float, lr: float, momentum: float, nesterov: bool) -> float:
    """Spectral radius of one eigen-mode's iteration (a = ηλ) for PyTorch's SGD: the factor by
    which that mode's error shrinks per step in the long run."""
    mu = momentum
    if mu == 0:
        return abs(1 - a)
    if nesterov:
        # state (error e, buffer v): v' = μv + λe ; e' = e − η(λe + μv')
        (m00, m01), (m10, m11) = (1 - a * (1 + mu), -lr * mu * mu), (lam, mu)
    else:
        # v' = μv + λe ; e' = e − ηv'
        (m00, m01), (m10, m11) = (1 - a, -lr * mu), (lam, mu)
    return _spectral_radius(m00 + m11, m00 * m11 - m01 * m10)


def _spectral_radius(trace: float, det: float) -> float:
    """The largest |z| over the roots of z² − trace·z + det (a 2 × 2 matrix's eigenvalues),
    in closed form: an auto setting's search evaluates it hundreds of times, and a LAPACK call
    costs ~100 µs where this costs ~1."""
    half = trace / 2
    disc = half * half - det
    if disc < 0:  # a complex pair, z z̄ = det
        return math.sqrt(det)
    # the larger root without cancellation, the other from the product of the roots
    big = half + math.copysign(math.sqrt(disc), half)
    if big == 0:  # trace and det both 0: a double root at 0
        return 0.0
    return max(abs(big), abs(det / big))


def convergence_rate(lr: float, eigenvalues: list[float], momentum: float, nesterov: bool) -> float:
    """The worst mode's rate over ``eigenvalues`` (≥ 1 means no convergence)."""
    return max(mode_rate(lr * lam, lam, lr, momentum, nesterov) for lam in eigenvalues)


def _best_lr_for_momentum(lam_min: float, lam_max: float, mu: float, nesterov: bool) -> float:
    # Each mode's rate is quasi-convex in ηλ, so the worst one is at λ_min or λ_max and the
    # worst rate is quasi-convex in η: a golden-section search on log η finds its minimum.
    _, critical, _ = lr_limits(lam_min, lam_max, mu, nesterov)
    lo, hi = math.log(critical * 1e-6), math.log(critical)
    golden = (math.sqrt(5) - 1) / 2

    def worst(log_lr: float) -> float:
        return convergence_rate(math.exp(log_lr), [lam_min, lam_max], mu, nesterov)

    for _ in range(200):
        left, right = hi - golden * (hi - lo), lo + golden * (hi - lo)
        if worst(left) <= worst(right):
            hi = right
        else:
            lo = left
    return math.exp((lo + hi) / 2)


# loss* counts as zero below this fraction of the initial loss: (100 u)², u float64's unit
# roundoff — the rounding of residuals as large as the initial ones. It was 1e-12, which also
# took a true loss* for zero wherever the start was far (y ≈ 1e8 from θ = 0: an initial loss
# of 1e16 against a loss* of 24), and such a fit "converged" 5 000 × above loss*
ZERO_LOSS = 1e-28


def gap_scale(loss_ref: float, loss0: float) -> float:
    """What the optimality gap is relative to: the optimal loss, or — when that is zero (noiseless
    data: nothing to be relative to, :data:`ZERO_LOSS`) — the initial loss."""
    return loss_ref if loss_ref > ZERO_LOSS * loss0 else loss0


HOPELESS_KAPPA = 1e8  # from here on plain gradient descent needs ~κ steps per digit: hopeless


def warnings_for(
    analysis: Analysis, standardized: bool, target_gap: float | None = None, dtype: str = ""
) -> list[str]:
    """What the user should know before trusting gradient descent on this problem."""
    out = []
    floor = analysis.gap_floor
    if target_gap is not None and floor is not None and target_gap < floor:
        out.append(
            f"train.target_gap {target_gap:g} lies below what {dtype or 'this dtype'} can "
            f"resolve on this data (a relative gap of about {floor:.2g}: the loss at the exact "
            f"optimum, computed on the rows rounded to {dtype or 'the dtype'}, is that far from "
            f"the exact loss*); training stops at that floor instead — "
            + (
                "set train.dtype: float64 to go further"
                if dtype != "float64"
                else "no dtype resolves further: the rows themselves are rounded to float64"
            )
        )
    if analysis.singular:
        out.append(
            "the problem is singular (a feature is constant, or features are collinear): the "
            "closed form is the minimum-norm pseudo-inverse solution, and gradient descent "
            "never moves along the flat directions"
        )
    kappa = analysis.condition_number
    if math.isfinite(kappa) and kappa >= HOPELESS_KAPPA:
        per_digit = kappa * math.log(10) / 4
        fix = (
            "remove or combine nearly collinear features"
            if standardized
            else "set data.standardize: true (it rescales the features; the parameters are "
            "reported in the original units too)"
        )
        out.append(
            f"condition number κ = {kappa:.3g}: even at the optimal lr, plain gradient descent "
            f"needs about {per_digit:.2g} steps per decimal digit of accuracy — hopeless; {fix}, "
            "or use optimizer.lr: auto with optimizer.momentum: auto (about √κ times fewer steps)"
        )
    return out
