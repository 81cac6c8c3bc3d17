"""Figures checked through their axes and data, plus valid image files; drawing without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrtrain import plots
from lrtrain.api import fit
from lrtrain.config.schema import load_config
from lrtrain.plots import animation, contours, figures
from lrtrain.runs.directory import load_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lesson_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plots") / "run"
    return fit(load_config(None, ["device=cpu"]), out=out).run_dir


def test_files_are_valid_images(lesson_run: Path) -> None:
    for name in ("loss", "contour", "fit"):
        data = (lesson_run / "plots" / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_loss_figure_axes(lesson_run: Path) -> None:
    run = load_run(lesson_run)
    fig = plots.run_figures(run)["loss"]
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"
    line = ax.lines[0]
    assert np.array_equal(line.get_xdata(), run.metrics["step"])
    assert np.allclose(line.get_ydata(), run.metrics["loss"])
    expected = ax.lines[1]  # the theory's loss: full batch, the loss itself
    assert expected.get_label() == "expected loss (theory)"
    assert np.allclose(expected.get_ydata(), run.metrics["expected_loss"])
    assert np.allclose(expected.get_ydata(), run.metrics["loss"], rtol=2e-6)
    labels = [line.get_label() for line in ax.lines]
    assert labels[2] == "gradient flow (s = η·t)"
    reference = ax.lines[3]
    assert reference.get_ydata()[0] == pytest.approx(run.summary["closed_form"]["loss"])
    assert "lr = 0.001" in ax.get_title() and "100 steps" in ax.get_title()
    assert _legend_corner(ax) == ("upper", "right")  # a converging loss leaves it empty
    minor = ax.yaxis.get_minor_locator()()  # minor grid lines at 2 and 5 of each decade
    assert {round(v / 10 ** np.floor(np.log10(v))) for v in minor} <= {2, 5}


def test_a_diverged_loss_keeps_its_legend_out_of_the_way() -> None:
    steps = np.arange(50)
    rising = plots.loss_figure(steps, 300.0 * 1.3**steps, 1.2).axes[0]
    assert _legend_corner(rising) == ("lower", "right")  # the loss ends in the upper right


def _legend_corner(ax: Any) -> tuple[str, str]:
    """Where the legend was drawn, read off the rendered boxes."""
    ax.figure.canvas.draw()
    box, frame = ax.get_legend().get_window_extent(), ax.get_window_extent()
    vertical = "upper" if box.y0 + box.y1 > frame.y0 + frame.y1 else "lower"
    return vertical, "right" if box.x0 + box.x1 > frame.x0 + frame.x1 else "left"


def test_a_minibatch_loss_figure_shows_the_expected_loss_and_noise_floor(tmp_path: Path) -> None:
    cfg = load_config("minibatch", ["device=cpu", "data.n_samples=5000", "train.max_iter=300"])
    run = load_run(fit(cfg, out=tmp_path / "mb", draw=False).run_dir)
    ax = plots.run_figures(run)["loss"].axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels[:2] == ["training loss (the batch's)", "expected loss (theory)"]
    assert np.allclose(ax.lines[1].get_ydata(), run.metrics["expected_loss"])
    floor = run.summary["theory"]["minibatch"]["noise_floor"]
    floor_line = ax.lines[labels.index(f"noise floor +{floor:.3g}")]
    assert floor_line.get_ydata()[0] == pytest.approx(run.summary["closed_form"]["loss"] + floor)


def test_contour_figure_path_and_markers(lesson_run: Path) -> None:
    run = load_run(lesson_run)
    ax = plots.run_figures(run)["contour"].axes[0]
    labels = [line.get_label() for line in ax.lines]
    for label in ("descent path", "start", "end", "optimum θ*", "true θ"):
        assert label in labels
    path = ax.lines[labels.index("descent path")]
    assert np.allclose(path.get_xdata(), run.metrics["w_0"])
    assert np.allclose(path.get_ydata(), run.metrics["b"])
    star = ax.lines[labels.index("optimum θ*")]
    assert star.get_xdata()[0] == pytest.approx(run.summary["analysis"]["theta_star"][0])
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 < run.metrics["w_0"].min() and run.metrics["w_0"].max() < x1
    assert y0 < run.metrics["b"].min() and run.metrics["b"].max() < y1
    assert ax.get_xlabel() == "w" and ax.get_ylabel() == "b"


def test_fit_figure(lesson_run: Path) -> None:
    run = load_run(lesson_run)
    ax = plots.run_figures(run)["fit"].axes[0]
    points = ax.collections[0].get_offsets()
    assert len(points) == 100
    learned = ax.lines[0]
    w, b = run.summary["final"]["w"][0], run.summary["final"]["b"]
    xs, ys = learned.get_xdata(), learned.get_ydata()
    assert np.allclose(ys, w * xs + b)


def test_a_standardised_run_draws_each_figure_in_one_set_of_units(tmp_path: Path) -> None:
    """fit.png drew the data on standardised x with the true line y = 3x in the data's units,
    and contour.png put the true θ at (3, 0) on the standardised (w, b) plane, far from θ*.
    Now the fit figure is in the data's units throughout (the lesson's x = 0…9.9), the
    contours in the units trained in, with θ_true mapped there (next to θ*)."""
    run = load_run(fit(load_config(None, ["data.standardize=true"]), out=tmp_path / "r").run_dir)
    summary = run.summary
    drawn = plots.run_figures(run)
    ax = drawn["fit"].axes[0]
    points = ax.collections[0].get_offsets()
    assert points[:, 0].min() == 0.0 and points[:, 0].max() == pytest.approx(9.9)
    learned, true = ax.lines[0], ax.lines[1]
    original = summary["final_original"]
    xs = learned.get_xdata()
    assert np.allclose(learned.get_ydata(), original["w"][0] * xs + original["b"])
    assert np.allclose(true.get_ydata(), 3.0 * true.get_xdata())
    ax = drawn["contour"].axes[0]
    labels = [line.get_label() for line in ax.lines]
    star = ax.lines[labels.index("optimum θ*")].get_xydata()[0]
    mark = ax.lines[labels.index("true θ")].get_xydata()[0]
    units = summary["standardization"]
    mean, scale, centre = units["mean"][0], units["scale"][0], units["target_mean"]
    assert mark == pytest.approx([3.0 * scale, 3.0 * mean - centre])
    assert np.hypot(*(mark - star)) < 0.1 * np.hypot(*star)  # the noise's distance, not 9
    assert star[1] == pytest.approx(0.0, abs=1e-9)  # the centred target's bias
    # the path runs along w alone: b is widened to show the (round, κ = 1) level sets
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert y1 - y0 >= 0.4 * (x1 - x0)


def test_a_standardised_run_of_an_older_lrtrain_keeps_its_own_units() -> None:
    """Before 0.5 a standardised run kept its sample on standardised x and the raw y, and
    recorded no target_mean: its fit lines are drawn in those units, the truth mapped there."""
    old = {
        "final": {"w": [1.5], "b": 14.0},
        "final_original": {"w": [0.5], "b": 12.0},
        "true": {"w": [3.0], "b": 0.0},
        "standardization": {"mean": [5.0], "scale": [2.0], "condition_number_before": 9.0},
    }
    assert figures._fit_lines(old) == ((1.5, 14.0), (6.0, 15.0))
    new = {**old, "standardization": {**old["standardization"], "target_mean": 15.0}}
    assert figures._fit_lines(new) == ((0.5, 12.0), (3.0, 0.0))


def test_diverged_contour_is_clipped_with_an_arrow(tmp_path: Path) -> None:
    run = fit(
        load_config(None, ["device=cpu", "optimizer.lr=0.031", "train.max_iter=300"]),
        out=tmp_path / "d",
    )
    ax = plots.run_figures(load_run(run.run_dir))["contour"].axes[0]
    assert any(t.get_text().startswith("diverges") for t in ax.texts)
    x0, x1 = ax.get_xlim()
    assert x1 - x0 < 100  # framed on the interesting region, not the blown-up tail


def test_multivariate_contour_uses_eigen_plane(tmp_path: Path) -> None:
    run = fit(load_config("multivariate", ["device=cpu", "train.max_iter=50"]), out=tmp_path / "m")
    assert not (run.run_dir / "plots" / "fit.png").exists()
    ax = plots.run_figures(load_run(run.run_dir))["contour"].axes[0]
    assert "eigenvector" in ax.get_xlabel()


def test_figures_accept_an_axes() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    out = plots.loss_figure(np.arange(3), np.array([3.0, 2.0, 1.0]), 0.5, ax=ax)
    assert out is fig and ax.lines


def test_redraw_without_torch(lesson_run: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lrtrain.api import redraw\n"
        f"paths = redraw({str(lesson_run)!r}, 'svg')\n"
        "assert len(paths) == 4, paths\n"
        "assert not any(m.startswith('lrtrain.engine.train') for m in sys.modules)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert (lesson_run / "plots" / "contour.svg").read_text().lstrip().startswith("<?xml")


def test_compare_figure_axes_and_data(lesson_run: Path, tmp_path: Path) -> None:
    other = fit(load_config(None, ["device=cpu", "optimizer.lr=auto"]), out=tmp_path / "b")
    runs = [load_run(lesson_run), load_run(other.run_dir)]
    fig = plots.compare_figure(runs)
    paths_ax, gap_ax = fig.axes[:2]
    labels = [line.get_label() for line in gap_ax.get_lines()]
    assert labels == [figures._compare_label(r) for r in reversed(runs)]
    assert "(auto)" in labels[0] and "lr 0.001" in labels[1]
    assert gap_ax.get_yscale() == "log" and gap_ax.get_ylabel() == "(loss − loss*) / loss*"
    drawn = [ln for ln in paths_ax.get_lines() if ln.get_label() in labels]
    assert len(drawn) == 2
    np.testing.assert_allclose(drawn[1].get_xdata(), runs[0].theta[:, 0])


def test_blitted_frames_are_the_fully_drawn_frames(lesson_run: Path) -> None:
    """--animate draws the background once and only the moving artists per frame: each frame
    equals the same figure drawn in full (up to the stacking of a few pixels where a moving
    artist crosses the legend)."""
    run = load_run(lesson_run)
    frames = animation.descent_frames(run, 8)
    assert len(frames) == 8
    for k in (0, 4, 7):
        scene = animation.DescentScene(run, 8)
        scene.fig.set_dpi(72)
        for artist in scene.moving:
            artist.set_animated(False)
        scene.fig.canvas.draw()
        scene.fig.set_layout_engine("none")
        scene.update(k)
        scene.fig.canvas.draw()
        full = np.asarray(scene.fig.canvas.buffer_rgba())[..., :3]
        assert full.shape == frames[k].shape
        assert (full != frames[k]).any(axis=2).mean() < 1e-3


def test_contours_of_several_features_say_they_are_a_slice(tmp_path: Path) -> None:
    run = fit(load_config("multivariate", ["device=cpu", "train.max_iter=20"]), out=tmp_path / "m")
    figure = plots.run_figures(load_run(run.run_dir))["contour"]
    assert contours.SLICE_NOTE in figure.axes[0].get_title()
    one = plots.run_figures(load_run(fit(load_config(None, ["device=cpu", "train.max_iter=5"]),
                                         out=tmp_path / "l").run_dir))["contour"]  # fmt: skip
    assert contours.SLICE_NOTE not in one.axes[0].get_title()
