"""Mini-batch SGD on least squares, exactly in expectation: the mean and second moment of the
error e = θ − θ* under batches of B rows drawn uniformly with replacement (docs/mathematics.md,
"Mini-batch SGD").

With x̃ = [x, 1], A_i = 2 x̃_i x̃_iᵀ, r_i = x̃_iᵀθ* − y_i and c_i = 2 x̃_i r_i, a row's gradient is
A_i e + c_i; E_i[A_i] = H and E_i[c_i] = 0 (the normal equations). One step of plain SGD maps

    m' = (I − ηH) m
    S' = S − η(HS + SH) + η²[ F(S)/B + (1 − 1/B) H S H ] + (η²/B)(2 G m + Q)

with F(S) = E_i[A_i S A_i], G m = E_i[A_i m c_iᵀ] (a symmetric matrix) and Q = E_i[c_i c_iᵀ],
and E[L] = L* + ½ tr(H S). Full batch is 1/B = 0: the same map, exact and deterministic.

Heavy-ball momentum and Nesterov (PyTorch's rules, the buffer starting at the first gradient)
are the same recursion on the stacked state u = (e, buffer): u' = (D + E Ā J) u + E c̄ with Ā,
c̄ the batch's means, J u = e, and D, E fixed by the rule (:class:`Rule`); its second moment U
maps as U' = D U Dᵀ + E H J U Dᵀ + D U Jᵀ H Eᵀ + E[F(S)/B + (1 − 1/B) H S H]Eᵀ
+ (1/B) E (2 G m + Q) Eᵀ, S = J U Jᵀ. Plain SGD is momentum 0.

F, G and Q are moments of the rows up to the fourth — p⁴ numbers for p parameters, made in one
pass (:func:`row_moments`); beyond :data:`MAX_PARAMETERS` they are not made and the theory says
so instead of predicting. Everything here is float64 torch on the CPU and never prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch

F64 = torch.float64
# The fourth moments are p⁴ numbers and the map on U is 4p² × 4p²: its spectral radius, taken
# ~25 times to find the critical lr, costs ~0.1 s at p = 10 and ~2 s at p = 16 (measured), so
# beyond 10 parameters the theory is not computed (and says so)
MAX_PARAMETERS = 10


@dataclass(frozen=True)
class RowMoments:
    """The moments of the rows the mini-batch recursion needs, vectorised over S (row-major
    vec of a p × p matrix): ``fourth`` [p², p²] is F, ``third`` [p², p] is G, ``noise`` [p²]
    is vec Q, ``hessian`` [p, p] is H; G and Q with the residuals at ``reference`` (θ*, or the
    ridge solution the optimizer converges to with weight decay)."""

    hessian: torch.Tensor
    fourth: torch.Tensor
    third: torch.Tensor
    noise: torch.Tensor
    reference: torch.Tensor

    @property
    def p(self) -> int:
        return int(self.hessian.shape[0])


def row_moments(
    chunks: Iterable[tuple[torch.Tensor, torch.Tensor]], reference: torch.Tensor
) -> RowMoments:
    """F, G, Q and H from (x [c, d], y [c, 1]) chunks in one pass, about ``reference``
    (θ*, or with weight decay the ridge solution; float64), r_i the residuals there.

    With z_i = vec(x̃_i x̃_iᵀ): F = (4/N) Σ z_i z_iᵀ, G = (4/N) Σ r_i z_i x̃_iᵀ,
    Q = (4/N) Σ r_i² x̃_i x̃_iᵀ, H = (2/N) Σ x̃_i x̃_iᵀ."""
    theta = reference.to(F64)
    p = theta.shape[0]
    if p > MAX_PARAMETERS:
        raise ValueError(
            f"{p} parameters: the mini-batch theory is computed up to {MAX_PARAMETERS} (its map "
            f"on the second moments has (2p)⁴ = {(2 * p) ** 4:,} entries)"
        )
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
        reference=theta,
    )


@dataclass(frozen=True)
class Rule:
    """One SGD step as a linear map of the stacked state u = (e, buffer) given the batch's mean
    gradient ḡ: u' = D u + E ḡ (PyTorch's SGD, dampening 0). Weight decay adds wd·θ to ḡ:
    about the ridge solution θ_r it is (Ā + wd·I) e plus noise of mean 0 (:class:`_Step`)."""

    lr: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def matrices(self, p: int) -> tuple[torch.Tensor, torch.Tensor]:
        eye, mu, lr = torch.eye(p, dtype=F64), self.momentum, self.lr
        zero = torch.zeros(p, p, dtype=F64)
        # buffer' = μ·buffer + ḡ; heavy ball: e' = e − η·buffer';
        # Nesterov: e' = e − η(ḡ + μ·buffer') = e − ημ²·buffer − η(1 + μ)ḡ
        carry, push = (mu * mu, 1.0 + mu) if self.nesterov else (mu, 1.0)
        d = torch.cat([torch.cat([eye, -lr * carry * eye], 1), torch.cat([zero, mu * eye], 1)])
        e = torch.cat([-lr * push * eye, eye])
        return d, e


@dataclass
class _Step:
    """The recursion's pieces for one rule and batch size, made once. With weight decay wd,
    about the ridge solution θ_r: A'_i = A_i + wd·I (mean H' = H + wd·I), c'_i = 2x̃_i r_i + wd·θ_r
    (mean 0), so F'(S) = F(S) + wd(HS + SH) + wd²S, G'm = G m + wd (H m) θ_rᵀ and
    Q' = Q − wd² θ_r θ_rᵀ (docs/mathematics.md)."""

    moments: RowMoments
    d: torch.Tensor  # [2p, 2p]
    e: torch.Tensor  # [2p, p]
    inv_batch: float  # 1/B; 0 for full batch
    weight_decay: float
    drift: torch.Tensor  # H' = H + wd·I

    @classmethod
    def of(cls, moments: RowMoments, rule: Rule, batch: int | None) -> _Step:
        d, e = rule.matrices(moments.p)
        wd = rule.weight_decay
        drift = moments.hessian + wd * torch.eye(moments.p, dtype=F64)
        return cls(moments, d, e, 0.0 if batch is None else 1.0 / batch, wd, drift)

    def mean(self, mean: torch.Tensor) -> torch.Tensor:
        """E[u'] = (D + E H' J) E[u]."""
        p = self.moments.p
        return self.d @ mean + self.e @ (self.drift @ mean[:p])

    def second(self, u: torch.Tensor) -> torch.Tensor:
        """The homogeneous part of U ↦ U' for U [..., 2p, 2p] (batched over leading dims)."""
        p, h, hp, wd = self.moments.p, self.moments.hessian, self.drift, self.weight_decay
        s = u[..., :p, :p]
        fourth = (self.moments.fourth @ s.reshape(*s.shape[:-2], p * p, 1)).reshape(s.shape)
        if wd:
            fourth = fourth + wd * (h @ s + s @ h) + (wd * wd) * s
        averaged = self.inv_batch * fourth + (1.0 - self.inv_batch) * (hp @ s @ hp)
        du = self.d @ u
        # E H' J U Dᵀ and D U Jᵀ H' Eᵀ: transposes of each other only for a symmetric U, and
        # the map is also applied to a non-symmetric basis (matrix)
        left = self.e @ (hp @ (u[..., :p, :] @ self.d.T))
        right = (du[..., :, :p] @ hp) @ self.e.T
        out = du @ self.d.T + left + right
        return out + self.e @ averaged @ self.e.T

    def forcing(self, mean: torch.Tensor) -> torch.Tensor:
        """The inhomogeneous part: (1/B) E (G' m + (G' m)ᵀ + Q') Eᵀ."""
        p, wd, ref = self.moments.p, self.weight_decay, self.moments.reference
        m = mean[:p]
        g = (self.moments.third @ m).reshape(p, p)
        q = self.moments.noise.reshape(p, p)
        if wd:
            g = g + wd * torch.outer(self.moments.hessian @ m, ref)
            q = q - (wd * wd) * torch.outer(ref, ref)
        return self.inv_batch * (self.e @ (g + g.T + q) @ self.e.T)

    def matrix(self) -> torch.Tensor:
        """The homogeneous map on vec U as a [4p², 4p²] matrix (columns: images of the basis)."""
        n = 2 * self.moments.p
        basis = torch.eye(n * n, dtype=F64).reshape(n * n, n, n)
        return self.second(basis).reshape(n * n, n * n).T

    def lifted(self) -> torch.Tensor:
        """The whole step as one matrix on z = [vec U, E[u], 1]: U' = K(U) + forcing(E[u]) is
        affine in (U, E[u]), so z' = T z and z_{t+k} = T^k z_t — any step in O(log k) products
        instead of k steps. Full batch (1/B = 0): T is the mean's map alone, on z = E[u]."""
        n = 2 * self.moments.p
        eye = torch.eye(n, dtype=F64)
        mean_map = torch.stack([self.mean(eye[j]) for j in range(n)], dim=1)  # [n, n]
        if self.inv_batch == 0.0:
            return mean_map
        size = n * n + n + 1
        lift = torch.zeros(size, size, dtype=F64)
        lift[: n * n, : n * n] = self.matrix()
        constant = self.forcing(torch.zeros(n, dtype=F64)).reshape(-1)
        for j in range(n):  # the forcing's part linear in E[u]
            lift[: n * n, n * n + j] = self.forcing(eye[j]).reshape(-1) - constant
        lift[n * n : n * n + n, n * n : n * n + n] = mean_map
        lift[: n * n, -1] = constant
        lift[-1, -1] = 1.0
        return lift


