"""Full-batch SGD in exact arithmetic, mode by mode: no data, only the Hessian's spectrum.

The loss is quadratic, so the iteration splits into independent eigen-modes of H (of H + wd·I
with weight decay, about the ridge solution). Each mode's (error, momentum buffer) follows a
2 × 2 linear map under PyTorch's rule: at a constant rate the state at step t is that map's
power applied to the start; under a schedule (rate η_t = lr × f_t) the maps are applied one
step at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lrtrain.theory.analysis import Analysis, gap_scale

Factors = np.ndarray | None  # a schedule's f_t for t < max_iter (None: a constant rate)


@dataclass
class _Modes:
    """The problem in the eigenbasis: curvatures, the error's start and the ridge offset."""

    lams: np.ndarray  # λ_i of H
    lam_eff: np.ndarray  # λ_i + wd
    error: np.ndarray  # u_iᵀ(θ_0 − θ_target)
    offset: np.ndarray  # u_iᵀ(θ_target − θ*): ≠ 0 only with weight decay
    loss_star: float

    @classmethod
    def of(cls, analysis: Analysis, theta0: Sequence[float]) -> _Modes:
        vectors = np.asarray(analysis.eigenvectors)
        lams = np.asarray(analysis.eigenvalues, dtype=np.float64)
        target = np.asarray(analysis.target_theta, dtype=np.float64)
        star = np.asarray(analysis.theta_star, dtype=np.float64)
        return cls(
            lams=lams,
            lam_eff=lams + analysis.weight_decay,
            error=vectors.T @ (np.asarray(theta0, dtype=np.float64) - target),
            offset=vectors.T @ (target - star),
            loss_star=analysis.loss_star,
        )

    def loss(self, error: np.ndarray) -> float:
        e = error + self.offset
        return self.loss_star + 0.5 * float((self.lams * e * e).sum())

    def losses(self, errors: np.ndarray) -> np.ndarray:
        """:meth:`loss` of every row of ``errors`` [T, p], at once."""
        e = errors + self.offset
        return self.loss_star + 0.5 * (e * e) @ self.lams


def _rate(lr: float, factors: Factors, step: int) -> float:
    return lr if factors is None or step >= len(factors) else lr * float(factors[step])


def _one_step(
    modes: _Modes, e: np.ndarray, buf: np.ndarray, rate: float, mu: float, nesterov: bool
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's SGD on every mode: buffer' = μ·buffer + λe (the first step's buffer is the
    gradient: it starts at 0); heavy ball e' = e − η·buffer'; Nesterov
    e' = e − η(λe + μ·buffer')."""
    grad = modes.lam_eff * e
    buf = mu * buf + grad
    return e - rate * ((grad + mu * buf) if nesterov else buf), buf


def predicted_steps(
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    momentum: float,
    nesterov: bool,
    target_gap: float,
    max_steps: int,
    factors: Factors = None,
) -> int | None:
    """Steps full-batch SGD needs, in exact arithmetic, from θ_0 until the relative optimality
    gap (loss − loss*)/loss* is at most ``target_gap`` — None if not within ``max_steps``."""
    modes = _Modes.of(analysis, theta0)
    e, buf = modes.error, np.zeros_like(modes.error)
    ref = analysis.target_loss
    threshold = ref + target_gap * gap_scale(ref, modes.loss(e))
    for step in range(max_steps + 1):
        if modes.loss(e) <= threshold:
            return step
        e, buf = _one_step(modes, e, buf, _rate(lr, factors, step), momentum, nesterov)
    return None


def exact_losses(
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    momentum: float,
    nesterov: bool,
    steps: list[int],
    factors: Factors = None,
) -> list[float]:
    """The full-batch loss at each of ``steps`` (ascending) in exact arithmetic."""
    modes = _Modes.of(analysis, theta0)
    errors = _errors(modes, lr, momentum, nesterov, steps, factors)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows: inf
        return [float(v) for v in modes.losses(errors)]


def mode_errors(
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    momentum: float,
    nesterov: bool,
    steps: list[int],
    factors: Factors = None,
) -> np.ndarray:
    """Each eigen-mode's error u_iᵀ(θ_t − θ_target) at each of ``steps``: [len(steps), p]."""
    return _errors(_Modes.of(analysis, theta0), lr, momentum, nesterov, steps, factors)


