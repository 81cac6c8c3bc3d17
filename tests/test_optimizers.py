"""The other torch.optim optimizers: Adam against its formulas written out by hand, every
optimizer's vectorised replicas against separate plain PyTorch loops, resume, and the config's
refusal of keys an optimizer does not take."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_train import assert_resume_is_exact, lesson_loop

from lrtrain.api import fit
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train
from lrtrain.errors import ConfigError


def _setup(*overrides: str):
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", *overrides])
    return cfg, load_dataset(cfg)


def test_adam_gives_the_iterates_of_its_formulas() -> None:
    """Adam on the lesson in float64, written out: m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g²,
    θ −= η·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε) — torch.optim.Adam's documented algorithm."""
    cfg, ds = _setup("optimizer.name=adam", "optimizer.lr=0.1", "train.max_iter=300",
                     "optimizer.betas=[0.8, 0.99]", "optimizer.eps=1e-6")  # fmt: skip
    result = train(ds, cfg)
    x, y = ds.x.double().reshape(-1), ds.y.double().reshape(-1)
    theta, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    b1, b2, eps, lr = 0.8, 0.99, 1e-6, 0.1
    path = [theta.copy()]
    for t in range(1, 301):
        residual = theta[0] * x + theta[1] - y
        g = np.array([float(2 * (residual * x).mean()), float(2 * residual.mean())])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        path.append(theta.copy())
    observed = result.replica_history(0)["theta"].numpy()
    assert np.allclose(observed, np.array(path), rtol=1e-10, atol=1e-12)


OPTIMIZERS = {
    "adam": ({"amsgrad": True}, torch.optim.Adam),
    "adamw": ({"weight_decay": 0.1, "betas": [0.85, 0.995]}, torch.optim.AdamW),
    "rmsprop": ({"momentum": 0.5, "centered": True, "alpha": 0.9}, torch.optim.RMSprop),
    "adagrad": ({"lr_decay": 0.01, "initial_accumulator_value": 0.1}, torch.optim.Adagrad),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_replicas_equal_separate_plain_pytorch_runs(name: str) -> None:
    """Several learning rates in one vectorised run (the displacement of a step at lr 1,
    scaled per replica) equal separate loops of the torch.optim class at each rate. Over 80
    steps: near the optimum the adaptive steps are nearly sign steps, which amplify rounding
    (vectorised kernels round differently by an ulp) until the runs part after ~150."""
    keys, cls = OPTIMIZERS[name]
    over = [f"optimizer.{k}={str(v).lower()}" for k, v in keys.items()]
    cfg, ds = _setup(f"optimizer.name={name}", "train.max_iter=80", *over)
    lrs = [0.003, 0.05, 0.4]
    together = train(ds, cfg, lrs=lrs)
    for k, lr in enumerate(lrs):
        alone, _ = _plain_loop(cls, ds.x.double(), ds.y.double(), 80, lr=lr, **keys)
        assert torch.allclose(together.final_theta[k], alone, rtol=1e-9, atol=1e-12), (name, lr)


def _plain_loop(cls, x, y, steps, **kwargs):
    from test_train import LessonModel

    model = LessonModel(x.shape[1]).double()
    optimizer = cls(model.parameters(), **kwargs)
    for _ in range(steps):
        loss = torch.mean((model(x) - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.cat([model.w.detach()[0], model.b.detach()]), None


def test_sgd_through_the_same_builder_is_unchanged() -> None:
    cfg, ds = _setup("optimizer.lr=0.01", "optimizer.momentum=0.9", "train.max_iter=100")
    theta, _ = lesson_loop(ds.x, ds.y, 100, torch.float64, lr=0.01, momentum=0.9)
    assert torch.allclose(train(ds, cfg).final_theta[0], theta, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_an_adaptive_run_resumes_bit_for_bit(name: str) -> None:
    """The optimizer's state (moments, step counts) goes into the checkpoint."""
    extra = ["optimizer.momentum=0.3"] if name == "rmsprop" else []
    cfg, ds = _setup(f"optimizer.name={name}", "optimizer.lr=0.05", "train.max_iter=150",
                     "optimizer.schedule={kind: cosine}", *extra)  # fmt: skip
    assert_resume_is_exact(ds, cfg)


def test_an_adaptive_fit_says_its_verdict_is_observed(tmp_path) -> None:
    cfg = load_config(None, ["device=cpu", "optimizer.name=adam", "optimizer.lr=0.1",
                             "train.max_iter=50", f"output.root={tmp_path}"])  # fmt: skip
    run = fit(cfg, draw=False)
    verdict = run.summary["verdict"]
    assert verdict["predicted"] is None and "observed only" in verdict["why"]
    assert run.summary["optimizer"]["name"] == "adam"
    metrics = (run.run_dir / "metrics.csv").read_text().splitlines()
    assert all(line.split(",")[4] == "nan" for line in metrics[1:])  # no expected_loss


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["optimizer.betas=[0.9, 0.9]"], "betas is not a key of sgd"),
        (["optimizer.name=adam", "optimizer.momentum=0.9"], "momentum belongs to sgd, rmsprop"),
        (["optimizer.name=adagrad", "optimizer.nesterov=true", "optimizer.momentum=0.5"],
         "nesterov is not a key of adagrad"),
        (["optimizer.name=rmsprop", "optimizer.lr=auto"], "rmsprop has no exact theory"),
        (["optimizer.name=lbfgs"], "must be one of sgd, adam, adamw, rmsprop, adagrad"),
    ],
)  # fmt: skip
def test_keys_an_optimizer_does_not_take_are_refused_by_name(
    overrides: list[str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert fragment in str(err.value)


def test_a_sweep_of_adam_has_no_predicted_verdicts(tmp_path) -> None:
    from lrtrain.api import sweep_lr

    cfg = load_config(None, ["device=cpu", "optimizer.name=adam", "train.max_iter=100",
                             f"output.root={tmp_path}"])  # fmt: skip
    run = sweep_lr(cfg, lrs=[0.01, 0.3], draw=False)
    assert run.summary is not None
    rows = run.summary["results"]
    assert [r["predicted_verdict"] for r in rows] == [None, None]
    assert all(math.isfinite(r["final_loss"]) for r in rows)
