"""The Python API a notebook uses: the package's names, objects that hold the results, figures
into the caller's axes, no printing unless asked, and the example script."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import lrtrain

ROOT = Path(__file__).resolve().parents[1]


def test_package_exports_the_api_lazily() -> None:
    code = (
        "import sys, lrtrain; heavy = [m for m in ('torch', 'pydantic', 'matplotlib') "
        "if m in sys.modules]; print(heavy); from lrtrain import fit, load_run; "
        "import lrtrain.api; print(fit is lrtrain.api.fit)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
    assert set(lrtrain.__all__) <= set(dir(lrtrain))
    with pytest.raises(AttributeError):
        lrtrain.no_such_name  # noqa: B018
    assert (ROOT / "src" / "lrtrain" / "py.typed").is_file()


def test_fit_returns_everything_and_prints_nothing(tmp_path: Path, capsys) -> None:
    run = lrtrain.fit(lrtrain.load_config("lecture", ["device=cpu"]), out=tmp_path / "r")
    assert capsys.readouterr().out == ""
    assert run.summary["status"] == "completed"
    assert run.result.replica_history(0)["loss"].shape == (101,)
    assert run.analysis.critical_lr == pytest.approx(0.029774, rel=1e-4)
    loaded = lrtrain.load_run(run.run_dir)
    np.testing.assert_allclose(loaded.theta[-1], run.result.final_theta[0].numpy(), rtol=1e-6)


def test_progress_true_uses_rich(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lrtrain.workflows.progress

    seen = []

    class Spy(lrtrain.workflows.progress.ProgressBar):
        def __call__(self, step: int, total: int, losses: list[float]) -> None:
            seen.append(step)

    monkeypatch.setattr(lrtrain.workflows.progress, "ProgressBar", Spy)
    lrtrain.fit(lrtrain.load_config(None, ["device=cpu"]), out=tmp_path / "r", progress=True)
    assert seen and seen[-1] == 100


def test_figures_draw_into_the_callers_axes(tmp_path: Path) -> None:
    from lrtrain import plots

    run = lrtrain.load_run(
        lrtrain.fit(lrtrain.load_config(None, ["device=cpu"]), out=tmp_path / "r").run_dir
    )
    fig = Figure()
    ax = fig.subplots()
    returned = plots.loss_figure(run.metrics["step"], run.metrics["loss"], 1.2, ax=ax)
    assert returned is fig and ax.get_lines()


def test_example_script_runs_headless(tmp_path: Path, monkeypatch, capsys) -> None:
    """examples/lesson.py as a user runs it (in this process: MPLBACKEND is Agg here)."""
    monkeypatch.setattr(sys, "argv", ["lesson.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / "lesson.py"), run_name="__main__")
    done = capsys.readouterr()  # .out: what the script printed
    assert "critical lr 2/λ_max = 0.02977" in done.out
    assert "lr 0.03    diverged     (predicted diverged)" in done.out
    assert "converged in 86 steps (theory: 86)" in done.out
    assert (tmp_path / "lesson.png").read_bytes().startswith(b"\x89PNG")


def test_diabetes_fit_matches_an_independent_least_squares_fit(tmp_path: Path) -> None:
    """The bundled real data: lrtrain's trained parameters, in original units, equal numpy's
    least squares on the same CSV to 1e-4 (relative)."""
    run = lrtrain.fit(lrtrain.load_config("diabetes", ["device=cpu"]), out=tmp_path / "d")
    data = np.loadtxt(
        ROOT / "src/lrtrain/config/bundled/data/diabetes.csv", delimiter=",", skiprows=1
    )
    x, y = data[:, :-1], data[:, -1]
    reference = np.linalg.lstsq(np.hstack([x, np.ones((len(y), 1))]), y, rcond=None)[0]
    final = run.summary["final_original"]
    learned = np.array([*final["w"], final["b"]])
    np.testing.assert_allclose(learned, reference, rtol=1e-4)
    assert run.summary["status"] == "converged"
    assert run.summary["data"]["features"][:3] == ["age", "sex", "bmi"]


def test_docstring_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import doctest

    import lrtrain.api

    monkeypatch.chdir(tmp_path)
    for module in (lrtrain, lrtrain.api):
        failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert attempted > 0 and failed == 0, module.__name__
