"""The two promises (issue 5): a run can be stopped at any moment and resumed exactly, and a
mistake is caught before any work with a message that says what to fix. Real signals go to real
processes here; the bad-input corpus goes through the CLI as a user would type it."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from events import PROGRESS_ENV, STEP, Output, wait_for_file
from hypothesis import given, settings
from hypothesis import strategies as st
from test_config import PYDANTIC_WORDING
from typer.testing import CliRunner

from lrtrain.cli.app import app
from lrtrain.config.schema import load_config, validate
from lrtrain.config.yaml_io import parse_yaml
from lrtrain.errors import ConfigError, LrtrainError

ROOT = Path(__file__).resolve().parents[1]
# src first; an existing PYTHONPATH (packages installed outside the venv) kept after it
_PATH = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": _PATH, **PROGRESS_ENV}
TEMP_FILE = re.compile(r"^\..+\.tmp(\.gif)?$")  # an atomic write killed mid-way leaves only this
runner = CliRunner()


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lrtrain", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_whole(run_dir: Path) -> list[str]:
    """Every file in a run directory is complete and parseable (or a hidden temp file of an
    interrupted atomic write, never the real name half-written). Returns the names checked."""
    checked = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if TEMP_FILE.match(path.name):
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            assert isinstance(json.loads(data), dict), path
        elif path.suffix == ".yaml":
            assert isinstance(yaml.safe_load(data), dict), path
        elif path.suffix == ".csv":
            rows = list(csv.reader(data.decode().splitlines()))
            assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows), path
            if path.name != "sweep.csv":  # the others are all numbers
                [float(v) for r in rows[1:] for v in r]
        elif path.suffix == ".pt":
            assert isinstance(torch.load(path, weights_only=True), dict), path
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                assert "eigenvectors" in set(arrays.files), path
                assert all(arrays[name].size for name in arrays.files), path
        elif path.suffix == ".npy":
            assert np.load(path, allow_pickle=False).ndim == 2, path
        elif path.suffix == ".png":
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
        else:
            pytest.fail(f"unexpected file {path}")
        checked.append(str(path.relative_to(run_dir)))
    return checked


# --- interruption and resume -----------------------------------------------------------------


@pytest.mark.slow
def test_sigint_saves_everything_and_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    over = ["optimizer.momentum=0.9", "train.batch_size=16", "optimizer.lr=0.0005"]
    proc = _start("fit", "--out", "r", "train.max_iter=200000", *over, cwd=tmp_path)
    output = Output(proc)
    shown = int(output.wait_for(STEP).group(1))  # the progress bar says training is under way
    proc.send_signal(signal.SIGINT)
    out = output.text()
    assert proc.wait(60) == 130, out
    assert "stopping after this step, saving the run" in out  # Ctrl-C acknowledged
    assert "interrupted" in out and "lrtrain fit --resume r" in out and "Traceback" not in out
    assert_whole(tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    steps = summary["steps"]
    assert summary["status"] == "interrupted" and shown <= steps < 200000
    metrics = (tmp_path / "r" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == steps + 2  # header, θ_0 … θ_steps
    total = steps + 37
    os.chdir(tmp_path)
    resumed = runner.invoke(app, ["fit", "--resume", "r", "--quiet", f"train.max_iter={total}"])
    assert resumed.exit_code == 0, resumed.output
    whole = runner.invoke(  # compared by its metrics and model: no figures
        app, ["fit", "--out", "w", "--quiet", f"train.max_iter={total}", *over, "output.plots=[]"]
    )
    assert whole.exit_code == 0, whole.output
    assert (tmp_path / "r/metrics.csv").read_bytes() == (tmp_path / "w/metrics.csv").read_bytes()
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("r", "w"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = runner.invoke(app, ["fit", "--resume", "r", f"train.max_iter={total}"])
    assert again.exit_code == 0 and "nothing to resume: the run is complete" in again.output
    changed = runner.invoke(app, ["fit", "--resume", "r", "optimizer.lr=0.01", "seed=3"])
    assert changed.exit_code == 2
    assert "optimizer.lr (0.0005 → 0.01), seed (0 → 3)" in changed.output


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_without_corrupting_files(tmp_path: Path) -> None:
    proc = _start("fit", "--out", "r", "train.max_iter=5000000", cwd=tmp_path)
    output = Output(proc)
    output.wait_for(STEP)
    proc.send_signal(signal.SIGINT)
    output.wait_for(re.compile("stopping after this step"))  # the first press was taken
    proc.send_signal(signal.SIGINT)
    out = output.text()
    assert proc.wait(60) == 130, out
    assert "interrupted again: stopped at once" in out
    assert "Traceback" not in out
    assert_whole(tmp_path / "r")


@pytest.mark.slow
def test_sweep_interrupted_writes_what_it_has(tmp_path: Path) -> None:
    over = ["train.max_iter=5000000", "train.log_every=1000"]  # long, with a short history
    proc = _start("sweep-lr", "--out", "s", *over, cwd=tmp_path)
    output = Output(proc)
    output.wait_for(STEP)
    proc.send_signal(signal.SIGTERM)
    out = output.text()
    assert proc.wait(60) == 130, out
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps_run"] < 5000000
    assert "sweep.csv" in assert_whole(tmp_path / "s")


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_every_file_whole_or_absent(tmp_path: Path) -> None:
    """Killed at random points of a whole run: during start-up, and at random moments after
    the run directory appears (training, writing, drawing) — random on purpose — and once the
    moment the first file is written, so that some kill surely lands among the writes."""
    rng = random.Random(5)
    seen: set[str] = set()
    for trial, after in enumerate(["start", "dir", "dir", "metrics.csv"]):
        run = tmp_path / f"k{trial}"
        proc = _start("fit", "--out", run.name, "--quiet", "train.max_iter=300", cwd=tmp_path)
        if after == "start":
            time.sleep(rng.uniform(0.0, 1.0))  # somewhere in the imports
        elif after == "dir":
            wait_for_file(run / "plots", proc)
            time.sleep(rng.uniform(0.0, 2.0))  # somewhere in training, writing or drawing
        else:
            wait_for_file(run / after, proc)
        proc.kill()
        proc.communicate(timeout=60)
        if run.exists():
            seen.update(assert_whole(run))
    assert "metrics.csv" in seen


@pytest.mark.slow
def test_two_fits_started_together_get_different_directories(tmp_path: Path) -> None:
    procs = [
        _start("fit", "--quiet", "train.max_iter=5", "output.plots=[]", cwd=tmp_path)
        for _ in range(2)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        assert json.loads((run / "summary.json").read_text())["status"] == "completed"


# --- disk faults -------------------------------------------------------------------------------


def test_unwritable_output_location_is_a_clear_error(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    for args in (["--out", "/proc/lrtrain-run"], ["output.root=/proc/lrtrain-runs"]):
        result = runner.invoke(app, ["fit", "--quiet", *args])
        assert result.exit_code == 2, result.output
        assert "cannot create the run directory" in result.output
        assert "Traceback" not in result.output


def test_full_disk_is_a_clear_error_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lrtrain.runs.atomic

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lrtrain.runs.atomic.os, "fsync", full)
    os.chdir(tmp_path)
    result = runner.invoke(app, ["fit", "--quiet", "--out", "r"])
    assert result.exit_code == 2, result.output
    assert "cannot write: No space left on device" in result.output
    assert "Traceback" not in result.output
    assert [p.name for p in (tmp_path / "r").rglob("*") if p.is_file()] == []


# --- files: checkpoints and run directories ----------------------------------------------------


@pytest.fixture(scope="module")
def _pristine_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short fit, trained once for the module's tests (each damages a copy of it)."""
    run = tmp_path_factory.mktemp("pristine") / "r"
    result = runner.invoke(
        app, ["fit", "--quiet", "--out", str(run), "train.max_iter=20", "output.plots=[]"]
    )
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def lesson_run(_pristine_run: Path, tmp_path: Path) -> Path:
    os.chdir(tmp_path)
    return Path(shutil.copytree(_pristine_run, tmp_path / "r"))


