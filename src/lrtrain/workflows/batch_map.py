"""The learning-rate × batch-size map (``sweep-lr --batch-sizes 1,4,16,full``): at every batch
size, every rate's steps to the target gap as the mini-batch theory predicts them (in
expectation) beside those one training path took, the fastest rate of each size, the
linear-scaling rule (the fastest rate grows with the batch) and where it breaks (the critical
batch size). Pure: the sweeps it reads come from ``api.batch_map``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.data.distributed import current
from lrtrain.engine.memory import check_memory
from lrtrain.errors import ConfigError
from lrtrain.runs import directory as runs
from lrtrain.runs.summaries import MapRow, MapSize
from lrtrain.workflows.fit import prepare
from lrtrain.workflows.redraw import redraw
from lrtrain.workflows.summary import batch_map_summary

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.engine.train import ProgressCallback, TrainResult
    from lrtrain.runs.summaries import BatchMapSummary
    from lrtrain.theory.analysis import Analysis
    from lrtrain.theory.minibatch import RowMoments
    from lrtrain.workflows.loggers import Logged

AUTO_POINTS = 24  # rates of a map whose lrs are not given
PATHS = 64  # independent batch streams per (size, rate) when train.replicas is 1


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


def auto_lrs(
    critical: dict[int | None, float],
    fastest: list[float] | None = None,
    points: int = AUTO_POINTS,
) -> list[float]:
    """Log-spaced rates from 10⁻³ × the smallest batch's mean-square critical lr (or half the
    smallest fastest rate, if lower) to 1.15 × the largest's, with each size's fastest rate
    itself among them: every size's best rate and every size's edge are on the grid."""
    best = [lr for lr in fastest or [] if lr]
    lo = min([min(critical.values()) * 1e-3, *(0.5 * lr for lr in best)])
    hi = max(critical.values()) * 1.15
    grid = [lo * (hi / lo) ** (i / (points - 1)) for i in range(points)]
    return sorted({*grid, *best})


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
    analysis: Analysis, problem: Any, runs: list[SizeRun], lrs: list[float]
) -> tuple[list[MapRow], list[MapSize]]:
    """Every (size, rate)'s predicted steps — at any count, not only within max_iter — and
    observed steps, and each size's fastest rates, for the minibatch_steps.Problem given."""
    from lrtrain.theory import minibatch as mb
    from lrtrain.theory import minibatch_steps as ms

    moments, target = problem.moments, problem.target
    rows: list[MapRow] = []
    sizes: list[MapSize] = []
    for run in runs:
        critical = mb.critical_lr(moments, run.batch_size)
        fastest = ms.fastest_lr(problem, run.batch_size, critical)
        mine = []
        paths = len(run.result.lrs) // len(lrs)
        for i, lr in enumerate(lrs):
            predicted = ms.steps_to_target(problem, lr, run.batch_size) if lr < critical else None
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
    return rows, sizes


def _problem(config: Config, dataset: Any, analysis: Analysis, moments: RowMoments) -> Any:
    """The map's minibatch_steps.Problem before training: the model's θ₀ (as training starts
    it), the target gap's absolute loss from the exact loss there."""
    import torch

    from lrtrain.data import stats as st
    from lrtrain.engine.family import build_model
    from lrtrain.theory import minibatch_steps as ms
    from lrtrain.theory.analysis import gap_scale

    start = build_model(config, dataset.d, 1, torch.float64, torch.device("cpu")).theta()[0]
    stats = dataset.answer().stats
    loss0 = st.sum_of_squares(stats, start) / stats.n
    target = analysis.target_loss + config.train.gap_target * gap_scale(analysis.target_loss, loss0)
    theta_star = torch.tensor(analysis.theta_star, dtype=torch.float64)
    return ms.Problem(moments, analysis.loss_star, theta_star, start.clone(), target)


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


def batch_map(
    config: Config,
    batch_sizes: list[int | None],
    lrs: list[float] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
    data: Any = None,
) -> BatchMapRun:
    """The lr × batch-size map: at every batch size the same rates, each trained on
    ``train.replicas`` independent batch streams (64 when 1) in one vectorised run; every
    (size, rate)'s steps to the target gap as the mini-batch theory expects them beside those
    the streams' mean loss took; each size's fastest rate; the critical batch size.
    ``data``: rows handed over from Python instead of the config's (``(X, y)`` or a DataFrame;
    numpy, pandas or torch, :mod:`lrtrain.data.arrays`)."""
    import time

    from lrtrain.engine.train import train
    from lrtrain.theory import minibatch as mb
    from lrtrain.theory import minibatch_steps as ms
    from lrtrain.workflows.prediction import minibatch_moments
    from lrtrain.workflows.progress import progress_for

    check_config(config)
    if current().distributed:
        raise ConfigError("--batch-sizes runs in one process: drop --nproc")
    started = time.perf_counter()
    config, dataset, analysis, _ = prepare(config, data=data)
    moments, why = minibatch_moments(config, dataset, analysis, False)
    if moments is None:
        raise ConfigError(f"--batch-sizes needs the mini-batch theory: {why}")
    critical = {b: mb.critical_lr(moments, b) for b in batch_sizes}
    problem = _problem(config, dataset, analysis, moments)
    # the map's own grid unless --lrs gives one (sweep.lrs are a plain sweep's): it spans
    # every size's fastest rate, which for small batches lies far below the full batch's
    fastest = [ms.fastest_lr(problem, b, critical[b]).lr for b in batch_sizes] if not lrs else []
    chosen = lrs or auto_lrs(critical, [lr for lr in fastest if lr is not None])
    paths = config.train.replicas if config.train.replicas > 1 else PATHS
    check_memory(config, replicas=len(chosen) * paths)
    run_dir = runs.create_run_dir(config.output.root, f"{config.name}-batch-map", out, overwrite)
    results = []
    with progress_for(progress, f"batch map {config.name}") as callback:
        for size in batch_sizes:
            count = 1 if size is None else paths  # the full batch has no noise
            lrs_k = [lr for lr in chosen for _ in range(count)]  # every replica its own stream
            streams = 1 if size is None else len(lrs_k)
            train_config = config.model_copy(
                update={"train": config.train.model_copy(
                    update={"batch_size": size, "replicas": streams, "tol": None,
                            "target_gap": None}
                )}
            )  # fmt: skip
            results.append(train(dataset, train_config, lrs=lrs_k, progress=callback,
                                 should_stop=should_stop))  # fmt: skip
    target = problem.target
    runs_by_size = [SizeRun(b, r) for b, r in zip(batch_sizes, results, strict=True)]
    rows, sizes = map_rows(analysis, problem, runs_by_size, chosen)

    def critical_of(b: int | None) -> float:
        return critical[b] if b in critical else mb.critical_lr(moments, b)

    summary = batch_map_summary(
        config, paths, target, chosen, dataset.n, sizes,
        ms.critical_batch_size(problem, dataset.n, critical_of), linear_scaling_limit(sizes),
        time.perf_counter() - started,
    )  # fmt: skip
    runs.save_batch_map(run_dir, config, summary, rows)
    figures = redraw(run_dir, config.output.format) if draw else []
    return BatchMapRun(run_dir, summary, config, figures)


@dataclass
class BatchMapRun:
    run_dir: Path
    summary: BatchMapSummary
    config: Config
    figures: list[Path]
    logged: list[Logged] = field(default_factory=list)  # where output.loggers wrote it
