"""The eigen-modes of a run: the error along each eigenvector of H, |u_iᵀ(θ_t − θ_target)|,
observed beside its prediction, and per mode its curvature, contraction per step and steps per
decimal digit (summary.json ``modes``, plots/modes.png). Numpy only: the figure is drawn from a
run's files; the predictions come from ``prediction`` (exact full-batch dynamics, or the
mini-batch second moment's RMS along the mode)."""

from __future__ import annotations

import math

import numpy as np

from lrtrain.runs.summaries import ModesSummary, ModeSummary

SHOWN_ALL = 10  # up to this many modes every one is shown; beyond, the slowest and fastest five
VECTORS_IN_SUMMARY = 100  # eigenvectors in summary.json up to this many parameters


def shown_modes(p: int) -> list[int]:
    """Every mode up to :data:`SHOWN_ALL`, else the five flattest and the five steepest."""
    if p <= SHOWN_ALL:
        return list(range(p))
    return [*range(5), *range(p - 5, p)]


def observed_errors(
    theta: np.ndarray, target: np.ndarray, eigenvectors: np.ndarray, shown: list[int]
) -> np.ndarray:
    """|u_iᵀ(θ_t − θ_target)| for the shown modes: [R, k]."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.abs((np.asarray(theta) - target) @ np.asarray(eigenvectors)[:, shown])


def summarise(
    eigenvalues: list[float],
    eigenvectors: np.ndarray,
    contractions: list[float] | None,
    shown: list[int],
    prediction: str,
) -> ModesSummary:
    """Per mode: λ, u, the contraction per step and steps per digit — every mode up to
    :data:`VECTORS_IN_SUMMARY` parameters; beyond, the shown ones (summary.json stays O(p):
    the eigenvalues are all in the analysis, the eigenvectors in arrays.npz)."""
    p = len(eigenvalues)
    modes = []
    for i in range(p) if p <= VECTORS_IN_SUMMARY else shown:
        lam = eigenvalues[i]
        rate = None if contractions is None else contractions[i]
        digits = math.log(10) / -math.log(rate) if rate is not None and 0 < rate < 1 else None
        modes.append(ModeSummary(
            index=i, eigenvalue=lam,
            eigenvector=eigenvectors[:, i].tolist() if p <= VECTORS_IN_SUMMARY else None,
            contraction=rate, steps_per_digit=digits,
        ))  # fmt: skip
    return {"prediction": prediction, "shown": shown, "modes": modes}
