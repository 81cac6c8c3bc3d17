"""Fits and sweeps of a network (``model.kind: mlp``): trained by the same loop as the linear
model, measured instead of solved — the sharpness at θ₀ and along the run, the local
quadratic's prediction beside the regime observed — and written to the same run directory
format (``fit`` and ``sweep_lr`` hand a network's config here).

Heavy modules (torch) are imported inside the functions that train.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from lrtrain.config.schema import Config
from lrtrain.data.distributed import SINGLE, World, current
from lrtrain.errors import ConfigError
from lrtrain.runs import directory as runs
from lrtrain.runs.records import FitRecord, SweepRecord
from lrtrain.workflows import record
from lrtrain.workflows.redraw import draw_run, log
from lrtrain.workflows.rows import check_replicas, load_rows

if TYPE_CHECKING:
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.batches import Rows
    from lrtrain.engine.train import ProgressCallback, TrainResult
    from lrtrain.runs.network_summaries import NetworkFitSummary, NetworkSweepSummary
    from lrtrain.workflows.loggers import Logged

FUNCTION_POINTS = 200  # where fit.png draws the fitted function
SURFACE_POINTS = 41  # the loss surface's grid, per axis, where the data is small
SURFACE_MIN_POINTS = 11  # … and at the least, however large
# the slice's work at most, in rows × widest layer × grid points: each point is a pass over
# every row (~1 s on this machine's 2 cores)
SURFACE_WORK = 1 << 32
SURFACE_REACH = 3.0  # the slice spans ±this × the distance the quadratic doubles the loss in


@dataclass
class NetworkRun:
    """What a network's fit or sweep produced: where it is, its summary, the in-memory
    results."""

    run_dir: Path
    summary: NetworkFitSummary | NetworkSweepSummary | None  # None: not rank 0 of a sweep
    config: Config
    dataset: Dataset
    result: TrainResult
    figures: list[Path]
    logged: list[Logged] = field(default_factory=list)

    @property
    def all_diverged(self) -> bool:
        rows: list[Any] = cast(dict[str, Any], self.summary).get("results", [])
        return bool(rows) and all(row["verdict"] == "diverged" for row in rows)


def fit(
    config: Config,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
    data: Any = None,
    resume: dict[str, Any] | None = None,
    run_dir: Path | None = None,
) -> NetworkRun:
    """Train the network as configured and write its run directory (``resume``: a checkpoint's
    engine state, continued in ``run_dir``). Under torchrun every process trains on its shard
    of the rows through DistributedDataParallel and measures with the others; rank 0 alone
    writes, reports and draws."""
    from lrtrain.engine.train import train
    from lrtrain.workflows.progress import progress_for

    world = current()
    config, dataset = load_rows(config, world, data)
    check_replicas(config, dataset, world)
    if run_dir is None:
        root, name = config.output.root, config.name
        run_dir = world.share(
            world.on_main(lambda: runs.create_run_dir(root, name, out, overwrite))
        )
    verb = "fit" if resume is None else "resume"
    with progress_for(progress if world.is_main else None, f"{verb} {config.name}") as callback:
        result = train(dataset, config, progress=callback, should_stop=should_stop,
                       resume=resume, world=world)  # fmt: skip
    return _finish_fit(run_dir, config, dataset, result, draw, world)


def _finish_fit(
    run_dir: Path,
    config: Config,
    dataset: Dataset,
    result: TrainResult,
    draw: bool,
    world: World = SINGLE,
) -> NetworkRun:
    from lrtrain.workflows.network_summary import network_fit_summary

    validation = held_out_losses(config, dataset, result)
    band = None
    if len(result.lrs) > 1:  # train.replicas: the batch streams' full-batch loss, mean and band
        from lrtrain.workflows.replicas import band_of, losses_along

        rows = _rows_of(dataset)
        band = band_of(losses_along(result, partial(_losses, config, dataset, rows),
                                    final=True), result)  # fmt: skip
    summary = network_fit_summary(config, dataset, result, validation, band)
    surface = surface_arrays(config, dataset, result, 0, world)  # every process's rows
    if not world.is_main:
        return NetworkRun(run_dir, summary, config, dataset, result, [])
    arrays = function_arrays(config, dataset, result, 0)
    arrays |= surface | sharpness_arrays(result)
    # what `lrtrain predict` needs without torch: θ, and the standardisation trained with
    arrays["network_theta"] = result.final_theta[0].numpy()
    units = dataset.standardization
    if units is not None:
        arrays["x_mean"] = np.asarray(units.mean, dtype=np.float64)
        arrays["x_scale"] = np.asarray(units.scale, dtype=np.float64)
        arrays["y_mean"] = np.asarray(units.target_mean, dtype=np.float64)
    written = runs.save_fit(run_dir, FitRecord(
        config, summary, arrays, record.history(result, 0, config), record.model_bytes(result),
        record.checkpoint_bytes(config, result), validation=validation, band=band,
        sample=record.sample(dataset),
    ))  # fmt: skip
    figures = draw_run(written, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return NetworkRun(run_dir, summary, config, dataset, result, figures, logged)


def sweep(
    config: Config,
    lrs: list[float] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | bool | None = None,
    should_stop: Callable[[], bool] | None = None,
    draw: bool = True,
    data: Any = None,
) -> NetworkRun:
    """Every rate trained at once (K replicas of the network in one batched forward and
    backward a step, from one start θ₀), each judged as a fit is (``sweep_lr`` has checked the
    config as for any sweep)."""
    from lrtrain.data.distributed import check_sweep_size, deal
    from lrtrain.engine.gather import concat_results
    from lrtrain.engine.memory import check_memory
    from lrtrain.engine.train import train
    from lrtrain.workflows.network_summary import network_sweep_summary
    from lrtrain.workflows.progress import progress_for

    chosen = list(lrs or config.sweep.lrs or [])
    if not chosen:
        raise ConfigError(
            "sweep.lrs: a network has no closed form to choose rates from — give them, e.g. "
            "--lrs 0.01,0.03,0.1 (lrtrain find-lr suggests a range)"
        )
    world = current()
    check_sweep_size(len(chosen), world.size)
    config = config.model_copy(update={"sweep": config.sweep.model_copy(update={"lrs": chosen})})
    # every process reads every row and trains its group of the rates (lr i on rank i mod W)
    config, dataset = load_rows(config, SINGLE, data, replicas=len(chosen))
    check_memory(config, replicas=len(chosen))
    run_dir = world.share(world.on_main(
        lambda: runs.create_run_dir(config.output.root, config.name, out, overwrite)))  # fmt: skip
    with progress_for(progress if world.is_main else None, f"sweep {config.name}") as callback:
        part = train(dataset, config, lrs=deal(chosen, world), progress=callback,
                     should_stop=should_stop)  # fmt: skip
    parts = world.gather_objects(part)
    if parts is None:  # not rank 0: its rates are in rank 0's directory
        return NetworkRun(run_dir, None, config, dataset, part, [])
    result = concat_results(parts, world.describe()) if world.distributed else part
    interrupted = "interrupted" in result.statuses
    summary = network_sweep_summary(config, dataset, result, interrupted)
    histories = [record.history(result, k, config) for k in range(len(chosen))]
    written = runs.save_sweep(run_dir, SweepRecord(config, summary, sharpness_arrays(result),
                                                   chosen, histories))  # fmt: skip
    figures = draw_run(written, config.output.format) if draw else []
    logged = log(run_dir, config) if draw else []
    return NetworkRun(run_dir, summary, config, dataset, result, figures, logged)


def _rows_of(dataset: Dataset) -> Rows:
    """Every training row, float64 on the CPU: what a network's loss along its path reads."""
    import torch

    from lrtrain.engine.batches import all_rows

    return all_rows(dataset, torch.device("cpu"), torch.float64)


