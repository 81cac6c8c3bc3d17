"""The benchmark suite runs (its --quick smoke run). It asserts that every case runs and reports,
never how fast anything is: timings on shared machines are noise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_CASES = [
    "sweep", "full-batch", "mini-batch", "contour", "--help", "plot", "memory", "lesson",
    "wide fit", "sweep of",
]  # fmt: skip


@pytest.mark.slow
def test_quick_benchmark_runs_every_case(tmp_path: Path, monkeypatch, capsys) -> None:
    """In this process (torch is imported already); the cases start their own processes."""
    out = tmp_path / "results.json"
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    from benchmarks.__main__ import main

    assert main(["--quick", "--output", str(out)]) == 0
    assert "| case | baseline |" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["machine"]["torch"]
    names = [case["name"] for case in report["cases"]]
    for key in CPU_CASES:
        assert any(key in name for name in names), (key, names)
    for case in report["cases"]:
        assert case["target"]
        if case["ratio"] is not None:
            assert case["ratio"] > 0
    plot = next(c for c in report["cases"] if c["name"].startswith("lrtrain plot"))
    assert plot["figures"] == {"imports_torch": False, "imports_lrtrain_train": False}
    contour = next(c for c in report["cases"] if c["name"].startswith("contour"))
    assert contour["figures"]["max_relative_difference"] <= 1e-6
