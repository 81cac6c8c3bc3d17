"""What the theory predicts for a fit, beside what it observed: E[L(θ_t)] at every logged step
(the ``expected_loss`` column of metrics.csv) and, for mini-batches, the mean-square theory
(``theory.minibatch`` in summary.json).

Full batch: the exact loss of the iteration (:func:`lrtrain.theory.analysis.exact_losses`, every SGD
setting). Mini-batch: the expected loss of SGD with batches drawn with replacement
(:mod:`lrtrain.theory.minibatch`) — for shuffled epochs an approximation, and labelled so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from lrtrain.config.optimizer import describe_schedule as describe
from lrtrain.data import stats as st
from lrtrain.runs.records import ModeHistory, ReplicaBand
from lrtrain.runs.summaries import MinibatchTheory, ModesSummary, ReplicaSummary
from lrtrain.theory import minibatch as mb
from lrtrain.theory import minibatch_steps as ms
from lrtrain.theory.analysis import explain, gap_scale, mode_rate, observed_verdict
from lrtrain.theory.dynamics import exact_losses, exact_path, mode_errors
from lrtrain.theory.modes import observed_errors, shown_modes
from lrtrain.theory.modes import summarise as modes_summary
from lrtrain.workflows.replicas import replica_band, summarise

if TYPE_CHECKING:
    import torch

    from lrtrain.config.schema import Config
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.train import TrainResult
    from lrtrain.theory.analysis import Analysis
    from lrtrain.theory.minibatch import ExpectedRun, RowMoments


@dataclass
class Prediction:
    """The expected loss at each logged step (None where not modelled), the mini-batch
    theory of a mini-batch fit and, with ``train.replicas``, the replicas' band beside the
    expected loss at its steps."""

    expected_loss: list[float] | None
    minibatch: MinibatchTheory | None
    band: ReplicaBand | None = None
    band_expected: list[float] | None = None
    replicas: ReplicaSummary | None = None
    modes: ModeHistory | None = None
    modes_summary: ModesSummary | None = None


def predict(
    config: Config, dataset: Dataset, analysis: Analysis, result: TrainResult, distributed: bool
) -> Prediction:
    """The prediction for replica 0 of a fit, at the steps its history logged (nothing for
    the adaptive optimizers, which have no exact theory), and its eigen-modes."""

    history = result.replica_history(0)
    steps = [int(s) for s in history["step"].tolist()]
    theta0 = result.theta[0, 0].tolist()
    opt, lr, factors = config.optimizer, result.lrs[0], result.lr_factors
    mu, nesterov = opt.momentum_value, opt.nesterov
    band = replica_band(analysis, result) if len(result.lrs) > 1 else None
    shown = shown_modes(len(analysis.eigenvalues))
    if not opt.exact_theory:
        observed = summarise(band, result, None) if band is not None else None
        why = f"none: {opt.name} has no exact theory"
        history_, summary_ = _modes(config, analysis, history, shown, None, why, lr)
        return Prediction(None, None, band, None, observed, history_, summary_)
    if config.train.full_batch(dataset.n):
        losses = exact_losses(analysis, theta0, lr, mu, nesterov, steps, factors)
        errors = np.abs(mode_errors(analysis, theta0, lr, mu, nesterov, steps, factors)[:, shown])
        what = "exact: each mode's error under the run's rule (its 2 × 2 map, schedule included)"
        history_, summary_ = _modes(config, analysis, history, shown, errors, what, lr)
        return Prediction(losses, None, modes=history_, modes_summary=summary_)
    grid = sorted(set(steps) | set(band.steps.tolist())) if band is not None else steps
    theory, run = _minibatch(config, dataset, analysis, theta0, lr, grid, distributed, factors)
    on_grid = run.expected_loss if run is not None else None
    at = dict(zip(grid, on_grid, strict=True)) if on_grid is not None else None
    expected = [at[s] for s in steps] if at is not None else None
    predicted, what = None, f"none: {theory['why']}"
    if run is not None:
        theory["observed_final_loss"] = _finite(result.final_loss[0])
        row = {t: i for i, t in enumerate(run.steps)}
        vectors = np.asarray(analysis.eigenvectors)[:, shown]
        second = np.stack([run.second[row[t]].numpy() for t in steps])  # [R, p, p]
        with np.errstate(invalid="ignore"):
            predicted = np.sqrt(np.einsum("pi,rpq,qi->ri", vectors, second, vectors).clip(0))
        what = "mini-batch: the root mean square of each mode's error (the second moment's)"
    history_, summary_ = _modes(config, analysis, history, shown, predicted, what, lr)
    if band is None:
        return Prediction(expected, theory, modes=history_, modes_summary=summary_)
    band_expected = [at[int(s)] for s in band.steps] if at is not None else None
    replicas = summarise(band, result, band_expected)
    return Prediction(expected, theory, band, band_expected, replicas, history_, summary_)


def _modes(
    config: Config,
    analysis: Analysis,
    history: dict[str, torch.Tensor],
    shown: list[int],
    predicted: np.ndarray | None,
    what: str,
    lr: float,
) -> tuple[ModeHistory, ModesSummary]:
    """The shown modes' observed and predicted errors, and the per-mode summary (contraction
    per step at the base lr: the full-batch rule, which is also the mini-batch mean's)."""

    opt = config.optimizer
    vectors = np.asarray(analysis.eigenvectors)
    target = np.asarray(analysis.target_theta)
    observed = observed_errors(history["theta"].numpy(), target, vectors, shown)
    lams = [lam + analysis.weight_decay for lam in analysis.eigenvalues]
    contractions = (
        [mode_rate(lr * lam, lam, lr, opt.momentum_value, opt.nesterov) for lam in lams]
        if opt.exact_theory
        else None
    )
    lams_shown = np.asarray(analysis.eigenvalues)[shown]
    modes = ModeHistory(history["step"].numpy(), shown, lams_shown, observed, predicted)
    return modes, modes_summary(analysis.eigenvalues, vectors, contractions, shown, what)


