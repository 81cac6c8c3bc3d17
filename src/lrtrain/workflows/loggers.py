"""``--logger tensorboard | mlflow``: a finished run written into the stores people already use.

A run is logged from its run directory once it is complete (metrics, summary, figures), so a
logger sees exactly what the directory holds and a run that fails to log loses nothing: per
logged step the loss, gradient norm, lr, ``expected_loss`` (and ``val_loss``) and the parameters;
the config as hyper-parameters with the final metrics; the figures as images (TensorBoard) or
artifacts (MLflow). A sweep is one parent with one child run per learning rate.

Stores are local: TensorBoard event files in ``RUN_DIR/tensorboard``; MLflow in a SQLite file
``RUN_DIR/mlflow.db`` with artifacts in ``RUN_DIR/mlartifacts`` (MLflow's file store is in
maintenance mode and refuses new use), or the tracking URI given (``output.mlflow_uri``).
TensorBoard and MLflow are optional extras, imported only here; a missing one is a clear error.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrtrain.errors import ConfigError
from lrtrain.runs import directory as runs

LOGGERS = ("tensorboard", "mlflow")
EXTRA = {
    "tensorboard": "pip install 'lrtrain[tensorboard]' (the tensorboard package)",
    "mlflow": "pip install 'lrtrain[mlflow]' (mlflow-skinny with SQLAlchemy and Alembic)",
}


REQUIRES = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow", "sqlalchemy", "alembic")}


def check_installed(loggers: list[str]) -> None:
    """Refuse, before anything is trained or written, a logger whose extra is missing."""
    for name in loggers:
        for module in REQUIRES[name]:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a parent missing, or a module set to None
                found = False
            if not found:
                raise ConfigError(f"--logger {name}: {EXTRA[name]}")


@dataclass(frozen=True)
class Logged:
    """Where one logger wrote a run (for the report)."""

    logger: str
    where: str


@dataclass(frozen=True)
class Series:
    """One run's logged steps: its name, per-step columns and final numbers."""

    name: str
    steps: np.ndarray
    columns: dict[str, np.ndarray]  # tag → values per step (parameters under "parameters/")
    final: dict[str, float]
    tags: dict[str, str]


@dataclass(frozen=True)
class Loggable:
    """A saved run as every logger writes it: the config, the run (a fit, or a sweep's parent)
    and a sweep's children (one per rate), and the figures."""

    run_dir: Path
    params: dict[str, str | float | int | bool]
    parent: Series
    children: list[Series]
    figures: list[Path]


