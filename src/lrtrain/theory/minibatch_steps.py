"""How many steps mini-batch SGD needs, in expectation, to reach a target loss — and from that,
the rate that needs the fewest and the batch size beyond which bigger batches stop saving
steps (docs/mathematics.md, "Steps, the fastest rate and the critical batch size").

A constant-rate run is one linear map on the lifted state (:class:`~.minibatch.Lifted`),
so the first step where E[L_t] reaches the target is found with the map's powers T, T², T⁴, …
(binary lifting: O(log t) small products instead of t steps). That finds the first crossing
where E[L_t] falls through the target once and stays below — every rate below the monotone
limit; an oscillating E[L_t] may cross earlier (tests compare the step-by-step recursion).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lrtrain.theory.minibatch import Lifted, RowMoments, Rule, noise_floor

MAX_STEPS = 1 << 22  # ~4 million: beyond, "not within reach"
GRID = 32  # rates tried between 10⁻⁴ × and just below the mean-square critical lr
REFINE = 2  # passes of 9 rates between the best one's neighbours


@dataclass(frozen=True)
class Problem:
    """What every question here shares: the moments, the optimum, the start and the target
    (an absolute loss, L* + gap × scale)."""

    moments: RowMoments
    loss_star: float
    theta_star: torch.Tensor
    theta0: torch.Tensor
    target: float
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def rule(self, lr: float) -> Rule:
        return Rule(lr, self.momentum, self.nesterov, self.weight_decay)


def steps_to_target(problem: Problem, lr: float, batch: int | None) -> int | None:
    """The first step t at which E[L_t] ≤ the target (None: not within MAX_STEPS, or the
    noise floor lies above it)."""
    if batch is not None:
        floor = noise_floor(problem.moments, problem.rule(lr), batch, problem.theta_star)
        if not problem.loss_star + floor < problem.target:
            return None
    run = Lifted.of(problem.moments, problem.loss_star, problem.theta_star, problem.theta0,
                    problem.rule(lr), batch)  # fmt: skip
    z = run.start
    if run.loss(z) <= problem.target:
        return 0
    powers = [run.matrix]
    while (1 << len(powers)) <= MAX_STEPS:
        powers.append(powers[-1] @ powers[-1])
    if not run.loss(_advance(powers, z, MAX_STEPS)) <= problem.target:
        return None
    t = 0  # the largest t with E[L_t] above the target, built bit by bit
    for k in reversed(range(len(powers))):
        ahead = powers[k] @ z
        if t + (1 << k) <= MAX_STEPS and not run.loss(ahead) <= problem.target:
            z, t = ahead, t + (1 << k)
    return t + 1


def _advance(powers: list[torch.Tensor], z: torch.Tensor, steps: int) -> torch.Tensor:
    for k, power in enumerate(powers):
        if steps >> k & 1:
            z = power @ z
    return z


@dataclass(frozen=True)
class Fastest:
    """The constant rate that reaches the target in the fewest expected steps."""

    lr: float | None  # None: no rate below the critical one reaches the target
    steps: int | None


def fastest_lr(problem: Problem, batch: int | None, critical_lr: float) -> Fastest:
    """The best of :data:`GRID` log-spaced rates up to the mean-square critical lr, then
    twice the best of 9 between the best one's neighbours (each pass ~4× finer)."""
    grid = [critical_lr * 10 ** (-4 + 4 * i / (GRID - 1)) * (1 - 1e-6) for i in range(GRID)]
    best = _best(problem, batch, grid)
    for _ in range(REFINE):
        lr, steps = best.lr, best.steps
        if lr is None or steps is None:
            return best
        i = min(range(len(grid)), key=lambda j: abs(math.log(grid[j] / lr)))
        lo, hi = grid[max(i - 1, 0)], min(grid[min(i + 1, len(grid) - 1)], grid[-1])
        grid = [lo * (hi / lo) ** (j / 8) for j in range(9)]
        finer = _best(problem, batch, grid)
        if finer.steps is not None and finer.steps <= steps:
            best = finer
    return best


def _best(problem: Problem, batch: int | None, lrs: list[float]) -> Fastest:
    found = [
        (steps, -lr) for lr in lrs if (steps := steps_to_target(problem, lr, batch)) is not None
    ]
    if not found:
        return Fastest(None, None)
    steps, negative = min(found)
    return Fastest(-negative, steps)


def critical_batch_size(
    problem: Problem, rows: int, critical: Callable[[int | None], float]
) -> int | None:
    """The smallest power of two up to ``rows`` whose fewest expected steps to the target are
    at most twice the full batch's — past it a bigger batch hardly saves steps (McCandlish et
    al. 2018's S = 2 S_min point of S = S_min (1 + B_noise / B)) — by bisection: the fewest
    steps fall as the batch grows. ``critical(B)``: the mean-square critical lr of batches of
    B. None when even ``rows`` does not get there, or the full batch cannot reach the target."""
    full = fastest_lr(problem, None, critical(None)).steps
    if full is None:
        return None

    def enough(b: int) -> bool:
        steps = fastest_lr(problem, b, critical(b)).steps
        return steps is not None and steps <= 2 * full

    lo, hi = 0, max(rows, 1).bit_length() - 1  # 2**hi ≤ rows
    if not enough(1 << hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(1 << mid) else (mid + 1, hi)
    return 1 << lo
