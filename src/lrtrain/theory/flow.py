"""Gradient flow: the continuous-time limit of gradient descent, exact for the quadratic.

dθ/ds = −∇L(θ) = −H'(θ − θ_target) (H' = H + wd·I with weight decay), so
θ(s) = θ_target + V exp(−sΛ') Vᵀ(θ_0 − θ_target). Gradient descent at rate η takes s = η·t (under
a schedule s = Σ η_k; with heavy-ball momentum μ the flow its slow modes follow runs at
η/(1 − μ)). Where the discrete path and the flow part is where the step size matters: an
oscillating path zig-zags about the flow, a diverging one leaves it. Numpy only: drawn from a
run's files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Flow:
    """The flow at flow times ``times``: parameters [T, p] and loss [T]."""

    times: np.ndarray
    theta: np.ndarray
    loss: np.ndarray


def flow_times(steps: np.ndarray, rates: np.ndarray, momentum: float = 0.0) -> np.ndarray:
    """s at each logged step: the sum of the rates of the steps before it (each logged row's
    rate held until the next row: exact for log_every 1 or a constant rate), over 1 − μ."""
    steps = np.asarray(steps, dtype=np.float64)
    rates = np.asarray(rates, dtype=np.float64)
    spans = np.diff(steps, prepend=steps[:1])
    held = np.concatenate([rates[:1], rates[:-1]])
    return np.cumsum(spans * held) / (1.0 - momentum)


def gradient_flow(
    times: np.ndarray,
    theta0: np.ndarray,
    theta_star: np.ndarray,
    target: np.ndarray,
    loss_star: float,
    eigenvalues: np.ndarray,
    eigenvectors: np.ndarray,
    weight_decay: float = 0.0,
) -> Flow:
    """θ(s) and L(θ(s)) at ``times``, from θ_0 towards ``target`` (θ*, or the ridge solution
    with weight decay); the loss is measured about θ* as training measures it."""
    lams = np.asarray(eigenvalues, dtype=np.float64)
    vectors = np.asarray(eigenvectors, dtype=np.float64)
    start = vectors.T @ (np.asarray(theta0, dtype=np.float64) - target)
    offset = vectors.T @ (np.asarray(target, dtype=np.float64) - theta_star)
    with np.errstate(over="ignore"):
        modes = np.exp(-np.outer(times, lams + weight_decay)) * start  # [T, p]
    theta = np.asarray(target, dtype=np.float64) + modes @ vectors.T
    shifted = modes + offset
    loss = loss_star + 0.5 * (shifted * shifted * lams).sum(axis=1)
    return Flow(np.asarray(times, dtype=np.float64), theta, loss)
