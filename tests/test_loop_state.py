"""The loop's bookkeeping on hand-made losses: why a replica stops (diverged on NaN, ±inf or a
blow-up; converged at the target or on a stall, never on step 0's missing previous loss), that a
stopped replica is never stopped again and its rate becomes 0, and what a resume re-activates."""

from __future__ import annotations

import math

import torch

from lrtrain.loop_state import CONVERGED, DIVERGED, INTERRUPTED, STATUSES, LoopState, stop_checks


def _loop(lrs: list[float]) -> LoopState:
    loop = LoopState.start(len(lrs), 1, 10, 100, torch.float64, torch.device("cpu"), lrs)
    loop.limit.fill_(100.0)
    return loop


def test_divergence_is_nan_inf_or_above_the_limit() -> None:
    loop = _loop([0.1, 0.2, 0.3, 0.4, 0.5])
    loss = torch.tensor([1.0, math.nan, math.inf, -math.inf, 101.0], dtype=torch.float64)
    assert stop_checks(loop, loss, 7, tol=None)
    statuses = [STATUSES[s] for s in loop.status.tolist()]
    assert statuses == ["completed", "diverged", "diverged", "completed", "diverged"]
    assert loop.active.tolist() == [True, False, False, True, False]
    assert loop.stop_step.tolist() == [100, 7, 7, 100, 7]
    assert loop.rate_col[:, 0].tolist() == [0.1, 0.0, 0.0, 0.4, 0.0]
    assert loop.masking()
    # the same losses again stop nobody new: the stopped keep their step
    assert not stop_checks(loop, loss, 8, tol=None)
    assert loop.stop_step.tolist() == [100, 7, 7, 100, 7]


def test_target_and_stall_are_convergence_but_not_on_the_first_step() -> None:
    loop = _loop([0.1, 0.2, 0.3])
    loop.target_gap = 1e-3
    loop.goal.copy_(torch.tensor([0.5, -math.inf, -math.inf], dtype=torch.float64))
    first = torch.tensor([0.4, 2.0, 3.0], dtype=torch.float64)
    assert stop_checks(loop, first, 0, tol=1e-6)  # previous loss NaN: no stall on step 0
    assert loop.status.tolist()[0] == CONVERGED and loop.active.tolist() == [False, True, True]
    assert not stop_checks(loop, torch.tensor([0.4, 1.9, 2.9], dtype=torch.float64), 1, tol=1e-6)
    assert stop_checks(loop, torch.tensor([0.4, 1.8, 2.9], dtype=torch.float64), 2, tol=1e-6)
    assert loop.status.tolist() == [CONVERGED, 0, CONVERGED]
    assert loop.stop_step.tolist() == [0, 100, 2]


def test_nobody_stopped_means_no_masking_on_the_cpu() -> None:
    loop = _loop([0.1, 0.2])
    assert not stop_checks(loop, torch.tensor([1.0, 2.0], dtype=torch.float64), 0, tol=None)
    assert not loop.masking() and loop.still_active()
    assert loop.rate_col[:, 0].tolist() == [0.1, 0.2]


def test_resume_reactivates_the_interrupted_and_completed_only() -> None:
    loop = _loop([0.1, 0.2, 0.3])
    stop_checks(loop, torch.tensor([1.0, math.nan, 1.0], dtype=torch.float64), 3, tol=None)
    loop.interrupt(5)
    assert loop.status.tolist() == [INTERRUPTED, DIVERGED, INTERRUPTED]
    assert not loop.still_active()
    again = _loop([9.0, 9.0, 9.0])
    again.restore(loop.state(), total=200)
    assert again.active.tolist() == [True, False, True]
    assert again.stop_step.tolist() == [200, 3, 200]
    assert again.rate_col[:, 0].tolist() == [0.1, 0.0, 0.3]  # the saved rates, 0 if stopped
    assert again.masking()
