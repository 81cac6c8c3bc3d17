"""What the lesson only shows, computed: the closed-form optimum, the Hessian spectrum and the
learning rates at which gradient descent stops being monotone and stops converging (DESIGN §5).

Everything here is float64 on the CPU, computed once per run from the data in chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import torch

from lrtrain.config import OptimizerConfig
from lrtrain.data import Dataset
from lrtrain.distributed import SINGLE, World

VERDICTS = ("monotone", "oscillating", "diverged")
_CHUNK_ROWS = 1 << 16
_LSTSQ_MAX_BYTES = 256 * 2**20  # above this, the optimum comes from the sufficient statistics
_NORMAL_EQUATIONS_MAX_COND = 1e6  # above this κ of the centred covariance, SVD of the data


@dataclass
class Stats:
    """Sufficient statistics of least squares with a bias column X̃ = [X 1], in float64.

    They are accumulated about a shift (the first rows' means), so that the centred moments stay
    accurate for features like 10⁶ ± 1, where X̃ᵀX̃ − (Σx)(Σx)ᵀ/N would cancel to noise.
    """

    n: int
    xtx: torch.Tensor  # X̃ᵀX̃, [d+1, d+1]
    xty: torch.Tensor  # X̃ᵀy, [d+1]
    yty: float
    cov: torch.Tensor  # Σ (x − x̄)(x − x̄)ᵀ, [d, d]
    cxy: torch.Tensor  # Σ (x − x̄)(y − ȳ), [d]
    x_mean: torch.Tensor  # [d]
    y_mean: float
    cyy: float  # Σ (y − ȳ)²


def sufficient_stats(x: torch.Tensor, y: torch.Tensor) -> Stats:
    """Statistics of in-memory data x [N, d], y [N, 1] (any device and dtype)."""
    return _chunk_stats(
        (x[lo : lo + _CHUNK_ROWS], y[lo : lo + _CHUNK_ROWS])
        for lo in range(0, x.shape[0], _CHUNK_ROWS)
    )


def dataset_stats(dataset: Dataset, world: World = SINGLE) -> Stats:
    """Statistics of the whole data set: each process's rows in one pass (regenerated when
    streaming), combined exactly across processes."""
    return combine_stats(world.all_gather(_flat(_chunk_stats(dataset.chunks(_CHUNK_ROWS)))))


def _chunk_stats(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Stats:
    f64 = torch.float64
    x_shift = y_shift = sxx = sx = sxy = None
    n, sy, syy = 0, 0.0, 0.0
    for x, y in chunks:
        x64 = x.to(device="cpu", dtype=f64)
        y64 = y.to(device="cpu", dtype=f64).reshape(-1)
        if x_shift is None:  # the first chunk's means: the shift that keeps sums accurate
            x_shift, y_shift = x64.mean(0), float(y64.mean())
            d = x64.shape[1]
            sxx, sx, sxy = (
                torch.zeros(d, d, dtype=f64),
                torch.zeros(d, dtype=f64),
                torch.zeros(d, dtype=f64),
            )
        xc, yc = x64 - x_shift, y64 - y_shift
        sxx += xc.T @ xc
        sx += xc.sum(0)
        sxy += xc.T @ yc
        sy += float(yc.sum())
        syy += float(yc @ yc)
        n += x64.shape[0]
    assert x_shift is not None and sxx is not None and sx is not None and sxy is not None
    dx, dy = sx / n, sy / n  # means of the shifted data
    cov = sxx - n * torch.outer(dx, dx)
    cxy = sxy - n * dx * dy
    return _stats(n, cov, cxy, syy - n * dy * dy, x_shift + dx, y_shift + dy)


def _stats(
    n: int, cov: torch.Tensor, cxy: torch.Tensor, cyy: float, x_mean: torch.Tensor, y_mean: float
) -> Stats:
    """Stats from the centred moments, with the uncentred ones the Hessian is built from."""
    d = cov.shape[0]
    f64 = torch.float64
    xtx = torch.empty(d + 1, d + 1, dtype=f64)
    xtx[:d, :d] = cov + n * torch.outer(x_mean, x_mean)
    xtx[:d, d] = xtx[d, :d] = n * x_mean
    xtx[d, d] = n
    xty = torch.cat([cxy + n * x_mean * y_mean, torch.tensor([n * y_mean], dtype=f64)])
    yty = cyy + n * y_mean * y_mean
    return Stats(int(n), xtx, xty, yty, cov, cxy, x_mean, y_mean, cyy)


def _flat(stats: Stats) -> torch.Tensor:
    """[n, x̄, ȳ, C, cxy, cyy] as one float64 vector, to gather across processes."""
    scalars = torch.tensor([stats.n, stats.y_mean, stats.cyy], dtype=torch.float64)
    return torch.cat([scalars, stats.x_mean, stats.cov.reshape(-1), stats.cxy])


def combine_stats(parts: list[torch.Tensor]) -> Stats:
    """The statistics of the union of disjoint row sets, from each set's (:func:`_flat`),
    by the pairwise-update formulas of Chan, Golub & LeVeque: centred sums are added with a
    correction for the difference of means, so no precision is lost to large offsets."""
    flat = torch.stack(parts)
    d = math.isqrt(flat.shape[1] - 2) - 1  # the length is d² + 2d + 3
    n_i, y_i, cyy_i = flat[:, 0], flat[:, 1], flat[:, 2]
    x_i = flat[:, 3 : 3 + d]
    cov_i = flat[:, 3 + d : 3 + d + d * d].reshape(-1, d, d)
    cxy_i = flat[:, 3 + d + d * d :]
    if len(parts) == 1:
        return _stats(int(n_i[0]), cov_i[0], cxy_i[0], float(cyy_i[0]), x_i[0], float(y_i[0]))
    n = n_i.sum()
    x_mean = (n_i[:, None] * x_i).sum(0) / n
    y_mean = (n_i * y_i).sum() / n
    dx, dy = x_i - x_mean, y_i - y_mean
    cov = cov_i.sum(0) + torch.einsum("k,ki,kj->ij", n_i, dx, dx)
    cxy = cxy_i.sum(0) + (n_i[:, None] * dx * dy[:, None]).sum(0)
    cyy = float(cyy_i.sum() + (n_i * dy * dy).sum())
    return _stats(int(n), cov, cxy, cyy, x_mean, float(y_mean))


def hessian_eigenvalues(stats: Stats) -> torch.Tensor:
    """Eigenvalues of H = (2/N) X̃ᵀX̃, ascending, accurate even for the smallest when κ is far
    beyond 1/ε (features like 10⁴ ± 1, where eigvalsh(H) would return rounding noise).

    X̃ᵀX̃ = MᵀM with M = [[C^½, 0], [√N x̄ᵀ, √N]] (C the centred covariance sum), so the
    eigenvalues are (2/N) σ(M)², and the SVD finds each σ to within ε·σ_max — λ_min to within
    ε·√κ relative instead of ε·κ.
    """
    n, d = stats.n, stats.cov.shape[0]
    c_eig, c_vec = torch.linalg.eigh(stats.cov)
    root = c_vec @ torch.diag(c_eig.clamp_min(0.0).sqrt()) @ c_vec.T
    m = torch.zeros(d + 1, d + 1, dtype=torch.float64)
    m[:d, :d] = root
    m[d, :d] = math.sqrt(n) * stats.x_mean
    m[d, d] = math.sqrt(n)
    sigma = torch.linalg.svdvals(m)
    return (2.0 / n * sigma**2).flip(0)


def condition_number(stats: Stats) -> float:
    """κ = λ_max/λ_min of the Hessian these statistics define (inf when singular)."""
    eig = hessian_eigenvalues(stats)
    cov_eig = torch.linalg.eigvalsh(stats.cov)
    eps = torch.finfo(torch.float64).eps
    if float(eig[0]) <= 0 or float(cov_eig[0]) <= float(cov_eig[-1]) * len(cov_eig) * eps:
        return math.inf
    return float(eig[-1] / eig[0])


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    x64 = x.to(device="cpu", dtype=torch.float64)
    return torch.cat([x64, torch.ones(x64.shape[0], 1, dtype=torch.float64)], dim=1)


@dataclass
class Analysis:
    """The quadratic the optimizer descends, and the learning-rate limits it implies.

    ``theta_star``/``loss_star`` are the least-squares optimum (what the contours are centred
    on); ``target`` is where the optimizer converges, which differs only with weight decay
    (ridge). Learning-rate limits account for momentum, Nesterov and weight decay.
    """

    hessian: list[list[float]]
    eigenvalues: list[float]  # ascending
    condition_number: float  # inf when the problem is singular
    critical_lr: float
    monotone_lr_limit: float
    optimal_lr: float
    theta_star: list[float]  # [w_0, …, w_{d-1}, b]
    loss_star: float
    target_theta: list[float]
    target_loss: float
    method: str  # how the optimum was computed
    rank: int
    momentum: float
    nesterov: bool
    weight_decay: float

    @property
    def singular(self) -> bool:
        return self.rank < len(self.theta_star)

    def predict(self, lr: float) -> str:
        """Predicted verdict of full-batch gradient descent at ``lr`` (DESIGN §5)."""
        if lr >= self.critical_lr:
            return "diverged"
        if lr >= self.monotone_lr_limit:
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
            optimal_lr=optimal,
        )

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["hessian_eigenvalues"] = out.pop("eigenvalues")
        if not math.isfinite(self.condition_number):
            out["condition_number"] = None
        return out


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
    """Closed form, Hessian spectrum and learning-rate limits for data (x [N, d], y [N, 1])."""
    names = [f"x_{i}" for i in range(x.shape[1])]
    return analyse_dataset(Dataset(x, y, names, "y"), optimizer)


def analyse_dataset(
    dataset: Dataset, optimizer: OptimizerConfig, world: World = SINGLE
) -> Analysis:
    """:func:`analyse` for a data set held in memory, in shards or regenerated (streamed):
    statistics from one pass over each process's rows, combined across processes. The SVD of
    the data, for ill-conditioned problems, needs all rows in one process's memory; elsewhere
    the optimum comes from the (centred, float64) normal equations."""
    stats = dataset_stats(dataset, world)
    n, dim = stats.n, stats.xtx.shape[0]
    hessian = 2.0 * stats.xtx / n
    eig = hessian_eigenvalues(stats)
    wd = optimizer.weight_decay
    eff = (eig + wd).clamp_min(0.0)  # weight decay adds wd·I to the Hessian
    lam_min, lam_max = float(eff[0]), float(eff[-1])
    # The normal equations of the centred statistics are exact to ~κ(cov)·1e-16; only for
    # ill-conditioned problems is the SVD of the data itself worth its extra pass (if it fits).
    cov_eig = torch.linalg.eigvalsh(stats.cov)
    # H is singular exactly when the centred covariance is (see hessian_eigenvalues).
    singular = float(cov_eig[0]) <= float(cov_eig[-1]) * dim * torch.finfo(torch.float64).eps
    well_posed = float(cov_eig[0]) > float(cov_eig[-1]) * _NORMAL_EQUATIONS_MAX_COND**-1
    held = dataset.stream is None and dataset.local_rows == n
    fits = held and n * (dim + 1) * 8 <= _LSTSQ_MAX_BYTES
    if well_posed or not fits:
        theta, rank, method = _normal_equations_optimum(stats)
    else:
        theta, rank, method = _lstsq_optimum(dataset.x, dataset.y)
    condition = lam_max / lam_min if lam_min > 0 and (wd > 0 or not singular) else math.inf
    loss_star = _mse(dataset, theta, world)
    if wd > 0:
        # Gradient descent on mse + (wd/2)|θ|² (PyTorch's weight decay) converges to ridge.
        ridge = hessian + wd * torch.eye(dim, dtype=torch.float64)
        target = torch.linalg.solve(ridge, 2.0 * stats.xty / n)
        target_loss = _mse(dataset, target, world)
    else:
        target, target_loss = theta, loss_star
    # momentum: auto is resolved from this analysis (auto_settings), then for_optimizer
    momentum = 0.0 if optimizer.momentum == "auto" else optimizer.momentum
    monotone, critical, optimal = lr_limits(lam_min, lam_max, momentum, optimizer.nesterov)
    return Analysis(
        hessian=hessian.tolist(),
        eigenvalues=eig.tolist(),
        condition_number=condition,
        critical_lr=critical,
        monotone_lr_limit=monotone,
        optimal_lr=optimal,
        theta_star=theta.tolist(),
        loss_star=loss_star,
        target_theta=target.tolist(),
        target_loss=target_loss,
        method=method,
        rank=rank,
        momentum=momentum,
        nesterov=optimizer.nesterov,
        weight_decay=wd,
    )


def _lstsq_optimum(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int, str]:
    # Centring the features first removes the bias column's collinearity with large offsets
    # (x ≈ 1e4 ± 1 would otherwise square a huge condition number), and SVD-based gelsd copes
    # with rank deficiency, returning the minimum-norm (pseudo-inverse) solution.
    x64 = x.to(device="cpu", dtype=torch.float64)
    y64 = y.to(device="cpu", dtype=torch.float64).reshape(-1, 1)
    x_mean, y_mean = x64.mean(0), y64.mean()
    centred = x64 - x_mean
    result = torch.linalg.lstsq(centred, y64 - y_mean, driver="gelsd")
    rank = int(result.rank)
    if rank < x64.shape[1]:
        full = torch.cat([x64, torch.ones(x64.shape[0], 1, dtype=torch.float64)], dim=1)
        pinv = torch.linalg.lstsq(full, y64, driver="gelsd")
        return pinv.solution.reshape(-1), int(pinv.rank), "pseudo-inverse (singular problem)"
    w = result.solution.reshape(-1)
    b = y_mean - x_mean @ w
    return torch.cat([w, b.reshape(1)]), rank + 1, "least squares (SVD, centred features)"


def _normal_equations_optimum(stats: Stats) -> tuple[torch.Tensor, int, str]:
    dim = stats.xtx.shape[0]
    result = torch.linalg.lstsq(stats.cov, stats.cxy.reshape(-1, 1), driver="gelsd")
    w = result.solution.reshape(-1)
    b = stats.y_mean - stats.x_mean @ w
    rank = int(result.rank) + 1
    method = "normal equations (centred sufficient statistics)"
    if rank < dim:
        method = "pseudo-inverse of the normal equations (singular problem)"
    return torch.cat([w, b.reshape(1)]), rank, method


def _mse(dataset: Dataset, theta: torch.Tensor, world: World) -> float:
    """The mean squared error at θ over every process's rows, in float64."""
    total = torch.zeros(1, dtype=torch.float64)
    for x, y in dataset.chunks(_CHUNK_ROWS):
        r = _with_bias(x) @ theta - y.to(device="cpu", dtype=torch.float64).reshape(-1)
        total += r @ r
    return float(world.all_sum(total)) / dataset.n


