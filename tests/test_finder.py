"""The learning-rate finders as published (workflows.finder) on fixed curves whose answers are
worked out by hand, and `lrtrain find-lr` on the lesson against the exact thresholds."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.runs.directory import load_run
from lrtrain.workflows import finder


def test_the_ramps_as_published() -> None:
    """fastai: batch i at 1e-7·(1e8)^(i/100); Lightning: 1e-8, then 1e-8·(1e8)^((i+1)/100)."""
    fast, light = finder.FASTAI.rates(), finder.LIGHTNING.rates()
    assert fast[0] == 1e-7 and fast[50] == pytest.approx(1e-7 * 1e4) and fast[-1] < 10
    assert fast[-1] == pytest.approx(1e-7 * 1e8 ** (99 / 100))
    assert light[0] == 1e-8 and light[1] == pytest.approx(1e-8 * 1e8 ** (2 / 100))
    assert light[-1] == pytest.approx(1.0)


def test_the_smoothing_and_the_stop() -> None:
    """A constant loss stays itself through either debiasing; a loss that jumps 10× stops
    each finder after that batch (4 × the best exceeded), the jump recorded."""
    flat = np.full(30, 2.0)
    assert finder.recorded(finder.FASTAI, flat) == pytest.approx(flat)
    light = finder.recorded(finder.LIGHTNING, flat)  # divides by 1 − β^(i+2): not quite debiased
    assert light[0] == pytest.approx(2.0 * 0.02 / (1 - 0.98**2))
    jump = np.concatenate([np.full(20, 1.0), np.full(10, 1e6)])
    for test in (finder.FASTAI, finder.LIGHTNING):
        kept = finder.recorded(test, jump)
        assert len(kept) == 21 and kept[-1] > 4 * kept[:-1].min()


def test_fastai_suggestions_on_a_fixed_curve() -> None:
    """A V-shaped loss over 100 rates: the trimmed curve is rows 10 … 94; its minimum sits at
    row 60 (minimum → lrs[60]/10); it falls fastest per log-rate where its slope is steepest
    (row 39, the drop of 3 there); the valley is the longest decreasing run 10 … 60."""
    lrs = 10.0 ** np.linspace(-6, 0, 100)
    loss = np.concatenate([np.linspace(10, 5, 40), np.linspace(2, 1, 21), np.linspace(1.5, 9, 39)])
    loss[39] = 5.0  # then 2.0 at row 40: the one big drop
    got = finder.fastai_suggestions(lrs, loss)
    assert got["fastai_minimum"] == pytest.approx(lrs[60] / 10)
    assert got["fastai_steep"] == pytest.approx(lrs[39])
    # valley: the run from row 10 to row 60 (51 points: lds 51, start = 60 − 51 + 1 … as coded)
    sections = (50 - (-1)) / 3  # max_end − max_start with max_start = max_end − lds[max_end]
    index = -1 + int(sections) + int(sections / 2) + 10
    assert got["fastai_valley"] == pytest.approx(lrs[index])
    assert lrs[10] < got["fastai_slide"] <= lrs[94]


def test_lightnings_suggestion_is_the_steepest_fall_per_unit_rate() -> None:
    """Lightning's rule differentiates with respect to the rates (non-uniform central
    differences, numpy's np.gradient(loss, lrs) as the independent reference): on a ramp whose
    loss falls by the same amount per batch, the fall per unit rate is steepest at the smallest
    rate (row 10), although a per-index slope would pick the one larger drop at row 50."""
    lrs = 10.0 ** np.linspace(-8, 0, 100)
    loss = np.linspace(5, 1, 100)
    loss[50:] -= 0.5  # one big drop per batch at row 50: where the old, per-index rule looked
    got = finder.lightning_suggestion(lrs, loss)["lightning"]
    slopes = np.gradient(loss[10:-1], lrs[10:-1])
    assert got == lrs[int(np.argmin(slopes)) + 10] == lrs[10]
    assert int(np.argmin(np.gradient(loss[10:-1]))) + 10 in (49, 50)  # the rule it replaced


def test_lightnings_suggestion_skips_non_finite_losses_and_keeps_the_rows_rate() -> None:
    """Non-finite losses leave the differences (as Lightning's mask does) without shifting
    which row's rate is returned: the steepest fall per unit rate is found after them."""
    lrs = np.linspace(0.1, 1.0, 40)  # evenly spaced: per unit rate is per index here
    loss = np.linspace(4.0, 1.0, 40)
    loss[25] = loss[24] - 2.0  # the steepest fall, between rows 24 and 26
    loss[15] = np.nan
    loss[16] = np.inf
    got = finder.lightning_suggestion(lrs, loss)["lightning"]
    kept = [i for i in range(10, 39) if np.isfinite(loss[i])]
    slopes = np.gradient(loss[kept], lrs[kept])
    assert got == lrs[kept[int(np.argmin(slopes))]]
    assert got in (lrs[24], lrs[25])
    assert finder.lightning_suggestion(lrs[:12], loss[:12]) == {}  # fewer than two points


@pytest.mark.parametrize("batch", [None, 8], ids=["full batch", "batches of 8"])
def test_lightnings_own_lr_find_gives_the_same_curve_and_suggestion(
    batch: int | None, tmp_path: Path
) -> None:
    """PyTorch Lightning's own ``Tuner.lr_find`` (the pinned 2.6.6) on the lesson's model, data
    and SGD — zero start, float32, min 1e-8, max 1, 100 steps, early stop at 4× — against
    ``lrtrain find-lr``'s Lightning test: the same smoothed curve (1e-6) where it stopped, and
    the same suggestion, exactly. With mini-batches Lightning's loader is handed lrtrain's batch
    order (each step's rows from :class:`~lrtrain.engine.batches.Batches`)."""
    import logging
    import warnings

    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.tuner import Tuner
    from torch.utils.data import DataLoader

    from lrtrain.api import find_lr
    from lrtrain.engine.model import MyLinearRegressionModel

    cfg, rows, order = _lesson_in_lrtrains_order(batch, tmp_path, 100)

    class Lesson(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = MyLinearRegressionModel(1)  # zeros, as the lesson starts
            self.lr = cfg.optimizer.lr_value

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            x, y = batch
            return ((self.model(x) - y) ** 2).mean()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.lr)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(rows, batch_sampler=order)

    logging.getLogger("lightning").setLevel(logging.ERROR)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, accelerator="cpu")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on data-loader workers
        theirs = Tuner(trainer).lr_find(Lesson(), min_lr=1e-8, max_lr=1.0, num_training=100,
                                        early_stop_threshold=4.0)  # fmt: skip
    assert theirs is not None
    ours = find_lr(cfg, 1, tmp_path / "ours", draw=False)
    curve = next(c for c in ours.curves if c.finder == "lightning")
    assert len(curve.smoothed) == len(theirs.results["loss"])
    assert curve.smoothed == pytest.approx(theirs.results["loss"], rel=1e-6)
    assert curve.lrs[: len(curve.smoothed)] == pytest.approx(theirs.results["lr"], rel=1e-12)
    assert ours.summary["suggestions"]["lightning"] == theirs.suggestion()