class _NotWeights:
    pass


def _standardised_before_centring(path: Path) -> dict:
    """The checkpoint as format 3 wrote it for a standardised run (the target uncentred)."""
    data = torch.load(path, weights_only=True)
    data["config"]["data"]["standardize"] = True
    return {**data, "format_version": 3}


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: p.write_bytes(b"garbage" * 10), "corrupt or not an lrtrain checkpoint"),
        (lambda p: p.write_bytes(p.read_bytes()[:500]), "corrupt or not an lrtrain checkpoint"),
        (lambda p: torch.save({"w": torch.zeros(2)}, p), "not an lrtrain checkpoint"),
        (lambda p: torch.save({"x": _NotWeights()}, p), "corrupt or not an lrtrain checkpoint"),
        (lambda p: p.unlink(), "not a resumable run (no checkpoint.pt)"),
        (
            lambda p: torch.save({**torch.load(p, weights_only=True), "format_version": 99}, p),
            "written by a newer lrtrain (format 99",
        ),
        (lambda p: torch.save(_standardised_before_centring(p), p), "parameters do not carry"),
    ],
)
def test_bad_checkpoints_are_refused_clearly(lesson_run: Path, damage, fragment: str) -> None:
    damage(lesson_run / "checkpoint.pt")
    result = runner.invoke(app, ["fit", "--resume", str(lesson_run), "train.max_iter=40"])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda r: (r / "summary.json").write_text("{not json"), "summary.json: unreadable"),
        (lambda r: (r / "summary.json").unlink(), "not an lrtrain run (no summary.json)"),
        (lambda r: (r / "metrics.csv").write_text("step,loss\n1,x\n"), "metrics.csv: unreadable"),
        (lambda r: (r / "config.yaml").unlink(), "incomplete run (no config.yaml)"),
        (
            lambda r: (r / "summary.json").write_text(json.dumps({"format_version": 7})),
            "written by a newer lrtrain (format 7",
        ),
    ],
)
def test_plot_of_a_damaged_run_is_refused_clearly(lesson_run: Path, damage, fragment) -> None:
    damage(lesson_run)
    result = runner.invoke(app, ["plot", str(lesson_run)])
    assert result.exit_code == 2, result.output
    assert fragment in result.output and "Traceback" not in result.output


