"""``lrtrain find-lr``: fastai's, Lightning's and torch-lr-finder's range tests, as published
(:mod:`~.finder`), run on lrtrain's model and data through its training loop, and scored
against what least squares knows exactly: the critical lr 2/λ_max, the asymptotically optimal
η*, the mean-square critical lr of the batch size, and the fastest constant rate a sweep finds.

``repeats`` K runs each test on K replicas in one vectorised run: replica k's range is the
published one moved by 10^(δ_k) (δ spread over ±¼ decade, replica 0 the published range), its
batches its own stream (mini-batches), and — full batch on synthetic data — its own draw of the
data's noise (the seed moved on by k). Each suggestion's spread over the replicas is reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrain.errors import ConfigError
from lrtrain.runs.records import Curve
from lrtrain.runs.summaries import FindLrSummary
from lrtrain.workflows.finder import (
    FASTAI,
    TESTS,
    TORCH_LR_FINDER,
    RangeTest,
    fastai_suggestions,
    lightning_suggestion,
    torch_lr_finder_suggestion,
)

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.batches import Rows
    from lrtrain.engine.train import ProgressCallback
    from lrtrain.theory.analysis import Analysis
    from lrtrain.workflows.loggers import Logged

SWEEP_POINTS = 40  # rates of the sweep that finds the fastest constant rate


@dataclass
class FindLrRun:
    run_dir: Path
    summary: FindLrSummary
    curves: list[Curve]
    figures: list[Path]
    logged: list[Logged] = field(default_factory=list)  # where output.loggers wrote it


def check_config(config: Config) -> None:
    if config.optimizer.schedule.kind != "constant":
        raise ConfigError(
            "find-lr ramps the rate itself: set optimizer.schedule to constant (the found rate "
            "is the base a schedule would then scale)"
        )
    if config.train.replicas > 1:
        raise ConfigError("find-lr: --repeats gives it several batch streams; set replicas: 1")


SHIFT_DECADES = 0.25  # the repeats' ranges move by up to this many decades either way


def shifts(repeats: int) -> list[float]:
    """Each repeat's factor on the published range (1 for the first)."""
    if repeats == 1:
        return [1.0]
    spread = [SHIFT_DECADES * (2 * k / (repeats - 1) - 1) for k in range(repeats)]
    spread.sort(key=abs)  # the published range (δ = 0 for odd K, else the nearest) first
    return [10.0 ** (0.0 if k == 0 else d) for k, d in enumerate(spread)]


def range_tests(test: RangeTest, dataset: Dataset, config: Config, repeats: int) -> list[Curve]:
    """One test on ``repeats`` replicas through lrtrain's loop — the config's model, data,
    optimizer and batches; replica k's rate at step t its shift × the test's ramp."""
    from lrtrain.engine.train import train_range_test
    from lrtrain.workflows.finder import recorded

    mini = config.train.batch_size is not None and not config.train.full_batch(dataset.n)
    streams = repeats if mini else 1
    train_cfg = config.train.model_copy(update={
        "max_iter": test.steps, "log_every": 1, "tol": None, "target_gap": None,
        "replicas": streams,
    })  # fmt: skip
    cfg = config.model_copy(update={"train": train_cfg})
    ramp = test.rates()
    factor = shifts(repeats)
    rows = None if mini else _noisy_rows(config, dataset, repeats)
    result = train_range_test(dataset, cfg, factor, ramp, rows)
    curves = []
    for k in range(repeats):
        losses = result.replica_history(k)["loss"].numpy()[: test.steps]
        rates = factor[k] * ramp[: len(losses)]
        smoothed = recorded(test, losses, config.train.dtype)
        curves.append(Curve(test.name, k, rates, losses, smoothed))
    return curves


def _noisy_rows(config: Config, dataset: Dataset, repeats: int) -> Rows | None:
    """Full batch on synthetic data with noise: replica k's own data set (seed + k), stacked
    [K, N, d] for the per-replica pass (None: every replica shares the data)."""
    import torch

    from lrtrain.data.load import load_dataset
    from lrtrain.engine.batches import Rows

    if repeats == 1 or config.data.source != "synthetic" or config.data.noise_std == 0:
        return None
    sets = [dataset] + [
        load_dataset(config.model_copy(update={"seed": config.seed + k})) for k in range(1, repeats)
    ]
    x = torch.stack([ds.x.contiguous() for ds in sets])
    y = torch.stack([ds.y for ds in sets])
    return Rows(x, y, dataset.n)