def predicted_verdict(
    config: Config,
    analysis: Analysis,
    lr: float,
    theta0: list[float],
    factors: np.ndarray | None,
) -> tuple[str | None, str]:
    """The full-batch verdict the theory predicts at base rate ``lr``, and why (None: the
    optimizer has no exact theory). At a constant rate it follows from the rate against the
    Hessian's limits; under a schedule it is read off the exact predicted trajectory the way
    an observed one is read (:func:`lrtrain.theory.analysis.observed_verdict`)."""
    import torch

    opt = config.optimizer
    if not opt.exact_theory:
        return None, (
            f"{opt.name} adapts each coordinate's step to the gradients' history, so no exact "
            "theory predicts it: the verdict is observed only (the analysis line is the "
            "loss's curvature, which is what bounds plain gradient descent)"
        )
    if factors is None:
        return analysis.predict(lr), explain(analysis, lr)
    losses, thetas = exact_path(
        analysis, theta0, lr, opt.momentum_value, opt.nesterov, len(factors), factors
    )
    verdict = observed_verdict(
        torch.from_numpy(losses), torch.from_numpy(thetas), "completed", analysis.top_eigenvector
    )
    rates = lr * factors
    above = int((rates >= analysis.critical_lr).sum())
    what = {
        "monotone": "moves every direction towards the optimum without overshooting",
        "oscillating": "overshoots along the steepest direction, flipping its sign, and shrinks",
        "diverged": "grows along the steepest direction",
    }[verdict]
    return verdict, (
        f"the {describe(opt.schedule.model_dump())} schedule takes the rate from "
        f"{rates[0]:.4g} to {rates[-1]:.4g}, peaking at {rates.max():.4g} (step "
        f"{int(rates.argmax())}); {above} of its {len(rates)} steps are at or above the critical "
        f"lr {analysis.critical_lr:.4g}: the exact iteration {what}, the loss ending at "
        f"{float(losses[-1]):.6g}"
    )


