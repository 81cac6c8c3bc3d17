"""The functions the CLI calls, usable from Python and notebooks as well.

    >>> from lrtrain.api import fit
    >>> from lrtrain.config.schema import load_config
    >>> cfg = load_config(None, ["train.max_iter=10"])
    >>> run = fit(cfg, out="/tmp/lrtrain-doctest", overwrite=True)
    >>> run.summary["status"]
    'completed'

Heavy modules (torch) are imported inside the functions that train, so ``redraw`` — and
``lrtrain plot`` — never import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrain.config.schema import Config
from lrtrain.data.distributed import SINGLE, World, current
from lrtrain.engine.memory import check_memory
from lrtrain.errors import ConfigError, RunDirError
from lrtrain.runs import directory as runs
from lrtrain.workflows.resumption import resume_status

if TYPE_CHECKING:
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.train import ProgressCallback, TrainResult
    from lrtrain.theory.analysis import Analysis, AutoSettings
    from lrtrain.theory.modes import ModeHistory
    from lrtrain.workflows.batch_map import BatchMapSummary
    from lrtrain.workflows.loggers import Logged
    from lrtrain.workflows.predict import Score
    from lrtrain.workflows.summary import FitSummary, SweepSummary


@dataclass
class FitRun:
    """What ``fit`` produced: where it is, its summary, and the in-memory results."""

    run_dir: Path
    summary: FitSummary
    config: Config
    dataset: Dataset
    analysis: Analysis
    result: TrainResult
    figures: list[Path]
    modes: ModeHistory | None = None  # the eigen-modes: observed and predicted errors
    logged: list[Logged] = field(default_factory=list)  # where output.loggers wrote it


def prepare(
    config: Config, world: World = SINGLE
) -> tuple[Config, Dataset, Analysis, AutoSettings | None]:
    """Check the device and memory, load the data and analyse the problem — before any file
    is written, so a bad input leaves nothing behind. ``optimizer.lr/momentum: auto`` are
    resolved here: the returned config holds the numbers chosen (and the settings say how).
    In a distributed ``world`` the data set is this process's shard and the analysis that of
    all the rows (statistics combined across processes)."""
    from dataclasses import replace

    from lrtrain.data.devices import resolve_device
    from lrtrain.data.load import load_dataset
    from lrtrain.theory.analysis import analyse_dataset, gap_floor
    from lrtrain.workflows.loggers import check_installed

    resolve_device(config.device)
    check_installed(list(config.output.loggers))
    check_memory(config, replicas=config.train.replicas, share=world.machine_share)
    dataset = load_dataset(config, world)
    analysis = analyse_dataset(dataset, config.optimizer)
    if config.train.target_gap is not None:
        analysis = replace(analysis, gap_floor=gap_floor(dataset, analysis, world))
    config, analysis, auto = resolve_auto(config, analysis)
    return config, dataset, analysis, auto


def resolve_auto(
    config: Config, analysis: Analysis
) -> tuple[Config, Analysis, AutoSettings | None]:
    """Replace ``optimizer.lr/momentum: auto`` by the numbers the analysis implies."""
    from lrtrain.theory.analysis import auto_settings

    opt = config.optimizer
    if not opt.auto:
        return config, analysis, None
    momentum = None if opt.momentum == "auto" else float(opt.momentum)
    auto = auto_settings(analysis, momentum, opt.nesterov)
    # κ = 1 makes the optimal momentum 0, where torch.optim.SGD refuses nesterov=True.
    nesterov = opt.nesterov and auto.momentum > 0
    resolved = opt.model_copy(
        update={"lr": auto.lr, "momentum": auto.momentum, "nesterov": nesterov}
    )
    config = config.model_copy(update={"optimizer": resolved})
    return config, analysis.for_optimizer(auto.momentum, nesterov), auto


def fit(
    config: Config,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
) -> FitRun:
    """Train one model as configured, write its run directory and draw its figures (``draw``
    False: the caller draws them, e.g. with :func:`redraw`).

    Under torchrun (after :func:`lrtrain.data.distributed.setup`) every process trains on its shard
    of the rows through DistributedDataParallel; rank 0 alone writes, reports and draws."""
    from lrtrain.engine.train import train
    from lrtrain.workflows.progress import progress_for

    world = current()
    config, dataset, analysis, auto = prepare(config, world)
    _check_replicas(config, dataset, world)
    run_dir = world.share(
        world.on_main(lambda: runs.create_run_dir(config.output.root, config.name, out, overwrite))
    )
    with progress_for(progress if world.is_main else None, f"fit {config.name}") as callback:
        result = train(
            dataset,
            config,
            progress=callback,
            should_stop=should_stop,
            loss_ref=analysis.target_loss,
            world=world,
            gap_floor=analysis.gap_floor or 0.0,
        )
    return _finish_fit(world, run_dir, config, dataset, analysis, result, auto, draw)


def _check_replicas(config: Config, dataset: Dataset, world: World) -> None:
    """``train.replicas`` needs batches that differ, drawn in one process."""
    if config.train.replicas == 1:
        return
    if config.train.full_batch(dataset.n):
        raise ConfigError(
            f"train.replicas: batches of {config.train.batch_size} in shuffled epochs of "
            f"{dataset.n} rows are the whole data set every step: the replicas would all be "
            "the same run — use smaller batches, train.sampling: replacement, or replicas: 1"
        )
    if world.distributed:
        raise ConfigError(
            "train.replicas: independent batch streams run in one process — drop --nproc, "
            "or set replicas: 1"
        )


def _finish_fit(
    world: World,
    run_dir: Path,
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    result: TrainResult,
    auto: AutoSettings | None,
    draw: bool = True,
) -> FitRun:
    """Write the run (rank 0) and return it; the other processes get the same summary."""
    from lrtrain.workflows.prediction import predict
    from lrtrain.workflows.summary import fit_summary

    prediction = predict(config, dataset, analysis, result, world.distributed)
    held = dataset.validation
    validation = held.losses(result.replica_history(0)["theta"]) if held is not None else None
    summary = fit_summary(config, dataset, analysis, result, auto, prediction, validation)
    if not world.is_main:
        return FitRun(run_dir, summary, config, dataset, analysis, result, [], prediction.modes)
    runs.save_fit(run_dir, config, dataset, result, summary, analysis.arrays,
                  prediction.expected_loss, prediction.band, prediction.band_expected,
                  prediction.modes, validation)  # fmt: skip
    figures = redraw(run_dir, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return FitRun(run_dir, summary, config, dataset, analysis, result, figures, prediction.modes,
                  logged)  # fmt: skip


def resume(
    run_dir: str | Path,
    config: Config | None = None,
    checkpoint: dict[str, Any] | None = None,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
) -> FitRun:
    """Continue an interrupted (or completed, with a larger max_iter) fit in place; on the CPU
    the result equals that of an uninterrupted run bit for bit. ``config`` defaults to the
    run's own; see :func:`resume_status` for what may change."""
    from lrtrain.config.schema import load_config

    if config is None:
        config = load_config(str(Path(run_dir) / "config.yaml"))
    if checkpoint is None:
        checkpoint = runs.load_checkpoint(run_dir)
        resume_status(checkpoint, config)
    from lrtrain.engine.train import train
    from lrtrain.workflows.progress import progress_for

    world = current()
    config, dataset, analysis, auto = prepare(config, world)
    with progress_for(progress if world.is_main else None, f"resume {config.name}") as callback:
        result = train(
            dataset,
            config,
            progress=callback,
            should_stop=should_stop,
            loss_ref=analysis.target_loss,
            resume=checkpoint["engine"],
            world=world,
            gap_floor=analysis.gap_floor or 0.0,
        )
    return _finish_fit(world, Path(run_dir), config, dataset, analysis, result, auto, draw)