@dataclass(frozen=True)
class ExpectedRun:
    """E[L(θ_t)] at the steps asked for, and the mean error at the last of them."""

    steps: list[int]
    expected_loss: list[float]
    mean_error: torch.Tensor  # [p]: E[θ_T] − θ* at the last step asked for
    second: list[torch.Tensor]  # S_t = E[e eᵀ] about θ_ref at each step asked for, [p, p]


def expected_losses(
    moments: RowMoments,
    loss_star: float,
    theta_star: torch.Tensor,
    theta0: torch.Tensor,
    rule: Rule,
    batch: int | None,
    steps: Iterable[int],
    factors: np.ndarray | None = None,
) -> ExpectedRun:
    """E[L(θ_t)] from the deterministic θ_0 (buffer 0) at each step in ``steps``, by powers
    of the lifted step (:meth:`_Step.lifted`) between them: a long run's logged steps cost one
    small product each, whatever the gaps. Under a schedule (the rate at step t is
    ``rule.lr × factors[t]``) the recursion is run step by step instead. With e = θ − θ_ref and
    δ = θ_ref − θ* (0 without weight decay), E[L] = L* + ½(tr(H S) + 2δᵀH m + δᵀHδ)."""
    asked = sorted(set(steps))
    if factors is not None:
        p = moments.p
        delta = moments.reference - theta_star.to(F64)
        mean = torch.cat([theta0.to(F64) - moments.reference, torch.zeros(p, dtype=F64)])
        return _scheduled(moments, loss_star, delta, mean, rule, batch, asked, factors)
    run = Lifted.of(moments, loss_star, theta_star, theta0, rule, batch)
    z = run.start
    powers: dict[int, torch.Tensor] = {}
    out, t = [], 0
    second = []
    for target in asked:
        gap = target - t
        if gap > 0:
            if gap not in powers:
                powers[gap] = torch.linalg.matrix_power(run.matrix, gap)
            z, t = powers[gap] @ z, target
        out.append(run.loss(z))
        second.append(run.second_moment(z))
    return ExpectedRun(asked, out, run.mean_error(z), second)