def log_run(run_dir: Path, loggers: list[str], mlflow_uri: str | None = None) -> list[Logged]:
    """Write a saved fit or sweep into each logger's store."""
    if not loggers:
        return []
    run = runs.load_run(run_dir)
    if run.kind not in ("fit", "sweep"):
        raise ConfigError(f"--logger logs fits and sweeps; {run.path} is a {run.kind}")
    what = Loggable(
        run_dir=run.path,
        params=flatten(run.config),
        parent=_fit_series(run) if run.kind == "fit" else _sweep_parent(run),
        children=list(_sweep_series(run)) if run.kind == "sweep" else [],
        figures=sorted((run.path / "plots").glob("*.png")),
    )
    out = []
    for name in loggers:
        if name == "tensorboard":
            out.append(_tensorboard(what))
        elif name == "mlflow":
            out.append(_mlflow(what, mlflow_uri))
        else:
            raise ConfigError(f"--logger {name}: not one of {', '.join(LOGGERS)}")
    return out


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str | float | int | bool]:
    """The config as dotted keys; lists and None as their text (hyper-parameters are scalars)."""
    out: dict[str, str | float | int | bool] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _columns(table: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Every column but the step, the parameters under ``parameters/``."""
    out = {}
    for key, values in table.items():
        if key == "step":
            continue
        tag = f"parameters/{key}" if key.startswith("w_") or key == "b" else key
        out[tag] = values[rows]
    return out


def _fit_series(run: runs.RunData) -> Series:
    s = run.summary
    rows = np.arange(len(run.metrics["step"]))
    # a linear fit's exact numbers, or a network's measured ones (it has no closed form)
    exact = s.get("analysis") or {}
    sharp = s.get("sharpness") or {}
    final = _numbers({
        "final/loss": s["final"]["loss"], "final/optimality_gap": s.get("optimality_gap"),
        "final/steps": s["steps"], "final/loss_star": exact.get("loss_star"),
        "final/critical_lr": exact.get("critical_lr"),
        "final/best_line_loss": (s.get("best_line") or {}).get("loss"),
        "final/sharpness": sharp.get("final"), "final/initial_sharpness": sharp.get("initial"),
    })  # fmt: skip
    tags = {"kind": "fit", "status": str(s["status"]), "verdict": str(s["verdict"]["observed"])}
    return Series(str(s["name"]), run.metrics["step"], _columns(run.metrics, rows), final, tags)


def _sweep_parent(run: runs.RunData) -> Series:
    s = run.summary
    final = _numbers({
        "final/recommended_lr": s.get("recommended_lr"), "final/critical_lr": s.get("critical_lr"),
        "final/loss_star": (s.get("analysis") or {}).get("loss_star"),
        "final/initial_sharpness": s.get("initial_sharpness"),
    })  # fmt: skip
    empty = np.zeros(0)
    return Series(str(s["name"]), empty, {}, final, {"kind": "sweep", "status": str(s["status"])})


def _sweep_series(run: runs.RunData) -> Iterator[Series]:
    table = run.metrics
    for result in run.summary["results"]:
        rows = np.nonzero(table["lr"] == result["lr"])[0]
        final = _numbers({"final/loss": result["final_loss"], "final/optimality_gap": result["gap"],
                          "final/sharpness": result.get("final_sharpness")})  # fmt: skip
        columns = {k: v for k, v in _columns(table, rows).items() if k != "lr"}
        tags = {"kind": "sweep-lr", "verdict": str(result["verdict"]), "lr": f"{result['lr']:g}"}
        yield Series(f"lr={result['lr']:g}", table["step"][rows], columns, final, tags)


def _finite(steps: np.ndarray, values: np.ndarray) -> Iterator[tuple[int, float]]:
    for step, value in zip(steps.tolist(), values.tolist(), strict=True):
        if math.isfinite(value):
            yield int(step), float(value)


# --------------------------------------------------------------------------- TensorBoard


def _tensorboard(what: Loggable) -> Logged:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConfigError(f"--logger tensorboard: {EXTRA['tensorboard']}") from exc
    import matplotlib.image as mpimg

    parent, params, root = what.parent, what.params, what.run_dir / "tensorboard"
    for series, logdir in [(parent, root), *((c, root / c.name) for c in what.children)]:
        with SummaryWriter(str(logdir)) as writer:
            for tag, values in series.columns.items():
                for step, value in _finite(series.steps, values):
                    writer.add_scalar(tag, value, step)
            own = {"lr": float(series.tags["lr"])} if "lr" in series.tags else {}
            hparams = {**params, **own}
            writer.add_hparams(hparams, series.final or {"final/none": 0.0}, run_name=".")
            writer.add_text("tags", ", ".join(f"{k}: {v}" for k, v in series.tags.items()))
            if series is parent:
                for path in what.figures:
                    pixels = mpimg.imread(path)[..., :3]
                    writer.add_image(f"figures/{path.stem}", pixels, 0, dataformats="HWC")
    return Logged("tensorboard", str(root))


# --------------------------------------------------------------------------- MLflow


def _mlflow(what: Loggable, uri: str | None) -> Logged:
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ConfigError(f"--logger mlflow: {EXTRA['mlflow']}") from exc
    for name in ("mlflow", "alembic"):  # their start-up chatter is not the user's business
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir, parent = what.run_dir, what.parent
    local = uri is None
    uri = uri or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(parent.name)
        if experiment is None:
            where = (run_dir / "mlartifacts").resolve().as_uri() if local else None
            experiment_id = client.create_experiment(parent.name, artifact_location=where)
        else:
            experiment_id = experiment.experiment_id
    except Exception as exc:  # MLflow raises its own and SQLAlchemy's errors for a bad URI
        raise ConfigError(f"output.mlflow_uri: MLflow cannot use {uri!r}: {exc}") from exc
    now = int(time.time() * 1000)

    def write(series: Series, parent_id: str | None, run_params: dict[str, Any]) -> str:
        tags = dict(series.tags)
        if parent_id is not None:
            tags["mlflow.parentRunId"] = parent_id
        run_id = client.create_run(experiment_id, run_name=series.name, tags=tags).info.run_id
        metrics = [Metric(tag.replace("/", "."), value, now, step)
                   for tag, values in series.columns.items()
                   for step, value in _finite(series.steps, values)]  # fmt: skip
        metrics += [Metric(k.replace("/", "."), v, now, 0) for k, v in series.final.items()]
        entries = [Param(k, str(v)[:6000]) for k, v in run_params.items()]
        for start in range(0, len(entries), 100):  # MLflow's batch limits: 100 params,
            client.log_batch(run_id, params=entries[start : start + 100])
        for start in range(0, len(metrics), 1000):  # 1000 metrics
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        return run_id

    parent_id = write(parent, None, what.params)
    for path in what.figures:
        client.log_artifact(parent_id, str(path), "figures")
    for child in what.children:
        client.set_terminated(write(child, parent_id, {"lr": child.tags["lr"]}))
    client.set_terminated(parent_id)
    return Logged("mlflow", f"{uri} (experiment {parent.name})")