@pytest.mark.parametrize("batch", [None, 8], ids=["full batch", "batches of 8"])
def test_fastais_own_lr_find_gives_the_same_curve_and_suggestions(
    batch: int | None, tmp_path: Path
) -> None:
    """fastai's own ``Learner.lr_find`` (the pinned 2.8.12: start 1e-7, end 10, 100 steps, stop
    at 4×) with torch's SGD on the lesson's model and data — zero start, float32 — against
    ``lrtrain find-lr``'s fastai test: the same rates and smoothed curve and the same four
    suggestions, exactly (fastai's float32 arithmetic, reproduced). With mini-batches fastai's
    loader is handed lrtrain's batch order."""
    import warnings
    from functools import partial

    import torch
    from torch.utils.data import DataLoader

    with warnings.catch_warnings():  # fastai's imports warn of torch.jit's and pandas' futures
        warnings.simplefilter("ignore")
        from fastai.basics import DataLoaders, Learner, OptimWrapper
        from fastai.callback.schedule import minimum, slide, steep, valley

    from lrtrain.api import find_lr
    from lrtrain.engine.model import MyLinearRegressionModel

    cfg, rows, order = _lesson_in_lrtrains_order(batch, tmp_path, 101)
    loaders = DataLoaders(DataLoader(rows, batch_sampler=order),
                          DataLoader(rows, batch_size=len(rows)), device="cpu")  # fmt: skip
    learn = Learner(loaders, MyLinearRegressionModel(1), lr=cfg.optimizer.lr_value,
                    loss_func=lambda p, t: ((p - t) ** 2).mean(),
                    opt_func=partial(OptimWrapper, opt=torch.optim.SGD))  # fmt: skip
    with warnings.catch_warnings(), learn.no_bar(), learn.no_logging():
        warnings.simplefilter("ignore")
        theirs = learn.lr_find(start_lr=1e-7, end_lr=10, num_it=100, show_plot=False,
                               suggest_funcs=(minimum, steep, valley, slide))  # fmt: skip
    ours = find_lr(cfg, 1, tmp_path / "ours", draw=False)
    curve = next(c for c in ours.curves if c.finder == "fastai")
    recorded = [float(v) for v in learn.recorder.losses]
    assert list(curve.smoothed) == recorded
    assert list(curve.lrs[: len(recorded)]) == learn.recorder.lrs
    suggested = ours.summary["suggestions"]
    for name in ("minimum", "steep", "valley", "slide"):
        assert suggested[f"fastai_{name}"] == getattr(theirs, name), name