@dataclass
class Lifted:
    """A constant-rate run as the lifted linear map: z_t = Tᵗ z_0 with z = [vec U, E[u], 1]
    (full batch: z = E[u]), and E[L] read off a state. With e = θ − θ_ref and δ = θ_ref − θ*
    (0 without weight decay), E[L] = L* + ½(tr(H S) + 2δᵀH m + δᵀHδ)."""

    matrix: torch.Tensor
    start: torch.Tensor
    moments: RowMoments
    loss_star: float
    delta: torch.Tensor
    full: bool
    weights: torch.Tensor | None = None  # mini-batch: 2(E[L] − L*) = weights · z, linear in z

    @classmethod
    def of(
        cls,
        moments: RowMoments,
        loss_star: float,
        theta_star: torch.Tensor,
        theta0: torch.Tensor,
        rule: Rule,
        batch: int | None,
    ) -> Lifted:
        p = moments.p
        mean = torch.cat([theta0.to(F64) - moments.reference, torch.zeros(p, dtype=F64)])
        full = batch is None
        z = mean if full else torch.cat([torch.outer(mean, mean).reshape(-1), mean, torch.ones(1)])
        lift = _Step.of(moments, rule, batch).lifted()
        delta = moments.reference - theta_star.to(F64)
        weights = None
        if not full:  # tr(H S) + 2δᵀH m + δᵀHδ is linear in z = [vec U, E[u], 1]
            n, h = 2 * p, moments.hessian
            on_u = torch.zeros(n, n, dtype=F64)
            on_u[:p, :p] = h
            on_mean = torch.cat([2.0 * (h @ delta), torch.zeros(p, dtype=F64)])
            weights = torch.cat([on_u.reshape(-1), on_mean, (delta @ h @ delta).reshape(1)])
        return cls(lift, z, moments, loss_star, delta, full, weights)

    def _mean(self, z: torch.Tensor) -> torch.Tensor:
        p, n = self.moments.p, 2 * self.moments.p
        return z[:p] if self.full else z[n * n : n * n + p]

    def loss(self, z: torch.Tensor) -> float:
        """E[L] of the lifted state z."""
        if self.weights is not None:
            return self.loss_star + 0.5 * float(self.weights @ z)
        h, delta, m = self.moments.hessian, self.delta, self._mean(z)  # full batch: S = m mᵀ
        excess = float(m @ h @ m) + 2.0 * float(delta @ h @ m) + float(delta @ h @ delta)
        return self.loss_star + 0.5 * excess

    def second_moment(self, z: torch.Tensor) -> torch.Tensor:
        """S = E[e eᵀ] about θ_ref at the lifted state z (full batch: m mᵀ)."""
        p, n = self.moments.p, 2 * self.moments.p
        if self.full:
            m = self._mean(z)
            return torch.outer(m, m)
        return z[: n * n].reshape(n, n)[:p, :p]

    def mean_error(self, z: torch.Tensor) -> torch.Tensor:
        """E[θ] − θ* at the lifted state z."""
        return self._mean(z) + self.delta


