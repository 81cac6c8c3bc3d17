"""``lrtrain sweep-lr``: many learning rates trained in one vectorised run, each given a verdict,
the sweep's directory written (:func:`lrtrain.api.sweep_lr`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrain.config.schema import Config
from lrtrain.data.distributed import current
from lrtrain.engine.memory import check_memory
from lrtrain.runs import directory as runs
from lrtrain.runs.records import SweepRecord
from lrtrain.workflows import record
from lrtrain.workflows.redraw import draw_run, log

if TYPE_CHECKING:
    from lrtrain.engine.train import ProgressCallback, TrainResult
    from lrtrain.runs.summaries import SweepSummary
    from lrtrain.theory.analysis import Analysis
    from lrtrain.workflows.loggers import Logged
    from lrtrain.workflows.network import NetworkRun


from lrtrain.workflows.fit import prepare


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
    data: Any = None,
) -> SweepRun | NetworkRun:
    """Train at many learning rates in one vectorised run, judge each, recommend one.

    Learning rates: ``lrs``, else ``sweep.lrs`` of the config, else chosen from the analysis so
    that the sweep shows the monotone, oscillating and diverging regimes.

    Under torchrun the learning rates are dealt out across processes (lr i to rank i mod W,
    which spreads the early-diverging large ones), each process trains its group on all the
    rows, and rank 0 gathers the groups and writes the same directory a single process would.
    ``data``: rows handed over from Python instead of the config's (``(X, y)`` or a DataFrame;
    numpy, pandas or torch, :mod:`lrtrain.data.arrays`)."""
    from lrtrain.data.distributed import check_sweep_size, deal
    from lrtrain.engine.gather import concat_results
    from lrtrain.engine.train import train
    from lrtrain.workflows.prediction import minibatch_sweep, sweep_expected
    from lrtrain.workflows.summary import sweep_summary
    from lrtrain.workflows.sweep import assess, auto_lrs, check_sweep_config, sweep_config

    check_sweep_config(config)
    if config.model.kind != "linear":  # measured, not solved: lrtrain.workflows.network
        from lrtrain.workflows import network

        return network.sweep(config, lrs, out, overwrite, progress, should_stop, draw, data)
    world = current()
    config, dataset, analysis, _ = prepare(config, data=data)
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
    histories = [record.history(result, k, config) for k in range(len(result.lrs))]
    sweep = SweepRecord(config, summary, analysis.arrays, list(result.lrs), histories, expected)
    written = runs.save_sweep(run_dir, sweep)
    figures = draw_run(written, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return SweepRun(run_dir, summary, config, analysis, result, figures, logged)
