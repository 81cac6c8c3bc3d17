"""The CLI as a user meets it: exit codes, messages, no tracebacks, instant --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrtrain.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_fit_default_lesson(tmp_path: Path) -> None:
    result = invoke("fit", "--device", "cpu", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    out = result.output
    for fragment in (
        "lrtrain fit — lecture",
        "closed form",
        "critical lr 0.02977",
        "verdict   monotone",
        "status    completed after 100 of 100 steps",
        str(tmp_path / "run"),
    ):
        assert fragment in out
    assert (tmp_path / "run" / "plots" / "contour.png").is_file()


def test_fit_quiet_and_overrides(tmp_path: Path) -> None:
    result = invoke(
        "fit",
        "train.max_iter=7",
        "--quiet",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--out",
        str(tmp_path / "q"),
    )
    assert result.exit_code == 0 and result.output == ""
    summary = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert summary["steps"] == 7 and summary["seed"] == 3


def test_print_config() -> None:
    result = invoke("fit", "-c", "multivariate", "optimizer.lr=0.5", "--print-config")
    assert result.exit_code == 0
    assert "lr: 0.5" in result.output and "name: multivariate" in result.output
    assert not Path("runs").exists()


def test_diverged_exit_3_with_hint(tmp_path: Path) -> None:
    result = invoke(
        "fit",
        "optimizer.lr=0.1",
        "train.max_iter=500",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "d"),
    )
    assert result.exit_code == 3
    assert "diverged" in result.output and "critical lr 0.02977" in result.output
    assert "try optimizer.lr=" in result.output
    assert (tmp_path / "d" / "plots" / "contour.png").is_file()


BAD_CASES = [
    (["optimizer.lr=-1"], "optimizer.lr: Input should be greater than 0"),
    (["optimizer.lrr=1"], "Did you mean 'optimizer.lr'"),
    (["optimizer.lr=nan"], "optimizer.lr"),
    (["train.max_iter=0"], "train.max_iter"),
    (["train.max_iter"], "expected KEY=VALUE"),
    (["data.true_w=[1,2]"], "true_w has 2 weights"),
    (["-c", "nosuchconfig"], "not a bundled config"),
    (["--device", "cuda:7"], "device"),
    (["data.source=csv", "data.path=missing.csv"], "CSV file 'missing.csv' not found"),
    (["data.n_samples=100000000000", "data.x={kind: normal}"], "needs"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD_CASES)
def test_bad_input_exit_2_no_traceback(args: list[str], fragment: str) -> None:
    result = invoke("fit", *args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output
    assert "error:" in result.output
    assert not Path("runs").exists()  # nothing written for a bad input


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("seed: !!python/object/apply:os.system ['echo hacked']\n", "remove the '!!' tag"),
        ("a: [1\n", "not valid YAML"),
        ("optimizer:\n  lr: fast\n", "bad.yaml: optimizer.lr"),
    ],
)
def test_bad_config_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = invoke("fit", "-c", str(path))
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output


def test_out_not_empty(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    result = invoke("fit", "--out", str(tmp_path / "taken"), "--device", "cpu")
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_plot_redraws(tmp_path: Path) -> None:
    assert invoke("fit", "--quiet", "--device", "cpu", "train.max_iter=5").exit_code == 0
    result = invoke("plot", "--format", "pdf")
    assert result.exit_code == 0, result.output
    pdfs = list(Path("runs").glob("*/plots/*.pdf"))
    assert len(pdfs) == 3 and all(p.read_bytes().startswith(b"%PDF") for p in pdfs)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["plot", "nowhere"], "no such run directory"),
        (["plot"], "no runs under"),
        (["plot", ".", "--format", "gif"], "not one of png, svg, pdf"),
    ],
)
def test_plot_errors(args: list[str], fragment: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2 and fragment in result.output


def test_help_lists_examples() -> None:
    for command in ("fit", "plot"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Examples" in result.output


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from lrtrain.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_python_dash_m(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lrtrain", "fit", "--print-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0 and "name: lecture" in out.stdout
