"""The drawer: figures drawn by a second process are those drawn in the command's own process,
the command never exits before they are complete, and it draws them itself when the drawer
cannot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrtrain import api
from lrtrain.cli.drawer import Drawer, shares
from lrtrain.config.schema import load_config

ROOT = Path(__file__).parents[1]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def lesson_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("drawer") / "run"
    api.fit(load_config(None, ["device=cpu", "train.max_iter=30"]), out=out, draw=False)
    return out


@pytest.mark.parametrize("plots", [(), ("loss", "contour", "fit", "modes")])
def test_the_drawer_draws_what_the_command_would(
    lesson_run: Path, plots: tuple[str], monkeypatch
) -> None:
    """One drawer for everything, or two that share the kinds (as a command starts them)."""
    monkeypatch.setenv("LRTRAIN_DRAWERS", "2")  # the suite's workers ask for one
    with Drawer("fit", plots) as drawer:
        assert len(drawer.processes) == (2 if plots and (os.cpu_count() or 1) > 1 else 1)
        drawn = drawer.draw(lesson_run, "png")
    assert drawer.processes == []  # used and gone
    assert sorted(p.name for p in drawn) == ["contour.png", "fit.png", "loss.png", "modes.png"]
    by_drawer = {p.name: _pixels(p) for p in drawn}
    for path in api.redraw(lesson_run, "png"):  # the same figures, drawn here
        assert np.array_equal(_pixels(path), by_drawer[path.name]), path.name


def test_the_kinds_are_shared_where_there_are_cores_to_share(monkeypatch) -> None:
    every = ["loss", "contour", "fit", "modes"]
    assert shares("fit", every, cores=2) == [["contour", "fit"], ["loss", "modes"]]
    assert shares("sweep", every, cores=8) == [["contour", "fit"], ["loss", "modes"]]
    assert shares("fit", every, cores=1) == [every]
    assert shares("fit", ["loss", "modes"], cores=2) == [["loss", "modes"]]  # one half empty
    assert shares("batch-map", every, cores=2) == [every]  # a single figure
    monkeypatch.setenv("LRTRAIN_DRAWERS", "1")
    assert shares("sweep", every) == [every]
    monkeypatch.setenv("LRTRAIN_DRAWERS", "2")
    assert len(shares("sweep", every)) == min(2, os.cpu_count() or 1)


def test_a_drawing_narrowed_to_some_kinds_draws_those_of_the_run_only(lesson_run: Path) -> None:
    for plot in (lesson_run / "plots").glob("*"):
        plot.unlink()
    drawn = api.redraw(lesson_run, "png", ["contour", "fit", "replicas-or-anything"])
    assert sorted(p.name for p in drawn) == ["contour.png", "fit.png"]
    assert sorted(p.name for p in (lesson_run / "plots").iterdir()) == ["contour.png", "fit.png"]


def test_a_drawer_that_fails_leaves_the_drawing_to_the_command(
    lesson_run: Path, monkeypatch
) -> None:
    for plot in (lesson_run / "plots").glob("*"):
        plot.unlink()
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # cannot even start
    drawer = Drawer("fit").start()
    assert drawer.processes == [None]
    assert len(drawer.draw(lesson_run, "png")) == 4
    monkeypatch.undo()
    broken = Drawer("fit", ["loss", "contour", "fit", "modes"])
    broken.shares = [["contour", "fit"], ["loss", "modes"]]  # as on two cores
    fails = [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(1)"]
    broken.processes = [  # the first starts, then fails; the second draws its share
        subprocess.Popen(fails, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True),
        broken._spawn(["loss", "modes"], 1),
    ]  # fmt: skip
    for plot in (lesson_run / "plots").glob("*"):
        plot.unlink()
    paths = broken.draw(lesson_run, "png")
    assert sorted(p.name for p in paths) == ["contour.png", "fit.png", "loss.png", "modes.png"]
    assert all(p.is_file() for p in paths)


def test_an_unused_drawer_is_ended(monkeypatch) -> None:
    monkeypatch.setenv("LRTRAIN_DRAWERS", "2")
    drawer = Drawer("sweep", ["loss", "contour"]).start()
    processes = list(drawer.processes)
    assert processes and None not in processes
    drawer.close()
    assert all(p.poll() is not None for p in processes if p) and drawer.processes == []


@pytest.mark.slow
def test_every_figure_is_complete_when_the_command_exits(tmp_path: Path) -> None:
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "lrtrain", "sweep-lr", "--device", "cpu", "--out",
         str(tmp_path / "s"), "train.max_iter=20"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recommended" in done.stdout  # the answer is printed (before the figures)
    names = sorted(p.name for p in (tmp_path / "s" / "plots").iterdir())
    assert names == ["sweep_contours.png", "sweep_loss.png", "sweep_modes.png", "sweep_summary.png"]
    for name in names:
        Image.open(tmp_path / "s" / "plots" / name).load()  # whole, decodable files