def top_eigenvector(hessian: list[list[float]]) -> torch.Tensor:
    _, vectors = torch.linalg.eigh(torch.tensor(hessian, dtype=torch.float64))
    return vectors[:, -1]


def observed_verdict(
    loss: torch.Tensor, theta: torch.Tensor, status: str, hessian: list[list[float]]
) -> str:
    """Read the regime off a trajectory (consecutive steps): diverged if the loss blew up or
    grew; oscillating if successive updates along H's top eigenvector alternate in sign;
    otherwise monotone. Updates smaller than 1e-4 of the largest are rounding noise, ignored.
    """
    if status == "diverged" or not bool(torch.isfinite(loss).all()):
        return "diverged"
    if len(loss) > 1 and float(loss[-1]) > float(loss[0]):
        return "diverged"
    u = theta @ top_eigenvector(hessian)
    du = u[1:] - u[:-1]
    if len(du) < 2:
        return "monotone"
    significant = du.abs() > 1e-4 * float(du.abs().max())
    pairs = significant[1:] & significant[:-1]
    flips = (torch.sign(du[1:]) != torch.sign(du[:-1])) & pairs
    n_pairs = int(pairs.sum())
    if n_pairs and int(flips.sum()) > n_pairs // 2:
        return "oscillating"
    return "monotone"


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
            f"use lr < {analysis.critical_lr:.4g}, e.g. the optimal {analysis.optimal_lr:.4g}"
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
        matrix = [[1 - a * (1 + mu), -lr * mu * mu], [lam, mu]]
    else:
        # v' = μv + λe ; e' = e − ηv'
        matrix = [[1 - a, -lr * mu], [lam, mu]]
    return float(torch.linalg.eigvals(torch.tensor(matrix, dtype=torch.float64)).abs().max())


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


