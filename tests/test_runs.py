"""Run directories: every file of the run directory, parseable, atomic, never overwritten."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lrtrain.api import fit
from lrtrain.config.schema import load_config
from lrtrain.errors import RunDirError
from lrtrain.runs.directory import create_run_dir, latest_run, load_run

SUMMARY_KEYS = {
    "status",
    "steps",
    "initial",
    "final",
    "closed_form",
    "true",
    "analysis",
    "device",
    "seed",
    "elapsed_s",
    "steps_per_s",
    "versions",
}
ANALYSIS_KEYS = {
    "hessian_eigenvalues",
    "condition_number",
    "critical_lr",
    "asymptotically_optimal_lr",
    "monotone_lr_limit",
}


def test_fit_writes_every_file(tmp_path: Path) -> None:
    run = fit(load_config(None, ["device=cpu"]), out=tmp_path / "run")
    d = run.run_dir
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "model.pt",
        "checkpoint.pt",
        "plots/loss.png",
        "plots/contour.png",
        "plots/fit.png",
        "arrays.npz",
    ):
        assert (d / name).is_file(), name
    with np.load(d / "arrays.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"eigenvectors"}  # H = V diag(λ) Vᵀ, λ in the summary
        v = arrays["eigenvectors"]
        assert v.dtype == np.float64 and v.T @ v == pytest.approx(np.eye(2), abs=1e-12)
    # each eigenvector column with its eigenvalue: H v = λ v, H as load_run rebuilds it
    lams = json.loads((d / "summary.json").read_text())["analysis"]["hessian_eigenvalues"]
    h = load_run(d).hessian
    assert h == pytest.approx(np.array([[65.67, 9.9], [9.9, 2.0]]))
    assert h @ v == pytest.approx(v * np.array(lams), abs=1e-9)
    summary = json.loads((d / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS and set(summary["analysis"]) >= ANALYSIS_KEYS
    assert summary["status"] == "completed" and summary["steps"] == 100
    assert set(summary["initial"]) == {"loss", "grad"} and set(summary["initial"]["grad"]) == {
        "w",
        "b",
    }
    assert {"loss", "w", "b"} <= set(summary["final"]) and {"loss", "w", "b"} <= set(
        summary["closed_form"]
    )
    assert summary["true"] == {"w": [3.0], "b": 0.0}
    with (d / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "loss", "grad_norm", "lr", "expected_loss", "w_0", "b"]
    assert [int(r["step"]) for r in rows] == list(range(101))
    # full batch: the theory's loss is the loss the model had (float32 training), every step
    for r in rows:
        assert float(r["expected_loss"]) == pytest.approx(float(r["loss"]), rel=2e-6)
    assert float(rows[0]["w_0"]) == 0.0 and float(rows[-1]["w_0"]) == pytest.approx(
        summary["final"]["w"][0]
    )
    assert float(rows[-1]["loss"]) == pytest.approx(summary["final"]["loss"])
    state = torch.load(d / "model.pt", weights_only=True)
    assert set(state) == {"w", "b"} and state["w"].shape == (1, 1)
    ckpt = torch.load(d / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 100 and "state" in ckpt["optimizer"]
    rerun = load_config(str(d / "config.yaml"))
    assert rerun == run.config


def test_rerun_from_saved_config_is_identical(tmp_path: Path) -> None:
    first = fit(
        load_config(None, ["device=cpu", "optimizer.lr=0.01"]), out=tmp_path / "a", draw=False
    )
    again = fit(load_config(str(first.run_dir / "config.yaml")), out=tmp_path / "b", draw=False)
    assert first.summary["final"] == again.summary["final"]


def test_unique_directory_names(tmp_path: Path) -> None:
    dirs = {create_run_dir(tmp_path, "same") for _ in range(5)}
    assert len(dirs) == 5
    names = sorted(p.name for p in dirs)
    assert any(n.endswith("-2") for n in names)


def test_out_refuses_non_empty_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not empty"):
        create_run_dir(tmp_path, "x", out)
    assert (out / "precious.txt").read_text() == "keep me"
    assert create_run_dir(tmp_path, "x", out, overwrite=True) == out


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="cannot create the run directory"):
        create_run_dir(blocker / "sub", "x")


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no such run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="not an lrtrain run"):
        load_run(tmp_path / "empty")
    run = fit(load_config(None, ["device=cpu", "train.max_iter=5"]), out=tmp_path / "r", draw=False)
    (run.run_dir / "metrics.csv").write_text("step,loss\n0,abc\n")
    with pytest.raises(RunDirError, match="corrupt"):
        load_run(run.run_dir)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    summary["format_version"] = 99
    (run.run_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(RunDirError, match="newer lrtrain"):
        load_run(run.run_dir)


def test_latest_run(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no runs"):
        latest_run(tmp_path / "runs")
    a = fit(
        load_config(None, ["device=cpu", "train.max_iter=3", f"output.root={tmp_path}/runs"]),
        draw=False,
    )
    os.utime(a.run_dir / "summary.json", (1, 1))
    b = fit(
        load_config(None, ["device=cpu", "train.max_iter=3", f"output.root={tmp_path}/runs"]),
        draw=False,
    )
    assert latest_run(tmp_path / "runs") == b.run_dir


def test_diverged_run_is_saved_with_finite_metrics(tmp_path: Path) -> None:
    run = fit(
        load_config(None, ["device=cpu", "optimizer.lr=0.1", "train.max_iter=500"]),
        out=tmp_path / "div",
    )
    assert run.summary["status"] == "diverged"
    assert run.summary["verdict"]["observed"] == "diverged"
    metrics = load_run(run.run_dir).metrics
    assert len(metrics["step"]) == run.summary["steps"] + 1
    assert all(map(lambda v: v == v and abs(v) < float("inf"), metrics["loss"]))
    assert yaml.safe_load((run.run_dir / "config.yaml").read_text())["optimizer"]["lr"] == 0.1


# --- wide data and the run-directory format -------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_a_wide_run_keeps_summary_and_csv_small_and_every_reader_works(tmp_path: Path) -> None:
    """300 features: the p × p arrays in arrays.npz, the parameters per step in trajectory.npy,
    summary.json O(p) numbers, metrics.csv the scalars; load_run, plot and predict read them."""
    d = 300
    weights = [round(0.01 * (i % 7 - 3), 2) for i in range(d)]
    over = ["device=cpu", "data.n_samples=600", "data.x={kind: normal, mean: 0.0, std: 1.0}",
            f"data.true_w={weights}", "train.max_iter=12", "optimizer.lr=auto"]  # fmt: skip
    run = fit(load_config(None, over), out=tmp_path / "wide")
    p = d + 1
    summary_bytes = (run.run_dir / "summary.json").stat().st_size
    assert summary_bytes < 300 * p  # O(p): ≤ 1 MB at p = 2 001 (was 117 MB)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert "hessian" not in summary["analysis"] and summary["trajectory"] == "trajectory.npy"
    assert summary["arrays"] == {"file": "arrays.npz", "shapes": {"eigenvectors": [p, p]}}
    with np.load(run.run_dir / "arrays.npz", allow_pickle=False) as arrays:
        assert arrays["eigenvectors"].dtype == np.float32  # beyond 200 parameters: figures only
    header = (run.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,loss,grad_norm,lr,expected_loss"
    loaded = load_run(run.run_dir)
    assert loaded.theta.shape == (13, p)
    assert loaded.theta[-1] == pytest.approx(run.result.final_theta[0].numpy())
    assert loaded.hessian.shape == (p, p) and loaded.eigenvectors is not None
    exact = run.analysis.hessian  # rebuilt from float32 eigenvectors: to float32's rounding
    assert np.abs(loaded.hessian - exact).max() <= 1e-5 * np.abs(exact).max()
    # the fit statistics' table went beside the summary and comes back whole
    assert loaded.summary["statistics"]["coefficients_file"] == "coefficients.csv"
    assert loaded.summary["statistics"]["coefficients"] == run.summary["statistics"]["coefficients"]
    assert (run.run_dir / "plots" / "contour.png").is_file()
    from lrtrain.api import predict

    rows = ["x_" + ",x_".join(map(str, range(d))), ",".join(["0.5"] * d)]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    out = predict(run.run_dir, tmp_path / "in.csv").splitlines()
    expected = 0.5 * sum(summary["final"]["w"]) + summary["final"]["b"]
    assert float(out[1].split(",")[-1]) == pytest.approx(expected, rel=1e-6)


def test_a_format_1_run_still_loads_plots_predicts_and_resumes(tmp_path: Path) -> None:
    """tests/data/run-format-1 was written by lrtrain 0.3 (format 1: the Hessian inside
    summary.json, parameters in metrics.csv)."""
    import shutil

    from lrtrain.api import redraw, resume

    old = Path(shutil.copytree(DATA / "run-format-1", tmp_path / "old"))
    run = load_run(old)
    assert run.summary["format_version"] == 1 and run.eigenvectors is None
    assert run.hessian.shape == (4, 4) and run.theta.shape == (31, 4)
    assert sorted(p.name for p in redraw(old)) == ["contour.png", "loss.png"]
    continued = resume(old, load_config(str(old / "config.yaml"), ["train.max_iter=40"]))
    assert continued.summary["steps"] == 40 and continued.summary["format_version"] == 4
    assert load_run(old).theta.shape == (41, 4) and (old / "arrays.npz").is_file()


def test_a_wide_sweep_keeps_its_parameters_in_trajectories_npy(tmp_path: Path) -> None:
    from lrtrain.api import sweep_lr

    d = 150
    over = ["device=cpu", "data.n_samples=400", "data.x={kind: normal, mean: 0.0, std: 1.0}",
            f"data.true_w={[1.0] * d}", "train.max_iter=6"]  # fmt: skip
    run = sweep_lr(load_config(None, over), [0.01, 0.1, 0.5], out=tmp_path / "s")
    header = (run.run_dir / "trajectories.csv").read_text().splitlines()[0]
    assert header == "lr,step,loss,grad_norm,expected_loss"
    loaded = load_run(run.run_dir)
    assert loaded.theta.shape == (len(loaded.metrics["step"]), d + 1)
    first_rate = loaded.metrics["lr"] == 0.01
    assert loaded.theta[first_rate][-1] == pytest.approx(run.result.final_theta[0].numpy())
    assert (run.run_dir / "plots" / "sweep_contours.png").is_file()


def test_a_long_sweeps_table_is_binary_with_the_csvs_columns(tmp_path: Path) -> None:
    """Beyond output.csv_rows a sweep writes trajectories.npz instead of trajectories.csv: the
    same columns, read back by load_run as the CSV is, and redrawn alike."""
    from lrtrain import api
    from lrtrain.runs.directory import load_run

    lrs = [0.001, 0.01, 0.03]
    text = api.sweep_lr(load_config(None, ["train.max_iter=40"]), lrs=lrs, out=tmp_path / "csv",
                        draw=False)  # fmt: skip
    binary = api.sweep_lr(load_config(None, ["train.max_iter=40", "output.csv_rows=10"]),
                          lrs=lrs, out=tmp_path / "npz", draw=False)  # fmt: skip
    assert (text.run_dir / "trajectories.csv").is_file()
    assert not (binary.run_dir / "trajectories.csv").exists()
    assert (binary.run_dir / "trajectories.npz").is_file()
    a, b = load_run(text.run_dir).metrics, load_run(binary.run_dir).metrics
    assert list(a) == list(b)
    for name in a:  # the CSV holds Python's repr of each float: the same numbers exactly
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    assert api.redraw(binary.run_dir)  # the figures draw from it
    # overwritten as a short sweep: the binary table goes, the CSV is the table again
    again = api.sweep_lr(load_config(None, ["train.max_iter=40"]), lrs=lrs,
                         out=tmp_path / "npz", overwrite=True, draw=False)  # fmt: skip
    assert (again.run_dir / "trajectories.csv").is_file()
    assert not (again.run_dir / "trajectories.npz").exists()


def _same_run(memory, loaded) -> None:  # type: ignore[no-untyped-def]
    """Two RunData hold the same numbers: what a run's figures draw from in memory is what
    `lrtrain plot` reads back from its files."""
    assert (memory.path, memory.kind) == (loaded.path, loaded.kind)
    assert json.dumps(memory.summary, sort_keys=True) == json.dumps(loaded.summary, sort_keys=True)
    assert memory.config == loaded.config
    for name in ("metrics", "arrays", "sample", "replicas", "modes"):
        a, b = getattr(memory, name), getattr(loaded, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert list(a) == list(b), name
            for key in a:
                assert a[key].dtype == b[key].dtype, (name, key)
                assert np.array_equal(a[key], b[key], equal_nan=True), (name, key)
    if memory.trajectory is not None or loaded.trajectory is not None:
        assert np.array_equal(memory.trajectory, loaded.trajectory)


@pytest.mark.parametrize(
    ("kind", "over"),
    [
        ("fit", ["train.replicas=4", "train.batch_size=10", "data.validation_fraction=0.2"]),
        ("fit", ["data.n_samples=300", "data.x={kind: normal, mean: 0.0, std: 1.0}",
                 f"data.true_w={[0.5] * 210}", "train.max_iter=5"]),  # wide: trajectory.npy
        ("fit", ["-c", "mlp", "train.max_iter=20", "train.sharpness_every=10"]),
        ("sweep", ["train.max_iter=30"]),
        ("sweep", ["train.max_iter=30", "output.csv_rows=10"]),  # trajectories.npz
        ("sweep", ["-c", "mlp", "train.max_iter=10"]),
    ],
)  # fmt: skip
def test_figures_draw_from_the_numbers_written_not_from_files_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, over: list[str]
) -> None:
    """save_fit/save_sweep return the run as load_run reads it back, so the process that
    wrote it draws from memory (linear and network runs, wide runs, long sweeps)."""
    from lrtrain import api
    from lrtrain.workflows import fit as fit_workflow
    from lrtrain.workflows import network, sweep_lr

    drawn = []
    for module in (fit_workflow, network, sweep_lr):
        monkeypatch.setattr(module, "draw_run", lambda run, fmt: drawn.append(run) or [])
    name = over[1] if over[:1] == ["-c"] else None
    cfg = load_config(name, [o for o in over if o not in ("-c", name)])
    if kind == "fit":
        run = api.fit(cfg, out=tmp_path / "run")
    else:
        run = api.sweep_lr(cfg, lrs=[0.001, 0.01], out=tmp_path / "run")
    assert len(drawn) == 1
    _same_run(drawn[0], load_run(run.run_dir))
