"""Timing and reporting shared by the benchmark cases: baseline and lrtrain alternate in one
process, and every figure is a median with its spread."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    median: float
    low: float
    high: float
    samples: list[float]

    @classmethod
    def of(cls, samples: list[float]) -> Timing:
        return cls(statistics.median(samples), min(samples), max(samples), samples)

    def __str__(self) -> str:
        return f"{_seconds(self.median)} ({_seconds(self.low)}–{_seconds(self.high)})"


@dataclass
class CaseResult:
    """One row of the table: what was compared, the figures, the target and whether it was met."""

    name: str
    baseline: str
    target: str
    met: bool | None = None
    ratio: float | None = None  # baseline time / lrtrain time, or as the case defines it
    baseline_time: Timing | None = None
    lrtrain_time: Timing | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def faster(name: str, baseline: str, base: Timing, ours: Timing, at_least: float) -> CaseResult:
    """A case won by speed: lrtrain at least ``at_least`` times faster than the baseline timed
    beside it (the ratio is baseline / lrtrain)."""
    ratio = base.median / ours.median
    target = f"≥ {at_least:g}× faster"
    return CaseResult(name=name, baseline=baseline, target=target, met=ratio >= at_least,
                      ratio=ratio, baseline_time=base, lrtrain_time=ours)  # fmt: skip


def in_units(
    name: str, baseline: str, unit_s: float, ours_s: float, target: str, at_most: float | None,
    **extra: Any,
) -> CaseResult:  # fmt: skip
    """A case counted in a unit measured beside it (a read of the data, numpy's XᵀX): the
    ratio lrtrain / unit, met where it is at most ``at_most`` (None: reported, not judged)."""
    ratio = ours_s / unit_s
    return CaseResult(name=name, baseline=baseline, target=target,
                      met=None if at_most is None else ratio <= at_most, ratio=ratio,
                      baseline_time=Timing.of([unit_s]), lrtrain_time=Timing.of([ours_s]),
                      **extra)  # fmt: skip


def time_pair(
    baseline: Callable[[], object],
    ours: Callable[[], object],
    repeats: int,
    warmup: bool = True,
) -> tuple[Timing, Timing]:
    """Time both ``repeats`` times, alternating (so drifts in machine load hit both alike),
    after one untimed warm-up run of each."""
    if warmup:
        baseline()
        ours()
    base, mine = [], []
    for _ in range(repeats):
        base.append(_timed(baseline))
        mine.append(_timed(ours))
    return Timing.of(base), Timing.of(mine)


def time_one(func: Callable[[], object], repeats: int, warmup: bool = True) -> Timing:
    if warmup:
        func()
    return Timing.of([_timed(func) for _ in range(repeats)])


def _timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


WIDE = ["data.x={kind: normal, mean: 0.0, std: 1.0}", "data.true_w=[1, -2, 3, -4, 5, -6, 7, -8]"]
IMPORT_TORCH = [sys.executable, "-c", "import torch"]


def lrtrain_command() -> list[str]:
    script = Path(sys.executable).with_name("lrtrain")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lrtrain"]


def quick_baseline(workdir: Path) -> list[str]:
    """The smoke run's one small fit (N = 100) that the memory cases share as their baseline."""
    return [*lrtrain_command(), "fit", "--quiet", "--overwrite", "--out", str(workdir / "small"),
            *WIDE, "data.n_samples=100", "train.max_iter=2", "output.plots=[]"]  # fmt: skip


def quick_big(workdir: Path) -> list[str]:
    """The smoke run's one full-batch fit on 200 000 (streamed) rows, shared by the memory,
    streaming and process cases."""
    return [*lrtrain_command(), "fit", "--quiet", "--overwrite", "--out", str(workdir / "one"),
            *WIDE, "data.n_samples=200000", "data.stream=true", "train.max_iter=20",
            "optimizer.lr=0.05", "output.plots=[]"]  # fmt: skip


Measured = tuple[float, int, subprocess.CompletedProcess[str]]
_SHARED: dict[tuple[str, ...], Measured] = {}


def run_measured(command: list[str], share: bool = False) -> Measured:
    """Run a command in a fresh child process; return (wall s, peak RSS bytes, result).

    The child is started through a small Python wrapper so that its peak RSS is not mixed with
    that of earlier children of this process. ``share``: the smoke run (``--quick``) measures
    a command that several cases use as their baseline once, and hands each the same result.
    """
    key = tuple(command)
    if share and key in _SHARED:
        return _SHARED[key]
    _SHARED[key] = measured = _run_measured(command)
    return measured


def _run_measured(command: list[str]) -> Measured:
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stdout.write(f'{wall} {peak} {r.returncode}\\n')\n"
        "sys.stderr.write(r.stdout + r.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True, check=True
    )
    wall, peak_kib, code = done.stdout.split()
    result = subprocess.CompletedProcess(command, int(code), done.stderr, "")
    return float(wall), int(peak_kib) * 1024, result


def self_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"