def gap_scale(loss_ref: float, loss0: float) -> float:
    """What the optimality gap is relative to: the optimal loss, or — when that is zero (noiseless
    data: nothing to be relative to) — the initial loss."""
    return loss_ref if loss_ref > 1e-12 * loss0 else loss0


def predicted_steps(
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    momentum: float,
    nesterov: bool,
    target_gap: float,
    max_steps: int,
) -> int | None:
    """Steps full-batch SGD needs, in exact arithmetic, from θ_0 until the relative optimality
    gap (loss − loss*)/loss* is at most ``target_gap`` — None if not within ``max_steps``.

    The loss is quadratic, so the iteration splits into independent eigen-modes of H; each is
    run with PyTorch's update rule (momentum buffer starting at the first gradient), no data.
    """
    h = torch.tensor(analysis.hessian, dtype=torch.float64)
    lams, vectors = torch.linalg.eigh(h)
    lam_eff = lams + analysis.weight_decay
    target = torch.tensor(analysis.target_theta, dtype=torch.float64)
    star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    e = vectors.T @ (torch.tensor(theta0, dtype=torch.float64) - target)
    offset = vectors.T @ (target - star)  # ≠ 0 only with weight decay (ridge ≠ least squares)
    buf = torch.zeros_like(e)
    ref = analysis.target_loss

    def loss(err: torch.Tensor) -> float:
        return analysis.loss_star + 0.5 * float((lams * (err + offset) ** 2).sum())

    threshold = ref + target_gap * gap_scale(ref, loss(e))
    for step in range(max_steps + 1):
        if loss(e) <= threshold:
            return step
        grad = lam_eff * e
        buf = grad if step == 0 else momentum * buf + grad
        e = e - lr * ((grad + momentum * buf) if nesterov else buf)
    return None


HOPELESS_KAPPA = 1e8  # from here on plain gradient descent needs ~κ steps per digit: hopeless


def warnings_for(analysis: Analysis, standardized: bool) -> list[str]:
    """What the user should know before trusting gradient descent on this problem."""
    out = []
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
