"""Scale-out cases (issue 7): the memory of a streamed fit far larger than the memory it uses,
and one process against two (torch.distributed, gloo on 127.0.0.1) on the same problem.

The figures feed docs/scaling.md: per-row cost of a step, cost of a step's collectives, and
the worked estimate for 10 billion rows on 64 machines."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks.common import (
    WIDE,
    CaseResult,
    Timing,
    lrtrain_command,
    quick_baseline,
    quick_big,
    run_measured,
)

STREAM_LIMIT_BYTES = 500 * 2**20


def _fit(
    workdir: Path, name: str, extra: list[str], nproc: int = 1, quick: bool = False
) -> tuple[float, int, dict]:
    out = workdir / name
    command = [
        *lrtrain_command(),
        "fit",
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
        *WIDE,
        *extra,
    ]
    if quick:  # the smoke run checks that the case runs: no figures to draw
        command.append("output.plots=[]")
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    wall, rss, done = run_measured(command)
    if done.returncode != 0:
        raise RuntimeError(f"{done.args} failed:\n{done.stdout}")
    return wall, rss, json.loads((out / "summary.json").read_text())


def stream_memory(quick: bool, workdir: Path) -> CaseResult:
    """Peak RSS of a streamed fit on N = 50 M rows (1.6 GB of float32 data) against the same
    command on 100 rows: the data must not count."""
    n = 200_000 if quick else 50_000_000
    common = ["data.stream=true", "train.max_iter=2", "optimizer.lr=0.05"]
    if quick:  # the smoke run's shared baseline and shared (streamed) 200 000-row fit
        base_rss = run_measured(quick_baseline(workdir), share=True)[1]
        wall, rss, _ = run_measured(quick_big(workdir), share=True)
        summary = json.loads((workdir / "one" / "summary.json").read_text())
    else:
        base_rss = _fit(workdir, "stream-small", [*common, "data.n_samples=100"])[1]
        wall, rss, summary = _fit(workdir, "stream-big", [*common, f"data.n_samples={n}"])
    data_bytes = n * (8 + 1) * 4
    # passes over the data: one, for the statistics; the steps take the Gram path (0.4; the
    # streamed gradient of 0.3 made 5: statistics, loss at the optimum, 2 steps, the final loss)
    passes = 1
    per_row_ns = wall / (passes * n) * 1e9
    # issue 15: the whole fit against a bare generation pass over the same rows (the same
    # interpreter start and torch import, the rows made and dropped: nothing accumulated)
    bare = math.nan if quick else run_measured(_generation_command(n))[0]
    plain = math.nan  # the fit without its figures: what the one pass costs the command
    if not quick:
        extra = [*common, f"data.n_samples={n}", "output.plots=[]"]
        plain = _fit(workdir, "stream-plain", extra)[0]
    return CaseResult(
        name=f"streamed fit (data.stream), N = {n:,}, d = 8",
        baseline="same command at N = 100",
        target=f"peak RSS < 500 MB (data would be {data_bytes / 1e9:.1f} GB)",
        met=rss < STREAM_LIMIT_BYTES,
        ratio=rss / data_bytes,
        figures={
            "peak_rss_bytes": rss,
            "baseline_rss_bytes": base_rss,
            "data_bytes": data_bytes,
            "wall_s": wall,
            "ns_per_row_per_pass": per_row_ns,
            "steps": summary["steps"],
            "bare_generation_wall_s": None if quick else bare,
            "fit_without_figures_wall_s": None if quick else plain,
            "fit_over_bare_generation": None if quick else plain / bare,
        },
        notes=[
            f"peak {rss / 2**20:.0f} MiB (at N = 100: {base_rss / 2**20:.0f} MiB) while the data "
            f"would take {data_bytes / 2**20:,.0f} MiB; {wall:.0f} s wall for {passes} passes "
            f"= {per_row_ns:.0f} ns per row per pass (regenerating the rows dominates); "
            f"a bare generation pass (start-up, import torch, make and drop the rows): "
            f"{bare:.1f} s; the fit without figures {plain:.1f} s = {plain / bare:.2f} "
            f"generation passes (drawing the figures adds {wall - plain:.1f} s)"
        ],
    )


_GENERATION_SCRIPT = """
import sys
from lrtrain.config.schema import load_config
from lrtrain.data.dataset import chunk_rows
from lrtrain.data.synthetic import iter_synthetic
cfg = load_config(None, sys.argv[1:])
for _ in iter_synthetic(cfg.data, cfg.seed, chunk_rows(cfg.data.d)):
    pass