def _losses(config: Config, dataset: Dataset, rows: Rows, theta: np.ndarray) -> np.ndarray:
    """The network's mean squared error over ``rows`` at every θ of ``theta`` [..., P] (float64,
    as many θ at a time as keep the layers' activations to ~16M numbers); NaN where θ is not
    finite."""
    import torch

    model = _model(config, dataset)
    flat = torch.from_numpy(np.ascontiguousarray(theta)).reshape(-1, theta.shape[-1])
    chunk = _thetas_at_once(config, len(rows.x) if rows.x is not None else rows.total)
    with torch.no_grad():
        out = torch.cat([model.loss_at(part.to(torch.float64), rows) for part in flat.split(chunk)])
    return out.numpy().reshape(theta.shape[:-1])


def surface_points(config: Config, rows: int) -> int:
    """The slice's grid per axis: SURFACE_POINTS, fewer (odd, at least SURFACE_MIN_POINTS)
    where every point's pass over the rows would make the slice cost more than SURFACE_WORK."""
    widest = max([1, *config.model.hidden])
    fits = int(math.sqrt(SURFACE_WORK / max(1, rows * widest)))
    return max(SURFACE_MIN_POINTS, min(SURFACE_POINTS, fits - (1 - fits % 2)))


def _thetas_at_once(config: Config, rows: int) -> int:
    """How many θ one ``loss_at`` may take over ``rows`` rows: each holds rows × the widest
    layer's activations (forward, no graph), kept to ~16M numbers."""
    widest = max([1, *config.model.hidden])
    return max(1, (1 << 24) // max(1, rows * widest))


def held_out_losses(config: Config, dataset: Dataset, result: TrainResult) -> list[float] | None:
    """The held-out rows' loss at replica 0's every logged θ (``data.validation_fraction``)."""
    held = dataset.validation
    if held is None or held.x is None or held.y is None:
        return None
    from lrtrain.engine.batches import Rows

    rows = Rows(held.x, held.y, len(held.x))
    path = result.replica_history(0)["theta"].numpy()
    return [float(v) for v in _losses(config, dataset, rows, path)]


def sharpness_arrays(result: TrainResult) -> dict[str, np.ndarray]:
    """arrays.npz's sharpness: the measured steps [S], λ_max and λ_2 per replica [S, K]."""
    if result.sharpness is None:
        return {}
    return {
        "sharpness_steps": np.asarray(result.sharpness_steps, dtype=np.int64),
        "sharpness": result.sharpness[:, :, 0],
        "sharpness_second": result.sharpness[:, :, 1],
    }


def _model(config: Config, dataset: Dataset, replicas: int = 1) -> Any:
    """A network of the config's shape (its parameters unused: ``loss_at``/``outputs`` take θ)."""
    import torch

    from lrtrain.data.devices import torch_dtype
    from lrtrain.engine.family import build_model

    return build_model(config, dataset.d, replicas, torch_dtype(config.train.dtype),
                       torch.device("cpu"))  # fmt: skip


def function_arrays(
    config: Config, dataset: Dataset, result: TrainResult, k: int
) -> dict[str, np.ndarray]:
    """fit.png's curve: the trained network's prediction on a grid over the one feature's
    range, in the data's units as the sample is (none for several features)."""
    import torch

    if dataset.d != 1 or dataset.sample is None:
        return {}
    model = _model(config, dataset)
    x = dataset.sample[0][:, 0]
    grid = torch.linspace(float(x.min()), float(x.max()), FUNCTION_POINTS, dtype=torch.float64)
    theta = result.final_theta[k : k + 1].to(model.theta().dtype)
    with torch.no_grad():
        prediction = model.outputs(theta, dataset.as_trained(grid.unsqueeze(1), theta.dtype))[0]
    units = dataset.standardization
    shift = 0.0 if units is None else units.target_mean
    return {"function_x": grid.numpy(), "function_y": prediction.double().numpy() + shift}


def surface_arrays(
    config: Config, dataset: Dataset, result: TrainResult, k: int, world: World = SINGLE
) -> dict[str, np.ndarray]:
    """The full-batch loss on a grid in the plane of the two top Hessian eigenvectors at the
    end point θ_T: L(θ_T + a·u₁ + b·u₂), each axis reaching SURFACE_REACH × the distance over
    which that direction's quadratic term alone would add the final loss (a slice of the
    surface, not the path)."""
    import torch

    from lrtrain.engine.batches import all_rows

    vectors, values = result.sharpness_vectors, result.sharpness
    if vectors is None or values is None or dataset.stream is not None:
        return {}
    top = values[-1, k]
    final = result.final_loss[k]
    if not (np.isfinite(top).all() and math.isfinite(final)):
        return {}
    model = _model(config, dataset)
    dtype = model.theta().dtype
    rows = all_rows(dataset, torch.device("cpu"), dtype)  # the loss the run trained on
    level = max(final, 1e-12)
    reach = [SURFACE_REACH * math.sqrt(2 * level / lam) if lam > 0 else SURFACE_REACH
             for lam in top.tolist()]  # fmt: skip
    points = surface_points(config, rows.total)
    a = np.linspace(-reach[0], reach[0], points)
    b = np.linspace(-reach[1], reach[1], points)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    centre = result.final_theta[k].to(torch.float64)
    u = torch.from_numpy(vectors[k])  # [2, P]
    shifts = torch.from_numpy(np.stack([aa.ravel(), bb.ravel()], axis=1))  # [G², 2]
    # G² points of P parameters each, as many at a time as keep the activations to ~16M numbers
    chunk = min(_thetas_at_once(config, len(rows.x) if rows.x is not None else rows.total),
                max(1, (1 << 24) // centre.numel()))  # fmt: skip
    with torch.no_grad():
        loss = torch.cat([model.loss_at((centre + part @ u).to(dtype), rows)
                          for part in shifts.split(chunk)])  # fmt: skip
    world.all_sum(loss)  # each process's rows' part of the mean
    return {
        "surface_a": a,
        "surface_b": b,
        "surface_loss": loss.double().numpy().reshape(points, points),
        "surface_eigenvalues": np.asarray(top, dtype=np.float64),
    }
