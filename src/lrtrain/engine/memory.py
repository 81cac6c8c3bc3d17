"""What a run would hold in memory, checked before anything is allocated."""

from __future__ import annotations

from lrtrain.config.schema import Config
from lrtrain.errors import ConfigError

MAX_HISTORY_ROWS = 20_000_000  # logged rows × replicas: beyond this, metrics files get absurd
# float64 p × p matrices the analysis holds at its peak (XᵀX, the covariance and its eigenvectors,
# H and its eigenvectors, the decomposition's workspace): measured ≈ 8 at d = 2 000, 10 for margin
ANALYSIS_MATRICES = 10


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
    if config.data.source != "synthetic":
        return
    itemsize = 8 if config.train.dtype == "float64" else 4
    p = config.data.d + 1
    need = 0 if config.data.stream else config.data.n_samples * p * itemsize * share
    matrices = ANALYSIS_MATRICES * p * p * 8
    if available_bytes is None:
        available_bytes = _available_memory()
    if available_bytes is not None and need + matrices > 0.8 * available_bytes and matrices > need:
        raise ConfigError(
            f"data.true_w: {config.data.d:,} features make the analysis hold float64 p × p "
            f"matrices (the Hessian, its eigenvectors, the covariance: p = {p:,}) of "
            f"{_human(matrices)} in all, but only {_human(available_bytes)} is available; the "
            "closed form and the curvature are what every lrtrain run reports, so it cannot "
            "skip them — use fewer features"
        )
    if available_bytes is not None and need + matrices > 0.8 * available_bytes:
        raise ConfigError(
            f"data.n_samples × features = {config.data.n_samples:,} × {config.data.d} needs "
            f"{_human(need)} of memory for X and y"
            + (" (this machine's shards)" if share < 1 else "")
            + f" but only {_human(available_bytes)} is available; set data.stream: true "
            "(rows regenerated on demand, bounded memory), or lower data.n_samples"
        )


# What a sharpness estimate may hold: its Lanczos basis (up to MAX_LANCZOS vectors of K × P)
SHARPNESS_BYTES = 2 << 30
LANCZOS_VECTORS = 100  # engine.sharpness.MAX_LANCZOS, without importing torch here


def check_sharpness(config: Config, d: int, replicas: int) -> None:
    """Refuse a sharpness estimate whose Lanczos basis would not fit in SHARPNESS_BYTES: a
    linear model's when ``train.sharpness_every`` asks, a network's always (its prediction at
    θ₀ needs one)."""
    network = config.model.kind != "linear"
    if not (config.train.sharpness_every or network):
        return
    p = _parameter_count(config, d)
    itemsize = 8 if config.train.dtype == "float64" else 4
    need = min(LANCZOS_VECTORS, p) * replicas * p * itemsize
    if need <= SHARPNESS_BYTES:
        return
    why = "train.sharpness_every" if config.train.sharpness_every else "model.kind: mlp"
    measured = (
        ""
        if config.train.sharpness_every
        else (" (a network's run measures it at θ₀ and at the end: its prediction needs it)")
    )
    raise ConfigError(
        f"{why}: the sharpness of {replicas} replica(s) × {p:,} parameters keeps a Lanczos "
        f"basis of up to {min(LANCZOS_VECTORS, p)} vectors, {_human(need)} — more than the "
        f"{_human(SHARPNESS_BYTES)} an estimate may hold{measured}; use a smaller model "
        "(model.hidden), fewer replicas or learning rates"
        + (", or train.sharpness_every: 0" if config.train.sharpness_every and not network else "")
    )


PATH_NUMBERS = 1 << 25  # a network's θ path kept for its replicas or held-out rows, at most


def check_network_path(config: Config, d: int) -> None:
    """Refuse a network's θ path (logged rows × replicas × P, kept for ``train.replicas`` or
    held-out rows) beyond PATH_NUMBERS, with the settings that shrink it."""
    if config.model.kind == "linear":
        return
    if config.train.replicas == 1 and not config.data.validation_fraction:
        return
    rows = -(-config.train.max_iter // config.train.log_every)
    numbers = rows * config.train.replicas * _parameter_count(config, d)
    if numbers <= PATH_NUMBERS:
        return
    why = "train.replicas" if config.train.replicas > 1 else "data.validation_fraction"
    raise ConfigError(
        f"{why}: a network's loss at every logged step is computed from its parameters there, "
        f"{rows:,} rows × {config.train.replicas} replica(s) × {_parameter_count(config, d):,} "
        f"parameters = {numbers:,} numbers, more than the {PATH_NUMBERS:,} kept; log less "
        f"often (train.log_every={-(-numbers // PATH_NUMBERS) * config.train.log_every}) or "
        "use fewer replicas"
    )


def _parameter_count(config: Config, d: int) -> int:
    """P: the linear model's d + 1, or every weight and bias of the network."""
    if config.model.kind == "linear":
        return d + 1
    widths = [d, *config.model.hidden, 1]
    return sum(widths[i + 1] * (widths[i] + 1) for i in range(len(widths) - 1))


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