def _scheduled(
    moments: RowMoments,
    loss_star: float,
    delta: torch.Tensor,
    mean: torch.Tensor,
    rule: Rule,
    batch: int | None,
    asked: list[int],
    factors: np.ndarray,
) -> ExpectedRun:
    """The recursion one step at a time, at the rate of each step: U' = K_t(U) + forcing_t(m),
    m' = mean_t(m), from U = m mᵀ (θ_0 is deterministic)."""
    p, h = moments.p, moments.hessian
    u, out, t = torch.outer(mean, mean), [], 0
    steps: dict[float, _Step] = {}  # a step schedule repeats its few rates

    def loss() -> float:
        m = mean[:p]
        return loss_star + 0.5 * (float((h * u[:p, :p]).sum()) + 2.0 * float(delta @ h @ m)
                                  + float(delta @ h @ delta))  # fmt: skip

    second = []
    for target in asked:
        while t < target:
            lr = rule.lr * float(factors[t]) if t < len(factors) else rule.lr
            if lr not in steps:
                steps[lr] = _Step.of(moments, replace(rule, lr=lr), batch)
            step = steps[lr]
            u, mean, t = step.second(u) + step.forcing(mean), step.mean(mean), t + 1
        out.append(loss())
        second.append(u[:p, :p].clone())
    return ExpectedRun(asked, out, mean[:p] + delta, second)


def _radius(matrix: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(matrix).abs().max())


def critical_lr(
    moments: RowMoments, batch: int | None, momentum: float = 0.0, nesterov: bool = False,
    weight_decay: float = 0.0, tol: float = 1e-7,
) -> float:  # fmt: skip
    """The mean-square critical learning rate: the smallest η > 0 where the map's spectral
    radius reaches 1 (bisection below the full-batch limit, which it equals for full batch)."""
    table = critical_lrs(moments, [batch], [(momentum, nesterov)], weight_decay, tol)
    return table[batch, momentum, nesterov]


