"""Values written on the command line, parsed into what the config holds: ``--lrs``,
``--lr-range`` and ``--batch-sizes`` (pure text to numbers: no torch, so the CLI parses them
before anything heavy is imported)."""

from __future__ import annotations

import math

from lrtrain.errors import ConfigError

AUTO_POINTS = 12  # rates of a sweep whose lrs are not given
FULL = "full"  # --batch-sizes: the whole data set as one batch


def parse_lrs(text: str) -> list[float]:
    """``--lrs 0.001,0.01,0.1``."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--lrs '{text}': expected comma-separated numbers") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"--lrs '{text}': every learning rate must be a finite number > 0")
    return values


def parse_lr_range(text: str) -> list[float]:
    """``--lr-range lo:hi:n``: n log-spaced learning rates from lo to hi."""
    parts = text.split(":")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"--lr-range '{text}': expected LO:HI:N, e.g. 1e-4:1e-1:40") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi) or not 2 <= n <= 4096:
        raise ConfigError(f"--lr-range '{text}': need 0 < LO < HI and 2 ≤ N ≤ 4096")
    return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]


def parse_batch_sizes(text: str) -> list[int | None]:
    """``--batch-sizes 1,4,16,full``: ascending, distinct; None stands for the full batch."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == FULL:
            sizes.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigError(
                f"--batch-sizes '{text}': '{part}' is neither a whole number ≥ 1 nor 'full' — "
                "e.g. --batch-sizes 1,4,16,full"
            )
        sizes.append(value)
    if len(sizes) < 2 or len(set(sizes)) != len(sizes):
        raise ConfigError(f"--batch-sizes '{text}': give two or more distinct sizes")
    return sorted(sizes, key=lambda b: math.inf if b is None else b)
