"""--logger tensorboard | mlflow: what a run wrote, read back with each tool's own reader."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrtrain import api
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.workflows.loggers import flatten, log_run

tensorboard = pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")


def _metrics(run_dir: Path, name: str = "metrics.csv") -> list[dict[str, str]]:
    with open(run_dir / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lesson, 30 steps, logged to both stores."""
    out = tmp_path_factory.mktemp("fit") / "run"
    config = load_config(None, ["device=cpu", "train.max_iter=30", "output.plots=[loss]",
                                "output.loggers=[tensorboard,mlflow]"])  # fmt: skip
    run = api.fit(config, out=out)
    assert [logged.logger for logged in run.logged] == ["tensorboard", "mlflow"]
    return out


def _accumulator(logdir: Path):  # type: ignore[no-untyped-def]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_scalars_equal_the_metrics_file(fit_run: Path) -> None:
    events = _accumulator(fit_run / "tensorboard")
    rows = _metrics(fit_run)
    for column, tag in [("loss", "loss"), ("grad_norm", "grad_norm"), ("lr", "lr"),
                        ("expected_loss", "expected_loss"), ("w_0", "parameters/w_0"),
                        ("b", "parameters/b")]:  # fmt: skip
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [int(r["step"]) for r in rows]
        assert [e.value for e in logged] == pytest.approx(
            [float(r[column]) for r in rows], rel=1e-6
        )  # TensorBoard keeps float32
    assert "figures/loss" in events.Tags()["images"]


def test_tensorboard_hparams_hold_the_config_and_final_metrics(fit_run: Path) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = _accumulator(fit_run / "tensorboard")
    content = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.001)
    assert hparams["data.n_samples"].number_value == 100
    assert hparams["name"].string_value == "lecture"
    summary = json.loads((fit_run / "summary.json").read_text())
    final = events.Scalars("final/loss")
    assert final[0].value == pytest.approx(summary["final"]["loss"], rel=1e-6)


def test_mlflow_run_holds_params_metrics_and_figures(fit_run: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{fit_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("lecture")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.kind = 'fit'")
    assert run.info.status == "FINISHED"
    assert run.data.params["optimizer.lr"] == "0.001"
    assert run.data.params["train.max_iter"] == "30"
    assert run.data.tags["verdict"] == "monotone"
    rows = _metrics(fit_run)
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [
        (int(r["step"]), pytest.approx(float(r["loss"]), rel=1e-12)) for r in rows
    ]
    assert len(client.get_metric_history(run.info.run_id, "parameters.w_0")) == len(rows)
    summary = json.loads((fit_run / "summary.json").read_text())
    assert run.data.metrics["final.loss"] == pytest.approx(summary["final"]["loss"], rel=1e-12)
    figures = [a.path for a in client.list_artifacts(run.info.run_id, "figures")]
    assert figures == ["figures/loss.png"]
    local = Path(
        client.download_artifacts(run.info.run_id, "figures/loss.png", str(fit_run.parent))
    )
    assert local.read_bytes() == (fit_run / "plots" / "loss.png").read_bytes()


def test_a_sweep_logs_one_child_per_learning_rate(tmp_path: Path, fit_run: Path) -> None:
    """Into the fit's MLflow store, given as a tracking URI (output.mlflow_uri)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{fit_run / 'mlflow.db'}"
    config = load_config("lecture", ["device=cpu", "train.max_iter=20", "sweep.lrs=[0.001,0.03]",
                                     "output.loggers=[tensorboard,mlflow]"])  # fmt: skip
    run = api.sweep_lr(config, out=tmp_path / "sweep", draw=False)
    log_run(run.run_dir, ["tensorboard", "mlflow"], uri)
    rows = _metrics(run.run_dir, "trajectories.csv")
    for lr in ("0.001", "0.03"):
        events = _accumulator(run.run_dir / "tensorboard" / f"lr={lr}")
        mine = [r for r in rows if float(r["lr"]) == float(lr)]
        assert [e.value for e in events.Scalars("loss")] == pytest.approx(
            [float(r["loss"]) for r in mine], rel=1e-6
        )
    assert not (run.run_dir / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("lecture")
    assert experiment is not None
    found = client.search_runs([experiment.experiment_id], "tags.kind != 'fit'")
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    children = {r.data.params["lr"]: r for r in found if r is not parent}
    assert set(children) == {"0.001", "0.03"}
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children.values())
    assert children["0.03"].data.tags["verdict"] == "diverged"
    assert parent.data.params["sweep.lrs"] == "[0.001, 0.03]"


def test_flatten_gives_dotted_scalar_keys() -> None:
    flat = flatten({"a": {"b": 1, "c": [1, 2], "d": None}, "e": "x"})
    assert flat == {"a.b": 1, "a.c": "[1, 2]", "a.d": "None", "e": "x"}


def test_cli_logger_reports_where_it_wrote() -> None:
    result = CliRunner().invoke(app, ["fit", "device=cpu", "train.max_iter=5", "output.plots=[]",
                                      "--logger", "tensorboard", "--out", "r"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "logged    tensorboard: r/tensorboard" in result.output


def test_an_unknown_logger_is_a_config_error() -> None:
    result = CliRunner().invoke(app, ["fit", "--logger", "wandb", "--out", "r"])
    assert result.exit_code == 2
    assert "output.loggers" in result.output and "tensorboard" in result.output
    assert not Path("r").exists()


@pytest.mark.parametrize(
    ("logger", "module", "extra"),
    [("tensorboard", "tensorboard", "lrtrain[tensorboard]"),
     ("mlflow", "sqlalchemy", "lrtrain[mlflow]")],
)  # fmt: skip
def test_a_missing_extra_is_named(logger: str, module: str, extra: str, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = CliRunner().invoke(app, ["fit", "device=cpu", "train.max_iter=3", "output.plots=[]",
                                      "--logger", logger, "--out", "r"])  # fmt: skip
    assert result.exit_code == 2
    assert f"--logger {logger}: pip install '{extra}'" in result.output
    assert not Path("r").exists()  # refused before anything is trained or written
