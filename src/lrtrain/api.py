"""The functions the CLI calls, usable from Python and notebooks as well: lrtrain's one front
door to its workflows (the CLI imports nothing else of them).

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

from importlib import import_module
from typing import TYPE_CHECKING, Any

# every name and the module that holds it, imported on first use: importing the API costs
# nothing, and `lrtrain plot`'s redraw never imports the modules that train (or torch)
_EXPORTS = {
    "GDRegressor": "lrtrain.workflows.estimator",
    "BatchMapRun": "lrtrain.workflows.batch_map",
    "batch_map": "lrtrain.workflows.batch_map",
    "explore": "lrtrain.workflows.explore",
    "export_data": "lrtrain.workflows.export",
    "FindLrRun": "lrtrain.workflows.find_lr",
    "find_lr": "lrtrain.workflows.find_lr",
    "FitRun": "lrtrain.workflows.fit",
    "fit": "lrtrain.workflows.fit",
    "prepare": "lrtrain.workflows.fit",
    "resolve_auto": "lrtrain.workflows.fit",
    "resume": "lrtrain.workflows.fit",
    "NetworkRun": "lrtrain.workflows.network",
    "predict": "lrtrain.workflows.predict",
    "score": "lrtrain.workflows.predict",
    "ProgressBar": "lrtrain.workflows.progress",
    "load_checkpoint": "lrtrain.workflows.record",
    "animate": "lrtrain.workflows.redraw",
    "compare": "lrtrain.workflows.redraw",
    "log": "lrtrain.workflows.redraw",
    "redraw": "lrtrain.workflows.redraw",
    "resume_status": "lrtrain.workflows.resumption",
    "SweepRun": "lrtrain.workflows.sweep_lr",
    "sweep_lr": "lrtrain.workflows.sweep_lr",
}
__all__ = [
    "BatchMapRun",
    "FindLrRun",
    "FitRun",
    "GDRegressor",
    "NetworkRun",
    "ProgressBar",
    "SweepRun",
    "animate",
    "batch_map",
    "compare",
    "explore",
    "export_data",
    "find_lr",
    "fit",
    "load_checkpoint",
    "log",
    "predict",
    "prepare",
    "redraw",
    "resolve_auto",
    "resume",
    "resume_status",
    "score",
    "sweep_lr",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from lrtrain.workflows.batch_map import BatchMapRun, batch_map
    from lrtrain.workflows.estimator import GDRegressor
    from lrtrain.workflows.explore import explore
    from lrtrain.workflows.export import export_data
    from lrtrain.workflows.find_lr import FindLrRun, find_lr
    from lrtrain.workflows.fit import FitRun, fit, prepare, resolve_auto, resume
    from lrtrain.workflows.network import NetworkRun
    from lrtrain.workflows.predict import predict, score
    from lrtrain.workflows.progress import ProgressBar
    from lrtrain.workflows.record import load_checkpoint
    from lrtrain.workflows.redraw import animate, compare, log, redraw
    from lrtrain.workflows.resumption import resume_status
    from lrtrain.workflows.sweep_lr import SweepRun, sweep_lr


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lrtrain.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
