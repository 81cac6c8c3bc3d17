"""lrtrain's benchmark suite: each case against its baseline, measured side by side in this run.

    python -m benchmarks [--quick] [--repeats N] [--only TEXT] [--output PATH]

Prints a Markdown table (median and spread of each side, the ratio, the target, whether it was
met) and writes every figure to ``benchmarks/results.json``. ``--quick`` is a smoke run on tiny
problems: it checks that every case runs, not how fast. CUDA cases run when a GPU is present.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch

from benchmarks import cases
from benchmarks.common import CaseResult

DEFAULT_OUTPUT = Path(__file__).with_name("results.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny problems, one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per side")
    parser.add_argument(
        "--only",
        default="",
        help="run only the cases whose key contains this: sweep, full-batch, mini-batch, "
        "contour, help, plot, memory, lesson, race, stream, processes, wide, big-sweep, "
        "stats-pass, mlp-sweep, sharpness, long-sweep, reads, cuda",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON path")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    workdir = cases.temporary_workdir()
    results: list[CaseResult] = []
    try:
        planned = cases.cpu_cases(args.quick, repeats, workdir)
        if torch.cuda.is_available():
            from benchmarks import gpu

            planned += gpu.cuda_cases(args.quick, repeats)
        for key, case in planned:
            if args.only in key:
                produced = case()
                results.extend(produced if isinstance(produced, list) else [produced])
                print(f"done: {key}", file=sys.stderr, flush=True)
    finally:
        cases.remove(workdir)
    print(table(results))
    args.output.write_text(json.dumps(report(results, args.quick), indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0


def table(results: list[CaseResult]) -> str:
    lines = [
        "| case | baseline | baseline time | lrtrain time | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        met = {True: "yes", False: "**no**", None: "—"}[r.met]
        base = "—" if r.baseline_time is None else str(r.baseline_time)
        mine = "—" if r.lrtrain_time is None else str(r.lrtrain_time)
        cells = [r.name, r.baseline, base, mine, ratio, r.target, met]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.name}: {note}" for r in results for note in r.notes]
    return "\n".join(lines + (["", *notes] if notes else []))


def report(results: list[CaseResult], quick: bool) -> dict[str, object]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "cases": [r.to_json() for r in results],
    }


if __name__ == "__main__":
    sys.exit(main())
