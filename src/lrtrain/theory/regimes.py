"""Verdicts beyond the quadratic: what the local quadratic at θ₀ predicts for a network, and
which regime a run's measured loss and sharpness show — the rules of docs/mathematics.md
("Beyond the quadratic"), from numpy arrays alone.

On a quadratic with Hessian eigenvalue λ, heavy-ball SGD (rate η, momentum β; β = 0 is
gradient descent) multiplies that direction's error by the roots of z² − (1 + β − ηλ)z + β:
both real and positive (no sign changes) while ηλ ≤ (1 − √β)², of modulus below 1 while
ηλ < 2(1 + β). A network's loss is locally such a quadratic with λ = λ_max(θ), the sharpness,
which training moves: it rises (progressive sharpening) until it reaches the threshold
2(1 + β)/η and hovers there while the loss keeps falling, non-monotonically (Cohen et al.,
2021: the edge of stability); or, started above the threshold, the loss rises, the network
moves to a flatter region with λ below it and the loss falls again (Lewkowycz et al., 2020:
the catapult phase).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The edge of stability: the sharpness within ±10% of the threshold (Cohen et al. read their
# Fig. 1 the same way: η·λ_max/2 ≈ 1), from the first measurement at or above 0.9 × it on
EOS_BAND = (0.9, 1.1)
EOS_MIN_MEASUREMENTS = 3  # measurements in that phase, at least, to call it a phase
CATAPULT_RISE = 2.0  # a catapult's loss rises to at least this × its initial loss
UPDATE_NOISE = 1e-4  # updates along u below this × the largest are rounding noise (as linear)


@dataclass(frozen=True)
class Threshold:
    """The local quadratic's thresholds for one rate: diverging beyond ``stable`` (2(1+β)/η,
    in units of λ), oscillating beyond ``monotone`` ((1−√β)²/η)."""

    stable: float
    monotone: float


def thresholds(lr: float, momentum: float, nesterov: bool = False) -> Threshold:
    """The sharpness above which heavy-ball SGD at (lr, momentum) diverges on a quadratic, and
    above which its error along that direction changes sign; with Nesterov's momentum
    2(1+β)/((1+2β)η) and ((1−β)/(1+β))²/η (the linear model's limits, docs/mathematics.md)."""
    if nesterov:
        return Threshold(2.0 * (1.0 + momentum) / ((1.0 + 2.0 * momentum) * lr),
                         ((1.0 - momentum) / (1.0 + momentum)) ** 2 / lr)  # fmt: skip
    return Threshold(2.0 * (1.0 + momentum) / lr, (1.0 - math.sqrt(momentum)) ** 2 / lr)


def predicted_regime(
    lr: float, momentum: float, sharpness: float, weight_decay: float = 0.0, nesterov: bool = False
) -> tuple[str, str]:
    """(monotone | oscillating | diverged, why) of the local quadratic at θ₀ whose top
    curvature is ``sharpness`` (+ the weight decay, which adds to every eigenvalue)."""
    curvature = sharpness + weight_decay
    limit = thresholds(lr, momentum, nesterov)
    ratio = curvature / limit.stable
    where = f"λ_max(θ₀) = {curvature:.4g}"
    if curvature > 0:
        where += f", so the stability threshold {limit.stable:.4g} is {1 / ratio:.3g}× it"
    if not math.isfinite(curvature):
        return "diverged", "the loss's Hessian at θ₀ is not finite"
    if curvature >= limit.stable:
        return "diverged", f"{where}: the sharpest direction's error grows every step"
    if curvature > limit.monotone:
        return "oscillating", f"{where}: the sharpest direction overshoots, changing sign"
    return "monotone", f"{where}: every direction's error shrinks without changing sign"


@dataclass(frozen=True)
class Observed:
    """The regime a run showed, the rule that fired and its numbers in words."""

    regime: str  # monotone | oscillating | edge of stability | catapult | diverged
    rule: str


def observed_regime(
    steps: np.ndarray,
    loss: np.ndarray,
    status: str,
    measured_at: np.ndarray,
    sharpness: np.ndarray,
    limits: np.ndarray,
    projection: np.ndarray | None,
) -> Observed:
    """The regime of one run from its logged steps and losses [R] (θ₀ first), its status, the
    sharpness at its measured steps [S] with the threshold 2(1+β)/η_t at each [S], and θ's
    coordinate along the latest top eigenvector at the logged steps [R] (None: not kept).
    Rules in order: diverged, catapult, edge of stability, oscillating, monotone."""
    first, last = float(loss[0]), float(loss[-1])
    if status == "diverged" or not np.isfinite(loss).all():
        return Observed("diverged", "the loss left every bound (not finite, or 10⁶× its start)")
    if len(loss) > 1 and last > first:
        return Observed("diverged", f"the loss ended above its start ({last:.4g} > {first:.4g})")
    peak = float(loss.max())
    ratio = sharpness / limits
    measured = np.isfinite(ratio)
    if peak >= CATAPULT_RISE * first and last < first and measured.any():
        end = float(ratio[measured][-1])
        if end < 1.0:
            return Observed("catapult", (
                f"the loss rose to {peak / first:.3g}× its start, then fell below it; "
                f"λ_max ends at {end:.3g}× 2(1+β)/η"))  # fmt: skip
    eos = _edge_of_stability(ratio, measured_at, loss, steps)
    if eos is not None:
        return Observed("edge of stability", eos)
    if projection is not None and _alternates(projection):
        return Observed("oscillating", "updates along the top eigenvector alternate in sign")
    return Observed("monotone", "updates along the top eigenvector keep their sign")


def _edge_of_stability(
    ratio: np.ndarray, measured_at: np.ndarray, loss: np.ndarray, steps: np.ndarray
) -> str | None:
    """Why the run is at the edge of stability, or None: from the first measurement at or above
    0.9 × the threshold, at least EOS_MIN_MEASUREMENTS of them with their median within
    EOS_BAND, while the loss fell over that phase (its last value below its value there)."""
    low, high = EOS_BAND
    reached = np.flatnonzero(np.isfinite(ratio) & (ratio >= low))
    if not len(reached):
        return None
    phase = ratio[reached[0] :]
    phase = phase[np.isfinite(phase)]
    if len(phase) < EOS_MIN_MEASUREMENTS:
        return None
    median = float(np.median(phase))
    if not low <= median <= high:
        return None
    at = int(measured_at[reached[0]])
    row = max(int(np.searchsorted(steps, at, side="right")) - 1, 0)
    if not float(loss[-1]) < float(loss[row]):
        return None
    return (f"λ_max reached 0.9× 2(1+β)/η at step {at}, then a median {median:.3f}× it "
            f"over {len(phase)} measurements; loss {float(loss[row]):.4g} → "
            f"{float(loss[-1]):.4g}")  # fmt: skip


def _alternates(projection: np.ndarray) -> bool:
    """Whether most pairs of successive significant updates along u change sign (the linear
    model's rule, along the measured top eigenvector instead of the closed form's)."""
    values = projection[np.isfinite(projection)]
    du = np.diff(values)
    if len(du) < 2:
        return False
    significant = np.abs(du) > UPDATE_NOISE * float(np.abs(du).max())
    pairs = significant[1:] & significant[:-1]
    flips = (np.sign(du[1:]) != np.sign(du[:-1])) & pairs
    return bool(pairs.sum()) and int(flips.sum()) > int(pairs.sum()) // 2


def first_rise(loss: np.ndarray, steps: np.ndarray) -> int | None:
    """The first logged step whose loss is above the initial one (None: never)."""
    worse = ~(loss <= loss[0])
    worse[0] = False
    hits = np.flatnonzero(worse)
    return int(steps[hits[0]]) if len(hits) else None