def _minibatch(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    steps: list[int],
    distributed: bool,
    factors: np.ndarray | None,
) -> tuple[MinibatchTheory, ExpectedRun | None]:
    import torch

    opt, batch = config.optimizer, config.train.batch_size
    assert batch is not None
    theory: MinibatchTheory = {
        "available": False, "why": None, "sampling": config.train.sampling,
        "approximation": config.train.sampling == "epoch",
        "batch_size": batch, "critical_lr": None, "full_batch_critical_lr": analysis.critical_lr,
        "noise_floor": None, "target_gap": config.train.gap_target, "fastest_lr": None,
        "fastest_steps": None, "critical_batch_size": None,
        "schedule": None, "verdict": None, "expected_final_loss": None,
        "observed_final_loss": None,
    }  # fmt: skip
    moments, theory["why"] = minibatch_moments(config, dataset, analysis, distributed)
    if moments is None:
        return theory, None
    if factors is not None and len(factors) > SCHEDULED_MAX_STEPS:
        theory["why"] = (
            f"under a schedule the expectation is computed step by step, up to "
            f"{SCHEDULED_MAX_STEPS:,} steps (this run has {len(factors):,})"
        )
        return theory, None
    wd = opt.weight_decay
    rule = mb.Rule(lr, opt.momentum_value, opt.nesterov, wd)
    critical = mb.critical_lr(moments, batch, opt.momentum_value, opt.nesterov, wd)
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    start = torch.tensor(theta0, dtype=torch.float64)
    run = mb.expected_losses(
        moments, analysis.loss_star, theta_star, start, rule, batch, steps, factors
    )
    # the floor the rate of the last step would settle at: a decaying schedule lowers it
    last = rule if factors is None else replace(rule, lr=lr * float(factors[-1]))
    floor = mb.noise_floor(moments, last, batch, theta_star)
    theory["available"], theory["critical_lr"] = True, critical
    theory["noise_floor"] = _finite(floor)
    if factors is None:
        theory["verdict"] = "converges" if lr < critical else "diverges"
    else:
        theory["schedule"] = describe(opt.schedule.model_dump())
        first, end = run.expected_loss[0], run.expected_loss[-1]
        theory["verdict"] = "converges" if math.isfinite(end) and end <= first else "diverges"
    theory["expected_final_loss"] = _finite(run.expected_loss[-1])
    _add_speed(theory, config, dataset.n, analysis, moments, start, critical)
    return theory, run


def _add_speed(
    theory: MinibatchTheory,
    config: Config,
    rows: int,
    analysis: Analysis,
    moments: RowMoments,
    start: torch.Tensor,
    critical: float,
) -> None:
    """The fastest constant lr to the target gap at this batch size, and the critical batch
    size (:mod:`lrtrain.theory.minibatch_steps`)."""
    import torch

    opt, batch = config.optimizer, config.train.batch_size
    mu, nesterov, wd = opt.momentum_value, opt.nesterov, opt.weight_decay
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    loss0 = mb.Lifted.of(moments, analysis.loss_star, theta_star, start, mb.Rule(0.0), None)
    scale = gap_scale(analysis.target_loss, loss0.loss(loss0.start))
    target = analysis.target_loss + theory["target_gap"] * scale
    problem = ms.Problem(moments, analysis.loss_star, theta_star, start, target, mu, nesterov, wd)
    fastest = ms.fastest_lr(problem, batch, critical)
    theory["fastest_lr"], theory["fastest_steps"] = fastest.lr, fastest.steps

    def critical_of(b: int | None) -> float:
        return critical if b == batch else mb.critical_lr(moments, b, mu, nesterov, wd)

    theory["critical_batch_size"] = ms.critical_batch_size(problem, rows, critical_of)


