"""What a resume may change, and why there is nothing to resume: the checks ``fit --resume``
and :func:`lrtrain.api.resume` make before training goes on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrtrain.errors import ConfigError

if TYPE_CHECKING:
    from lrtrain.config.schema import Config

__all__ = ["RESUMABLE_CHANGES", "resume_status"]


# What a resume may change: how long to train, where, and what to draw. Anything else changes
# the problem (data, model, optimizer, precision), and the checkpoint would not continue it.
RESUMABLE_CHANGES = ("name", "device", "train.max_iter", "output.root", "output.plots",
                     "output.format", "output.loggers", "output.mlflow_uri")  # fmt: skip


def resume_status(checkpoint: dict[str, Any], config: Config) -> str | None:
    """Why there is nothing to resume (a message), or None when training should go on.
    Refuses a config that changes the problem, naming the keys that differ."""
    from lrtrain.config.schema import Config as ConfigModel
    from lrtrain.theory.schedules import depends_on_length

    saved = ConfigModel.model_validate(checkpoint["config"])
    changed = [
        f"{key} ({old!r} → {new!r})"
        for key, old, new in _differences(saved.to_dict(), config.to_dict())
        if key not in RESUMABLE_CHANGES
    ]
    if changed:
        raise ConfigError(
            "--resume: this config changes the problem the run was training: "
            + ", ".join(changed)
            + f"; only {', '.join(RESUMABLE_CHANGES)} may change on resume — start a new run "
            "for anything else"
        )
    schedule = config.optimizer.schedule
    if saved.train.max_iter != config.train.max_iter and depends_on_length(schedule):
        raise ConfigError(
            f"--resume: the {schedule.kind} schedule's length is train.max_iter "
            f"({saved.train.max_iter}), so a run of {config.train.max_iter} steps would have "
            "used other rates from the start — start a new run (with optimizer.schedule.t_max "
            "set, cosine and warmup_cosine runs can be extended later)"
        )
    status, step = checkpoint["status"], int(checkpoint["step"])
    if status in ("converged", "diverged"):
        return f"nothing to resume: the run already {status} at step {step}"
    if status == "completed" and step >= config.train.max_iter:
        return (
            f"nothing to resume: the run is complete ({step} of train.max_iter "
            f"{config.train.max_iter} steps); pass train.max_iter=N to train further"
        )
    return None


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += _differences(old.get(key), new.get(key), path)
        return out
    return [] if old == new else [(prefix, old, new)]
