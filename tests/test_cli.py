"""The CLI as a user meets it: exit codes, messages, no tracebacks, instant --help."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lrtrain.cli.app import app
from lrtrain.config.schema import load_config

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


def test_print_config_is_one_key_per_line_and_reloads(tmp_path: Path) -> None:
    result = invoke("fit", "--print-config", "data.x.step=0.005")
    assert result.exit_code == 0, result.output
    assert "train:\n  max_iter: 100\n  batch_size: null\n" in result.output
    assert "  x:\n    kind: arange\n    start: 0.0\n    step: 0.005\n" in result.output
    path = tmp_path / "printed.yaml"
    path.write_text(result.output)
    assert load_config(str(path)) == load_config("lecture", ["data.x.step=0.005"])
    shown = invoke("configs", "show", "lecture")
    assert "  x:\n    kind: arange\n" in shown.output and "{" not in shown.output


@pytest.mark.parametrize(
    "command",
    [
        ["fit", "--print-config"],
        ["sweep-lr", "--print-config"],
        ["validate"],
        ["fit", "--quiet", "--device", "cpu", "train.max_iter=3", "output.plots=[]"],
        ["sweep-lr", "--quiet", "--device", "cpu", "train.max_iter=3", "output.plots=[]"],
        ["data", "-o", "{tmp}/lesson.csv"],
    ],
)
def test_nested_overrides_on_the_embedded_default(tmp_path: Path, command: list[str]) -> None:
    # issue 13: "data.x: Unable to extract tag using discriminator 'kind'" without -c
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    if args[0] in ("fit", "sweep-lr") and "--print-config" not in args:
        args += ["--out", str(tmp_path / "run")]
    result = invoke(*args, "data.x.start=1.0", "data.x.step=0.005")
    assert result.exit_code == 0, result.output


def test_sweep_refuses_train_tol_by_its_new_name(tmp_path: Path) -> None:
    result = invoke("sweep-lr", "train.tol=1e-4", "--out", str(tmp_path / "s"), "output.plots=[]")
    assert result.exit_code == 2
    assert "train.tol: sweep-lr has no change-in-loss stop" in result.output
    assert "write train.target_gap=0.0001 instead" in result.output
    assert not (tmp_path / "s").exists()


def test_data_help_describes_its_own_overwrite() -> None:
    text = invoke("data", "--help").output
    assert "Replace the CSV file if it exists" in text and "directory" not in text


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


def test_a_transient_past_the_guard_is_not_called_a_rate_above_the_critical_one(tmp_path) -> None:
    """Polyak's heavy ball on κ ≈ 5e7 (diabetes, unstandardised) sits a hair below the critical
    lr, and its transient grows the loss past 10⁶× before it would shrink: say so, and point
    at the conditioning rather than at a rate the momentum cannot take."""
    result = invoke("fit", "-c", "diabetes", "data.standardize=false", "train.dtype=float64",
                    "--out", str(tmp_path / "t"), "--quiet")  # fmt: skip
    assert result.exit_code == 3
    said = " ".join(result.output.split())
    assert "is below the critical lr" in said and "momentum's transient" in said
    assert "try data.standardize=true (κ is 5.2e+07)" in said


BAD_CASES = [
    (["optimizer.lr=-1"], "optimizer.lr: expected a number > 0 or 'auto'"),
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
    result = invoke("fit", "--out", str(tmp_path / "taken"), "--device", "cpu", "output.plots=[]")
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_plot_redraws(tmp_path: Path) -> None:
    assert invoke("fit", "--quiet", "--device", "cpu", "train.max_iter=5").exit_code == 0
    result = invoke("plot", "--format", "pdf")
    assert result.exit_code == 0, result.output
    pdfs = list(Path("runs").glob("*/plots/*.pdf"))
    assert len(pdfs) == 4 and all(p.read_bytes().startswith(b"%PDF") for p in pdfs)


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
        "from lrtrain.cli.app import app\n"
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


@pytest.mark.parametrize(
    ("code", "status", "stderr"), [("0", 0, ""), ("3", 3, ""), ("None", 0, ""), ("'no'", 1, "no")]
)
def test_the_process_ends_as_sys_exit_would_less_the_tear_down(
    code: str, status: int, stderr: str
) -> None:
    """The entry point's end (a fresh process: the process is the point): the exit status,
    the exit handlers run, the buffered output flushed — then no tear-down of the modules
    (an object's finaliser at tear-down never runs; under ``sys.exit`` it would)."""
    script = (
        "import atexit, sys\n"
        "from lrtrain.cli.app import end\n"
        "class Finalised:\n    def __del__(self):\n        print('torn down')\n"
        "kept = Finalised()\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "sys.stdout.write('answer ')  # buffered: the pipe is not a terminal\n"
        f"end({code})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr.strip()) == (
        status,
        "answer handler ran\n",
        stderr,
    )


def test_a_reader_that_goes_away_does_not_stop_the_run(tmp_path: Path) -> None:
    """`lrtrain fit | head`: the reader closes the pipe, the next line of the report met a
    BrokenPipeError, and the command ended with status 1 and no figures. (A fresh process:
    the pipe is the point. Its read end is closed before the command writes a line, so the
    first write meets the closed pipe, whatever the timing.)"""
    run = tmp_path / "r"
    process = subprocess.Popen(
        [sys.executable, "-m", "lrtrain", "fit", "--out", str(run), "train.max_iter=20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert sorted(p.name for p in (run / "plots").iterdir()) == [
        "contour.png", "fit.png", "loss.png", "modes.png"
    ]  # fmt: skip


def test_fit_auto_reports_the_chosen_settings(tmp_path: Path) -> None:
    run = tmp_path / "auto"
    result = invoke(
        "fit", "--device", "cpu", "--out", str(run), "optimizer.lr=auto", "optimizer.momentum=auto",
        "train.dtype=float64", "train.max_iter=1000", "train.target_gap=1e-6", "output.plots=[]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "auto      lr 0.050495, momentum 0.70848 — Polyak heavy ball" in result.output
    assert "relative gap ≤ 1e-06: reached at step 86 · theory predicts 86 steps" in result.output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "converged" and summary["steps"] == 86
    assert summary["optimizer"]["auto"]["rule"].startswith("Polyak")
    assert summary["theory"] == {
        "rate": pytest.approx(0.84171, rel=1e-4),
        "target_gap": 1e-6,
        "predicted_steps": 86,
        "observed_steps": 86,
        "full_batch_prediction": True,
    }
    resolved = (run / "config.yaml").read_text()
    assert "lr: 0.0504945" in resolved  # the numbers chosen, not `auto`, rerun it exactly
    assert "lr: auto" not in resolved and "momentum: auto" not in resolved
    again = invoke(
        "fit", "-c", str(run / "config.yaml"), "--out", str(tmp_path / "again"), "output.plots=[]"
    )
    assert again.exit_code == 0, again.output
    repeat = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert repeat["final"] == summary["final"] and repeat["steps"] == 86


def test_fit_auto_refusals_and_minibatch_note(tmp_path: Path) -> None:
    result = invoke("fit", "--device", "cpu", "optimizer.lr=0.01", "optimizer.momentum=auto")
    assert result.exit_code == 2
    assert "momentum: auto needs lr: auto as well" in result.output
    result = invoke("fit", "--device", "cpu", "optimizer.lr=fast")
    assert result.exit_code == 2 and "optimizer.lr" in result.output
    result = invoke(
        "fit", "-c", "minibatch", "--device", "cpu", "--out", str(tmp_path / "mb"),
        "optimizer.lr=auto", "optimizer.momentum=0", "data.n_samples=2000", "train.max_iter=50",
        "output.plots=[]",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "these are the full-batch optimal settings" in result.output


def test_plot_compare_draws_runs_of_one_problem(tmp_path: Path) -> None:
    for name, extra in (("a", []), ("b", ["optimizer.lr=auto"]), ("c", ["data.true_w=[2.0]"])):
        done = invoke(
            "fit",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(tmp_path / name),
            "output.plots=[]",
            *extra,
        )
        assert done.exit_code == 0, done.output
    out = tmp_path / "cmp.png"
    result = invoke("plot", str(tmp_path / "a"), str(tmp_path / "b"), "--compare", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    result = invoke("plot", str(tmp_path / "a"), str(tmp_path / "c"), "--compare", str(out))
    assert result.exit_code == 2 and "fits another problem" in result.output
    result = invoke("plot", str(tmp_path / "a"), "--compare", str(tmp_path / "cmp.txt"))
    assert result.exit_code == 2 and "cmp.txt: the file name must end in one of" in result.output
    assert ".pdf, .pgf, .png" in result.output and not (tmp_path / "cmp.txt").exists()
    result = invoke("plot", str(tmp_path / "a"), "--format", "gif")
    assert result.exit_code == 2 and "--format: 'gif' is not one of png, svg, pdf" in result.output


# --- the ecosystem's conventions -------------------------------------------------------------


def test_version_configs_validate_schema(tmp_path: Path) -> None:
    import lrtrain

    assert invoke("--version").output.strip() == f"lrtrain {lrtrain.__version__}"
    listing = invoke("configs")
    assert listing.exit_code == 0
    for name in ("lecture", "multivariate", "minibatch", "diabetes", "optimizers"):
        assert name in listing.output
    shown = invoke("configs", "show", "lecture")
    assert shown.output.startswith("# yaml-language-server: $schema=config.schema.json")
    assert invoke("configs", "show", "lectur").exit_code == 2
    dest = tmp_path / "mine.yaml"
    assert invoke("configs", "copy", "diabetes", str(dest)).exit_code == 0
    again = invoke("configs", "copy", "diabetes", str(dest))
    assert again.exit_code == 2 and "never overwrites" in again.output
    valid = invoke("validate", str(dest), "train.max_iter=7")
    assert (
        valid.exit_code == 0 and "config is valid" in valid.output and "max_iter: 7" in valid.output
    )
    bad = invoke("validate", "lecture", "optimizer.lr=-1", "seed=x")
    assert bad.exit_code == 2 and bad.output.count("error:") == 2
    schema = json.loads(invoke("schema").output)
    assert schema["properties"]["optimizer"]["$ref"].endswith("OptimizerConfig")
    assert "lr" in schema["$defs"]["OptimizerConfig"]["properties"]


def test_shipped_schema_and_readme_reference_are_in_sync() -> None:
    from lrtrain.config.reference import config_reference, config_schema_text, field_docs

    root = Path(__file__).resolve().parents[1]
    shipped = root / "src" / "lrtrain" / "config" / "bundled" / "config.schema.json"
    assert shipped.read_text() == config_schema_text(), "run: lrtrain schema > " + str(shipped)
    readme = (root / "docs" / "config.md").read_text()
    assert config_reference() in readme, (
        "run: lrtrain schema --reference, paste into docs/config.md"
    )
    # every key of the schema has a meaning
    from lrtrain.config.schema import TAGGED, Config

    def leaves(prefix: str, value: object) -> list[str]:
        if isinstance(value, dict) and prefix not in TAGGED:
            return [k for key, v in value.items() for k in leaves(f"{prefix}.{key}".strip("."), v)]
        return [prefix]

    assert sorted(leaves("", Config().to_dict())) == sorted(field_docs())
    assert all(field_docs().values())  # every key has a docstring in config.py


def test_data_and_predict(tmp_path: Path) -> None:
    data = tmp_path / "lesson.csv"
    assert invoke("data", "-o", str(data)).exit_code == 0
    rows = data.read_text().splitlines()
    assert rows[0] == "x_0,y" and len(rows) == 101 and rows[1].startswith("0.0,")
    assert invoke("data", "-o", str(data)).exit_code == 2
    run = tmp_path / "r"
    assert (
        invoke("fit", "--device", "cpu", "--quiet", "--out", str(run), "output.plots=[]").exit_code
        == 0
    )
    out = tmp_path / "pred.csv"
    result = invoke("predict", str(run), str(data), "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    w, b = summary["final"]["w"][0], summary["final"]["b"]
    lines = out.read_text().splitlines()
    assert lines[0] == "x_0,y,y_predicted"
    x0, _, pred = (float(v) for v in lines[5].split(","))
    assert pred == pytest.approx(w * x0 + b, rel=1e-12)
    missing = tmp_path / "other.csv"
    missing.write_text("a,b\n1,2\n")
    bad = invoke("predict", str(run), str(missing))
    assert bad.exit_code == 2 and "no column 'x_0'" in bad.output
    sweep = tmp_path / "s"
    invoke("sweep-lr", "--device", "cpu", "--quiet", "--out", str(sweep), "output.plots=[]")
    bad = invoke("predict", str(sweep), str(data))
    assert bad.exit_code == 2
    assert "a sweep directory has no single model to predict with; give a fit's" in bad.output


def test_predict_standardised_real_data(tmp_path: Path) -> None:
    run = tmp_path / "d"
    assert (
        invoke(
            "fit",
            "-c",
            "diabetes",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(run),
            "output.plots=[]",
        ).exit_code
        == 0
    )
    csv_in = Path(__file__).resolve().parents[1] / "src/lrtrain/config/bundled/data/diabetes.csv"
    result = invoke("predict", str(run), str(csv_in))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()  # the predictions; the score goes to stderr
    assert lines[0].endswith(",progression,progression_predicted")
    assert result.stderr.startswith("score     442 rows: R²")
    summary = json.loads((run / "summary.json").read_text())
    fitted = np.array([float(line.rsplit(",", 1)[1]) for line in lines[1:]])
    target = np.array([float(line.split(",")[-2]) for line in lines[1:]])
    mse = float(np.mean((fitted - target) ** 2))
    assert mse == pytest.approx(summary["final"]["loss"], rel=1e-6)


def test_json_output_and_no_color(tmp_path: Path) -> None:
    result = invoke(
        "fit", "--device", "cpu", "--json", "--out", str(tmp_path / "r"), "output.plots=[]"
    )
    assert result.exit_code == 0
    summary = json.loads(result.output)
    assert summary["status"] == "completed" and summary["steps"] == 100
    result = invoke(
        "sweep-lr", "--device", "cpu", "--json", "--out", str(tmp_path / "s"), "output.plots=[]"
    )
    assert json.loads(result.output)["kind"] == "sweep"
    # Colour, and NO_COLOR: on a message a fresh process prints before it imports torch (a
    # user error), the same console the report uses.
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "100"}
    command = [sys.executable, "-m", "lrtrain", "fit", "optimizer.lr=fast"]
    colored = subprocess.run(command, capture_output=True, text=True, env=env)
    assert colored.returncode == 2 and "\x1b[1;31merror:" in colored.stderr
    plain = subprocess.run(command, capture_output=True, text=True, env={**env, "NO_COLOR": "1"})
    assert plain.returncode == 2 and "error:" in plain.stderr
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", plain.stderr)


def test_every_command_has_examples() -> None:
    for command in ("fit", "sweep-lr", "plot", "configs", "validate", "schema", "data", "predict"):
        assert (
            "Examples" in invoke(command, "--help").output
            or "Example" in invoke(command, "--help").output
        ), command


def test_plot_animate_writes_a_gif(tmp_path: Path) -> None:
    run = tmp_path / "r"
    assert (
        invoke(
            "fit",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(run),
            "train.max_iter=20",
            "output.plots=[]",
        ).exit_code
        == 0
    )
    result = invoke("plot", str(run), "--animate")
    assert result.exit_code == 0, result.output
    gif = run / "plots" / "descent.gif"
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 21


def test_wide_data_shows_at_most_twenty_parameter_rows(tmp_path: Path) -> None:
    weights = ",".join(str(0.1 * i) for i in range(30))
    result = invoke(
        "fit", "--device", "cpu", "--out", str(tmp_path / "w"), "output.plots=[]",
        "data.x={kind: normal, mean: 0, std: 1}", f"data.true_w=[{weights}]",
        "data.n_samples=2000", "optimizer.lr=auto",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [ln for ln in result.output.splitlines() if ln.startswith("│ ")]
    assert len(rows) == 20 and rows[-1].startswith("│ b ")
    assert "… 11 more weights in summary.json" in result.output
    shown = [int(ln.split()[1][2:]) for ln in rows[:-1]]
    assert shown == list(range(11, 30))  # the largest true (and learned) weights, in order
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert len(summary["final"]["w"]) == 30  # all of them in the summary


def test_a_loss_that_rounds_below_the_optimum_says_so(tmp_path: Path) -> None:
    """A float32 loss can evaluate a hair below loss* (a target of 1e9, centred: −3.9e-7
    relative); a bare negative gap reads as an error in the optimum."""
    from rich.console import Console

    from lrtrain.api import fit
    from lrtrain.cli.report import fit_report

    run = fit(load_config(None, ["train.max_iter=5"]), out=tmp_path / "r", draw=False)
    console = Console(width=200, record=True)
    fit_report(run, console)
    assert "rounds below" not in console.export_text()
    run.summary["optimality_gap"]["relative"] = -3.92e-7
    fit_report(run, console)
    assert "gap -3.92e-07 relative: the float32 loss rounds below the optimum)" in (
        console.export_text()
    )