def minibatch_moments(
    config: Config, dataset: Dataset, analysis: Analysis, distributed: bool
) -> tuple[RowMoments | None, str | None]:
    """The rows' moments for the mini-batch theory (one pass over the data), or why not."""
    import torch

    p = len(analysis.theta_star)
    if p > mb.MAX_PARAMETERS:
        return None, (
            f"{p} parameters: the theory is computed up to {mb.MAX_PARAMETERS} (its map on the "
            f"second moments would have (2p)⁴ = {(2 * p) ** 4:,} entries)"
        )
    if distributed:
        return None, "the rows' fourth moments are not combined across processes yet"
    # about where the optimizer converges: θ*, or with weight decay the ridge solution
    reference = torch.tensor(analysis.target_theta, dtype=torch.float64)
    return mb.row_moments(dataset.chunks(st.CHUNK_ROWS), reference), None


@dataclass
class MinibatchSweep:
    """What a mini-batch sweep predicts from: the mean-square critical lr and, per learning
    rate, the expected loss at ``steps`` (None beyond the budget of recursion steps)."""

    critical_lr: float
    steps: list[int]
    expected: list[list[float]] | None
    moments: RowMoments


# Under a schedule the mini-batch expectation is stepped one step at a time (~0.1 ms a step)
SCHEDULED_MAX_STEPS = 100_000

# A sweep's expected curves cost, per rate, the lifted step's matrix and its powers (~3 ms at
# p = 2, more with p) and a product per logged step: computed for up to this many rates
SWEEP_CURVES_MAX_RATES = 256


def minibatch_sweep(
    config: Config, dataset: Dataset, analysis: Analysis, result: TrainResult, distributed: bool
) -> MinibatchSweep | None:
    """The mini-batch theory of a sweep (None: full batch, or not computed)."""
    import torch

    batch, opt, factors = config.train.batch_size, config.optimizer, result.lr_factors
    if batch is None or config.train.full_batch(dataset.n) or not opt.exact_theory:
        return None
    if factors is not None and len(factors) > SCHEDULED_MAX_STEPS:
        return None
    moments, _ = minibatch_moments(config, dataset, analysis, distributed)
    if moments is None:
        return None
    mu, nesterov, wd = opt.momentum_value, opt.nesterov, opt.weight_decay
    critical = mb.critical_lr(moments, batch, mu, nesterov, wd)
    steps = [*result.steps.tolist(), config.train.max_iter]
    if len(result.lrs) > SWEEP_CURVES_MAX_RATES:
        return MinibatchSweep(critical, steps, None, moments)
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    start = result.theta[0, 0].to(torch.float64)
    curves = [
        mb.expected_losses(moments, analysis.loss_star, theta_star, start,
                           mb.Rule(lr, mu, nesterov, wd), batch, steps, factors).expected_loss
        for lr in result.lrs
    ]  # fmt: skip
    return MinibatchSweep(critical, steps, curves, moments)


def sweep_expected(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    result: TrainResult,
    minibatch: MinibatchSweep | None,
) -> list[list[float]] | None:
    """Each rate's expected loss at the steps its history logged (the ``expected_loss`` column
    of trajectories.csv): exact for full batch, the mini-batch theory's expectation for
    mini-batches (None where it is not computed)."""
    import torch

    opt, factors = config.optimizer, result.lr_factors
    if not opt.exact_theory:
        return None
    mu, nesterov, wd = opt.momentum_value, opt.nesterov, opt.weight_decay
    theta0 = result.theta[0, 0].to(torch.float64)
    batch = config.train.batch_size
    histories = [result.replica_history(k)["step"].tolist() for k in range(len(result.lrs))]
    if minibatch is not None:
        if len(result.lrs) > SWEEP_CURVES_MAX_RATES:
            return None
        theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
        return [
            mb.expected_losses(minibatch.moments, analysis.loss_star, theta_star, theta0,
                               mb.Rule(lr, mu, nesterov, wd), batch, steps,
                               factors).expected_loss
            for lr, steps in zip(result.lrs, histories, strict=True)
        ]  # fmt: skip
    if not config.train.full_batch(dataset.n):
        return None  # mini-batches without the theory
    start = theta0.tolist()
    return [
        exact_losses(analysis, start, lr, mu, nesterov, steps, factors)
        for lr, steps in zip(result.lrs, histories, strict=True)
    ]


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