"""


def _generation_command(n: int) -> list[str]:
    import sys

    return [sys.executable, "-c", _GENERATION_SCRIPT, *WIDE, f"data.n_samples={n}"]


def statistics_pass(quick: bool, workdir: Path) -> CaseResult:
    """Issue 15: the one statistics pass of a streamed fit on 2 processes against 1 — each
    process generates and accumulates its shard, then the statistics are all-reduced once and
    no step communicates. The pass is the wall time above the same command at N = 100."""
    n = 200_000 if quick else 20_000_000
    common = ["data.stream=true", "train.max_iter=50", "optimizer.lr=0.05"]
    walls = {}
    for nproc in (1, 2):
        small = _fit(workdir, f"pass-small-{nproc}", [*common, "data.n_samples=100"], nproc, quick)
        big = _fit(workdir, f"pass-big-{nproc}", [*common, f"data.n_samples={n}"], nproc, quick)
        walls[nproc] = (big[0] - small[0], big[0], small[0])
    ratio = walls[1][0] / walls[2][0]
    return CaseResult(
        name=f"statistics pass, streamed N = {n:,}, d = 8: 2 processes vs 1",
        baseline="1 process",
        target="report (2 cores: ≤ 2×)",
        ratio=ratio,
        figures={
            "pass_s_one": walls[1][0],
            "pass_s_two": walls[2][0],
            "wall_s_one": walls[1][1],
            "wall_s_two": walls[2][1],
            "startup_s_one": walls[1][2],
            "startup_s_two": walls[2][2],
        },
        notes=[
            f"the pass (wall above N = 100's): {walls[1][0]:.1f} s on 1 process, "
            f"{walls[2][0]:.1f} s on 2 ({ratio:.2f}×); whole commands {walls[1][1]:.1f} s and "
            f"{walls[2][1]:.1f} s (start-up {walls[1][2]:.1f} s and {walls[2][2]:.1f} s)"
        ],
    )


def processes(quick: bool, workdir: Path) -> list[CaseResult]:
    """One process against two on the same full-batch problem: the training loop's rate, and
    the cost of a step's collectives (measured on a problem too small to hide them)."""
    n = 200_000 if quick else 4_000_000
    steps = 20 if quick else 200
    big = [f"data.n_samples={n}", f"train.max_iter={steps}", "optimizer.lr=0.05"]
    if quick:  # the smoke run's shared fit (the memory case's)
        run_measured(quick_big(workdir), share=True)
        one = json.loads((workdir / "one" / "summary.json").read_text())
    else:
        one = _fit(workdir, "one", big)[2]
    _, _, two = _fit(workdir, "two", big, nproc=2, quick=quick)
    step_one = 1 / one["steps_per_s"]
    step_two = 1 / two["steps_per_s"]
    speedup = step_one / step_two
    collective = latency = math.nan  # the smoke run measures the main ratio only
    if not quick:
        tiny = ["data.n_samples=16384", f"train.max_iter={steps * 5}", "optimizer.lr=0.05"]
        _, _, tiny_one = _fit(workdir, "tiny-one", tiny)
        _, _, tiny_two = _fit(workdir, "tiny-two", tiny, nproc=2)
        # On 8 192 rows per process the arithmetic is tiny: the rest of a step is its
        # collective (DDP's all-reduce of the gradients, with the loss and stop flags in the
        # same bucket).
        collective = 1 / tiny_two["steps_per_s"] - 1 / tiny_one["steps_per_s"] / 2
        latency = _all_reduce_latency()
    return [
        CaseResult(
            name=f"2 processes vs 1, full batch, N = {n:,}, d = 8",
            baseline="1 process",
            target="report (2 cores: ≤ 2×)",
            ratio=speedup,
            figures={
                "step_s_one": step_one,
                "step_s_two": step_two,
                "ns_per_row_one": step_one / n * 1e9,
                "collective_s_per_step": None if quick else collective,
                "all_reduce_latency_s": None if quick else latency,
                "gap_one": one["optimality_gap"]["relative"],
                "gap_two": two["optimality_gap"]["relative"],
            },
            notes=[
                f"step {step_one * 1e3:.2f} ms with 1 process ({step_one / n * 1e9:.2f} ns/row), "
                f"{step_two * 1e3:.2f} ms with 2 (gloo, 127.0.0.1): {speedup:.2f}×; a step's "
                f"collective costs ≈ {collective * 1e6:.0f} µs (N = 16 384, 2 processes, "
                f"against half the 1-process step); a bare all-reduce of 10 floats "
                f"{latency * 1e6:.0f} µs"
            ],
        )
    ]


_LATENCY_SCRIPT = """
import os, sys, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
t = torch.zeros(10)
for _ in range(20):
    dist.all_reduce(t)
start = time.perf_counter()
for _ in range(200):
    dist.all_reduce(t)
if dist.get_rank() == 0:
    print((time.perf_counter() - start) / 200)
dist.destroy_process_group()
"""


def _all_reduce_latency() -> float:
    """Median time of an all-reduce of 10 floats between 2 gloo processes on 127.0.0.1."""
    import subprocess
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(_LATENCY_SCRIPT)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         fh.name],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    Path(fh.name).unlink()
    return float(done.stdout.split()[-1])


def big_sweep(quick: bool) -> CaseResult:
    """Issue 15: K learning rates × T steps after the one read of the data cost O(K·T·p²).
    Against the same arithmetic written bare in the same run — one [K, p] float32 tensor
    updated by its float64 Gram gradient, the loss and a divergence check each step, no model
    or optimizer object — the floor of an eager PyTorch loop on this machine."""
    import time

    import numpy as np

    from lrtrain.config.schema import load_config
    from lrtrain.data.load import load_dataset
    from lrtrain.engine.train import train
    from lrtrain.workflows.sweep import sweep_config

    n, k, steps = (20_000, 50, 200) if quick else (1_000_000, 1_000, 10_000)
    over = ["device=cpu", f"data.n_samples={n}", "data.x={kind: normal, mean: 0.0, std: 1.0}",
            "data.true_w=[1, -2, 3, -4, 5, -6, 7, -8]", f"train.max_iter={steps}",
            "train.log_every=100", "train.gradient=gram"]  # fmt: skip
    cfg = load_config(None, over)
    started = time.perf_counter()
    dataset = load_dataset(cfg)  # the one read: rows and their statistics
    read = time.perf_counter() - started
    lrs = [float(v) for v in np.geomspace(1e-4, 1.0, k)]
    bare = _bare_sweep(dataset.answer(), lrs, steps)
    started = time.perf_counter()
    result = train(dataset, sweep_config(cfg), lrs=lrs)
    wall = time.perf_counter() - started
    operations = _operations_per_step(dataset, sweep_config(cfg), lrs)
    return CaseResult(
        name=f"sweep of {k:,} rates × {steps:,} steps after the data exists, N = {n:,}, d = 8",
        baseline="the same steps as a bare PyTorch loop",
        target="≤ 2 s (issue 15)",
        met=wall <= 2.0,
        ratio=bare / wall,
        baseline_time=Timing.of([bare]),
        lrtrain_time=Timing.of([wall]),
        figures={
            "wall_s": wall,
            "read_s": read,
            "bare_s": bare,
            "gradient": result.gradient,
            "us_per_step": wall / steps * 1e6,
            "operations_per_step": operations,
        },
        notes=[
            f"{wall:.2f} s after a {read:.2f} s read ({result.gradient} steps, "
            f"{wall / steps * 1e6:.0f} µs per step for {k} replicas, {operations:.1f} tensor "
            f"operations a step); the bare loop: {bare:.2f} s ({bare / steps * 1e6:.0f} µs a step)"
        ],
    )


def _bare_sweep(exact: Any, lrs: list[float], steps: int) -> float:
    """Seconds of ``steps`` plain gradient-descent steps of len(lrs) replicas on the Gram
    gradient, written as directly as PyTorch allows (what lrtrain's loop adds to it is the
    model, torch.optim, the histories and the stop bookkeeping)."""
    import time

    import torch

    stats = exact.stats
    hessian = stats.xtx * (2.0 / stats.n)
    theta_star, loss_star = exact.theta_star, float(exact.loss_star)
    rates = torch.tensor(lrs, dtype=torch.float32).unsqueeze(1)
    theta = torch.zeros(len(lrs), len(theta_star))
    limit = torch.full((len(lrs),), torch.finfo(torch.float64).max, dtype=torch.float64)
    started = time.perf_counter()
    for _ in range(steps):
        e = theta - theta_star
        grad = e @ hessian
        loss = torch.add(loss_star, (e * grad).sum(dim=1), alpha=0.5)
        if not bool((loss <= limit).all()):
            break
        theta.sub_(grad.to(torch.float32).mul_(rates))
    return time.perf_counter() - started


def _operations_per_step(dataset: Any, config: Any, lrs: list[float]) -> float:
    """Top-level tensor operations (ATen calls) per step of the sweep, counted by
    torch.profiler over a short run: what a step costs on a CPU, whatever the timings."""
    from torch.profiler import profile

    from lrtrain.engine.train import train

    short = config.model_copy(update={"train": config.train.model_copy(update={"max_iter": 200})})
    with profile() as prof:
        result = train(dataset, short, lrs=lrs)
    top = [
        event for event in prof.events()
        if event.name.startswith("aten::")
        and (event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::"))
    ]  # fmt: skip
    return len(top) / result.steps_run