@pytest.mark.parametrize("batch", [None, 8], ids=["full batch", "batches of 8"])
def test_torch_lr_finders_own_range_test_gives_the_same_curve_and_suggestion(
    batch: int | None, tmp_path: Path
) -> None:
    """torch-lr-finder's own ``LRFinder.range_test`` (the pinned 0.2.2: from the optimizer's
    1e-7 to 10 in 100 batches, smoothing 0.05, stop at 5×) and its ``plot(suggest_lr=True)``,
    with torch's SGD on the lesson's model and data, against ``lrtrain find-lr``'s
    torch-lr-finder test: the same rates, curve and suggestion, exactly (its loader handed
    lrtrain's batch order with mini-batches)."""
    import warnings

    import torch
    from matplotlib.figure import Figure
    from torch.utils.data import DataLoader
    from torch_lr_finder import LRFinder

    from lrtrain.api import find_lr
    from lrtrain.engine.model import MyLinearRegressionModel

    cfg, rows, order = _lesson_in_lrtrains_order(batch, tmp_path, 100)
    model = MyLinearRegressionModel(1)  # zeros, as the lesson starts
    optimizer = torch.optim.SGD(model.parameters(), lr=finder.TORCH_LR_FINDER.start)
    theirs = LRFinder(model, optimizer, lambda p, t: ((p - t) ** 2).mean(), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its scheduler's get_lr() outside step()
        theirs.range_test(DataLoader(rows, batch_sampler=order), end_lr=10, num_iter=100)
        _, suggested = theirs.plot(suggest_lr=True, ax=Figure().add_subplot())
    ours = find_lr(cfg, 1, tmp_path / "ours", draw=False)
    curve = next(c for c in ours.curves if c.finder == "torch-lr-finder")
    assert list(curve.smoothed) == theirs.history["loss"]
    assert list(curve.lrs[: len(curve.smoothed)]) == theirs.history["lr"]
    assert ours.summary["suggestions"]["torch_lr_finder"] == suggested


@pytest.fixture(scope="module")
def lesson_finder(tmp_path_factory):
    out = tmp_path_factory.mktemp("find") / "f"
    result = CliRunner().invoke(app, ["find-lr", "--device", "cpu", "--repeats", "3",
                                      "--out", str(out), "train.dtype=float64",
                                      "train.target_gap=0.01"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


def test_find_lr_on_the_lesson_scores_every_suggestion(lesson_finder) -> None:
    out, text = lesson_finder
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["suggestions"]) == {"fastai_valley", "fastai_slide", "fastai_minimum",
                                           "fastai_steep", "lightning",
                                           "torch_lr_finder"}  # fmt: skip
    assert summary["critical_lr"] == pytest.approx(0.029774, rel=1e-4)
    assert summary["optimal_lr"] == pytest.approx(0.029555, rel=1e-4)
    for name, lr in summary["suggestions"].items():
        ratios = summary["ratios"][name]
        assert ratios["critical"] == pytest.approx(lr / summary["critical_lr"])
        assert ratios["fastest"] == pytest.approx(lr / summary["fastest_lr"])
        spread = summary["spread"][name]
        assert len(spread["values"]) == 3 and spread["min"] <= lr <= spread["max"]
    # the sweep's fastest rate to a 1% gap: checked against the exact full-batch dynamics
    from lrtrain.theory.dynamics import predicted_steps

    run = load_run(out)
    a_cfg = load_config(None, ["device=cpu", "train.dtype=float64"])
    from lrtrain.data.load import load_dataset
    from lrtrain.theory.analysis import analyse_dataset

    analysis = analyse_dataset(load_dataset(a_cfg), a_cfg.optimizer)
    steps = predicted_steps(analysis, [0.0, 0.0], summary["fastest_lr"], 0.0, False, 0.01, 100)
    assert steps == summary["fastest_steps"]
    assert "lrtrain find-lr — lecture" in text and "critical lr 0.029774" in text
    table = run.metrics
    assert set(np.unique(table["finder"])) == {0.0, 1.0, 2.0}  # fastai, Lightning, torch-lr-finder
    assert math.isclose(table["lr"][0], 1e-7)


def test_the_figure_marks_suggestions_and_thresholds(lesson_finder) -> None:
    from lrtrain.plots.minibatch import find_lr_figures

    out, _ = lesson_finder
    ax = find_lr_figures(load_run(out))["find_lr"].axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert any(label.startswith("critical lr 2/λ_max") for label in labels)
    assert any(label.startswith("fastai_valley") for label in labels)
    assert (out / "plots" / "find_lr.png").is_file()


def test_repeats_are_one_vectorised_run_over_noise_batches_and_ranges() -> None:
    """Replica k of a K-repeat test is the test on its own draw of the data (seed + k) and its
    range moved by shifts(K)[k]: equal to that run made alone (to rounding, 1e-8, as it blows
    up); replica 0 is the published test on the config's data."""
    from lrtrain.api import prepare
    from lrtrain.data.load import load_dataset
    from lrtrain.engine.train import train_range_test
    from lrtrain.workflows.find_lr import range_tests, shifts

    cfg, ds, _, _ = prepare(load_config(None, ["device=cpu", "train.dtype=float64"]))
    many = range_tests(finder.FASTAI, ds, cfg, 3)
    alone = range_tests(finder.FASTAI, ds, cfg, 1)[0]
    assert np.array_equal(many[0].lrs, alone.lrs)
    assert many[0].losses == pytest.approx(alone.losses, rel=1e-12)
    moved = cfg.model_copy(update={"seed": cfg.seed + 2})
    steps = moved.train.model_copy(update={"max_iter": 100, "log_every": 1})
    one = train_range_test(load_dataset(moved), moved.model_copy(update={"train": steps}),
                           [shifts(3)[2]], finder.FASTAI.rates(), None)  # fmt: skip
    losses = one.replica_history(0)["loss"].numpy()[: len(many[2].losses)]
    assert many[2].losses == pytest.approx(losses, rel=1e-8)
    assert many[2].lrs[0] == pytest.approx(1e-7 * shifts(3)[2])
    # mini-batches: every replica its own batch order, so the curves differ
    cfg, ds, _, _ = prepare(load_config(None, ["device=cpu", "train.batch_size=4"]))
    curves = range_tests(finder.LIGHTNING, ds, cfg, 2)
    assert not np.array_equal(curves[0].losses[:20], curves[1].losses[:20])


def test_find_lr_without_figures_reports_and_exits_cleanly(tmp_path: Path) -> None:
    """output.plots=[]: no drawer, nothing logged — the report, and exit 0 (it failed at the end
    with an AttributeError: the run had no `logged` to list)."""
    result = CliRunner().invoke(app, ["find-lr", "--device", "cpu", "--out", str(tmp_path / "f"),
                                      "output.plots=[]"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lightning" in result.output and "exact" in result.output


def _lesson_in_lrtrains_order(
    batch: int | None, tmp_path: Path, steps: int
) -> tuple[Any, Any, list[list[int]]]:
    """The lesson's config (batches of ``batch``, None: full), its rows as a TensorDataset and
    the rows of each of ``steps`` steps in lrtrain's order: what a library's loader is handed
    so that its range test sees the batches lrtrain's does."""
    import torch
    from torch.utils.data import TensorDataset

    from lrtrain.data.load import load_dataset
    from lrtrain.engine.batches import Batches

    over = ["device=cpu", f"output.root={tmp_path}", f"train.batch_size={batch or 'null'}"]
    cfg = load_config("lecture", over)
    dataset = load_dataset(cfg)
    rows = TensorDataset(dataset.x.contiguous(), dataset.y)
    if batch is None:
        return cfg, rows, [list(range(len(rows)))] * steps  # the full batch, every step
    draws = Batches(dataset.n, batch, cfg.seed, torch.device("cpu"), sampling="epoch")
    return cfg, rows, [draws.indices(step).tolist() for step in range(steps)]


def test_the_report_fits_80_columns_with_every_column(tmp_path: Path, monkeypatch) -> None:
    """Mini-batches, repeats and a fastest rate: all seven columns, in 80 columns, nothing cut
    (issue 33 found three-line cells and `suggesti…`)."""
    from lrtrain.cli import running

    monkeypatch.setattr(running.console, "width", 80)
    result = CliRunner().invoke(app, ["find-lr", "--device", "cpu", "--repeats", "2",
                                      "--out", str(tmp_path / "f"), "train.batch_size=8",
                                      "train.target_gap=0.01", "output.plots=[]"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if "suggestion" in line)
    assert header.split() == ["suggestion", "lr", "×2/λmax", "×η*", "×ms", "×fastest", "min–max"]
    table = lines[lines.index(header) : lines.index(header) + 8]
    assert all(len(line) <= 80 for line in lines) and not any("…" in line for line in table)
    assert any(line.split()[:3] == ["torch", "lr", "finder"] for line in table)


def test_the_run_directory_reads_back_every_finder_the_command_runs() -> None:
    """finder.csv names each test; load_run numbers them by runs.directory.FINDERS, which the
    figure colours by: the two lists must name the same tests, in the same order."""
    from lrtrain.runs.directory import FINDERS

    assert tuple(test.name for test in finder.TESTS) == FINDERS


def test_a_loss_of_zero_throughout_is_drawn_on_a_linear_axis() -> None:
    """y ≡ 0: every rate's loss is 0, which a log axis cannot show (matplotlib raised at
    savefig, a traceback out of `lrtrain find-lr`)."""
    import io

    from lrtrain.plots.minibatch import find_lr_figure

    lrs = np.geomspace(1e-8, 10, 50)
    table = {"finder": np.zeros(50), "repeat": np.zeros(50), "lr": lrs, "smoothed": np.zeros(50)}
    summary = {"suggestions": {"fastai_valley": 1e-6}, "critical_lr": 0.03, "optimal_lr": 0.029,
               "name": "zero"}  # fmt: skip
    fig = find_lr_figure(summary, table)
    fig.savefig(io.BytesIO(), format="png")
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")
    assert len(ax.lines[0].get_ydata()) == 50  # the zeros are drawn, not dropped
    table["smoothed"] = np.linspace(1.0, 2.0, 50)
    assert find_lr_figure(summary, table).axes[0].get_yscale() == "log"