# --- the bad-input corpus ----------------------------------------------------------------------

FILES = {
    "notyaml.yaml": "a: [1, 2\n",
    "empty.yaml": "",
    "list.yaml": "- 1\n- 2\n",
    "unknown.yaml": "optimzer: {lr: 0.1}\n",
    "type.yaml": "train: {max_iter: many}\n",
    "nan.yaml": "optimizer: {lr: .nan}\n",
    "inf.yaml": "data: {noise_std: .inf}\n",
    "neg.yaml": "data: {noise_std: -1}\n",
    "zero.yaml": "data: {n_samples: 0}\n",
    "huge.yaml": "data: {n_samples: 100000000000, x: {kind: normal, mean: 0, std: 1}, "
    "true_w: [1, 2, 3, 4, 5, 6, 7, 8]}\n",
    "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
        for i in range(11)
    ),
    "pytag.yaml": 'name: !!python/object/apply:os.system ["echo hi"]\n',
    "dup.yaml": "seed: 1\nseed: 2\n",
    "nonnum.csv": "x,y\n1,2\n2,oops\n3,4\n",
    "onerow.csv": "x,y\n1,2\n",
    "empty.csv": "",
    "nan.csv": "x,y\n1,nan\n2,3\n3,4\n",
    "inf.csv": "x,y\n1,inf\n2,3\n3,4\n",
    "nocol.csv": "a,b\n1,2\n2,3\n",
    "short.csv": "x,y\n1,2\n2\n3,4\n",
    "huge32.csv": "x,y\n1e39,2\n2,4\n3,6\n",
    "huge64.csv": "x,y\n1e200,2\n2,4\n3,6\n",
}
CORPUS = [
    (["-c", "notyaml.yaml"], "notyaml.yaml: not valid YAML (line 2)"),
    (["-c", "empty.yaml"], "empty.yaml: the config file is empty"),
    (["-c", "list.yaml"], "the top level must be a mapping"),
    (["-c", "unknown.yaml"], "optimzer: unknown key. Did you mean 'optimizer'?"),
    (["-c", "type.yaml"], "type.yaml: train.max_iter: must be a whole number"),
    (["-c", "nan.yaml"], "nan.yaml: optimizer.lr: expected a number > 0 or 'auto'"),
    (["-c", "inf.yaml"], "inf.yaml: data.noise_std"),
    (["-c", "neg.yaml"], "data.noise_std: must be ≥ 0"),
    (["-c", "zero.yaml"], "data.n_samples: must be ≥ 2"),
    (["-c", "huge.yaml"], "needs 3.3 TiB of memory for X and y"),
    (["-c", "bomb.yaml"], "more than 100 YAML aliases"),
    (["-c", "pytag.yaml"], "only plain YAML"),
    (["-c", "dup.yaml"], "duplicate key 'seed' at line 2"),
    (["-c", "missing.yaml"], "missing.yaml: no such config file"),
    (["optimizer.lr"], "expected KEY=VALUE"),
    (["optimzer.lr=1"], "Did you mean 'optimizer'?"),
    (["optimizer.lrr=1"], "Did you mean 'optimizer.lr'?"),
    (["train.max_iter=0"], "train.max_iter: must be ≥ 1 (got 0)"),
    (["optimizer.momentum=1"], "optimizer.momentum: expected a number in [0, 1)"),
    (["optimizer.lr=0.01", "optimizer.momentum=auto"], "momentum: auto needs lr: auto"),
    (["optimizer.nesterov=true"], "nesterov: true needs momentum > 0"),
    (["data.x={kind: weird}"], "data.x"),
    (["data.true_w=[]"], "data.true_w: needs at least 1 item(s)"),
    (["seed=-1"], "seed: must be ≥ 0 (got -1)"),
    (["train.dtype=float16"], "train.dtype: must be one of float32, float64"),
    (["output.format=gif"], "output.format"),
    (["train.target_gap=0"], "train.target_gap"),
    (["data.source=csv", "data.path=nope.csv"], "CSV file 'nope.csv' not found"),
    (["data.source=csv", "data.path=nonnum.csv"], "line 3, column 'y': 'oops' is not a number"),
    (["data.source=csv", "data.path=onerow.csv"], "1 data row(s); a regression needs at least 2"),
    (["data.source=csv", "data.path=empty.csv"], "empty.csv: the file is empty"),
    (["data.source=csv", "data.path=nan.csv"], "line 2, column 'y': nan is not a finite"),
    (["data.source=csv", "data.path=inf.csv"], "line 2, column 'y': inf is not a finite"),
    (["data.source=csv", "data.path=nocol.csv"], "no column 'y' (data.target)"),
    (["data.source=csv", "data.path=short.csv"], "line 3 has no value in column 'y'"),
    (
        ["data.source=csv", "data.path=nocol.csv", "data.target=b", "data.features=[z]"],
        "no column 'z' (data.features)",
    ),
    (["data.source=csv", "data.path=huge32.csv"], "overflow float32 (limit ≈ 1.1e+18): set"),
    (["data.source=csv", "data.path=huge64.csv"], "the features reach 1e+200"),
    (["data.x={kind: uniform, low: 1e200, high: 2e200}"], "overflow float64"),
    (["data.source=csv", "data.path=huge32.csv", "data.features=[x, y]"], "also listed"),
    (["train.max_iter=1000000000"], "history rows: more than 20,000,000"),
    (["device=tpu"], "device: must be auto, cpu, cuda or cuda:N (got 'tpu')"),
    (["data.stream=true", "train.batch_size=8"], "mini-batches draw random rows"),
]
if not torch.cuda.is_available():
    CORPUS += [
        (["--device", "cuda"], "CUDA is not available on this machine"),
        (["--device", "cuda:7"], "CUDA is not available on this machine"),
    ]


