"""Sharpness measured: the top eigenvalues of the full-batch training loss's Hessian at θ, for
every replica at once, by the Lanczos iteration on Hessian-vector products
(``train.sharpness_every``).

A Hessian-vector product is the derivative of the gradient along v (double backward): one
forward and two backward passes over the rows, never the P × P Hessian. The replicas are
independent, so the Hessian of the sum of their losses is block-diagonal and one product of
the sum is every replica's own product: the iteration runs for all K at once, with per-replica
scalars. Every Lanczos vector is reorthogonalised against all earlier ones (full
reorthogonalisation: the Ritz values then converge as in exact arithmetic, without ghost
copies), and the iteration stops once every replica's top Ritz pair has a residual
‖H u − θ u‖ = |β_m s_m| below ``tol`` × |θ| — which bounds the eigenvalue's error by that
residual (and by its square over the gap to the next one). A measurement starts from the
previous one's top vector (warm start: the top eigenvector moves little between measurements),
so it typically needs a handful of products. On an invariant subspace (β = 0: the start vector
lies in a few eigenvectors' span) it continues from a fresh random vector orthogonal to the
basis, which keeps every Ritz value an eigenvalue estimate of H.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lrtrain.data.distributed import SINGLE, World
from lrtrain.engine.batches import Rows

MAX_LANCZOS = 100  # Lanczos vectors at most per measurement (fewer when P is smaller)
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}  # the top Ritz pair's relative residual
TOP = 2  # eigenvalues kept: the sharpness and the second, whose plane the surface figure slices


@dataclass
class Estimate:
    """One measurement of K replicas: the top eigenvalues (descending) and their vectors."""

    values: torch.Tensor  # [K, TOP]; NaN where a replica's loss is not finite
    vectors: torch.Tensor  # [K, TOP, P], unit length
    products: int  # Hessian-vector products taken (each one for all K replicas)


def hessian_operator(
    loss_at: Callable[[torch.Tensor, Rows], torch.Tensor],
    theta: torch.Tensor,
    rows: Rows,
    world: World = SINGLE,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """v [K, P] → H v per replica, H the Hessian of each replica's loss at θ [K, P] (double
    backward through ``loss_at``, which maps θ and the rows to the K losses). In a
    distributed ``world`` each process's product is its shard's part (``loss_at`` divides by
    every process's rows), summed over the processes: every one then runs the same Lanczos
    iteration on the same numbers."""
    point = theta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(loss_at(point, rows).sum(), point, create_graph=True)

    def apply(v: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(grad, point, v, retain_graph=True)
        return world.all_sum(hv.detach())

    return apply


def top_eigenvalues(
    apply: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    pairs: int = 1,
    max_vectors: int = MAX_LANCZOS,
    tol: float | None = None,
    seed: int = 0,
) -> Estimate:
    """Lanczos with full reorthogonalisation on the block-diagonal operator ``apply`` from the
    start vectors ``start`` [K, P] (any rows: the previous top vectors, or random; a zero or
    non-finite row starts at random), until the top ``pairs`` Ritz pairs of every replica have
    converged (or ``max_vectors``, or P, vectors are spent)."""
    k, p = start.shape
    dtype, device = start.dtype, start.device
    tol = TOL.get(dtype, 1e-5) if tol is None else tol
    m_max = min(max_vectors, p)
    pairs = min(pairs, TOP, p)
    gen = torch.Generator(device=device).manual_seed(seed)
    basis = torch.zeros(m_max, k, p, dtype=dtype, device=device)
    alpha = torch.zeros(k, m_max, dtype=dtype, device=device)
    beta = torch.zeros(k, m_max, dtype=dtype, device=device)
    finite = torch.ones(k, dtype=torch.bool, device=device)
    q = _unit(_nonzero(start, gen))
    for m in range(1, m_max + 1):
        basis[m - 1] = q
        w = apply(q)
        finite &= torch.isfinite(w).all(dim=1)
        w = torch.where(finite.unsqueeze(1), w, torch.zeros_like(w))
        alpha[:, m - 1] = (w * q).sum(dim=1)
        w = _orthogonal(w, basis[:m])  # full reorthogonalisation against every vector
        norm = w.norm(dim=1)
        # a diverged replica's products can be finite and still overflow their sums
        finite &= torch.isfinite(alpha[:, m - 1]) & torch.isfinite(norm)
        alpha[:, m - 1] = torch.where(finite, alpha[:, m - 1], torch.zeros_like(norm))
        norm = torch.where(finite, norm, torch.zeros_like(norm))
        w = torch.where(finite.unsqueeze(1), w, torch.zeros_like(w))
        values, vectors, residual = _ritz(alpha[:, :m], beta[:, : m - 1], basis[:m], norm)
        scale = values[:, 0].abs().clamp_min(torch.finfo(dtype).tiny)
        done = (residual[:, :pairs] <= tol * scale.unsqueeze(1)).all(dim=1) & (m >= pairs)
        if bool((done | ~finite).all()) or m == m_max:
            break
        # An invariant subspace reached (β ≈ 0): go on from a fresh direction orthogonal to
        # the basis, with β = 0 (T splits into blocks whose eigenvalues are all H's).
        broke = norm <= 1e-12 * scale
        fresh = _unit(_orthogonal(torch.randn(k, p, dtype=dtype, device=device, generator=gen),
                                  basis[:m]))  # fmt: skip
        q = torch.where(broke.unsqueeze(1), fresh, w / norm.clamp_min(1e-300).unsqueeze(1))
        beta[:, m - 1] = torch.where(broke, torch.zeros_like(norm), norm)
    values = torch.where(finite.unsqueeze(1), values, torch.full_like(values, torch.nan))
    return Estimate(values, vectors, m)


def _orthogonal(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """w [K, P] less its components along the basis [m, K, P], twice ("twice is enough")."""
    for _ in range(2):
        coefficients = torch.einsum("mkp,kp->mk", basis, w)
        w = w - torch.einsum("mk,mkp->kp", coefficients, basis)
    return w


def _ritz(
    alpha: torch.Tensor, beta: torch.Tensor, basis: torch.Tensor, next_beta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The top Ritz values [K, TOP] (descending), their vectors [K, TOP, P] and residual
    norms [K, TOP], from the tridiagonal T = tridiag(β, α, β) of each replica."""
    k, m = alpha.shape
    t = torch.diag_embed(alpha)
    if m > 1:
        t = t + torch.diag_embed(beta, offset=1) + torch.diag_embed(beta, offset=-1)
    # each replica's T scaled to its largest entry: a diverging replica's (~1e300) would
    # overflow inside LAPACK, which then fails for the whole batch
    size = t.abs().amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(t.dtype).tiny)
    evals, evecs = torch.linalg.eigh(t / size)  # ascending
    evals = evals * size.squeeze(2)
    top = min(TOP, m)
    values = evals.flip(1)[:, :top]
    s = evecs.flip(2)[:, :, :top]  # [K, m, top]
    vectors = torch.einsum("mkp,kmt->ktp", basis, s)
    residual = next_beta.unsqueeze(1) * s[:, m - 1, :].abs()
    if top < TOP:  # fewer vectors than pairs kept so far: the rest unknown
        pad = TOP - top
        values = torch.cat([values, values.new_full((k, pad), torch.nan)], dim=1)
        vectors = torch.cat([vectors, vectors.new_zeros(k, pad, vectors.shape[2])], dim=1)
        residual = torch.cat([residual, residual.new_full((k, pad), torch.inf)], dim=1)
    return values, vectors, residual


