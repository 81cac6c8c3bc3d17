"""The verdicts beyond the quadratic (theory.regimes): the local quadratic's thresholds against
the scalar iteration itself, and each observed-regime rule on histories built to show it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrtrain.theory.regimes import observed_regime, predicted_regime, thresholds


def scalar_run(
    lr: float, momentum: float, lam: float, nesterov: bool = False, steps: int = 80
) -> np.ndarray:
    """torch.optim.SGD's update on L = λe²/2 from e = 1: the error at every step."""
    e, velocity, out = 1.0, 0.0, []
    for _ in range(steps):
        out.append(e)
        grad = lam * e
        velocity = momentum * velocity + grad
        e -= lr * (grad + momentum * velocity if nesterov else velocity)
    return np.asarray(out)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("x", [0.02, 0.3, 0.9, 1.2, 1.9, 2.1, 3.0, 3.9, 4.1])
def test_the_predicted_regime_is_the_scalar_iterations(momentum, x, nesterov) -> None:
    if nesterov and momentum == 0:
        return
    lam, lr = 2.0, x / 2.0  # ηλ = x
    predicted, why = predicted_regime(lr, momentum, lam, nesterov=nesterov)
    e = scalar_run(lr, momentum, lam, nesterov)
    grows = abs(e[-1]) > 1.0
    flips = bool((np.sign(e[1:]) != np.sign(e[:-1])).any())
    if predicted == "diverged":
        assert grows
    elif predicted == "oscillating":
        assert not grows and flips
    else:
        assert not grows and not flips
    assert "λ_max(θ₀) = 2" in why
    if not nesterov:
        assert thresholds(lr, momentum).stable == pytest.approx(2 * (1 + momentum) / lr)


def test_weight_decay_adds_to_the_curvature() -> None:
    assert predicted_regime(1.0, 0.0, 1.5)[0] == "oscillating"
    assert predicted_regime(1.0, 0.0, 1.5, weight_decay=0.6)[0] == "diverged"


def judge(loss, sharpness=None, limit=10.0, status="completed", projection=None):
    loss = np.asarray(loss, dtype=float)
    steps = np.arange(len(loss))
    measured = np.arange(len(loss)) if sharpness is not None else np.asarray([0])
    values = np.asarray(sharpness if sharpness is not None else [1.0], dtype=float)
    return observed_regime(steps, loss, status, measured, values,
                           np.full(len(values), limit), projection)  # fmt: skip


def test_diverged() -> None:
    assert judge([1.0, 2.0, math.inf]).regime == "diverged"
    assert judge([1.0, 0.5, 1.5]).regime == "diverged"  # ended above its start
    assert judge([1.0, 0.5], status="diverged").regime == "diverged"


def test_catapult_needs_the_rise_the_fall_and_a_flatter_end() -> None:
    loss = [1.0, 3.0, 9.0, 4.0, 0.8, 0.5, 0.4]
    flat = [12.0, 14.0, 8.0, 6.0, 5.0, 5.0, 5.0]  # ends at half the threshold
    seen = judge(loss, flat)
    assert seen.regime == "catapult" and "9×" in seen.rule
    sharp = [12.0, 14.0, 11.0, 11.0, 11.0, 11.0, 11.0]  # still above: not a catapult
    assert judge(loss, sharp).regime != "catapult"
    assert judge([1.0, 1.5, 0.9, 0.5], flat[:4]).regime != "catapult"  # rose too little


def test_edge_of_stability_needs_the_threshold_reached_and_held_while_the_loss_falls() -> None:
    loss = np.geomspace(1.0, 0.1, 12) * (1 + 0.05 * (-1) ** np.arange(12))
    sharpness = [2.0, 4.0, 7.0, 9.2, 10.3, 9.7, 10.1, 9.9, 10.2, 9.8, 10.0, 9.9]
    seen = judge(loss, sharpness)
    assert seen.regime == "edge of stability" and "step 3" in seen.rule
    assert judge(loss, [2.0, 4.0, 7.0, 8.0, 8.5, 8.0, 8.5, 8.0, 8.5, 8.0, 8.5, 8.0]).regime != (
        "edge of stability"
    )  # never reached 0.9 × the threshold
    stuck = np.concatenate([loss[:4], np.full(8, loss[3] * 1.01)])
    assert judge(stuck, sharpness).regime != "edge of stability"  # the loss did not fall


def test_oscillating_and_monotone_from_the_updates_along_the_top_vector() -> None:
    loss = np.geomspace(1.0, 0.01, 10)
    alternating = np.cumsum([(-0.5) ** t for t in range(10)])
    assert judge(loss, projection=alternating).regime == "oscillating"
    assert judge(loss, projection=np.cumsum(0.5 ** np.arange(10))).regime == "monotone"
    assert judge(loss).regime == "monotone"  # nothing kept along u: no sign change seen
