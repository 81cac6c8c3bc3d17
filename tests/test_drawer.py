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
from lrtrain.cli.drawer import Drawer
from lrtrain.config.schema import load_config

ROOT = Path(__file__).parents[1]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def lesson_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("drawer") / "run"
    api.fit(load_config(None, ["device=cpu", "train.max_iter=30"]), out=out, draw=False)
    return out


def test_the_drawer_draws_what_the_command_would(lesson_run: Path, tmp_path: Path) -> None:
    with Drawer("fit") as drawer:
        drawn = drawer.draw(lesson_run, "png")
    assert drawer.process is None  # used and gone
    assert sorted(p.name for p in drawn) == ["contour.png", "fit.png", "loss.png", "modes.png"]
    by_drawer = {p.name: _pixels(p) for p in drawn}
    for path in api.redraw(lesson_run, "png"):  # the same figures, drawn here
        assert np.array_equal(_pixels(path), by_drawer[path.name]), path.name


def test_a_drawer_that_fails_leaves_the_drawing_to_the_command(
    lesson_run: Path, monkeypatch
) -> None:
    for plot in (lesson_run / "plots").glob("*"):
        plot.unlink()
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # cannot even start
    drawer = Drawer("fit").start()
    assert drawer.process is None
    assert len(drawer.draw(lesson_run, "png")) == 4
    monkeypatch.undo()
    broken = Drawer("fit")
    broken.process = subprocess.Popen(  # starts, then fails
        [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(1)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    (lesson_run / "plots" / "loss.png").unlink()
    paths = broken.draw(lesson_run, "png")
    assert all(p.is_file() for p in paths) and len(paths) == 4


def test_an_unused_drawer_is_ended() -> None:
    drawer = Drawer("sweep").start()
    process = drawer.process
    assert process is not None
    drawer.close()
    assert process.poll() is not None and drawer.process is None


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
