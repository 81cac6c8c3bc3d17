"""The loop's bookkeeping on hand-made losses: why a replica stops (diverged on NaN, ±inf or a
blow-up; converged at the target or on a stall, never on step 0's missing previous loss), that a
stopped replica is never stopped again and its rate becomes 0, when the update must mask the
stopped (on full batches only once one's gradient is not finite; on mini-batches from the first
stop), and what a resume re-activates."""

from __future__ import annotations

import math

import pytest
import torch

from lrtrain.engine.loop_state import (
    CONVERGED,
    DIVERGED,
    INTERRUPTED,
    STATUSES,
    LoopState,
    record,
    stop_checks,
)


def _loop(lrs: list[float], dtype: torch.dtype = torch.float64) -> LoopState:
    loop = LoopState.start(
        len(lrs), 1, 10, 100, dtype, torch.device("cpu"), lrs, path_dtype=torch.float64
    )
    loop.set_bounds(limit=torch.full((len(lrs),), 100.0, dtype=torch.float64))
    return loop


def _check(
    loop: LoopState,
    losses: list[float],
    step: int,
    tol: float | None = None,
    grad: torch.Tensor | None = None,
) -> bool:
    """stop_checks on these losses, with finite gradients [K, 2] unless ``grad`` is given."""
    loss = torch.tensor(losses, dtype=torch.float64)
    return stop_checks(loop, loss, torch.ones(len(losses), 2) if grad is None else grad, step, tol)


def test_divergence_is_nan_inf_or_above_the_limit() -> None:
    loop = _loop([0.1, 0.2, 0.3, 0.4, 0.5])
    losses = [1.0, math.nan, math.inf, -math.inf, 101.0]
    assert _check(loop, losses, 7)
    statuses = [STATUSES[s] for s in loop.status.tolist()]
    assert statuses == ["completed", "diverged", "diverged", "completed", "diverged"]
    assert loop.active.tolist() == [True, False, False, True, False]
    assert loop.stop_step.tolist() == [100, 7, 7, 100, 7]
    assert loop.rate_col[:, 0].tolist() == [0.1, 0.0, 0.0, 0.4, 0.0]
    assert not loop.masking()  # their gradients were finite: rate 0 holds them still
    # the same losses again stop nobody new: the stopped keep their step
    assert not _check(loop, losses, 8)
    assert loop.stop_step.tolist() == [100, 7, 7, 100, 7]


