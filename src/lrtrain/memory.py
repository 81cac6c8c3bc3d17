"""What a run would hold in memory, checked before anything is allocated."""

from __future__ import annotations

from lrtrain.config import Config
from lrtrain.errors import ConfigError

MAX_HISTORY_ROWS = 20_000_000  # logged rows × replicas: beyond this, metrics files get absurd


def check_memory(
    config: Config,
    available_bytes: int | None = None,
    replicas: int = 1,
    share: float = 1.0,
) -> None:
    """Refuse, before allocating, a synthetic data set that cannot fit in memory, and a history
    (one row per logged step and replica, kept in memory and written out) too long to keep.
    ``share`` is the part of the data this machine holds (its processes' shards)."""
    rows = -(-config.train.max_iter // config.train.log_every) * replicas
    if rows > MAX_HISTORY_ROWS:
        suggestion = -(-config.train.max_iter * replicas // 1_000_000)
        raise ConfigError(
            f"train.max_iter / train.log_every = {rows:,} history rows"
            + (f" ({replicas} learning rates)" if replicas > 1 else "")
            + f": more than {MAX_HISTORY_ROWS:,} to keep in memory and write to the metrics; "
            f"log less often, e.g. train.log_every={suggestion}"
        )
    if config.data.source != "synthetic" or config.data.stream:
        return
    itemsize = 8 if config.train.dtype == "float64" else 4
    need = config.data.n_samples * (config.data.d + 1) * itemsize * share
    if available_bytes is None:
        available_bytes = _available_memory()
    if available_bytes is not None and need > 0.8 * available_bytes:
        raise ConfigError(
            f"data.n_samples × features = {config.data.n_samples:,} × {config.data.d} needs "
            f"{_human(need)} of memory for X and y"
            + (" (this machine's shards)" if share < 1 else "")
            + f" but only {_human(available_bytes)} is available; set data.stream: true "
            "(rows regenerated on demand, bounded memory), or lower data.n_samples"
        )


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover
