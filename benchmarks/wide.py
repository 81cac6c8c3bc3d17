"""Wide data (issue 20): a fit with thousands of features against the work it cannot avoid —
importing torch, a float64 XᵀX of the same shape and its eigendecomposition — measured side by
side in fresh processes, with the size of summary.json and the peak memory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.common import IMPORT_TORCH, CaseResult, Timing, lrtrain_command, run_measured

SUMMARY_LIMIT_BYTES = 2**20  # summary.json at d = 2 000
RUN_DIR_LIMIT_BYTES = 20 * 10**6  # the whole run directory at d = 2 000 (issue 33)


def wide_fit(quick: bool, workdir: Path) -> CaseResult:
    d, n = (200, 2_000) if quick else (2_000, 20_000)
    out = workdir / "wide"
    weights = "[" + ", ".join(["1.0"] * d) + "]"
    command = [
        *lrtrain_command(), "fit", "--quiet", "--overwrite",
        "--out", str(out), f"data.n_samples={n}", "data.x={kind: normal, mean: 0.0, std: 1.0}",
        f"data.true_w={weights}", "train.max_iter=20",
    ]  # fmt: skip
    if quick:  # the smoke run checks that the case runs: no figures to draw
        command.append("output.plots=[]")
    floor = (
        "import torch\n"
        f"x = torch.randn({n}, {d + 1}, dtype=torch.float64)\n"
        "torch.linalg.eigh(x.T @ x)\n"
    )
    torch_wall, torch_rss, _ = run_measured(IMPORT_TORCH, share=quick)
    # the smoke run's tiny shape: its floor is the import of torch it measured once
    floor_command = IMPORT_TORCH if quick else [sys.executable, "-c", floor]
    floor_wall, floor_rss, floor_done = run_measured(floor_command, share=quick)
    wall, rss, done = run_measured(command)
    for result in (floor_done, done):
        if result.returncode != 0:
            raise RuntimeError(f"{result.args} failed:\n{result.stdout}")
    summary_bytes = (out / "summary.json").stat().st_size
    dir_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    data_bytes = n * (d + 1) * 8  # the float64 source rows (the training copy is half)
    ratio = wall / floor_wall
    extra = rss - torch_rss
    return CaseResult(
        name=f"wide fit, N = {n:,}, d = {d:,} (every file and figure)",
        baseline="import torch + float64 XᵀX + its eigh, same shape",
        target="≤ 2 × its time; summary.json ≤ 1 MB; the run directory ≤ 20 MB; memory above "
        "torch ≤ 2 × the data",
        met=ratio <= 2
        and summary_bytes <= SUMMARY_LIMIT_BYTES
        and (quick or dir_bytes <= RUN_DIR_LIMIT_BYTES)
        and extra <= 2 * data_bytes,
        ratio=ratio,
        baseline_time=Timing.of([floor_wall]),
        lrtrain_time=Timing.of([wall]),
        figures={
            "wall_s": wall,
            "floor_wall_s": floor_wall,
            "import_torch_s": torch_wall,
            "summary_bytes": summary_bytes,
            "run_dir_bytes": dir_bytes,
            "peak_rss_bytes": rss,
            "import_torch_rss_bytes": torch_rss,
            "floor_rss_bytes": floor_rss,
            "data_bytes": data_bytes,
            "steps": json.loads((out / "summary.json").read_text())["steps"],
        },
        notes=[
            f"{wall:.1f} s against {floor_wall:.1f} s of unavoidable work ({ratio:.2f}×); "
            f"summary.json {summary_bytes / 1e3:,.0f} kB, the run directory "
            f"{dir_bytes / 1e6:,.1f} MB; peak RSS {rss / 2**20:,.0f} MiB = "
            f"torch's {torch_rss / 2**20:,.0f} MiB + {extra / 2**20:,.0f} MiB "
            f"({extra / data_bytes:.2f} × the {data_bytes / 2**20:,.0f} MiB of float64 data)"
        ],
    )