def critical_lrs(
    moments: RowMoments, batches: list[int | None], settings: list[tuple[float, bool]],
    weight_decay: float = 0.0, tol: float = 1e-6,
) -> dict[tuple[int | None, float, bool], float]:  # fmt: skip
    """The mean-square critical lr for every batch size (None: full) × (momentum, Nesterov) at
    once: the map on U is a quadratic in η and linear in 1/B, so six maps per setting give
    every (η, B), and the bisections — below the full-batch limit (docs/mathematics.md), which
    is the answer for full batch — run side by side on batched eigenvalues."""
    lam_max = float(torch.linalg.eigvalsh(moments.hessian)[-1]) + weight_decay
    if not lam_max > 0:
        return {(b, m, n): math.inf for b in batches for m, n in settings}
    keys: list[tuple[int | None, float, bool]] = []
    coeffs, highs = [], []
    for momentum, nesterov in settings:
        rules = {lr: Rule(lr, momentum, nesterov, weight_decay) for lr in (0.0, 1.0, -1.0)}
        full = {lr: _Step.of(moments, rule, None).matrix() for lr, rule in rules.items()}
        single = {lr: _Step.of(moments, rule, 1).matrix() for lr, rule in rules.items()}
        for b in batches:
            inv = 0.0 if b is None else 1.0 / b
            c0, plus, minus = ((1.0 - inv) * full[lr] + inv * single[lr] for lr in rules)
            coeffs.append(torch.stack([c0, 0.5 * (plus - minus), 0.5 * (plus + minus) - c0]))
            keys.append((b, momentum, nesterov))
            limit = 2.0 * (1.0 + momentum) / ((1.0 + 2.0 * momentum) if nesterov else 1.0)
            highs.append(limit / lam_max)
    if not keys:
        return {}
    c = torch.stack(coeffs)  # [M, 3, n, n]
    hi = torch.tensor(highs, dtype=F64)

    def stable(lr: torch.Tensor) -> torch.Tensor:
        k = c[:, 0] + lr[:, None, None] * c[:, 1] + (lr * lr)[:, None, None] * c[:, 2]
        return torch.linalg.eigvals(k).abs().amax(dim=-1) < 1.0

    at_limit = stable(hi * (1 - 1e-12))
    lo = torch.zeros_like(hi)
    while bool(((hi - lo) > tol * hi).any()):
        mid = 0.5 * (lo + hi)
        ok = stable(mid)
        lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
    found = torch.where(at_limit, hi, 0.5 * (lo + hi)).tolist()
    return dict(zip(keys, found, strict=True))


def noise_floor(
    moments: RowMoments, rule: Rule, batch: int | None, theta_star: torch.Tensor | None = None
) -> float:
    """E[L_∞] − L* at a constant rate below the critical one: ½(tr(H S_∞) + δᵀHδ), U_∞
    solving U = K(U) + (1/B) E Q' Eᵀ (the mean has vanished). δ = θ_ref − θ* is the ridge bias
    with weight decay (``theta_star``: the least-squares optimum, when the moments' reference
    is another point). Full batch: the bias alone; inf at or above the critical rate."""
    h, p = moments.hessian, moments.p
    delta = torch.zeros(p, dtype=F64) if theta_star is None else moments.reference - theta_star
    bias = float(delta @ h @ delta)
    if batch is None or rule.lr == 0.0:  # no gradient noise: the bias alone
        return 0.5 * bias
    step = _Step.of(moments, rule, batch)
    k = step.matrix()
    if _radius(k) >= 1.0:
        return math.inf
    forcing = step.forcing(torch.zeros(2 * p, dtype=F64)).reshape(-1)
    u = torch.linalg.solve(torch.eye(k.shape[0], dtype=F64) - k, forcing).reshape(2 * p, 2 * p)
    return 0.5 * (float((h * u[:p, :p]).sum()) + bias)


def noise_scale(moments: RowMoments, theta: torch.Tensor) -> tuple[float, float]:
    """(tr Σ, |G|²) of the per-row gradients at θ, exactly from the rows' moments: with
    e = θ − reference, g_i = A_i e + c_i, so E|g_i|² = eᵀ E[A_i²] e + 2 eᵀ E[A_i c_i] + tr Q
    and G = H e; tr Σ = E|g_i|² − |G|² (McCandlish et al.'s B_simple is their ratio)."""
    p = moments.p
    e = theta.to(F64) - moments.reference
    fourth = moments.fourth.reshape(p, p, p, p)  # 4 E[x_a x_b x_c x_d]
    squared = torch.einsum("abbc->ac", fourth)  # E[A_i A_i]
    cross = torch.einsum("abb->a", moments.third.reshape(p, p, p))  # E[A_i c_i]
    mean_square = e @ squared @ e + 2 * e @ cross + torch.trace(moments.noise.reshape(p, p))
    gradient = moments.hessian @ e
    grad_sq = float(gradient @ gradient)
    return float(mean_square) - grad_sq, grad_sq