def _nonzero(start: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The start vectors, a random one in place of any zero or non-finite row."""
    bad = ~(torch.isfinite(start).all(dim=1) & (start.abs().sum(dim=1) > 0))
    if not bool(bad.any()):
        return start
    fresh = torch.randn(start.shape, dtype=start.dtype, device=start.device, generator=gen)
    return torch.where(bad.unsqueeze(1), fresh, torch.nan_to_num(start))


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-300)


class Tracker:
    """The sharpness of every replica at θ_t for every ``every``-th step t (0: at θ₀ alone)
    and where the run ends, each measurement warm-started from the last one's top vector; and
    at every logged step θ's coordinate along the latest top eigenvector, whose successive
    updates alternate in sign when the run oscillates across the sharpest direction. The full
    batch is read for a measurement whatever the steps read (a mini-batch run's sharpness is
    the full-batch loss's, which the stability threshold 2/η is about)."""

    def __init__(
        self,
        operator_at: Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]],
        every: int,
        seed: int,
        rows: int,
        log_every: int,
        noise_at: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        self.operator_at, self.every, self.seed = operator_at, every, seed
        # the gradient noise's tr Σ and |G|² at each measured step (engine.noise; None: the rows
        # are not held, so there are no per-example gradients)
        self.noise_at = noise_at
        self.noise: list[torch.Tensor] = []  # [2, K] each, float64 on the CPU
        self.log_every = log_every
        self.steps: list[int] = []
        self.values: list[torch.Tensor] = []  # [K, TOP] each, float64 on the CPU
        self.products: list[int] = []
        self.seconds = 0.0
        self.start: torch.Tensor | None = None  # the last top vectors [K, P]
        self.vectors: torch.Tensor | None = None  # the last measurement's [K, TOP, P]
        self.rows = rows
        self.projection: torch.Tensor | None = None  # [rows, K]: θ_t · u at the logged steps

    def after(self, step: int, theta: torch.Tensor) -> None:
        """At step ``step``, before its update: measure if due, and log θ along u."""
        if (self.every and step % self.every == 0) or not self.steps:
            self.measure(step, theta)
        if step % self.log_every == 0:
            assert self.start is not None
            if self.projection is None:
                self.projection = theta.new_full((self.rows, theta.shape[0]), torch.nan)
            torch.linalg.vecdot(theta, self.start, out=self.projection[step // self.log_every])

    def measure(self, step: int, theta: torch.Tensor, pairs: int = 1) -> None:
        """Measure at θ [K, P] (step ``step``), unless this step was measured already (to as
        many pairs)."""
        if self.steps and self.steps[-1] == step:
            if pairs == 1:
                return
            for kept in (self.steps, self.values, self.products, self.noise):
                kept.pop()  # measured again, to `pairs`
        began = time.perf_counter()
        start = self.start
        if start is None:
            gen = torch.Generator(device=theta.device).manual_seed(self.seed)
            start = torch.randn(theta.shape, dtype=theta.dtype, device=theta.device, generator=gen)
        # the loop may run in inference mode (the Gram path), where nothing is differentiable
        with torch.inference_mode(False):
            operator = self.operator_at(theta.clone())
            estimate = top_eigenvalues(operator, start.clone(), pairs, seed=self.seed + step)
        top = estimate.vectors[:, 0]
        if self.start is not None:  # the same orientation as before: θ·u stays comparable
            flip = torch.linalg.vecdot(top, self.start) < 0
            estimate.vectors[flip] *= -1
        self.start, self.vectors = estimate.vectors[:, 0].clone(), estimate.vectors
        self.steps.append(step)
        self.values.append(estimate.values.to("cpu", torch.float64))
        self.products.append(estimate.products)
        k = theta.shape[0]
        noise = torch.full((2, k), torch.nan, dtype=torch.float64)
        if self.noise_at is not None:
            with torch.inference_mode(False):
                noise = torch.stack(self.noise_at(theta.clone())).to("cpu", torch.float64)
        self.noise.append(noise)
        self.seconds += time.perf_counter() - began

    def state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps to resume the measurements as they would have gone on."""
        k = self.values[0].shape[0] if self.values else 0
        return {
            "steps": torch.tensor(self.steps, dtype=torch.long),
            "values": torch.stack(self.values) if self.values else torch.zeros(0, k, TOP),
            "products": torch.tensor(self.products, dtype=torch.long),
            "start": self.start.cpu() if self.start is not None else torch.zeros(0),
            "projection": self.projection.cpu() if self.projection is not None else torch.zeros(0),
            "noise": torch.stack(self.noise) if self.noise else torch.zeros(0, 2, k),
        }

    def restore(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.steps = [int(s) for s in state["steps"].tolist()]
        self.values = list(state["values"].unbind(0))
        self.products = [int(p) for p in state["products"].tolist()]
        self.noise = list(state["noise"].unbind(0))
        start, projection = state["start"], state["projection"]
        self.start = start.to(device) if start.numel() else None
        if projection.numel():
            grown = projection.new_full((self.rows, projection.shape[1]), torch.nan)
            grown[: min(len(projection), self.rows)] = projection[: self.rows]
            self.projection = grown.to(device)