@dataclass
class SweepRun:
    """What ``sweep_lr`` produced (``summary`` None in the processes other than rank 0, whose
    results rank 0 gathered and wrote)."""

    run_dir: Path
    summary: SweepSummary | None
    config: Config
    analysis: Analysis
    result: TrainResult
    figures: list[Path]
    logged: list[Logged] = field(default_factory=list)

    @property
    def all_diverged(self) -> bool:
        rows = self.summary["results"] if self.summary is not None else []
        return bool(rows) and all(row["verdict"] == "diverged" for row in rows)


def sweep_lr(
    config: Config,
    lrs: list[float] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
) -> SweepRun:
    """Train at many learning rates in one vectorised run, judge each, recommend one.

    Learning rates: ``lrs``, else ``sweep.lrs`` of the config, else chosen from the analysis so
    that the sweep shows the monotone, oscillating and diverging regimes.

    Under torchrun the learning rates are dealt out across processes (lr i to rank i mod W,
    which spreads the early-diverging large ones), each process trains its group on all the
    rows, and rank 0 gathers the groups and writes the same directory a single process would.
    """
    from lrtrain.data.distributed import check_sweep_size, deal
    from lrtrain.engine.train import concat_results, train
    from lrtrain.workflows.prediction import minibatch_sweep, sweep_expected
    from lrtrain.workflows.summary import sweep_summary
    from lrtrain.workflows.sweep import assess, auto_lrs, check_sweep_config, sweep_config

    check_sweep_config(config)
    world = current()
    config, dataset, analysis, _ = prepare(config)
    chosen = lrs or config.sweep.lrs or auto_lrs(analysis)
    check_memory(config, replicas=len(chosen))
    check_sweep_size(len(chosen), world.size)
    config = config.model_copy(
        update={"sweep": config.sweep.model_copy(update={"lrs": list(chosen)})}
    )
    run_dir = world.share(
        world.on_main(lambda: runs.create_run_dir(config.output.root, config.name, out, overwrite))
    )
    from lrtrain.workflows.progress import progress_for

    with progress_for(progress if world.is_main else None, f"sweep {config.name}") as callback:
        part = train(
            dataset,
            sweep_config(config),
            lrs=deal(chosen, world),
            progress=callback,
            should_stop=should_stop,
        )
    parts = world.gather_objects(part)
    if parts is None:  # not rank 0: its results are in rank 0's directory
        return SweepRun(run_dir, None, config, analysis, part, [])
    result = concat_results(parts, world.describe())
    minibatch = minibatch_sweep(config, dataset, analysis, result, world.distributed)
    outcome = assess(config, analysis, result, minibatch)
    critical = minibatch.critical_lr if minibatch is not None else None
    summary = sweep_summary(config, dataset, analysis, result, outcome, critical)
    expected = sweep_expected(config, dataset, analysis, result, minibatch)
    runs.save_sweep(run_dir, config, result, summary, analysis.arrays, expected)
    figures = redraw(run_dir, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return SweepRun(run_dir, summary, config, analysis, result, figures, logged)


def batch_map(
    config: Config,
    batch_sizes: list[int | None],
    lrs: list[float] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
) -> BatchMapRun:
    """The lr × batch-size map: at every batch size the same rates, each trained on
    ``train.replicas`` independent batch streams (64 when 1) in one vectorised run; every
    (size, rate)'s steps to the target gap as the mini-batch theory expects them beside those
    the streams' mean loss took; each size's fastest rate; the critical batch size."""
    import time

    from lrtrain.engine.train import train
    from lrtrain.theory import minibatch as mb
    from lrtrain.theory import minibatch_steps as ms
    from lrtrain.theory.analysis import gap_scale
    from lrtrain.workflows import batch_map as bm
    from lrtrain.workflows.prediction import minibatch_moments
    from lrtrain.workflows.progress import progress_for

    bm.check_config(config)
    if current().distributed:
        raise ConfigError("--batch-sizes runs in one process: drop --nproc")
    started = time.perf_counter()
    config, dataset, analysis, _ = prepare(config)
    moments, why = minibatch_moments(config, dataset, analysis, False)
    if moments is None:
        raise ConfigError(f"--batch-sizes needs the mini-batch theory: {why}")
    critical = {b: mb.critical_lr(moments, b) for b in batch_sizes}
    chosen = lrs or config.sweep.lrs or bm.auto_lrs(critical)
    paths = config.train.replicas if config.train.replicas > 1 else bm.PATHS
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
    loss0 = float(results[0].loss[0, 0])
    target = analysis.target_loss + config.train.gap_target * gap_scale(analysis.target_loss, loss0)
    runs_by_size = [bm.SizeRun(b, r) for b, r in zip(batch_sizes, results, strict=True)]
    rows, sizes, problem = bm.map_rows(analysis, moments, runs_by_size, chosen, target,
                                       config.train.max_iter)  # fmt: skip

    def critical_of(b: int | None) -> float:
        return critical[b] if b in critical else mb.critical_lr(moments, b)

    summary: bm.BatchMapSummary = {
        "format_version": runs.FORMAT_VERSION, "kind": "batch-map", "name": config.name,
        "sampling": config.train.sampling, "paths": paths,
        "target_gap": config.train.gap_target, "target_loss": target, "lrs": list(chosen),
        "max_iter": config.train.max_iter, "rows": dataset.n, "sizes": sizes,
        "critical_batch_size": ms.critical_batch_size(problem, dataset.n, critical_of),
        "linear_scaling_up_to": bm.linear_scaling_limit(sizes),
        "elapsed_s": time.perf_counter() - started,
    }  # fmt: skip
    runs.save_batch_map(run_dir, config, summary, rows)
    figures = redraw(run_dir, config.output.format) if draw else []
    return BatchMapRun(run_dir, summary, config, figures)


@dataclass
class BatchMapRun:
    run_dir: Path
    summary: BatchMapSummary
    config: Config
    figures: list[Path]


def redraw(run_dir: str | Path, fmt: str | None = None) -> list[Path]:
    """Draw every figure of a saved fit or sweep from its files alone (no torch)."""
    from lrtrain.plots.figures import run_figures
    from lrtrain.plots.sweep import sweep_figures

    run = runs.load_run(run_dir)
    fmt = fmt or run.config.get("output", {}).get("format", "png")
    if run.kind in ("batch-map", "find-lr"):
        from lrtrain.plots.minibatch import batch_map_figures, find_lr_figures

        drawn = batch_map_figures(run) if run.kind == "batch-map" else find_lr_figures(run)
        return runs.save_figures(run.path, drawn, fmt)
    figures = sweep_figures(run) if run.kind == "sweep" else run_figures(run)
    return runs.save_figures(run.path, figures, fmt)


def log(run_dir: str | Path, config: Config) -> list[Logged]:
    """Write a saved fit or sweep, figures included, into ``output.loggers``' stores."""
    if not config.output.loggers:
        return []
    from lrtrain.workflows.loggers import log_run

    return log_run(Path(run_dir), list(config.output.loggers), config.output.mlflow_uri)


def compare(run_dirs: list[str | Path], path: str | Path) -> Path:
    """One figure comparing fits of the same problem: paths on one contour plot, gap curves."""
    from lrtrain.plots.figures import compare_figure

    loaded = [runs.load_run(d) for d in run_dirs]
    if any(run.kind != "fit" for run in loaded):
        raise RunDirError("--compare: every directory must be a fit run (not a sweep)")
    reference = loaded[0].summary["analysis"]["theta_star"]
    for run in loaded[1:]:
        theta = run.summary["analysis"]["theta_star"]
        if len(theta) != len(reference) or any(
            abs(a - b) > 1e-6 * (1 + abs(b)) for a, b in zip(theta, reference, strict=True)
        ):
            raise RunDirError(
                f"--compare: {run.path} fits another problem than {loaded[0].path} "
                "(different data: different optimum); compare runs of one data set"
            )
    return runs.save_figure(compare_figure(loaded), Path(path))


def animate(run_dir: str | Path, frames: int = 40) -> Path:
    """Write ``plots/descent.gif``: the path growing over the contours, the loss beside it."""
    from lrtrain.plots.animation import descent_frames

    run = runs.load_run(run_dir)
    if run.kind != "fit":
        raise RunDirError(f"{run.path}: --animate draws one fit's descent; this is a sweep")
    return runs.save_animation(descent_frames(run, frames), run.path)


def predict(run_dir: str | Path, csv_path: str | Path) -> str:
    """Predictions of a fitted run for the rows of a CSV, as CSV text (the input's columns and
    a ``<target>_predicted`` column). Uses only the run's files: no torch, no retraining."""
    from lrtrain.workflows.predict import predict_rows, predictions_csv

    run = runs.load_run(run_dir)
    header, rows, y = predict_rows(run, csv_path)
    return predictions_csv(header, rows, y, f"{run.summary['data']['target']}_predicted")


def score(run_dir: str | Path, csv_path: str | Path) -> Score | None:
    """R², RMSE and MAE of a fitted run's predictions for a CSV that has the target column
    (None when it has not). Uses only the run's files."""
    from lrtrain.workflows.predict import predict_rows, score_rows

    run = runs.load_run(run_dir)
    _, _, y = predict_rows(run, csv_path)
    return score_rows(run, csv_path, y)


def export_data(config: Config, path: str | Path, overwrite: bool = False) -> int:
    """Write the synthetic data set ``config`` generates to a CSV; returns the row count."""
    from lrtrain.workflows.export import write_synthetic_csv

    if config.data.source != "synthetic":
        raise ConfigError(
            f"data.source is csv: the data already are in {config.data.path}; "
            "lrtrain data writes synthetic data sets"
        )
    return write_synthetic_csv(config.data, config.seed, Path(path), overwrite)
