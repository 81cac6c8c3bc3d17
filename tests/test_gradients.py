"""Every gradient path gives the lesson's autograd numbers: the streamed pass of mini-batches
on the same rows, and the Gram path from the statistics over whole runs, for every optimizer
setting and kind of data; and where the float32 rows are too coarse (κ ≥ 1e8) the statistics'
float64 gradient is measured to be the more accurate one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train import _setup

import lrtrain.engine.gradients as gradients
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.engine.batches import Rows
from lrtrain.engine.model import MyLinearRegressionModel
from lrtrain.engine.train import train
from lrtrain.workflows.export import write_synthetic_csv

DATA = Path(__file__).parent / "data"


def test_streamed_pass_equals_autograd_on_the_same_rows(monkeypatch) -> None:
    """The chunked, hand-derived pass (mini-batch steps) gives autograd's loss and gradient
    (float64, 1e-12), for replicas near and far from the optimum, the last chunk short."""
    _, ds = _setup(
        "data.n_samples=20000", "data.x={kind: uniform, low: -2, high: 3}",
        "data.true_w=[1.5, -2.0, 0.5]", "train.dtype=float64",
    )  # fmt: skip
    monkeypatch.setattr(gradients, "CACHE_ROWS", 4096 * 4)  # 5 chunks, the last short
    rows = Rows(ds.x, ds.y, ds.n)
    results = []
    for path in (gradients.autograd_forward_backward, gradients.streamed_forward_backward):
        model = MyLinearRegressionModel(3, replicas=4, dtype=torch.float64)
        with torch.no_grad():
            model.w.copy_(torch.tensor([[1.5, -2, 0.5], [0, 0, 0], [10, 10, -10], [1e3, 0, 1]]))
            model.b.copy_(torch.tensor([0.0, 1.0, -3.0, 1e3]))
        loss, grad = path(model, gradients.theta_of(model), rows)
        results.append((loss, grad))
    for plain, streamed in zip(*results, strict=True):
        assert torch.allclose(streamed, plain, rtol=1e-12, atol=1e-12)


SETTINGS = {
    "plain": [],
    "momentum": ["optimizer.momentum=0.9"],
    "nesterov": ["optimizer.momentum=0.9", "optimizer.nesterov=true"],
    "weight decay": ["optimizer.momentum=0.5", "optimizer.weight_decay=0.01"],
}
DATASETS = {
    "synthetic": ["data.x={kind: uniform, low: -2, high: 3}", "data.true_w=[1.5, -2.0, 0.5]"],
    "standardised": [
        "data.x={kind: normal, mean: 50.0, std: 4.0}",
        "data.true_w=[1.5, -2.0, 0.5]",
        "data.standardize=true",
    ],
    "csv": [],  # the synthetic rows written to a file and read back
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("data", DATASETS)
def test_gram_steps_equal_autograd_steps(setting: str, data: str, tmp_path: Path) -> None:
    """1 000 steps of four learning rates (one diverging) from the statistics equal the
    lesson's autograd steps over the rows: float64, 1e-10."""
    over = ["device=cpu", "data.n_samples=1000", "train.dtype=float64", "train.max_iter=1000",
            *SETTINGS[setting], *DATASETS[data]]  # fmt: skip
    if data == "csv":
        synthetic = load_config(None, [*over, *DATASETS["synthetic"]])
        write_synthetic_csv(synthetic.data, synthetic.seed, tmp_path / "rows.csv")
        over += ["data.source=csv", f"data.path={tmp_path / 'rows.csv'}", "data.target=y"]
    runs = {}
    for path in ("autograd", "gram"):
        cfg = load_config(None, [*over, f"train.gradient={path}"])
        ds = load_dataset(cfg)
        lrs = [0.001, 0.05, 0.2, 3.0] if data != "standardised" else [0.01, 0.2, 0.5, 3.0]
        runs[path] = train(ds, cfg, lrs=lrs)
    plain, gram = runs["autograd"], runs["gram"]
    assert gram.gradient == "gram" and plain.gradient == "autograd"
    assert gram.statuses == plain.statuses and "diverged" in plain.statuses
    assert gram.stop_steps == plain.stop_steps
    # A component that is 0 in exact arithmetic (a centred target's bias) is rounding noise
    # in both: compared against the size of θ, not its own
    scale = plain.final_theta.abs().amax(dim=-1, keepdim=True).clamp_min(1.0)
    assert torch.allclose(gram.final_theta / scale, plain.final_theta / scale, rtol=1e-10,
                          atol=1e-12)  # fmt: skip
    finite = torch.isfinite(plain.loss)
    assert torch.allclose(gram.loss[finite], plain.loss[finite], rtol=1e-10, atol=0)
    paths = plain.theta.nan_to_num()
    scale = paths.abs().amax(dim=-1, keepdim=True).clamp_min(1.0)
    assert torch.allclose(gram.theta.nan_to_num() / scale, paths / scale, rtol=1e-10, atol=1e-12)