def suggestions_of(curve: Curve) -> dict[str, float]:
    lrs = curve.lrs[: len(curve.smoothed)]
    if curve.finder == FASTAI.name:
        return fastai_suggestions(lrs, curve.smoothed)
    if curve.finder == TORCH_LR_FINDER.name:
        return torch_lr_finder_suggestion(lrs, curve.smoothed)
    return lightning_suggestion(lrs, curve.smoothed)


def fastest_constant_lr(
    config: Config, dataset: Dataset, analysis: Analysis, target: float
) -> tuple[float | None, int | None]:
    """The rate of a vectorised sweep (SWEEP_POINTS log-spaced rates below the critical one)
    whose exact full-batch loss first reaches ``target``."""
    from lrtrain.engine.train import train
    from lrtrain.workflows.batch_map import observed_steps
    from lrtrain.workflows.sweep import sweep_config

    top = analysis.critical_lr * 0.999
    grid = [top * 10 ** (-3 + 3 * i / (SWEEP_POINTS - 1)) for i in range(SWEEP_POINTS)]
    result = train(dataset, sweep_config(config), lrs=grid)
    steps = [observed_steps(analysis, result, range(k, k + 1), target) for k in range(len(grid))]
    reached = [(s, -lr) for s, lr in zip(steps, grid, strict=True) if s is not None]
    if not reached:
        return None, None
    best_steps, best = min(reached)
    return -best, best_steps


def find_lr(
    config: Config,
    repeats: int = 1,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    draw: bool = True,
    data: Any = None,
) -> FindLrRun:
    """Run the three range tests ``repeats`` times, score their suggestions, write the run
    directory (summary.json, finder.csv, plots/find_lr.png).
    ``data``: rows handed over from Python instead of the config's (``(X, y)`` or a DataFrame;
    numpy, pandas or torch, :mod:`lrtrain.data.arrays`)."""
    from lrtrain.runs import directory as runs
    from lrtrain.theory.analysis import gap_scale
    from lrtrain.workflows.fit import prepare
    from lrtrain.workflows.redraw import redraw
    from lrtrain.workflows.summary import find_lr_summary

    check_config(config)
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: give at least 1")
    started = time.perf_counter()
    if config.model.kind != "linear":
        return _network_find_lr(config, repeats, out, overwrite, progress, draw, data, started)
    config, dataset, analysis, _ = prepare(config, data=data)
    run_dir = runs.create_run_dir(config.output.root, f"{config.name}-find-lr", out, overwrite)
    curves, found = _run_tests(config, dataset, repeats, progress)
    loss0 = float(curves[0].losses[0])
    target = analysis.target_loss + config.train.gap_target * gap_scale(analysis.target_loss, loss0)
    fastest = fastest_constant_lr(config, dataset, analysis, target)
    rates = (analysis.critical_lr, analysis.asymptotically_optimal_lr, "the closed form's λ_max")
    summary = find_lr_summary(config, rates, list(TESTS), found,
                              _minibatch_critical(config, dataset, analysis), fastest,
                              time.perf_counter() - started)  # fmt: skip
    runs.save_find_lr(run_dir, config, summary, curves)
    figures = redraw(run_dir, config.output.format) if draw else []
    return FindLrRun(run_dir, summary, curves, figures)


def _run_tests(
    config: Config, dataset: Dataset, repeats: int, progress: ProgressCallback | None
) -> tuple[list[Curve], list[dict[str, float]]]:
    """Every range test ``repeats`` times: the curves and each repeat's suggestions."""
    curves: list[Curve] = []
    found: list[dict[str, float]] = [{} for _ in range(repeats)]
    for test in TESTS:
        for curve in range_tests(test, dataset, config, repeats):
            curves.append(curve)
            found[curve.repeat].update(suggestions_of(curve))
        if progress is not None:
            progress(len(curves), len(TESTS) * repeats, [float(curves[-1].smoothed[-1])])
    return curves, found


