"""A network's runs from the command line (cli.network_report and the workflows behind it):
``fit -c mlp`` and ``sweep-lr -c mlp`` report what was measured, write the run directory in the
usual format, redraw, resume, log; bad settings get one message each and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from lrtrain.cli.app import app
from lrtrain.config.schema import load_config

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "80"})


def test_fit_mlp_reports_what_was_measured(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = invoke("fit", "-c", "mlp", "train.max_iter=300", "--out", str(out))
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    starts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert starts == ["lrtrain", "model", "loss", "status", "gradient", "sharpness", "noise",
                      "verdict", "why", "rule", "theory", "run"]  # fmt: skip
    assert "relu MLP 1 → 3 → 4 → 2 → 1 · 35 parameters · init torch" in done.output
    assert "no closed form" in done.output and "predicted at θ₀" in done.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["parameters"] == 35 and "closed_form" not in summary
    assert summary["exact_theory"].startswith("none:")
    sharp = summary["sharpness"]
    assert sharp["steps"][:3] == [0, 10, 20] and sharp["steps"][-1] == 300
    assert sharp["thresholds"][0] == pytest.approx(2 / 0.1)
    assert sharp["ratios"][0] == pytest.approx(sharp["values"][0] / 20)
    assert summary["verdict"]["observed"] in {"monotone", "oscillating", "edge of stability",
                                              "catapult", "diverged"}  # fmt: skip
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss,grad_norm,lr,expected_loss,sharpness,sharpness_threshold"
    metrics = np.genfromtxt(out / "metrics.csv", delimiter=",", names=True)
    measured = np.isfinite(metrics["sharpness"])
    assert list(metrics["step"][measured]) == sharp["steps"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["fit.png", "loss.png",
                                                                 "surface.png"]  # fmt: skip
    arrays = np.load(out / "arrays.npz")
    assert arrays["surface_loss"].shape == (41, 41)
    # the middle of the slice is the end point itself: its loss is the run's final loss
    assert arrays["surface_loss"][20, 20] == pytest.approx(summary["final"]["loss"], rel=1e-5)
    assert all(len(line) <= 80 for line in lines)


def test_model_pt_loads_into_the_network_a_user_writes(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "run"
    assert invoke("fit", "-c", "mlp", "train.max_iter=50", "--out", str(out)).exit_code == 0
    state = torch.load(out / "model.pt", weights_only=True)
    from lrtrain.engine.network import MLP

    net = MLP(1, [3, 4, 2], "relu")
    net.load_state_dict(state)
    sequential = net.sequential()
    x = torch.linspace(-1, 1, 5).unsqueeze(1)
    assert torch.allclose(sequential(x)[:, 0], net(x)[:, 0], atol=1e-6)


def test_sweep_mlp_gives_every_rate_its_verdict_and_reason(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = invoke("sweep-lr", "-c", "mlp", "train.max_iter=200", "--out", str(out))
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    assert [row["lr"] for row in summary["results"]] == [0.01, 0.03, 0.1, 0.3, 0.6]
    for row in summary["results"]:
        assert f"lr {row['lr']:.4g}: {row['rule'][:20]}" in done.output.replace("\n", " ")
        assert row["threshold"] == pytest.approx(2 / row["lr"])
    assert "no closed form" in done.output and "one batched run" in done.output
    # every rate started from the same θ₀: the same λ_max there
    starts = {round(row["initial_sharpness"], 4) for row in summary["results"]}
    assert len(starts) == 1
    assert summary["stable_lr_at_start"] == pytest.approx(2 / summary["initial_sharpness"])
    csv = (out / "sweep.csv").read_text().splitlines()[0]
    assert csv.endswith("initial_sharpness,final_sharpness,threshold,rule,differs")
    assert (out / "plots" / "sweep_loss.png").is_file()
    assert all(len(line) <= 80 for line in done.output.splitlines())


def test_plot_redraws_and_resume_goes_on(tmp_path: Path) -> None:
    from lrtrain import api

    out = tmp_path / "run"
    calls = iter(range(10**6))
    config = load_config("mlp", ["train.max_iter=120"])
    run = api.fit(config, out=out, should_stop=lambda: next(calls) >= 50, draw=False)
    assert run.summary["status"] == "interrupted"
    assert invoke("plot", str(out)).exit_code == 0
    assert (out / "plots" / "loss.png").is_file()
    resumed = invoke("fit", "--resume", str(out))
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads((out / "summary.json").read_text())
    whole = api.fit(config, out=tmp_path / "whole", draw=False)
    assert summary["final"] == whole.summary["final"]
    assert summary["sharpness"]["values"] == whole.summary["sharpness"]["values"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.hidden=[]"], "model: kind 'mlp' needs at least one hidden layer"),
        (["model.activation=swish"], "model.activation: must be one of relu, tanh, gelu, sigmoid"),
        (["model.init=zeros"], "init 'zeros' gives every unit of a layer the same weights"),
        (["optimizer.lr=auto"], "model.kind: mlp: lr and momentum: auto come from the linear"),
        (["train.target_gap=1e-3"], "train.target_gap counts to the closed form's loss"),
        (["model.hidden=[3000,3000]"], "keeps a Lanczos basis of up to 100 vectors"),
        (["train.sharpness_every=-1"], "train.sharpness_every: must be ≥ 0"),
        (
            ["train.batch_size=8", "--replicas", "64", "model.hidden=[100,100]"],
            "log less often (train.log_every=",
        ),
    ],
)
def test_bad_settings_get_one_clear_message(tmp_path: Path, overrides, message) -> None:
    done = invoke("fit", "-c", "mlp", *overrides, f"output.root={tmp_path}")
    assert done.exit_code == 2, done.output
    assert message in " ".join(done.output.split())
    assert "Traceback" not in done.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_linear_fit_measures_its_sharpness_on_request(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = invoke("fit", "train.sharpness_every=20", "train.dtype=float64", "--out", str(out))
    assert done.exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    lam_max = summary["analysis"]["hessian_eigenvalues"][-1]
    assert np.allclose(summary["sharpness"]["values"], lam_max, rtol=1e-9)
    assert "sharpness λ_max 67.174 at θ₀ → 67.174 at the end" in done.output


def test_the_report_functions_dispatch_on_the_summary() -> None:
    from lrtrain.cli.network_report import is_network

    assert is_network({"model": {"kind": "mlp"}}) and not is_network({"analysis": {}})
    console = Console(width=80, record=True)
    console.print("x")
    assert console.export_text().strip() == "x"


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid"])
def test_predict_runs_the_saved_network_without_torch(tmp_path: Path, activation: str) -> None:
    import torch

    from lrtrain import api
    from lrtrain.engine.network import MLP

    config = load_config("mlp", ["train.max_iter=30", f"model.activation={activation}",
                                 "data.x={kind: normal, mean: 2.0, std: 3.0}"])  # fmt: skip
    run = api.fit(config, out=tmp_path / "run", draw=False)
    rows = tmp_path / "new.csv"
    rows.write_text("x_0,y\n-1.5,0.2\n0.0,1.0\n4.25,-2.0\n")
    text = api.predict(run.run_dir, rows)
    got = np.array([float(line.split(",")[-1]) for line in text.splitlines()[1:]])
    # the same network in torch, on the rows standardised as it was trained
    net = MLP(1, [3, 4, 2], activation, dtype=torch.float64)
    with torch.no_grad():
        net.flat.copy_(run.result.final_theta[:1])
    x = torch.tensor([[-1.5], [0.0], [4.25]], dtype=torch.float64)
    units = run.dataset.standardization
    assert units is not None
    # … and its output moved back to the target's units (it trained on y − ȳ)
    want = net((x - units.mean[0]) / units.scale[0])[:, 0].detach().numpy() + units.target_mean
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_find_lr_on_a_network_scores_against_what_it_measured(tmp_path: Path) -> None:
    out = tmp_path / "find"
    done = invoke("find-lr", "-c", "mlp", "train.max_iter=300", "--out", str(out))
    assert done.exit_code == 0, done.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["optimal_lr"] is None and "measured" in summary["critical_from"]
    # the critical rate at θ₀ is 2/λ_max(θ₀), the λ_max a fit of the same network measures
    fit = invoke("fit", "-c", "mlp", "train.max_iter=1", "--out", str(tmp_path / "fit"))
    assert fit.exit_code == 0
    start = json.loads((tmp_path / "fit" / "summary.json").read_text())["sharpness"]["initial"]
    assert summary["critical_lr"] == pytest.approx(2 / start, rel=1e-5)
    assert summary["fastest_lr"] is not None and summary["fastest_steps"] > 0
    for name, lr in summary["suggestions"].items():
        assert summary["ratios"][name]["critical"] == pytest.approx(lr / summary["critical_lr"])
        assert summary["ratios"][name]["optimal"] is None
    assert "×η*" not in done.output and "measured  critical lr at θ₀" in done.output
    assert (out / "plots" / "find_lr.png").is_file()


def test_held_out_rows_and_batch_streams_of_a_network(tmp_path: Path) -> None:
    import torch

    from lrtrain import api
    from lrtrain.engine.network import MLP

    config = load_config("mlp", ["train.max_iter=60", "data.validation_fraction=0.25"])
    run = api.fit(config, out=tmp_path / "held", draw=False)
    held = run.dataset.validation
    assert held is not None and held.x is not None and held.y is not None
    net = MLP(1, [3, 4, 2], "relu", dtype=torch.float64)
    with torch.no_grad():
        net.flat.copy_(run.result.final_theta[:1])
    want = float(torch.mean((net(held.x)[:, 0] - held.y[:, 0]) ** 2))
    summary = run.summary
    assert summary["validation"]["final_loss"] == pytest.approx(want, rel=1e-9)
    assert summary["validation"]["rows"] == len(held.x)
    header = (run.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss,grad_norm,lr,expected_loss,val_loss,sharpness,sharpness_threshold"

    streams = load_config("mlp", ["train.max_iter=40", "train.batch_size=10", "train.replicas=8"])
    run = api.fit(streams, out=tmp_path / "streams", draw=False)
    rows = run.dataset
    finals = []
    for k in range(8):
        with torch.no_grad():
            net.flat.copy_(run.result.final_theta[k : k + 1])
        finals.append(float(torch.mean((net(rows.x.double())[:, 0] - rows.y.double()[:, 0]) ** 2)))
    replicas = run.summary["replicas"]
    assert replicas["count"] == 8
    assert replicas["final_mean_loss"] == pytest.approx(float(np.mean(finals)), rel=1e-9)
    assert (run.run_dir / "replicas.csv").is_file()


def test_json_is_strict_json_with_an_adaptive_optimizer(tmp_path: Path) -> None:
    done = invoke("fit", "-c", "mlp", "optimizer.name=adam", "optimizer.lr=0.01",
                  "train.max_iter=20", "--json", f"output.root={tmp_path}")  # fmt: skip
    assert done.exit_code == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    summary = json.loads(done.output, parse_constant=refuse)
    assert summary["sharpness"]["thresholds"][0] is None
    assert summary["verdict"]["predicted"] is None


def test_the_surface_grid_shrinks_with_the_work_each_point_costs() -> None:
    from lrtrain.workflows.network import surface_points

    lecture = load_config("mlp")
    wide = load_config("catapult")  # one hidden layer of 512
    assert surface_points(lecture, 100) == 41
    assert surface_points(wide, 100) == 41
    assert surface_points(wide, 20_000) == 19  # √(2³² / (20 000 × 512)) = 20.5: odd, below
    assert surface_points(wide, 10**7) == 11  # never fewer
    assert all(surface_points(wide, n) % 2 == 1 for n in (10**3, 10**4, 10**5, 10**6))
