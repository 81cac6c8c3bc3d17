"""sweep-lr: vectorised = sequential, verdicts, automatic choice, files and figures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import lesson_loop
from typer.testing import CliRunner

from lrtrain.api import sweep_lr
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.config.values import parse_lr_range
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train
from lrtrain.theory.analysis import analyse
from lrtrain.workflows.sweep import auto_lrs

LESSON_LRS = [0.0005, 0.001, 0.005, 0.025, 0.028, 0.03]


@pytest.mark.parametrize(
    "sgd",
    [
        {},
        {"momentum": 0.7},
        {"momentum": 0.7, "nesterov": True},
        {"weight_decay": 0.2},
        {"momentum": 0.5, "weight_decay": 0.1, "nesterov": True},
    ],
)
def test_vectorised_sweep_equals_separate_lesson_loops(sgd: dict) -> None:
    over = [f"optimizer.{k}={str(v).lower()}" for k, v in sgd.items()]
    cfg = load_config(None, ["device=cpu", "train.max_iter=150", *over])
    ds = load_dataset(cfg)
    lrs = [0.0005, 0.003, 0.01, 0.02]
    together = train(ds, cfg, lrs=lrs)
    for k, lr in enumerate(lrs):
        theta, _ = lesson_loop(ds.x, ds.y, 150, lr=lr, **sgd)
        assert torch.allclose(together.final_theta[k], theta, atol=1e-6, rtol=1e-6), (lr, sgd)


def test_lesson_six_verdicts(tmp_path: Path) -> None:
    run = sweep_lr(load_config("lecture", ["device=cpu"]), out=tmp_path / "s")
    verdicts = [r["verdict"] for r in run.summary["results"]]
    assert verdicts == [
        "monotone",
        "monotone",
        "monotone",
        "oscillating",
        "oscillating",
        "diverged",
    ]
    assert [r["predicted_verdict"] for r in run.summary["results"]] == verdicts
    assert not run.all_diverged
    assert run.summary["critical_lr"] == pytest.approx(0.02977, abs=1e-5)
    assert run.summary["recommended_lr"] in LESSON_LRS[:5]


# θ* along H's flattest direction: the loss first falls, then the steep direction's growth wins
FLAT_START = ["data.true_w=[-1.5]", "data.true_b=9.9"]


@pytest.mark.parametrize("extra", [[], FLAT_START])
def test_every_diverged_rate_says_from_which_step(tmp_path: Path, extra: list[str]) -> None:
    # issue 13: lr 0.03 was judged diverged with an empty "diverged at" (no guard stop)
    cfg = load_config("lecture", ["device=cpu", "train.max_iter=300", *extra])
    dataset = load_dataset(cfg)
    run = sweep_lr(cfg, lrs=[0.01, 0.03, 0.0305, 0.2], out=tmp_path / "s", draw=False)
    rows = {r["lr"]: r for r in run.summary["results"]}
    assert rows[0.01]["diverged_at"] is None and rows[0.01]["stopped_at"] is None
    for lr in (0.03, 0.0305, 0.2):
        row = rows[lr]
        assert row["verdict"] == "diverged" and row["diverged_at"] is not None
        # the definition: the first step whose loss is above the initial loss
        losses = lesson_loop(dataset.x, dataset.y, row["diverged_at"] + 1, lr=lr)[1]
        assert losses[row["diverged_at"]] > losses[0]
        assert all(loss <= losses[0] for loss in losses[1 : row["diverged_at"]])
    assert rows[0.2]["stopped_at"] is not None  # the guard stopped it, later than it diverged
    assert rows[0.2]["diverged_at"] < rows[0.2]["stopped_at"]
    if extra:  # growth sets in late, and the guard stops it later still
        assert 50 < rows[0.0305]["diverged_at"] < rows[0.0305]["stopped_at"]
    else:  # grew from the first step, but never reached the guard in 300 steps
        assert rows[0.03]["diverged_at"] == 1 and rows[0.03]["stopped_at"] is None
    text = (tmp_path / "s" / "sweep.csv").read_text().splitlines()
    assert text[0].split(",")[4:] == ["diverged_at", "stopped_at", "steps_to_target"]


def test_diverging_replica_does_not_poison_others(tmp_path: Path) -> None:
    cfg = load_config(None, ["device=cpu", "train.max_iter=400"])
    ds = load_dataset(cfg)
    result = train(ds, cfg, lrs=[0.001, 0.5, 0.02])
    alone = train(ds, cfg, lrs=[0.02])
    assert result.statuses[1] == "diverged" and result.stop_steps[1] < 50
    assert torch.allclose(result.final_theta[2], alone.final_theta[0], atol=1e-6)
    assert bool(torch.isfinite(result.loss[:, [0, 2]]).all())


@pytest.mark.parametrize(
    "extra", [[], ["optimizer.momentum=0.5"], ["optimizer.momentum=0.5", "optimizer.nesterov=true"]]
)
def test_auto_lrs_span_all_three_regimes(extra: list[str]) -> None:
    cfg = load_config(None, ["train.dtype=float64", *extra])
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    predicted = {a.predict(lr) for lr in auto_lrs(a)}
    assert predicted == {"monotone", "oscillating", "diverged"}


@pytest.mark.parametrize("problem", ["lecture", "multivariate"])
def test_predicted_equals_observed_away_from_boundaries(problem: str, tmp_path: Path) -> None:
    cfg = load_config(problem, ["device=cpu", "train.dtype=float64", "train.max_iter=400"])
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    lrs = [
        lr
        for lr in parse_lr_range(f"{a.monotone_lr_limit / 30}:{a.critical_lr * 1.5}:25")
        if min(abs(lr / b - 1) for b in (a.monotone_lr_limit, a.critical_lr)) > 0.01
    ]
    run = sweep_lr(cfg, lrs, out=tmp_path / problem, draw=False)
    for row in run.summary["results"]:
        assert row["verdict"] == row["predicted_verdict"], row


def test_sweep_directory_files(tmp_path: Path) -> None:
    run = sweep_lr(load_config("lecture", ["device=cpu"]), out=tmp_path / "s")
    d = run.run_dir
    with (d / "sweep.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "lr",
        "verdict",
        "predicted_verdict",
        "final_loss",
        "diverged_at",
        "stopped_at",
        "steps_to_target",
    ]
    assert [float(r["lr"]) for r in rows] == LESSON_LRS
    # every rate's rows carry the theory's expected loss: full batch, the loss itself (float32;
    # a diverging rate amplifies float32 rounding, so it is checked to 1e-3)
    with (d / "trajectories.csv").open() as fh:
        steps = list(csv.DictReader(fh))
    assert len(steps) > 100 and all("expected_loss" in r for r in steps)
    diverging = {float(r["lr"]) for r in rows if r["verdict"] == "diverged"}
    for r in steps:
        loss, expected = float(r["loss"]), float(r["expected_loss"])
        rel = 1e-3 if float(r["lr"]) in diverging else 1e-5
        assert expected == pytest.approx(loss, rel=rel), r
    summary = json.loads((d / "summary.json").read_text())
    for key in (
        "critical_lr",
        "asymptotically_optimal_lr",
        "recommended_lr",
        "results",
        "recommendation",
    ):
        assert key in summary
    for name in ("sweep_contours", "sweep_loss", "sweep_summary"):
        assert (d / "plots" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert load_config(str(d / "config.yaml")).sweep.lrs == LESSON_LRS


def test_sweep_figures_axes(tmp_path: Path) -> None:
    from lrtrain.plots.sweep import sweep_figures
    from lrtrain.runs.directory import load_run

    run = sweep_lr(load_config("lecture", ["device=cpu"]), out=tmp_path / "s")
    figs = sweep_figures(load_run(run.run_dir))
    panels = [ax for ax in figs["sweep_contours"].axes if ax.get_visible()]
    assert len(panels) == 6
    assert [p.get_xlim() for p in panels] == [panels[0].get_xlim()] * 6
    assert "diverged" in panels[-1].get_title() and "oscillating" in panels[3].get_title()
    summary_ax = figs["sweep_summary"].axes[0]
    assert summary_ax.get_xscale() == "log"
    vlines = [
        line.get_xdata()[0]
        for line in summary_ax.lines
        if line.get_linestyle() != "None"
        and len(line.get_xdata()) == 2
        and line.get_xdata()[0] == line.get_xdata()[1]
    ]
    assert pytest.approx(run.summary["critical_lr"]) in vlines
    loss_ax = figs["sweep_loss"].axes[0]
    assert loss_ax.get_yscale() == "log"
    # the optimum is named in the title: no legend box for a diverging curve to end under
    assert loss_ax.get_legend() is None
    assert f"dashed: the optimum {run.summary['closed_form']['loss']:.6g}" in loss_ax.get_title()


def test_sweep_redraw_without_torch(tmp_path: Path) -> None:
    run = sweep_lr(
        load_config("lecture", ["device=cpu", "train.max_iter=30"]), out=tmp_path / "s", draw=False
    )
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lrtrain.api import redraw\n"
        f"print(len(redraw({str(run.run_dir)!r}, 'svg')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "4", out.stderr


def test_minibatch_sweep_labels_full_batch_prediction(tmp_path: Path) -> None:
    run = sweep_lr(
        load_config("minibatch", ["device=cpu", "data.n_samples=2000", "train.max_iter=200"]),
        [0.001, 0.01],
        out=tmp_path / "mb",
    )
    assert run.summary["full_batch_prediction"] is False


def test_minibatch_sweep_predicts_from_the_mean_square_critical_lr(tmp_path: Path) -> None:
    """Batches of 1 on the lesson: the mean-square critical lr (0.01666) is what separates the
    predicted verdicts — 0.028 is below the full-batch limit (0.02977) yet diverges — and the
    observed verdicts agree."""
    cfg = load_config(None, ["device=cpu", "train.batch_size=1", "train.sampling=replacement",
                             "train.max_iter=2000", "output.plots=[loss]"])  # fmt: skip
    run = sweep_lr(cfg, [0.008, 0.028], out=tmp_path / "b1", draw=False)
    summary = run.summary
    assert summary["minibatch_critical_lr"] == pytest.approx(0.016661, rel=1e-4)
    rows = summary["results"]
    assert [r["predicted_verdict"] for r in rows] == ["converges", "diverged"]
    assert rows[0]["verdict"] != "diverged" and rows[1]["verdict"] == "diverged"
    # a batch's loss cannot say when a gap is reached: the steps are the expected loss's, and
    # at B = 1 its noise floor lies above the default 1e-3 gap
    assert [r["steps_to_target"] for r in rows] == [None, None]
    assert "noise floor" in summary["recommendation"]
    from lrtrain.plots.sweep import sweep_figures
    from lrtrain.runs.directory import load_run

    ax = sweep_figures(load_run(run.run_dir))["sweep_summary"].axes[0]
    marked = [line.get_xdata()[0] for line in ax.lines if "mean-square" in line.get_label()]
    assert marked == [pytest.approx(summary["minibatch_critical_lr"])]


def test_minibatch_sweep_counts_steps_on_the_expected_loss(tmp_path: Path) -> None:
    from lrtrain.data import stats as st
    from lrtrain.data.load import load_dataset
    from lrtrain.theory import minibatch as mb

    over = ["device=cpu", "train.batch_size=16", "train.sampling=replacement",
            "train.max_iter=300", "train.target_gap=0.05", "output.plots=[]"]  # fmt: skip
    run = sweep_lr(load_config(None, over), [0.005, 0.015], out=tmp_path / "b16")
    ds = load_dataset(load_config(None, over))
    exact = ds.answer()
    moments = mb.row_moments(ds.chunks(st.CHUNK_ROWS), exact.theta_star)
    for row in run.summary["results"]:
        curve = mb.expected_losses(moments, exact.loss_star, exact.theta_star,
                                   torch.zeros(2, dtype=torch.float64), mb.Rule(row["lr"]), 16,
                                   range(301)).expected_loss  # fmt: skip
        gaps = [(v - exact.loss_star) / exact.loss_star for v in curve]  # relative to loss*
        first = next((t for t, g in enumerate(gaps) if g <= 0.05), None)
        assert row["steps_to_target"] == first
    # the larger rate's noise floor lies above the 5% gap: its expected loss never gets there
    assert mb.noise_floor(moments, mb.Rule(0.015), 16) / exact.loss_star > 0.05
    assert run.summary["recommended_lr"] == 0.005


runner = CliRunner()


def test_cli_sweep_table_and_exit_codes(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "sweep-lr",
            "--lrs",
            ",".join(map(str, LESSON_LRS)),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "a"),
            "output.plots=[]",  # the table and exit codes: no figures (test_sweep_figures_axes)
        ],
    )
    assert result.exit_code == 0, result.output
    for fragment in (
        "lrtrain sweep-lr",
        "oscillating",
        "diverged",
        "recommended",
        "critical lr 0.029774",
    ):
        assert fragment in result.output
    result = runner.invoke(
        app,
        [
            "sweep-lr",
            "--lrs",
            "0.1,0.2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "b"),
            "train.max_iter=300",
            "output.plots=[]",
        ],
    )
    assert result.exit_code == 3 and "every learning rate diverged" in result.output
    result = runner.invoke(app, ["sweep-lr", "--lrs", "1", "--lr-range", "1:2:3"])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(app, ["sweep-lr", "--lr-range", "oops"])
    assert result.exit_code == 2 and "LO:HI:N" in result.output
    result = runner.invoke(app, ["sweep-lr", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output


def test_recommendation_explains_itself_against_eta_star_and_heavy_ball() -> None:
    from lrtrain.api import sweep_lr

    run = sweep_lr(load_config(None, ["device=cpu", "train.max_iter=300"]), out="sw", draw=False)
    text = run.summary["recommendation"]
    assert "η* = 2/(λ_min+λ_max) = 0.02956" in text
    assert "heavy-ball momentum with lr: auto and momentum: auto (lr 0.05049" in text
    assert "reaches the gap in 421 steps" in text and "in 64 steps" in text


def test_a_sweep_draws_what_output_plots_asks_for(tmp_path: Path) -> None:
    """output.plots chooses a sweep's figures as a fit's: loss (the curves and the final gap per
    rate), contour (every rate's path), modes; [] none (issue 33: sweep-lr drew all four)."""
    from lrtrain.plots.sweep import sweep_figures
    from lrtrain.runs.directory import load_run

    for plots, names in [("[]", set()), ("[loss]", {"sweep_loss", "sweep_summary"}),
                         ("[contour, modes]", {"sweep_contours", "sweep_modes"})]:  # fmt: skip
        cfg = load_config(None, ["device=cpu", "train.max_iter=20", f"output.plots={plots}"])
        run = sweep_lr(cfg, [0.001, 0.01], out=tmp_path / plots, draw=False)
        assert set(sweep_figures(load_run(run.run_dir))) == names