def _errors(
    modes: _Modes, lr: float, mu: float, nesterov: bool, steps: list[int], factors: Factors
) -> np.ndarray:
    """The modes' errors at ``steps`` (ascending). At a constant rate one small product per
    step asked for, whatever the gaps between them (powers of each mode's 2 × 2 map); under a
    schedule, every step in turn."""
    out = np.empty((len(steps), len(modes.error)))
    if factors is not None:
        e, buf, at = modes.error, np.zeros_like(modes.error), 0
        with np.errstate(over="ignore", invalid="ignore"):
            for row, step in enumerate(steps):
                while at < step:
                    e, buf = _one_step(modes, e, buf, _rate(lr, factors, at), mu, nesterov)
                    at += 1
                out[row] = e
        return out
    carry, push = (mu * mu, 1.0 + mu) if nesterov else (mu, 1.0)
    lam_eff = torch.from_numpy(modes.lam_eff)
    maps = torch.zeros(len(lam_eff), 2, 2, dtype=torch.float64)
    maps[:, 0, 0] = 1.0 - lr * push * lam_eff
    maps[:, 0, 1] = -lr * carry
    maps[:, 1, 0] = lam_eff
    maps[:, 1, 1] = mu
    error = torch.from_numpy(modes.error)
    if steps and (steps[-1] + 1) * len(error) <= EVERY_STEP_NUMBERS:
        # every step up to the last asked for, in log2(T) batched products (the states at
        # steps n … 2n − 1 are the map's n-th power applied to those at 0 … n − 1), instead of
        # one small product per step asked for (~10 µs each: seconds for a long sweep)
        return _every_state(maps, error, steps[-1])[steps].numpy()
    state = torch.stack([error, torch.zeros_like(error)], dim=1).unsqueeze(2)  # [p, 2, 1]
    powers: dict[int, torch.Tensor] = {}  # logged steps are mostly log_every apart
    at = 0
    for row, step in enumerate(steps):
        if step > at:
            gap = step - at
            if gap not in powers:
                powers[gap] = torch.linalg.matrix_power(maps, gap)
            state = powers[gap] @ state
            at = step
        out[row] = state[:, 0, 0].numpy()
    return out


# the most modes × steps whose states are made all at once (a long, wide run steps by gaps)
EVERY_STEP_NUMBERS = 1 << 24


def _every_state(maps: torch.Tensor, error: torch.Tensor, last: int) -> torch.Tensor:
    """Each mode's error at every step 0 … ``last`` under its 2 × 2 map ``maps`` [p, 2, 2],
    from (error, buffer 0): [last + 1, p], by doubling."""
    states = torch.empty(last + 1, len(error), 2, dtype=torch.float64)
    states[0, :, 0], states[0, :, 1] = error, 0.0
    power, done = maps, 1  # the map to the power ``done``
    with np.errstate(over="ignore", invalid="ignore"):
        while done <= last:
            take = min(done, last + 1 - done)
            states[done : done + take] = torch.einsum("pij,tpj->tpi", power, states[:take])
            done += take
            if done <= last:
                power = power @ power
    return states[:, :, 0]


def exact_path(
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    momentum: float,
    nesterov: bool,
    steps: int,
    factors: Factors = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss [steps + 1] and parameters [steps + 1, p] of every step, in exact arithmetic:
    a predicted trajectory to read a verdict off the way an observed one is read."""
    modes = _Modes.of(analysis, theta0)
    errors = _errors(modes, lr, momentum, nesterov, list(range(steps + 1)), factors)
    vectors = np.asarray(analysis.eigenvectors)
    target = np.asarray(analysis.target_theta, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = errors + modes.offset
        losses = modes.loss_star + 0.5 * (modes.lams * shifted * shifted).sum(axis=1)
        return losses, target + errors @ vectors.T
