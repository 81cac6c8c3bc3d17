"""Learning-rate sweeps: many learning rates in one vectorised run, each given a verdict.

All learning rates train together as K replicas of the lesson's model (``train.train`` with
``lrs``): one forward/backward and one ``torch.optim.SGD`` step per iteration for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from lrtrain.analysis import Analysis, observed_verdict
from lrtrain.config import Config
from lrtrain.errors import ConfigError
from lrtrain.train import TrainResult

DEFAULT_GAP = 1e-3  # relative optimality gap for "steps to tol" when train.tol is not set
AUTO_POINTS = 12


def auto_lrs(analysis: Analysis, points: int = AUTO_POINTS) -> list[float]:
    """Log-spaced learning rates from 1/20 of the monotone limit to 1.15× the critical lr.

    The oscillating band [monotone limit, critical) is at least a factor 2 wide for plain,
    momentum and Nesterov SGD, wider than the grid's step (46^(1/11) ≈ 1.42), so the sweep
    always shows all three regimes.
    """
    lo, hi = analysis.monotone_lr_limit / 20, analysis.critical_lr * 1.15
    return [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]


def parse_lrs(text: str) -> list[float]:
    """``--lrs 0.001,0.01,0.1``."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--lrs '{text}': expected comma-separated numbers") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"--lrs '{text}': every learning rate must be a finite number > 0")
    return values


def parse_lr_range(text: str) -> list[float]:
    """``--lr-range lo:hi:n``: n log-spaced learning rates from lo to hi."""
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"--lr-range '{text}': expected LO:HI:N, e.g. 1e-4:1e-1:40") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi) or not 2 <= n <= 4096:
        raise ConfigError(f"--lr-range '{text}': need 0 < LO < HI and 2 ≤ N ≤ 4096")
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]


def gap_target(config: Config) -> float:
    return config.train.tol if config.train.tol is not None else DEFAULT_GAP


def sweep_config(config: Config) -> Config:
    """The engine's config for a sweep: ``train.tol`` is the gap target, not an early stop,
    so every learning rate runs its full course and curves stay comparable."""
    train = config.train.model_copy(update={"tol": None})
    return config.model_copy(update={"train": train})


@dataclass
class SweepOutcome:
    rows: list[dict[str, Any]]
    recommended_lr: float | None
    recommendation: str


def assess(config: Config, analysis: Analysis, result: TrainResult) -> SweepOutcome:
    """Verdicts per learning rate, and the recommended one with its reason."""
    target = gap_target(config)
    loss_star = analysis.target_loss
    rows = []
    for k, lr in enumerate(result.lrs):
        history = result.replica_history(k)
        status = result.statuses[k]
        verdict = observed_verdict(history["loss"], history["theta"], status, analysis.hessian)
        final = result.final_loss[k]
        gap = _relative_gap(final, loss_star)
        rows.append(
            {
                "lr": lr,
                "verdict": verdict,
                "predicted_verdict": analysis.predict(lr),
                "final_loss": final if math.isfinite(final) else None,
                "gap": gap,
                "diverged_at": result.stop_steps[k] if status == "diverged" else None,
                "steps_to_tol": _steps_to_gap(history, loss_star, target),
            }
        )
    recommended, reason = _recommend(rows, analysis, target)
    return SweepOutcome(rows, recommended, reason)


def _relative_gap(loss: float, loss_star: float) -> float | None:
    if not math.isfinite(loss):
        return None
    return (loss - loss_star) / loss_star if loss_star > 0 else loss - loss_star


def _steps_to_gap(history: dict[str, torch.Tensor], loss_star: float, target: float) -> int | None:
    scale = loss_star if loss_star > 0 else 1.0
    reached = (history["loss"] - loss_star) / scale <= target
    if not bool(reached.any()):
        return None
    return int(history["step"][int(torch.nonzero(reached)[0])])


def _recommend(
    rows: list[dict[str, Any]], analysis: Analysis, target: float
) -> tuple[float | None, str]:
    stable = [r for r in rows if r["verdict"] != "diverged"]
    theory = (
        f"theory: optimal constant lr η* = 2/(λ_min+λ_max) = {analysis.optimal_lr:.4g}, "
        f"critical lr {analysis.critical_lr:.4g}"
    )
    if not stable:
        return None, f"every learning rate diverged; {theory}: try lr < {analysis.critical_lr:.4g}"
    reached = [r for r in stable if r["steps_to_tol"] is not None]
    if reached:
        best = min(reached, key=lambda r: (r["steps_to_tol"], -r["lr"]))
        return best["lr"], (
            f"lr {best['lr']:.4g} reached a relative optimality gap of {target:g} in "
            f"{best['steps_to_tol']} steps, the fastest of the {len(stable)} that did not "
            f"diverge ({best['verdict']}); {theory}"
        )
    best = min(stable, key=lambda r: r["final_loss"])
    return best["lr"], (
        f"no learning rate reached a relative gap of {target:g} within train.max_iter; "
        f"lr {best['lr']:.4g} got the lowest final loss ({best['final_loss']:.6g}); {theory}; "
        "more steps (train.max_iter) would tell them apart"
    )