def test_auto_takes_the_statistics_for_many_rows_and_the_lesson_loop_for_the_lesson() -> None:
    cfg, ds = _setup()
    assert train(ds, cfg).gradient == "autograd"
    cfg, ds = _setup("data.n_samples=70000", "train.max_iter=5")
    assert train(ds, cfg).gradient == "gram"
    cfg, ds = _setup("data.n_samples=70000", "train.max_iter=5", "train.batch_size=64")
    assert train(ds, cfg).gradient == "mini-batch (streamed pass)"


def test_the_statistics_gradient_beats_a_float32_read_on_ill_conditioned_data() -> None:
    """Longley (κ of H ≈ 1e16 raw): at the float32 parameters nearest θ*, the exact gradient
    is that of the float64 statistics (computed here independently, from the float64 rows);
    the Gram path returns it (in float64; rounded to float32 once, as it becomes .grad), while
    autograd over the float32 copy of the rows is off by orders of magnitude more (measured:
    ~1e-7 against ~1e-1 relative, after that rounding)."""
    cfg = load_config(None, ["device=cpu", "data.source=csv", f"data.path={DATA / 'longley.csv'}",
                             "train.dtype=float32"])  # fmt: skip
    ds = load_dataset(cfg)
    assert ds.exact is not None
    theta = ds.exact.theta_star.to(torch.float32)
    rows64 = torch.tensor(
        [[float(v) for v in line.split(",")] for line in
         (DATA / "longley.csv").read_text().splitlines()[1:]], dtype=torch.float64,
    )  # fmt: skip
    x64 = torch.cat([rows64[:, 1:], torch.ones(len(rows64), 1, dtype=torch.float64)], 1)
    residual = x64 @ theta.double() - rows64[:, 0]
    exact = 2.0 * x64.T @ residual / len(rows64)  # the gradient of the data as given
    errors = {}
    for path in ("autograd", "gram"):
        model = MyLinearRegressionModel(ds.d)
        with torch.no_grad():
            model.w.copy_(theta[:-1].unsqueeze(0))
            model.b.copy_(theta[-1:])
        step = (
            gradients.GramGradient(ds.exact, torch.device("cpu")) if path == "gram"
            else gradients.autograd_forward_backward
        )  # fmt: skip
        _, grad = step(model, gradients.theta_of(model), Rows(ds.x, ds.y, ds.n))
        grad = grad[0].float().double()  # what the optimizer receives: float32
        errors[path] = float((grad - exact).norm() / exact.norm())
    assert errors["gram"] < 1e-5
    assert errors["autograd"] > 100 * errors["gram"], errors


def test_only_full_batch_gram_steps_of_the_linear_model_leave_the_rows_unread() -> None:
    from lrtrain.engine.gradients import GRAM_MIN_ROWS, reads_rows

    many, few = GRAM_MIN_ROWS, GRAM_MIN_ROWS - 1
    assert not reads_rows(load_config(None, []), many)
    assert reads_rows(load_config(None, []), few)  # auto: the lesson's autograd loop
    assert not reads_rows(load_config(None, ["train.gradient=gram"]), few)
    assert reads_rows(load_config(None, ["train.gradient=autograd"]), many)
    assert reads_rows(load_config(None, ["train.batch_size=64"]), many)
    assert not reads_rows(load_config(None, [f"train.batch_size={many}"]), many)  # all rows
    assert reads_rows(load_config(None, ["model.kind=mlp"]), many)