@pytest.mark.parametrize(("args", "fragment"), CORPUS, ids=lambda v: str(v)[:40])
def test_bad_input_corpus(tmp_path: Path, args: list[str], fragment: str) -> None:
    """Exit 2, one clear message naming what to fix, no traceback, nothing written."""
    os.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    result = runner.invoke(app, ["fit", *args])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output and result.output.startswith("error:")
    assert not any(words in result.output for words in PYDANTIC_WORDING), result.output
    assert not (tmp_path / "runs").exists()


def test_corpus_is_at_least_thirty_cases() -> None:
    assert len(CORPUS) >= 30


KEYS = ["name", "seed", "data", "optimizer", "lr", "x", "kind", "train", "max_iter", "n_samples",
        "true_w", "output", "zzz"]  # fmt: skip


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(KEYS),
                inner,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_yaml_value_gives_a_config_or_a_config_error(value: object) -> None:
    """Fuzzing: whatever the YAML holds, loading gives a valid config or a ConfigError."""
    text = yaml.safe_dump({"cfg": value})[len("cfg:") :] if value is not None else ""
    try:
        raw = parse_yaml(text, "fuzz.yaml")
        config = validate(raw, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.messages and all(isinstance(m, str) and m for m in exc.messages)
        assert not any(w in m for m in exc.messages for w in PYDANTIC_WORDING), exc.messages
    else:
        assert config.optimizer.lr == "auto" or config.optimizer.lr > 0


def test_override_fuzz_never_escapes_as_another_error() -> None:
    rng = random.Random(0)
    pieces = ["optimizer.lr", "data.x", "train", "seed", "=", "[", "]", "{", "}", ":", "1e9",
              "-", "nan", "auto", "'", '"', "!!python", "&a", "*a", ","]  # fmt: skip
    for _ in range(300):
        override = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        with contextlib.suppress(LrtrainError):
            load_config(None, [override])
