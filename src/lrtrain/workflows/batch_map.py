"""The learning-rate × batch-size map (``sweep-lr --batch-sizes 1,4,16,full``): at every batch
size, every rate's steps to the target gap as the mini-batch theory predicts them (in
expectation) beside those one training path took, the fastest rate of each size, the
linear-scaling rule (the fastest rate grows with the batch) and where it breaks (the critical
batch size). Pure: the sweeps it reads come from ``api.batch_map``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from lrtrain.errors import ConfigError

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.engine.train import TrainResult
    from lrtrain.theory.analysis import Analysis
    from lrtrain.theory.minibatch import RowMoments

FULL = "full"
AUTO_POINTS = 24  # rates of a map whose lrs are not given
PATHS = 64  # independent batch streams per (size, rate) when train.replicas is 1


def parse_batch_sizes(text: str) -> list[int | None]:
    """``--batch-sizes 1,4,16,full``: ascending, distinct; None stands for the full batch."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == FULL:
            sizes.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(
                f"--batch-sizes '{text}': '{part}' is neither a whole number ≥ 1 nor 'full' — "
                "e.g. --batch-sizes 1,4,16,full"
            )
        sizes.append(value)
    if len(sizes) < 2 or len(set(sizes)) != len(sizes):
        raise ConfigError(f"--batch-sizes '{text}': give two or more distinct sizes")
    return sorted(sizes, key=lambda b: math.inf if b is None else b)


def check_config(config: Config) -> None:
    """The map compares predictions with what SGD did: SGD at constant rates, one process."""
    opt = config.optimizer
    if not opt.exact_theory or opt.schedule.kind != "constant":
        raise ConfigError(
            "--batch-sizes maps the mini-batch theory's steps against training's: it needs "
            "optimizer.name: sgd at a constant rate (schedule kind constant)"
        )
    if config.train.replicas > 1:
        raise ConfigError("--batch-sizes: a map's replicas are its rates; set train.replicas: 1")


def auto_lrs(critical: dict[int | None, float], points: int = AUTO_POINTS) -> list[float]:
    """Log-spaced rates from 10⁻³ × the smallest batch's mean-square critical lr to 1.15 × the
    largest's: where the smallest batch's best rate lives, and every batch's edge."""
    lo, hi = min(critical.values()) * 1e-3, max(critical.values()) * 1.15
    return [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]


class MapRow(TypedDict):
    """One (batch size, rate): a row of batch_map.csv."""

    batch_size: int | None  # None: full batch
    lr: float
    predicted_steps: int | None  # E[L_t] first at or below the target (None: never, or beyond)
    observed_steps: int | None  # the streams' mean full-batch loss first at or below it


class MapSize(TypedDict):
    """One batch size of the map: its limit, its fastest rate predicted and observed."""

    batch_size: int | None
    critical_lr: float  # mean-square critical lr (full batch: 2/λ_max)
    predicted_fastest_lr: float | None  # the theory's best constant rate (any rate, not the grid)
    predicted_fastest_steps: int | None
    observed_best_lr: float | None  # the grid rate whose streams' mean got there first
    observed_best_steps: int | None


class BatchMapSummary(TypedDict):
    """summary.json of a map (kind ``batch-map``)."""

    format_version: int
    kind: str  # "batch-map"
    name: str
    sampling: str  # train.sampling of every size's batches
    paths: int  # independent batch streams per (size, rate): the observed side is their mean
    target_gap: float  # the relative gap the steps count to
    target_loss: float  # … as a loss
    lrs: list[float]
    max_iter: int
    rows: int  # the data set's: where the full batch sits on a batch-size axis
    sizes: list[MapSize]
    critical_batch_size: int | None  # the theory's, over powers of two up to the rows
    linear_scaling_up_to: int | None  # the largest size where the fastest lr ∝ batch holds
    elapsed_s: float


@dataclass
class SizeRun:
    """One batch size's run: every rate repeated once per batch stream, rate by rate."""

    batch_size: int | None
    result: TrainResult


def observed_steps(
    analysis: Analysis, result: TrainResult, replicas: range, target: float
) -> int | None:
    """The first logged step at which the mean of these replicas' exact full-batch losses
    (:func:`lrtrain.workflows.replicas.exact_losses_of`: a diverged replica counts as infinite from
    where it stopped) is at or below ``target``."""
    from lrtrain.workflows.replicas import exact_losses_of

    with np.errstate(over="ignore", invalid="ignore"):
        mean = exact_losses_of(analysis, result, replicas).mean(axis=1)
    reached = np.nonzero(mean <= target)[0]
    return int(result.steps[reached[0]]) if len(reached) else None


def map_rows(
    analysis: Analysis,
    moments: RowMoments,
    runs: list[SizeRun],
    lrs: list[float],
    target: float,
    max_steps: int,
) -> tuple[list[MapRow], list[MapSize], Any]:
    """Every (size, rate)'s predicted and observed steps, each size's fastest rates, and the
    minibatch_steps.Problem they were computed for."""
    import torch

    from lrtrain.theory import minibatch as mb
    from lrtrain.theory import minibatch_steps as ms

    start = runs[0].result.theta[0, 0].to(torch.float64)
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    problem = ms.Problem(moments, analysis.loss_star, theta_star, start, target)
    rows: list[MapRow] = []
    sizes: list[MapSize] = []
    for run in runs:
        critical = mb.critical_lr(moments, run.batch_size)
        fastest = ms.fastest_lr(problem, run.batch_size, critical)
        mine = []
        paths = len(run.result.lrs) // len(lrs)
        for i, lr in enumerate(lrs):
            predicted = ms.steps_to_target(problem, lr, run.batch_size) if lr < critical else None
            if predicted is not None and predicted > max_steps:
                predicted = None
            seen = observed_steps(analysis, run.result, range(i * paths, (i + 1) * paths), target)
            mine.append(MapRow(batch_size=run.batch_size, lr=lr, predicted_steps=predicted,
                               observed_steps=seen))  # fmt: skip
        best = min((r for r in mine if r["observed_steps"] is not None),
                   key=lambda r: (r["observed_steps"], -r["lr"]), default=None)  # fmt: skip
        rows += mine
        sizes.append(MapSize(
            batch_size=run.batch_size, critical_lr=critical,
            predicted_fastest_lr=fastest.lr, predicted_fastest_steps=fastest.steps,
            observed_best_lr=best["lr"] if best else None,
            observed_best_steps=best["observed_steps"] if best else None,
        ))  # fmt: skip
    return rows, sizes, problem


def linear_scaling_limit(sizes: list[MapSize], tolerance: float = 0.25) -> int | None:
    """The largest batch size up to which the predicted fastest rate grows in proportion to
    the batch (within ``tolerance``) from the smallest one: where the linear-scaling rule
    holds. None if it fails at the second size already."""
    sized = [s for s in sizes if s["batch_size"] is not None and s["predicted_fastest_lr"]]
    if len(sized) < 2:
        return None
    base = sized[0]
    b0, lr0 = base["batch_size"], base["predicted_fastest_lr"]
    assert b0 is not None and lr0 is not None
    holds = None
    for s in sized[1:]:
        b, lr = s["batch_size"], s["predicted_fastest_lr"]
        assert b is not None and lr is not None
        if abs(lr / lr0 / (b / b0) - 1) > tolerance:
            break
        holds = b
    return holds
