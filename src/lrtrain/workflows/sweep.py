"""Learning-rate sweeps: many learning rates in one vectorised run, each given a verdict.

All learning rates train together as K replicas of the lesson's model (``train.train`` with
``lrs``): one forward/backward and one ``torch.optim.SGD`` step per iteration for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from lrtrain.config.schema import Config
from lrtrain.config.values import AUTO_POINTS
from lrtrain.engine.train import TrainResult
from lrtrain.errors import ConfigError
from lrtrain.runs.summaries import SweepRow
from lrtrain.theory.analysis import (
    Analysis,
    auto_settings,
    divergence_step,
    gap_scale,
    observed_verdict,
)
from lrtrain.theory.dynamics import predicted_steps

if TYPE_CHECKING:
    from lrtrain.workflows.prediction import MinibatchSweep

THEORY_MAX_STEPS = 100_000  # how far the recommendation's theoretical step counts look


def auto_lrs(analysis: Analysis, points: int = AUTO_POINTS) -> list[float]:
    """Log-spaced learning rates from 1/20 of the monotone limit to 1.15× the critical lr.

    The oscillating band [monotone limit, critical) is at least a factor 2 wide for plain,
    momentum and Nesterov SGD, wider than the grid's step (46^(1/11) ≈ 1.42), so the sweep
    always shows all three regimes.
    """
    lo, hi = analysis.monotone_lr_limit / 20, analysis.critical_lr * 1.15
    return [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]


def check_sweep_config(config: Config) -> None:
    """``train.tol`` is fit's change-in-loss stop; before 0.4 a sweep read it as its gap
    target. Refuse it by name rather than silently giving it either meaning."""
    if config.train.replicas > 1:
        raise ConfigError(
            "train.replicas: a sweep's replicas are its learning rates (one batch stream); "
            "run lrtrain fit --replicas K at one rate, or set train.replicas: 1"
        )
    if config.train.tol is not None:
        raise ConfigError(
            "train.tol: sweep-lr has no change-in-loss stop (train.tol is fit's); "
            "the relative optimality gap a sweep counts steps to is train.target_gap — "
            f"write train.target_gap={config.train.tol:g} instead"
        )


def sweep_config(config: Config) -> Config:
    """The engine's config for a sweep: ``train.target_gap`` is the gap target, not an early
    stop, so every learning rate runs its full course and curves stay comparable."""
    train = config.train.model_copy(update={"tol": None, "target_gap": None})
    return config.model_copy(update={"train": train})


@dataclass
class SweepOutcome:
    rows: list[SweepRow]
    recommended_lr: float | None
    recommendation: str


def assess(
    config: Config,
    analysis: Analysis,
    result: TrainResult,
    minibatch: MinibatchSweep | None = None,
) -> SweepOutcome:
    """Verdicts per learning rate, and the recommended one with its reason. A mini-batch
    sweep with the mini-batch theory predicts from its mean-square critical lr — below,
    "converges" (to the noise floor, however the path wanders), at or above, "diverged" (in
    mean square) — and counts the steps to the target on the expected loss: a batch's loss is
    too noisy to say when the gap is reached."""
    target = config.train.gap_target
    loss_star = analysis.target_loss
    curves = minibatch.expected if minibatch is not None else None
    loss0 = curves[0][0] if curves else float(result.loss[0, 0])
    scale = gap_scale(loss_star, loss0)
    critical = minibatch.critical_lr if minibatch is not None else None
    rows = []
    for k, lr in enumerate(result.lrs):
        history = result.replica_history(k)
        status = result.statuses[k]
        verdict = observed_verdict(
            history["loss"], history["theta"], status, analysis.top_eigenvector
        )
        final = result.final_loss[k]
        # (scale 0 where y is all zeros: every loss is 0 and there is no gap to relate)
        gap = (final - loss_star) / scale if math.isfinite(final) and scale > 0 else None
        rows.append(
            SweepRow(
                lr=lr,
                verdict=verdict,
                predicted_verdict=_predicted(config, analysis, result, k, minibatch),
                final_loss=final if math.isfinite(final) else None,
                gap=gap if gap is not None and math.isfinite(gap) else None,
                diverged_at=divergence_step(history) if verdict == "diverged" else None,
                stopped_at=result.stop_steps[k] if status == "diverged" else None,
                steps_to_target=(
                    _steps_to_gap(history, loss_star, scale, target)
                    if minibatch is None or minibatch.expected is None
                    else _expected_steps(
                        minibatch.steps, minibatch.expected[k], loss_star, scale, target
                    )
                ),
            )
        )
    theory = _theory(analysis, result.theta[0, 0].tolist(), target)
    if critical is not None:  # the steps it quotes are full-batch ones
        theory = theory.replace("theory:", "full-batch theory:", 1)
    recommended, reason = _recommend(rows, analysis, target, theory, curves is not None)
    return SweepOutcome(rows, recommended, reason)


def _expected_steps(
    steps: list[int], expected: list[float], loss_star: float, scale: float, target: float
) -> int | None:
    """The first logged step whose expected loss is within the target gap."""
    for step, value in zip(steps, expected, strict=True):
        if value - loss_star <= target * scale:
            return step
    return None


def _predicted(
    config: Config,
    analysis: Analysis,
    result: TrainResult,
    k: int,
    minibatch: MinibatchSweep | None,
) -> str | None:
    """Replica k's predicted verdict: full batch as :func:`prediction.predicted_verdict`;
    mini-batches from the mean-square critical lr, or under a schedule from the expected loss
    (converges if it ends below where it began)."""
    from lrtrain.workflows.prediction import predicted_verdict

    lr, factors = result.lrs[k], result.lr_factors
    if minibatch is None:
        theta0 = result.theta[0, k].tolist()
        return predicted_verdict(config, analysis, lr, theta0, factors)[0]
    if factors is None or minibatch.expected is None:
        return "converges" if lr < minibatch.critical_lr else "diverged"
    curve = minibatch.expected[k]
    return "converges" if math.isfinite(curve[-1]) and curve[-1] <= curve[0] else "diverged"


def _steps_to_gap(
    history: dict[str, torch.Tensor], loss_star: float, scale: float, target: float
) -> int | None:
    reached = history["loss"] - loss_star <= target * scale
    if not bool(reached.any()):
        return None
    return int(history["step"][int(torch.nonzero(reached)[0])])


def _theory(analysis: Analysis, theta0: list[float], target: float) -> str:
    """What the theory says the fastest settings achieve on this problem (full batch)."""
    plain = auto_settings(analysis, 0.0, False)
    polyak = auto_settings(analysis, None, False)

    def steps(lr: float, momentum: float) -> str:
        n = predicted_steps(analysis, theta0, lr, momentum, False, target, THEORY_MAX_STEPS)
        return f"{n} steps" if n is not None else f"over {THEORY_MAX_STEPS} steps"

    return (
        f"theory: the asymptotically optimal constant lr η* = 2/(λ_min+λ_max) = {plain.lr:.4g} "
        f"reaches the gap "
        f"in {steps(plain.lr, 0.0)}, heavy-ball momentum with lr: auto and momentum: auto "
        f"(lr {polyak.lr:.4g}, momentum {polyak.momentum:.4g}) in "
        f"{steps(polyak.lr, polyak.momentum)}; critical lr {analysis.critical_lr:.4g}"
    )


def fmt_loss(loss: float | None) -> str:
    return "not finite" if loss is None else f"{loss:.6g}"


def _recommend(
    rows: list[SweepRow], analysis: Analysis, target: float, theory: str, expected: bool = False
) -> tuple[float | None, str]:
    stable = [r for r in rows if r["verdict"] != "diverged"]
    if expected:  # mini-batches: what the theory expects, of the rates it expects to converge
        stable = [r for r in stable if r["predicted_verdict"] != "diverged"]
    if not stable:
        return None, f"every learning rate diverged; {theory}: try lr < {analysis.critical_lr:.4g}"
    reached = [r for r in stable if r["steps_to_target"] is not None]
    if reached:
        best = min(reached, key=lambda r: (r["steps_to_target"], -r["lr"]))
        how = "its expected loss (mini-batch theory) reaches" if expected else "reached"
        return best["lr"], (
            f"lr {best['lr']:.4g}: {how} a relative optimality gap of {target:g} in "
            f"{best['steps_to_target']} steps, the fastest of the {len(stable)} that did not "
            f"diverge ({best['verdict']}); {theory}"
        )
    best = min(stable, key=lambda r: math.inf if r["final_loss"] is None else r["final_loss"])
    if expected:
        return best["lr"], (
            f"no rate's expected loss (mini-batch theory) reaches a relative gap of {target:g}: "
            "at these rates the batches' gradient noise keeps it above (its noise floor) — a "
            f"smaller lr or bigger batches go lower; lr {best['lr']:.4g} got the lowest final "
            f"loss ({fmt_loss(best['final_loss'])}); {theory}"
        )
    return best["lr"], (
        f"no learning rate reached a relative gap of {target:g} within train.max_iter; "
        f"lr {best['lr']:.4g} got the lowest final loss ({fmt_loss(best['final_loss'])}); "
        f"{theory}; "
        "more steps (train.max_iter) would tell them apart"
    )
