"""The lesson's report and its ``--json`` summary, exactly (sqlite-utils style): what a user
sees is asserted whole, so any change to it shows up here and is reviewed.

Only what varies between runs is masked: timings, versions and the run's path. Numbers in the
JSON are compared to 1e-9 relative (float32 training is deterministic on one machine; another
CPU may round a last bit differently). ``LRTRAIN_UPDATE_SNAPSHOTS=1 pytest
tests/test_snapshots.py`` rewrites the files after an intended change."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lrtrain.cli import running as cli_run
from lrtrain.cli.app import app

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("LRTRAIN_UPDATE_SNAPSHOTS") == "1"
VOLATILE = {"elapsed_s", "steps_per_s", "versions"}
# Reductions over float32 tensors whose summation order follows the CPU's vector width (AVX2
# against AVX-512 gave 0.22538479 and 0.22538489 for the final gradient norm): a few float32
# units apart on another machine, so compared at float32's precision, not float64's.
FLOAT32_REDUCTIONS = {"grad_norm"}
runner = CliRunner()


def _check(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def _masked_report(text: str) -> str:
    text = re.sub(r"· [\d,.]+ steps/s · [\d.]+ s on", "· N steps/s · T s on", text)
    return re.sub(r"^run {7}r$", "run       RUN", text, flags=re.M)


def _close(actual: Any, expected: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), where
        for key in expected:
            _close(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        rel = 2e-6 if where.rsplit(".", 1)[-1] in FLOAT32_REDUCTIONS else 1e-9
        assert actual == pytest.approx(expected, rel=rel, abs=1e-12), where
    else:
        assert actual == expected, where


def test_the_lesson_report_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_run.console, "width", 80)  # whatever COLUMNS says
    # in tmp_path; no figures (the report comes before them, and drawing is tested elsewhere)
    result = runner.invoke(app, ["fit", "--device", "cpu", "--out", "r", "output.plots=[]"])
    assert result.exit_code == 0, result.output
    _check("lesson_report.txt", _masked_report(result.output))


def test_the_lesson_json_exactly(tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    result = runner.invoke(
        app, ["fit", "--device", "cpu", "--json", "--out", out, "output.plots=[]"]
    )
    assert result.exit_code == 0, result.output
    summary = {k: v for k, v in json.loads(result.output).items() if k not in VOLATILE}
    path = SNAPSHOTS / "lesson_summary.json"
    if UPDATE:
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _close(summary, json.loads(path.read_text(encoding="utf-8")))
