"""Steps to a target expected loss, the fastest rate and the critical batch size
(lrtrain.theory.minibatch_steps) against the recursion run step by step and brute-force searches."""

from __future__ import annotations

import pytest
import torch

from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.load import load_dataset
from lrtrain.theory import minibatch as mb
from lrtrain.theory import minibatch_steps as ms

ZERO = torch.zeros(2, dtype=torch.float64)


@pytest.fixture(scope="module")
def lesson():
    ds = load_dataset(load_config(None, ["device=cpu", "train.dtype=float64"]))
    exact = ds.answer()
    return exact, mb.row_moments(ds.chunks(st.CHUNK_ROWS), exact.theta_star)


def _problem(lesson, gap: float, momentum: float = 0.0) -> ms.Problem:
    exact, moments = lesson
    target = exact.loss_star * (1 + gap)
    return ms.Problem(moments, exact.loss_star, exact.theta_star, ZERO, target, momentum)


def _first_step_by_step(
    problem: ms.Problem, lr: float, batch: int | None, limit: int
) -> int | None:
    run = mb.expected_losses(problem.moments, problem.loss_star, problem.theta_star, ZERO,
                             problem.rule(lr), batch, range(limit + 1))  # fmt: skip
    return next((t for t, v in enumerate(run.expected_loss) if v <= problem.target), None)


@pytest.mark.parametrize("batch", [1, 4, 16, None])
@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.3])
def test_steps_to_target_is_the_first_crossing(lesson, batch, fraction) -> None:
    problem = _problem(lesson, 0.05)
    lr = fraction * mb.critical_lr(problem.moments, batch)
    found = ms.steps_to_target(problem, lr, batch)
    assert found == _first_step_by_step(problem, lr, batch, 3000)


def test_a_noise_floor_above_the_target_is_never_reached(lesson) -> None:
    problem = _problem(lesson, 0.01)
    lr = 0.5 * mb.critical_lr(problem.moments, 1)
    floor = mb.noise_floor(problem.moments, problem.rule(lr), 1)
    assert problem.loss_star + floor > problem.target
    assert ms.steps_to_target(problem, lr, 1) is None


@pytest.mark.parametrize("batch", [1, 4, None])
def test_the_fastest_lr_beats_its_neighbours(lesson, batch) -> None:
    problem = _problem(lesson, 0.02)
    critical = mb.critical_lr(problem.moments, batch)
    fastest = ms.fastest_lr(problem, batch, critical)
    assert fastest.lr is not None and fastest.steps is not None
    assert ms.steps_to_target(problem, fastest.lr, batch) == fastest.steps
    for factor in (0.7, 0.85, 1.15, 1.4):
        lr = fastest.lr * factor
        if lr < critical:
            other = ms.steps_to_target(problem, lr, batch)
            assert other is None or other >= fastest.steps


def test_the_linear_scaling_rule_holds_for_small_batches_and_breaks(lesson) -> None:
    """Doubling a small batch doubles the fastest lr and halves the steps (the linear-scaling
    rule); near the full batch it stops paying."""
    problem = _problem(lesson, 0.01)
    sizes: list[int | None] = [1, 2, 4, 64, None]
    fastest = [ms.fastest_lr(problem, b, mb.critical_lr(problem.moments, b)) for b in sizes]
    lr = [f.lr for f in fastest]
    steps = [f.steps for f in fastest]
    assert lr[1] / lr[0] == pytest.approx(2, rel=0.15) and lr[2] / lr[1] == pytest.approx(
        2, rel=0.15
    )
    assert steps[0] / steps[1] == pytest.approx(2, rel=0.15)
    assert steps[3] / steps[4] > 5  # batches of 64 still far from the full batch's 12 steps


def test_the_critical_batch_size_is_the_brute_force_one(lesson) -> None:
    problem = _problem(lesson, 0.1)

    def critical(b):
        return mb.critical_lr(problem.moments, b)

    found = ms.critical_batch_size(problem, 100, critical)
    full = ms.fastest_lr(problem, None, critical(None)).steps
    brute = next(
        b for b in (1, 2, 4, 8, 16, 32, 64)
        if (s := ms.fastest_lr(problem, b, critical(b)).steps) is not None and s <= 2 * full
    )  # fmt: skip
    assert found == brute
