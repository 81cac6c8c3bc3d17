"""From a finished run to the record its run directory is written from
(:mod:`lrtrain.runs.records`): tensors become numpy arrays, the model and the engine's state
become bytes (``torch.save``) — and a checkpoint's bytes become the engine's state again."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.errors import RunDirError
from lrtrain.runs import directory as runs
from lrtrain.runs.records import History, Sample
from lrtrain.runs.summaries import CENTRED_TARGET_SINCE, FORMAT_VERSION

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.train import TrainResult


def history(result: TrainResult, k: int, config: Config | None = None) -> History:
    """Replica k's logged rows, t = 0 … its stop, with the rate used at each (and, measured
    with ``config``'s optimizer, the sharpness against its threshold)."""
    rows = result.replica_history(k)
    steps = [int(step) for step in rows["step"].tolist()]
    rates = np.asarray(result.rates(k, steps), dtype=np.float64)
    arrays = {name: rows[name].numpy() for name in ("step", "loss", "grad_norm", "theta")}
    out = History(arrays["step"], arrays["loss"], arrays["grad_norm"], arrays["theta"], rates)
    if result.sharpness is not None and config is not None:
        out.sharpness, out.threshold = _sharpness_rows(config, result, k, steps)
    return out


def _sharpness_rows(
    config: Config, result: TrainResult, k: int, steps: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """λ_max at the logged rows that were measured (NaN at the others; a measured step that is
    not logged is in the summary only), and the threshold 2(1+β)/η_t at every row."""
    from lrtrain.workflows.network_summary import limit_at

    assert result.sharpness is not None
    row_of = {step: i for i, step in enumerate(steps)}
    sharpness = np.full(len(steps), np.nan)
    for measured, value in zip(result.sharpness_steps, result.sharpness[:, k, 0], strict=True):
        if measured in row_of:
            sharpness[row_of[measured]] = value
    return sharpness, limit_at(config, result, k, steps)


def sample(dataset: Dataset) -> Sample | None:
    """The rows kept for fit.png (one-feature data), in the data's units."""
    if dataset.sample is None:
        return None
    x, y = (t[:, 0].double().numpy() for t in dataset.sample)
    return Sample(dataset.feature_names[0], dataset.target_name, x, y)


def model_bytes(result: TrainResult) -> bytes:
    """model.pt: the trained model's state dict."""
    return _saved(result.model_state)


def checkpoint_bytes(config: Config, result: TrainResult) -> bytes:
    """checkpoint.pt: everything ``fit --resume`` needs to go on bit for bit."""
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": "lrtrain-checkpoint",
        "model": result.model_state,
        "optimizer": result.optimizer_state,
        "step": result.stop_steps[0],
        "status": result.statuses[0],
        "config": config.to_dict(),
        "engine": result.engine_state(),  # for `lrtrain fit --resume`
        # Mini-batch order has no RNG state to save: epoch e's permutation is drawn afresh from
        # (seed, e), so a resumed run shuffles exactly as the uninterrupted one would.
        "shuffle": {"seed": config.seed, "scheme": "per-epoch permutation from (seed, epoch)"},
    }
    return _saved(checkpoint)


def load_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """A run's checkpoint.pt, loaded with ``weights_only=True`` (tensors and plain data only:
    a file cannot run code), checked for its format and contents."""
    import torch

    path, blob = runs.read_checkpoint(run_dir)
    try:
        data = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(f"{path}: corrupt or not an lrtrain checkpoint ({first[:160]})") from None
    if isinstance(data, dict) and "kind" not in data and {"model", "config"} <= set(data):
        raise RunDirError(
            f"{path}: written by an earlier lrtrain, before runs could be resumed; start a new "
            "run (its config.yaml reruns it: lrtrain fit -c RUN/config.yaml)"
        )
    if not isinstance(data, dict) or data.get("kind") != "lrtrain-checkpoint":
        raise RunDirError(f"{path}: not an lrtrain checkpoint")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunDirError(
            f"{path}: written by a newer lrtrain (format {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade lrtrain to resume it"
        )
    standardized = bool(((data.get("config") or {}).get("data") or {}).get("standardize"))
    if standardized and version < CENTRED_TARGET_SINCE:
        raise RunDirError(
            f"{path}: a standardised run of an earlier lrtrain (format {version}), trained on "
            "the target as given; standardised runs now train on the centred target, so its "
            "parameters do not carry over. Start a new run (its config.yaml reruns it: lrtrain "
            "fit -c RUN/config.yaml)"
        )
    engine = data.get("engine")
    if not isinstance(engine, dict) or not {"step", "model", "optimizer", "loop"} <= set(engine):
        raise RunDirError(f"{path}: incomplete checkpoint (no engine state to resume from)")
    return data


def _saved(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
