"""Rows handed over in memory (lrtrain.data.arrays, ``data=`` in the Python API): numpy, pandas
and torch give the answer the same rows give from a CSV (1e-12, float64), every command of the
API takes them, and every bad input is one DataError that says what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import lrtrain
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.errors import DataError

DIABETES = Path(__file__).parents[1] / "src" / "lrtrain" / "config" / "bundled" / "data"
CSV = DIABETES / "diabetes.csv"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.read_csv(CSV)


def _config(root: Path, *over: str):  # the bundled real data set, in float64, no figures
    fixed = ["train.dtype=float64", "output.plots=[]", f"output.root={root}", "train.max_iter=300"]
    return load_config("diabetes", [*fixed, *over])


@pytest.fixture(scope="module")
def from_csv(tmp_path_factory: pytest.TempPathFactory) -> lrtrain.FitRun:
    return lrtrain.fit(_config(tmp_path_factory.mktemp("csv")), draw=False)


@pytest.mark.parametrize("kind", ["numpy", "pandas frame", "pandas pair", "torch", "lists"])
def test_arrays_fit_as_the_same_rows_from_a_csv(
    kind: str, frame: pd.DataFrame, from_csv: lrtrain.FitRun, tmp_path: Path
) -> None:
    x, y = frame.drop(columns="progression"), frame["progression"]
    data = {
        "numpy": (x.to_numpy(), y.to_numpy()),
        "pandas frame": frame,
        "pandas pair": (x, y),
        "torch": (torch.tensor(x.to_numpy(), dtype=torch.float64), torch.tensor(y.to_numpy())),
        "lists": (x.to_numpy().tolist(), y.to_numpy().tolist()),
    }[kind]
    run = lrtrain.fit(_config(tmp_path), draw=False, data=data)
    assert run.config.data.source == "arrays"
    for ours, theirs in [
        (run.analysis.theta_star, from_csv.analysis.theta_star),
        (run.result.final_theta[0].tolist(), from_csv.result.final_theta[0].tolist()),
        (run.result.final_loss, from_csv.result.final_loss),
        (run.analysis.eigenvalues, from_csv.analysis.eigenvalues),
    ]:
        assert np.asarray(ours) == pytest.approx(np.asarray(theirs), rel=1e-12, abs=1e-12)
    named = kind.startswith("pandas")
    expected = list(x.columns) if named else [f"x_{i}" for i in range(x.shape[1])]
    assert run.summary["data"]["features"] == expected
    assert run.summary["data"]["target"] == "progression"  # the config's data.target


def test_data_features_choose_a_frames_columns_and_a_one_dimensional_x_is_one_feature(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    run = lrtrain.fit(_config(tmp_path, "data.features=[bmi,bp]"), draw=False, data=frame)
    assert run.summary["data"]["features"] == ["bmi", "bp"]
    xs = np.arange(10.0)
    lesson = load_config(None, ["train.dtype=float64", "output.plots=[]",
                                f"output.root={tmp_path}"])  # fmt: skip
    one = lrtrain.fit(lesson, draw=False, data=(xs, 3 * xs + 1))
    assert one.analysis.theta_star == pytest.approx([3.0, 1.0], rel=1e-12)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((np.ones((4, 2)), np.ones(3)), "X has 4 rows and y has 3"),
        ((np.array([[1.0, np.nan], [2.0, 3.0]]), np.ones(2)), "X row 0, column 'x_1' is NaN"),
        ((np.ones((3, 1)), np.array([1.0, np.inf, 2.0])), "y row 1, column 'progression' is inf"),
        ((np.ones((1, 2)), np.ones(1)), "1 row(s); a regression needs at least 2"),
        ((np.ones((3, 2, 2)), np.ones(3)), "X has 3 dimensions"),
        ((np.ones((3, 2)), np.ones((3, 2))), "y has shape (3, 2)"),
        ((np.ones((3, 0)), np.ones(3)), "X has no feature columns"),
        ((["a", "b"], [1.0, 2.0]), "X is not numeric"),
        ((np.ones(3), np.ones(3), np.ones(3)), "3 items; give (X, y)"),
        (np.ones((3, 2)), "no column names to find the target in"),
        ("frame without the target", "no column 'progression' (data.target); columns are: age"),
    ],
)
def test_bad_input_is_one_clear_message(
    data: object, message: str, frame: pd.DataFrame, tmp_path: Path
) -> None:
    if isinstance(data, str):
        data = frame.drop(columns="progression")
    with pytest.raises(DataError) as caught:
        lrtrain.fit(_config(tmp_path), draw=False, data=data)
    assert message in str(caught.value)
    assert str(caught.value).startswith("data")
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_degenerate_rows_get_an_answer_or_a_message_that_says_why(tmp_path: Path) -> None:
    """Rows a user can hand over that break naive arithmetic: values whose squares underflow
    (their spread reads as zero: not "constant"), a truly constant column, and y all zeros
    (loss* = 0 and the initial loss 0: no gap to relate, not a division by zero)."""
    gen = np.random.default_rng(4)
    x = gen.standard_normal((200, 2))
    config = _config(tmp_path, "data.standardize=true")
    with pytest.raises(DataError, match=r"x_0, x_1 are below 1.5e-154 in size: their squares"):
        lrtrain.fit(config, draw=False, data=(x * 1e-200, x @ [1.0, 2.0]))
    with pytest.raises(DataError, match=r"x_1 are constant and cannot be standardised"):
        lrtrain.fit(config, draw=False, data=(np.c_[x[:, 0], np.ones(200)], x[:, 0]))
    run = lrtrain.fit(_config(tmp_path, "train.target_gap=1e-6"), draw=False,
                      data=(x, np.zeros(200)))  # fmt: skip
    s = run.summary
    assert s["final"]["w"] == [0.0, 0.0] and s["final"]["b"] == 0.0
    assert s["optimality_gap"] == {"absolute": 0.0, "relative": None}
    assert s["theory"]["observed_steps"] == 0


def test_the_target_listed_among_the_features_is_refused(frame: pd.DataFrame, tmp_path: Path):
    with pytest.raises(DataError, match=r"also listed in data\.features"):
        lrtrain.fit(_config(tmp_path, "data.features=[bmi,progression]"), draw=False, data=frame)


def test_a_saved_arrays_run_needs_its_rows_again(tmp_path: Path) -> None:
    """config.yaml says data.source: arrays: rerunning it without the rows is one message (exit
    2 from the CLI); resuming it with them equals the uninterrupted run."""
    xs = np.linspace(0.0, 9.9, 100)
    ys = 3 * xs + np.sin(7 * xs)  # a fixed, noisy-looking target
    over = ["train.dtype=float64", "output.plots=[]", f"output.root={tmp_path}"]
    short = lrtrain.fit(load_config(None, [*over, "train.max_iter=40"]), out=tmp_path / "r",
                        draw=False, data=(xs, ys))  # fmt: skip
    saved = short.run_dir / "config.yaml"
    with pytest.raises(DataError, match=r"data\.source: arrays"):
        lrtrain.fit(load_config(str(saved)), draw=False)
    result = CliRunner().invoke(app, ["fit", "-c", str(saved)])
    assert result.exit_code == 2 and "data.source: arrays" in result.output
    longer = load_config(str(saved), ["train.max_iter=80"])
    resumed = lrtrain.resume(short.run_dir, longer, draw=False, data=(xs, ys))
    whole = lrtrain.fit(load_config(None, [*over, "train.max_iter=80"]), draw=False,
                        data=(xs, ys))  # fmt: skip
    assert torch.equal(resumed.result.final_theta, whole.result.final_theta)


def test_every_command_of_the_api_takes_the_rows(frame: pd.DataFrame, tmp_path: Path) -> None:
    """sweep_lr, find_lr, explore and batch_map on a DataFrame give what they give on the same
    rows from the CSV."""
    cfg = _config(tmp_path, "train.max_iter=60")
    lrs = [0.01, 0.1, 0.3]
    ours, theirs = (lrtrain.sweep_lr(cfg, lrs, draw=False, data=d) for d in (frame, None))
    assert [r["final_loss"] for r in ours.summary["results"]] == pytest.approx(
        [r["final_loss"] for r in theirs.summary["results"]], rel=1e-12
    )
    found = [lrtrain.find_lr(cfg, 1, tmp_path / f"f{i}", draw=False, data=d)
             for i, d in enumerate((frame, None))]  # fmt: skip
    assert found[0].summary["suggestions"] == found[1].summary["suggestions"]
    pages = [lrtrain.explore(cfg, tmp_path / f"p{i}.html", data=d)
             for i, d in enumerate((frame, None))]  # fmt: skip
    assert pages[0].data["eigenvalues"] == pytest.approx(pages[1].data["eigenvalues"], rel=1e-12)
    assert pages[0].data["parameters"] == pages[1].data["parameters"]
    lesson = load_config(None, ["output.plots=[]", f"output.root={tmp_path}",
                                "train.max_iter=50", "train.sampling=replacement"])  # fmt: skip
    xs = np.linspace(0.0, 9.9, 100)
    mapped = lrtrain.api.batch_map(lesson, [4, None], [0.001, 0.01], draw=False,
                                   data=(xs, 3 * xs))  # fmt: skip
    assert mapped.config.data.source == "arrays" and len(mapped.summary["sizes"]) == 2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_tensors_on_a_gpu_fit_as_on_the_cpu(frame: pd.DataFrame, tmp_path: Path) -> None:
    x = torch.tensor(frame.drop(columns="progression").to_numpy())
    y = torch.tensor(frame["progression"].to_numpy())
    cfg = _config(tmp_path, "device=cpu")
    on_gpu = lrtrain.fit(cfg, draw=False, data=(x.cuda(), y.cuda()))
    on_cpu = lrtrain.fit(cfg, draw=False, data=(x, y))
    assert torch.equal(on_gpu.result.final_theta, on_cpu.result.final_theta)


def test_rows_are_read_without_a_copy_and_the_data_set_keeps_its_own(tmp_path: Path) -> None:
    """float64 rows are read in place (the only copy is the training dtype's, which the data set
    owns: changing the caller's array afterwards changes nothing of the run)."""
    from lrtrain.data.arrays import table_of

    xs = np.linspace(0.0, 9.9, 100)
    x, y = xs.reshape(-1, 1).copy(), 3 * xs + 1
    cfg = load_config(None, ["train.dtype=float64", "output.plots=[]", f"output.root={tmp_path}"])
    table = table_of((x, y), cfg.data)
    assert table.x.data_ptr() == x.ctypes.data  # read in place
    run = lrtrain.fit(cfg, draw=False, data=(x, y))
    kept = run.dataset.x.clone()
    x[:] = -1.0
    assert torch.equal(run.dataset.x, kept)
    assert run.dataset.x.data_ptr() != x.ctypes.data


def test_rows_the_steps_do_not_read_are_lent_not_copied(monkeypatch, tmp_path: Path) -> None:
    """Full-batch Gram steps read only the statistics: the data set lends the caller's float64
    rows (no training copy) and the run is the one a held copy gives, number for number."""
    from lrtrain.engine import gradients

    gen = np.random.default_rng(3)
    x = gen.standard_normal((70_000, 3)) * [1.0, 5.0, 20.0] + 4.0
    y = x @ [0.5, -1.0, 0.25] + 2.0 + gen.standard_normal(70_000)
    over = ["output.plots=[]", "optimizer.lr=auto", "train.target_gap=1e-6", "train.max_iter=2000"]
    for standardize in ("true", "false"):
        cfg = load_config(None, [*over, f"data.standardize={standardize}",
                                 f"output.root={tmp_path / standardize}"])  # fmt: skip
        lent = lrtrain.fit(cfg, draw=False, data=(x, y))
        assert lent.dataset.stream is not None and lent.dataset.x.numel() == 0
        monkeypatch.setattr(gradients, "reads_rows", lambda config, rows: True)
        held = lrtrain.fit(cfg, draw=False, data=(x, y))
        monkeypatch.undo()
        assert held.dataset.stream is None and held.dataset.x.shape == (70_000, 3)
        for key in ("steps", "final", "optimality_gap", "closed_form"):
            assert lent.summary[key] == held.summary[key]
        lent_rows = torch.cat([c for c, _ in lent.dataset.chunks(8192)])
        assert torch.equal(lent_rows, held.dataset.x)  # the same rows, as trained


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rows_the_pass_reads_are_checked_finite_by_it(bad: float, tmp_path: Path) -> None:
    """Rows that are lent are checked finite by the statistics pass that reads them (its peaks):
    the one clear message of a small table, naming the cell — and for y too."""
    gen = np.random.default_rng(5)
    x, y = gen.standard_normal((70_000, 2)), gen.standard_normal(70_000)
    cfg = load_config(None, ["output.plots=[]", f"output.root={tmp_path}"])
    x[65_432, 1] = bad
    kind = "NaN" if np.isnan(bad) else "infinite"
    with pytest.raises(DataError, match=f"X row 65432, column 'x_1' is {kind}"):
        lrtrain.fit(cfg, draw=False, data=(x, y))
    x[65_432, 1] = 0.0
    y[3] = bad
    with pytest.raises(DataError, match=f"y row 3, column 'y' is {kind}"):
        lrtrain.fit(cfg, draw=False, data=(x, y))
