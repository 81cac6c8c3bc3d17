"""What the theory predicts for a fit, beside what it observed: E[L(θ_t)] at every logged step
(the ``expected_loss`` column of metrics.csv) and, for mini-batches, the mean-square theory
(``theory.minibatch`` in summary.json).

Full batch: the exact loss of the iteration (:func:`lrtrain.analysis.exact_losses`, every SGD
setting). Mini-batch: the expected loss of SGD with batches drawn with replacement
(:mod:`lrtrain.minibatch`) — for shuffled epochs an approximation, and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from lrtrain.analysis import Analysis
    from lrtrain.config import Config
    from lrtrain.data import Dataset
    from lrtrain.minibatch import RowMoments
    from lrtrain.train import TrainResult


class MinibatchTheory(TypedDict):
    """summary.json ``theory.minibatch``: the mean-square prediction for a mini-batch fit."""

    available: bool
    why: str | None  # why not, when not available
    sampling: str  # train.sampling: epoch (shuffled epochs) or replacement
    approximation: bool  # epoch: the theory (drawn with replacement) approximates the run
    batch_size: int
    critical_lr: float | None  # mean-square critical lr for this batch size and rule
    full_batch_critical_lr: float
    noise_floor: float | None  # E[L_∞] − L* at this lr (inf: diverges in mean square)
    verdict: str | None  # "converges" (to the noise floor) | "diverges" (in mean square)
    expected_final_loss: float | None
    observed_final_loss: float | None


@dataclass
class Prediction:
    """The expected loss at each logged step (None where not modelled) and the mini-batch
    theory of a mini-batch fit."""

    expected_loss: list[float] | None
    minibatch: MinibatchTheory | None


def predict(
    config: Config, dataset: Dataset, analysis: Analysis, result: TrainResult, distributed: bool
) -> Prediction:
    """The prediction for replica 0 of a fit, at the steps its history logged."""
    from lrtrain.analysis import exact_losses

    history = result.replica_history(0)
    steps = [int(s) for s in history["step"].tolist()]
    theta0 = result.theta[0, 0].tolist()
    opt, lr = config.optimizer, result.lrs[0]
    if config.train.full_batch(dataset.n):
        losses = exact_losses(analysis, theta0, lr, opt.momentum_value, opt.nesterov, steps)
        return Prediction(losses, None)
    theory, expected = _minibatch(config, dataset, analysis, theta0, lr, steps, distributed)
    if expected is not None:
        theory["observed_final_loss"] = _finite(result.final_loss[0])
    return Prediction(expected, theory)


def _minibatch(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    theta0: list[float],
    lr: float,
    steps: list[int],
    distributed: bool,
) -> tuple[MinibatchTheory, list[float] | None]:
    import torch

    from lrtrain import minibatch as mb

    opt, batch = config.optimizer, config.train.batch_size
    assert batch is not None
    theory: MinibatchTheory = {
        "available": False, "why": None, "sampling": config.train.sampling,
        "approximation": config.train.sampling == "epoch",
        "batch_size": batch, "critical_lr": None, "full_batch_critical_lr": analysis.critical_lr,
        "noise_floor": None, "verdict": None, "expected_final_loss": None,
        "observed_final_loss": None,
    }  # fmt: skip
    moments, theory["why"] = minibatch_moments(config, dataset, analysis, distributed)
    if moments is None:
        return theory, None
    wd = opt.weight_decay
    rule = mb.Rule(lr, opt.momentum_value, opt.nesterov, wd)
    critical = mb.critical_lr(moments, batch, opt.momentum_value, opt.nesterov, wd)
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    floor = mb.noise_floor(moments, rule, batch, theta_star)
    start = torch.tensor(theta0, dtype=torch.float64)
    run = mb.expected_losses(moments, analysis.loss_star, theta_star, start, rule, batch, steps)
    theory["available"], theory["critical_lr"] = True, critical
    theory["noise_floor"] = _finite(floor)
    theory["verdict"] = "converges" if lr < critical else "diverges"
    theory["expected_final_loss"] = _finite(run.expected_loss[-1])
    return theory, run.expected_loss


def minibatch_moments(
    config: Config, dataset: Dataset, analysis: Analysis, distributed: bool
) -> tuple[RowMoments | None, str | None]:
    """The rows' moments for the mini-batch theory (one pass over the data), or why not."""
    import torch

    from lrtrain import minibatch as mb
    from lrtrain import stats as st

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


# A sweep's expected curves cost, per rate, the lifted step's matrix and its powers (~3 ms at
# p = 2, more with p) and a product per logged step: computed for up to this many rates
SWEEP_CURVES_MAX_RATES = 256


def minibatch_sweep(
    config: Config, dataset: Dataset, analysis: Analysis, result: TrainResult, distributed: bool
) -> MinibatchSweep | None:
    """The mini-batch theory of a sweep (None: full batch, or not computed)."""
    import torch

    from lrtrain import minibatch as mb

    batch, opt = config.train.batch_size, config.optimizer
    if batch is None or config.train.full_batch(dataset.n):
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
                           mb.Rule(lr, mu, nesterov, wd), batch, steps).expected_loss
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

    from lrtrain import minibatch as mb
    from lrtrain.analysis import exact_losses

    opt = config.optimizer
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
                               mb.Rule(lr, mu, nesterov, wd), batch, steps).expected_loss
            for lr, steps in zip(result.lrs, histories, strict=True)
        ]  # fmt: skip
    if not config.train.full_batch(dataset.n):
        return None  # mini-batches without the theory
    start = theta0.tolist()
    return [
        exact_losses(analysis, start, lr, mu, nesterov, steps)
        for lr, steps in zip(result.lrs, histories, strict=True)
    ]


def _finite(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
