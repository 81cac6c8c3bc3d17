"""lrtrain: train and study linear regression with PyTorch and gradient descent.

The Python API is what the CLI calls, for notebooks and scripts::

    >>> from lrtrain import load_config, fit, load_run
    >>> run = fit(load_config("lecture", ["train.max_iter=20"]), out="/tmp/lrtrain-ex",
    ...           overwrite=True)
    >>> run.summary["status"], round(run.analysis.critical_lr, 5)
    ('completed', 0.02977)
    >>> load_run(run.run_dir).metrics["loss"].shape
    (21,)

Names are imported on first use, so ``import lrtrain`` (and ``lrtrain --help``) stays instant.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from lrtrain._version import __version__ as __version__
from lrtrain.errors import LrtrainError

_EXPORTS = {
    "GDRegressor": "lrtrain.workflows.estimator",
    "load_config": "lrtrain.config.schema",
    "Config": "lrtrain.config.schema",
    "fit": "lrtrain.api",
    "sweep_lr": "lrtrain.api",
    "resume": "lrtrain.api",
    "redraw": "lrtrain.api",
    "compare": "lrtrain.api",
    "animate": "lrtrain.api",
    "predict": "lrtrain.api",
    "export_data": "lrtrain.api",
    "score": "lrtrain.api",
    "explore": "lrtrain.workflows.explore",
    "find_lr": "lrtrain.workflows.find_lr",
    "FitRun": "lrtrain.api",
    "SweepRun": "lrtrain.api",
    "load_run": "lrtrain.runs.directory",
    "RunData": "lrtrain.runs.directory",
    "LrtrainError": "lrtrain.errors",
}
__all__ = [
    "Config",
    "FitRun",
    "GDRegressor",
    "LrtrainError",
    "RunData",
    "SweepRun",
    "animate",
    "compare",
    "explore",
    "export_data",
    "find_lr",
    "fit",
    "load_config",
    "load_run",
    "predict",
    "redraw",
    "resume",
    "score",
    "sweep_lr",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from lrtrain.api import (
        FitRun,
        SweepRun,
        animate,
        compare,
        export_data,
        fit,
        predict,
        redraw,
        resume,
        score,
        sweep_lr,
    )
    from lrtrain.config.schema import Config, load_config
    from lrtrain.runs.directory import RunData, load_run
    from lrtrain.workflows.estimator import GDRegressor
    from lrtrain.workflows.explore import explore
    from lrtrain.workflows.find_lr import find_lr


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lrtrain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