def _network_find_lr(
    config: Config,
    repeats: int,
    out: str | Path | None,
    overwrite: bool,
    progress: ProgressCallback | None,
    draw: bool,
    data: Any,
    started: float,
) -> FindLrRun:
    """A network's range tests, scored against what can be measured instead of derived: the
    local quadratic's critical rate at θ₀, 2(1+β)/λ_max(θ₀), and the fastest constant rate of
    a sweep that reaches in the fewest steps a loss within ``train.target_gap`` of the way from
    the start to the lowest loss any rate of it reached (full batch)."""
    from lrtrain.runs import directory as runs
    from lrtrain.workflows.redraw import redraw
    from lrtrain.workflows.rows import load_rows
    from lrtrain.workflows.summary import find_lr_summary

    config, dataset = load_rows(config, data=data, replicas=max(repeats, SWEEP_POINTS))
    run_dir = runs.create_run_dir(config.output.root, f"{config.name}-find-lr", out, overwrite)
    curves, found = _run_tests(config, dataset, repeats, progress)
    critical, fastest = _network_references(config, dataset)
    rates = (critical, None, "λ_max(θ₀), measured (a network has no closed form)")
    summary = find_lr_summary(config, rates, list(TESTS), found, None, fastest,
                              time.perf_counter() - started)  # fmt: skip
    runs.save_find_lr(run_dir, config, summary, curves)
    figures = redraw(run_dir, config.output.format) if draw else []
    return FindLrRun(run_dir, summary, curves, figures)


def _network_references(
    config: Config, dataset: Dataset
) -> tuple[float, tuple[float | None, int | None]]:
    """2(1+β)/λ_max(θ₀) (the optimizer's threshold at the start) and the fastest constant rate
    of a sweep over 10⁻³ … 8 × it (a network's catapult window converges above it)."""
    import numpy as np

    from lrtrain.engine.measuring import initial_sharpness
    from lrtrain.engine.train import train
    from lrtrain.theory.regimes import thresholds
    from lrtrain.workflows.sweep import sweep_config

    opt = config.optimizer
    unit = thresholds(1.0, opt.momentum_value, opt.nesterov).stable if opt.name == "sgd" else 2.0
    critical = unit / (initial_sharpness(config, dataset) + opt.weight_decay)
    if config.train.batch_size is not None and not config.train.full_batch(dataset.n):
        return critical, (None, None)  # a batch's loss is not the loss: nothing to compare
    grid = [critical * 10 ** (-3 + 3.9 * i / (SWEEP_POINTS - 1)) for i in range(SWEEP_POINTS)]
    result = train(dataset, sweep_config(config), lrs=grid)
    losses = [result.replica_history(k)["loss"].numpy() for k in range(len(grid))]
    start = float(losses[0][0])
    lowest = min(float(np.nanmin(np.where(np.isfinite(h), h, np.nan))) for h in losses)
    target = lowest + config.train.gap_target * (start - lowest)
    reached = []
    for k, (lr, history) in enumerate(zip(grid, losses, strict=True)):
        steps = result.replica_history(k)["step"].numpy()
        hits = np.flatnonzero(history <= target)
        if len(hits) and result.statuses[k] != "diverged":
            reached.append((int(steps[hits[0]]), -lr))
    if not reached:
        return critical, (None, None)
    best_steps, best = min(reached)
    return critical, (-best, best_steps)


def _minibatch_critical(config: Config, dataset: Dataset, analysis: Analysis) -> float | None:
    """The mean-square critical lr of the config's batches (None: full batch, or no theory)."""
    from lrtrain.theory import minibatch as mb
    from lrtrain.workflows.prediction import minibatch_moments

    batch, opt = config.train.batch_size, config.optimizer
    if batch is None or config.train.full_batch(dataset.n) or not opt.exact_theory:
        return None
    moments, _ = minibatch_moments(config, dataset, analysis, False)
    if moments is None:
        return None
    value = mb.critical_lr(moments, batch, opt.momentum_value, opt.nesterov, opt.weight_decay)
    return value if math.isfinite(value) else None
