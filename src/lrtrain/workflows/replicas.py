"""The observed side of the mini-batch theory: K independent batch streams (``train.replicas``)
summarised as the mean of their losses with its 99% confidence band, beside E[L_t].

Each replica's loss at a logged step is the full-batch loss L(θ_t) of its parameters, exactly
from the quadratic (L* + (θ − θ*)ᵀ H (θ − θ*)/2: no pass over the data, no batch noise); the
band is the mean ± 2.576 standard errors. A replica stopped by the divergence guard counts as
+∞ from then on, so a mean that diverges says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from lrtrain.runs.records import ReplicaBand
from lrtrain.runs.summaries import ReplicaSummary

if TYPE_CHECKING:
    from lrtrain.engine.train import TrainResult
    from lrtrain.theory.analysis import Analysis

Z99 = 2.576  # two-sided 99% normal quantile


def exact_losses_of(
    analysis: Analysis, result: TrainResult, replicas: range | None = None, final: bool = False
) -> np.ndarray:
    """[R, k]: the exact full-batch loss L* + ½(θ − θ*)ᵀH(θ − θ*) of each replica's θ at every
    logged row — no pass over the data, no batch noise. Rows at or after a replica's stop are
    not its history: +∞ if it diverged, else its final loss (it stays there). ``final``: one
    more row, where each replica stopped."""
    hessian = np.asarray(analysis.hessian, dtype=np.float64)
    star = np.asarray(analysis.theta_star, dtype=np.float64)

    def loss(theta: np.ndarray) -> np.ndarray:
        error = theta - star
        return analysis.loss_star + 0.5 * np.einsum("...p,pq,...q->...", error, hessian, error)

    return losses_along(result, loss, replicas, final)


def losses_along(
    result: TrainResult,
    loss: Callable[[np.ndarray], np.ndarray],
    replicas: range | None = None,
    final: bool = False,
) -> np.ndarray:
    """[R, k]: ``loss`` (θ [..., p] → [...]) of each replica's θ at every logged row, as
    :func:`exact_losses_of` lays them out (a network's loss over the rows, say)."""
    chosen = replicas if replicas is not None else range(len(result.lrs))
    with np.errstate(over="ignore", invalid="ignore"):
        losses = loss(result.theta[:, chosen.start : chosen.stop].numpy())
        ended = loss(result.final_theta[chosen.start : chosen.stop].numpy())
    diverged = np.asarray([result.statuses[k] == "diverged" for k in chosen])
    ended = np.where(diverged, np.inf, ended)
    stops = np.asarray(result.stop_steps)[chosen.start : chosen.stop]
    after = result.steps.numpy()[:, None] >= stops[None, :]
    losses = np.where(after, ended[None, :], losses)
    return np.vstack([losses, ended]) if final else losses


def replica_band(analysis: Analysis, result: TrainResult) -> ReplicaBand:
    """The band at every logged step (the histories' rows, then where each replica stopped)."""
    return band_of(exact_losses_of(analysis, result, final=True), result)


def band_of(losses: np.ndarray, result: TrainResult) -> ReplicaBand:
    """The mean and 99% band of the replicas' full-batch losses [R + 1, K] (the logged rows,
    then where each stopped)."""
    steps = np.append(result.steps.numpy(), max(result.stop_steps))
    with np.errstate(invalid="ignore", over="ignore"):
        mean = losses.mean(axis=1)
        half = Z99 * losses.std(axis=1, ddof=1) / math.sqrt(losses.shape[1])
    return ReplicaBand(steps, losses[:, 0], mean, mean - half, mean + half)


def summarise(
    band: ReplicaBand, result: TrainResult, expected: list[float] | None
) -> ReplicaSummary:
    """The replicas' verdict and how the theory's expected loss sits in their band."""
    first, last = float(band.mean[0]), float(band.mean[-1])
    converges = math.isfinite(last) and last <= first
    inside = None
    expected_final = None
    if expected is not None and len(expected) == len(band.mean):
        want = np.asarray(expected, dtype=np.float64)
        finite = np.isfinite(band.low) & np.isfinite(band.high) & np.isfinite(want)
        if finite.any():
            # a band of zero width (step 0: every replica at θ_0) holds E[L] to rounding
            slack = 1e-6 * np.abs(want[finite])
            hits = (want[finite] >= band.low[finite] - slack) & (
                want[finite] <= band.high[finite] + slack
            )
            inside = float(hits.mean())
        expected_final = _finite(float(want[-1]))
    return {
        "count": len(result.lrs),
        "verdict": "converges" if converges else "diverges",
        "diverged": sum(s == "diverged" for s in result.statuses),
        "final_mean_loss": _finite(last),
        "final_band": [_finite(float(band.low[-1])), _finite(float(band.high[-1]))],
        "expected_final_loss": expected_final,
        "inside_band": inside,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