@pytest.mark.parametrize(
    ("dtype", "value", "masks"),
    [
        (torch.float64, math.inf, True),
        (torch.float64, math.nan, True),
        (torch.float64, 1e300, False),
        (torch.float32, 1e300, True),  # finite in float64, infinite in the parameters' dtype
        (torch.float32, 1e30, False),
    ],
)
def test_masking_starts_once_a_stopped_gradient_is_not_finite(
    dtype: torch.dtype, value: float, masks: bool
) -> None:
    loop = _loop([0.1, 0.2, 0.3], dtype)
    grad = torch.tensor([[value, 1.0], [1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    assert not _check(loop, [1.0, 2.0, 3.0], 0, grad=grad)  # nobody stopped: nobody looks
    assert not loop.masking()
    assert _check(loop, [1e9, 2.0, 3.0], 1, grad=grad)
    assert loop.masking() is masks
    # a gradient that is not finite but belongs to an active replica is no reason to mask
    loop = _loop([0.1, 0.2, 0.3], dtype)
    assert _check(loop, [1.0, 1e9, 3.0], 1, grad=grad)
    assert not loop.masking()


def test_on_mini_batches_any_stop_starts_masking() -> None:
    """A stopped replica's gradient changes with the batch although its θ does not: finite
    when it stopped, it may overflow on a later batch."""
    loop = _loop([0.1, 0.2])
    loop.gradients_vary = True
    assert _check(loop, [1e9, 2.0], 3)  # finite gradients
    assert loop.masking()


def test_target_and_stall_are_convergence_but_not_on_the_first_step() -> None:
    loop = _loop([0.1, 0.2, 0.3])
    loop.target_gap = 1e-3
    loop.set_bounds(goal=torch.tensor([0.5, -math.inf, -math.inf], dtype=torch.float64))
    assert _check(loop, [0.4, 2.0, 3.0], 0, tol=1e-6)  # previous loss NaN: no stall on step 0
    assert loop.status.tolist()[0] == CONVERGED and loop.active.tolist() == [False, True, True]
    assert not _check(loop, [0.4, 1.9, 2.9], 1, tol=1e-6)
    assert _check(loop, [0.4, 1.8, 2.9], 2, tol=1e-6)
    assert loop.status.tolist() == [CONVERGED, 0, CONVERGED]
    assert loop.stop_step.tolist() == [0, 100, 2]


def test_nobody_stopped_means_no_masking_on_the_cpu() -> None:
    loop = _loop([0.1, 0.2])
    assert not _check(loop, [1.0, 2.0], 0)
    assert not loop.masking() and loop.still_active()
    assert loop.rate_col[:, 0].tolist() == [0.1, 0.2]


def test_losses_and_rates_are_kept_in_the_gradient_paths_dtype() -> None:
    loop = LoopState.start(2, 3, 10, 100, torch.float32, torch.device("cpu"), [0.1, 0.2],
                           path_dtype=torch.float64)  # fmt: skip
    kept = (loop.hist_loss, loop.hist_grad, loop.prev_loss, loop.limit, loop.goal, loop.rate_col)
    assert {t.dtype for t in kept} == {torch.float64}
    assert loop.hist_theta.dtype == loop.lr.dtype == torch.float32
    plain = LoopState.start(2, 3, 10, 100, torch.float32, torch.device("cpu"), [0.1, 0.2])
    assert plain.hist_loss.dtype == plain.limit.dtype == torch.float32


def test_resume_reactivates_the_interrupted_and_completed_only() -> None:
    loop = _loop([0.1, 0.2, 0.3])
    _check(loop, [1.0, math.nan, 1.0], 3)
    loop.interrupt(5)
    assert loop.status.tolist() == [INTERRUPTED, DIVERGED, INTERRUPTED]
    assert not loop.still_active()
    again = _loop([9.0, 9.0, 9.0])
    again.restore(loop.state(), total=200)
    assert again.active.tolist() == [True, False, True]
    assert again.stop_step.tolist() == [200, 3, 200]
    assert again.rate_col[:, 0].tolist() == [0.1, 0.0, 0.3]  # the saved rates, 0 if stopped
    assert again.masking()  # the saved state does not say whether that gradient was finite


def test_the_goal_stops_at_equality_and_the_limit_just_above_it() -> None:
    """The CPU's shortcut (every loss inside its replica's band) and the checks agree at the
    band's ends: a loss equal to the goal converges, one equal to the limit goes on."""
    loop = _loop([0.1, 0.2, 0.3, 0.4])
    goal = 0.5
    loop.target_gap = 1e-3
    loop.set_bounds(goal=torch.full((4,), goal, dtype=torch.float64))
    above = math.nextafter(goal, math.inf)
    assert not _check(loop, [above, 100.0, 1.0, above], 1)
    assert _check(loop, [above, math.nextafter(100.0, math.inf), goal, 1.0], 2)
    assert loop.status.tolist() == [0, DIVERGED, CONVERGED, 0]
    # the stopped replicas' losses, whatever they are, stop nobody again
    assert not _check(loop, [1.0, 1e300, -1.0, 1.0], 3)
    assert loop.stop_step.tolist() == [100, 2, 2, 100]


@pytest.mark.parametrize("path_dtype", [torch.float64, None])  # Gram path, autograd path
def test_a_captured_step_records_logged_rows_and_sends_the_rest_to_the_spare(
    path_dtype: torch.dtype | None,
) -> None:
    """The CUDA graph's bookkeeping (the step a device tensor), run here on the CPU."""
    loop = LoopState.start(2, 1, 3, 6, torch.float32, torch.device("cpu"), [0.1, 0.2], path_dtype)
    kind = loop.hist_loss.dtype
    for step in range(6):
        grad = torch.full((2, 2), float(step), dtype=kind)  # norm step·√2
        theta = torch.full((2, 2), float(step))
        loss = torch.tensor([step, 10.0 * step], dtype=kind)
        record(loop, theta, grad, torch.tensor(step), loss, log_every=2)
    assert loop.hist_loss[:, 1].tolist() == [0.0, 20.0, 40.0, 50.0]  # rows 0, 2, 4; spare: 5
    assert loop.hist_grad[:3, 0].tolist() == pytest.approx([0.0, 2 * 2**0.5, 4 * 2**0.5])
    assert loop.hist_theta[:3, 0, 0].tolist() == [0.0, 2.0, 4.0]
