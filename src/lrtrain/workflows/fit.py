"""Fit and resume: one model trained as configured, its run directory written, its checkpoint
read back to go on (``lrtrain fit``, ``fit --resume``, :func:`lrtrain.api.fit`).

Heavy modules (torch) are imported inside the functions that train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrain.config.schema import Config
from lrtrain.data.distributed import SINGLE, World, current
from lrtrain.runs import directory as runs
from lrtrain.runs.records import FitRecord
from lrtrain.workflows import record
from lrtrain.workflows.redraw import draw_run, log
from lrtrain.workflows.resumption import resume_status
from lrtrain.workflows.rows import check_replicas

if TYPE_CHECKING:
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.train import ProgressCallback, TrainResult
    from lrtrain.runs.records import ModeHistory
    from lrtrain.runs.summaries import FitSummary
    from lrtrain.theory.analysis import Analysis, AutoSettings
    from lrtrain.workflows.loggers import Logged
    from lrtrain.workflows.network import NetworkRun
    from lrtrain.workflows.prediction import Prediction


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
    config: Config, world: World = SINGLE, data: Any = None
) -> tuple[Config, Dataset, Analysis, AutoSettings | None]:
    """Check the device and memory, load the data and analyse the problem — before any file
    is written, so a bad input leaves nothing behind. ``optimizer.lr/momentum: auto`` are
    resolved here: the returned config holds the numbers chosen (and the settings say how).
    In a distributed ``world`` the data set is this process's shard and the analysis that of
    all the rows (statistics combined across processes). ``data``: rows handed over from Python
    (``(X, y)`` or a DataFrame; :mod:`lrtrain.data.arrays`) instead of the config's, the
    returned config saying ``data.source: arrays``."""
    from dataclasses import replace

    from lrtrain.engine.gradients import reads_rows
    from lrtrain.theory.analysis import analyse_dataset, gap_floor
    from lrtrain.workflows.rows import load_rows

    # rows a CSV or the caller holds are lent, not copied, where the steps read only statistics
    config, dataset = load_rows(config, world, data, hold=partial(reads_rows, config))
    analysis = analyse_dataset(dataset, config.optimizer)
    if config.train.target_gap is not None:
        floor = gap_floor(dataset, analysis, world, config.train.target_gap)
        analysis = replace(analysis, gap_floor=floor)
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
    data: Any = None,
) -> FitRun | NetworkRun:
    """Train one model as configured, write its run directory and draw its figures (``draw``
    False: the caller draws them, e.g. with :func:`redraw`).

    Under torchrun (after :func:`lrtrain.data.distributed.setup`) every process trains on its shard
    of the rows through DistributedDataParallel; rank 0 alone writes, reports and draws.

    ``data``: rows handed over from Python instead of the config's (``(X, y)`` or a DataFrame;
    numpy, pandas or torch, :mod:`lrtrain.data.arrays`). A network (``model.kind: mlp``) is
    measured instead of solved (:mod:`lrtrain.workflows.network`)."""
    if config.model.kind != "linear":
        from lrtrain.workflows import network

        return network.fit(config, out, overwrite, progress, should_stop, draw, data)
    world = current()
    config, dataset, analysis, auto = prepare(config, world, data)
    check_replicas(config, dataset, world)
    run_dir = world.share(
        world.on_main(lambda: runs.create_run_dir(config.output.root, config.name, out, overwrite))
    )
    result = _train(config, dataset, analysis, world, progress, should_stop)
    return _finish_fit(world, run_dir, config, dataset, analysis, result, auto, draw)


@dataclass
class Fitted:
    """A fit computed in memory and written nowhere: what ``fit`` would report and save."""

    config: Config
    summary: FitSummary
    dataset: Dataset
    analysis: Analysis
    result: TrainResult


def fit_in_memory(config: Config, data: Any = None) -> Fitted:
    """Train one model as configured and summarise it as ``fit`` does — the same data, theory,
    training and summary — without a run directory, figures or loggers (the scikit-learn
    estimator's fit, run in one process)."""
    config, dataset, analysis, auto = prepare(config, SINGLE, data)
    check_replicas(config, dataset, SINGLE)
    result = _train(config, dataset, analysis, SINGLE, None, None)
    summary, _, _ = _summarise(config, dataset, analysis, result, auto, False)
    return Fitted(config, summary, dataset, analysis, result)


def _train(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    world: World,
    progress: ProgressCallback | bool | None,
    should_stop: Callable[[], bool] | None,
) -> TrainResult:
    """The fit's training: to the closed form's loss, within what the dtype resolves."""
    from lrtrain.engine.train import train
    from lrtrain.workflows.progress import progress_for

    with progress_for(progress if world.is_main else None, f"fit {config.name}") as callback:
        return train(dataset, config, progress=callback, should_stop=should_stop,
                     loss_ref=analysis.target_loss, world=world,
                     gap_floor=analysis.gap_floor or 0.0)  # fmt: skip


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
    summary, prediction, validation = _summarise(
        config, dataset, analysis, result, auto, world.distributed
    )
    if not world.is_main:
        return FitRun(run_dir, summary, config, dataset, analysis, result, [], prediction.modes)
    written = runs.save_fit(run_dir, FitRecord(
        config, summary, analysis.arrays, record.history(result, 0, config),
        record.model_bytes(result), record.checkpoint_bytes(config, result),
        prediction.expected_loss, validation, prediction.band, prediction.band_expected,
        prediction.modes, record.sample(dataset),
    ))  # fmt: skip
    figures = draw_run(written, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return FitRun(run_dir, summary, config, dataset, analysis, result, figures, prediction.modes,
                  logged)  # fmt: skip


def _summarise(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    result: TrainResult,
    auto: AutoSettings | None,
    distributed: bool,
) -> tuple[FitSummary, Prediction, list[float] | None]:
    """What the theory predicts for the run, the held-out loss per logged step, the summary."""
    from lrtrain.workflows.prediction import predict
    from lrtrain.workflows.summary import fit_summary

    prediction = predict(config, dataset, analysis, result, distributed)
    held = dataset.validation
    validation = held.losses(result.replica_history(0)["theta"]) if held is not None else None
    summary = fit_summary(config, dataset, analysis, result, auto, prediction, validation)
    if result.sharpness is not None:  # measured: the closed form's λ_max, step after step
        from lrtrain.workflows.network_summary import noise_summary, sharpness_summary

        summary["sharpness"] = sharpness_summary(config, result, 0)
        minibatch: dict[str, Any] = dict(summary["theory"].get("minibatch") or {})
        exact = _exact_noise(config, dataset, analysis, result, distributed)
        summary["noise_scale"] = noise_summary(result, 0, exact,
                                               minibatch.get("critical_batch_size"))  # fmt: skip
    return summary, prediction, validation


def _exact_noise(
    config: Config, dataset: Dataset, analysis: Analysis, result: TrainResult, distributed: bool
) -> list[float | None] | None:
    """The linear model's B_simple from the rows' moments at each measured step whose θ was
    logged (None: more than the moments' 10 parameters, or several processes)."""
    import math

    from lrtrain.theory import minibatch as mb
    from lrtrain.workflows.prediction import minibatch_moments

    moments, _ = minibatch_moments(config, dataset, analysis, distributed)
    if moments is None:
        return None
    history = result.replica_history(0)
    rows = {int(step): i for i, step in enumerate(history["step"].tolist())}
    out: list[float | None] = []
    for step in result.sharpness_steps:
        if step not in rows:
            out.append(None)
            continue
        trace, grad_sq = mb.noise_scale(moments, history["theta"][rows[step]])
        ratio = trace / grad_sq if grad_sq > 0 else math.inf
        out.append(ratio if math.isfinite(ratio) else None)
    return out


def resume(
    run_dir: str | Path,
    config: Config | None = None,
    checkpoint: dict[str, Any] | None = None,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
    data: Any = None,
) -> FitRun | NetworkRun:
    """Continue an interrupted (or completed, with a larger max_iter) fit in place; on the CPU
    the result equals that of an uninterrupted run bit for bit. ``config`` defaults to the
    run's own; see :func:`resume_status` for what may change. ``data``: a run on rows handed over
    from Python (``data.source: arrays``) needs the same rows again: its directory keeps none."""
    from lrtrain.config.schema import load_config

    if config is None:
        config = load_config(str(Path(run_dir) / "config.yaml"))
    if checkpoint is None:
        checkpoint = record.load_checkpoint(run_dir)
        resume_status(checkpoint, config)
    from lrtrain.engine.train import train
    from lrtrain.workflows.progress import progress_for

    if config.model.kind != "linear":
        from lrtrain.workflows import network

        return network.fit(config, None, False, progress, should_stop, draw, data,
                           resume=checkpoint["engine"], run_dir=Path(run_dir))  # fmt: skip
    world = current()
    config, dataset, analysis, auto = prepare(config, world, data)
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
