"""Learning-rate schedules: the factor table against PyTorch's schedulers stepped in a real
loop, scheduled training against a hand-written loop, and the exact scheduled predictions
against what training observed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_train import assert_resume_is_exact

from lrtrain.api import fit
from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train
from lrtrain.errors import ConfigError
from lrtrain.runs.directory import load_run
from lrtrain.theory import minibatch as mb
from lrtrain.theory.schedules import lr_factors

SCHEDULES = {
    "step": ({"step_size": 7, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
    "exponential": ({"gamma": 0.97}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97)),
    "cosine": (
        {"min_factor": 0.1},
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 60, eta_min=0.1 * 0.02),
    ),
    "onecycle": (
        {"pct_start": 0.25},
        lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, 0.02, total_steps=60, pct_start=0.25, cycle_momentum=False
        ),
    ),
}


def _overrides(kind: str, keys: dict) -> list[str]:
    inner = ", ".join(f"{k}: {v}" for k, v in keys.items())
    return [f"optimizer.schedule={{kind: {kind}{', ' + inner if inner else ''}}}"]


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_factors_are_the_torch_schedulers_rates(kind: str) -> None:
    """A real loop at lr 0.02: optimizer.step() then scheduler.step(), the rate read before
    each step — what lrtrain's table times the base rate must give."""
    keys, make = SCHEDULES[kind]
    cfg = load_config(None, ["train.max_iter=60", *_overrides(kind, keys)])
    factors = lr_factors(cfg.optimizer.schedule, 60)
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.02)
    scheduler = make(optimizer)
    rates = []
    for _ in range(60):
        rates.append(optimizer.param_groups[0]["lr"])
        parameter.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()
    assert factors is not None
    assert (0.02 * factors).tolist() == pytest.approx(rates, rel=1e-12, abs=1e-15)


def test_invscaling_and_warmup_cosine_formulas() -> None:
    """invscaling as scikit-learn's SGDRegressor (η₀/(t+1)^power_t); warmup_cosine as
    transformers' get_cosine_schedule_with_warmup, here with a floor."""
    cfg = load_config(None, _overrides("invscaling", {"power_t": 0.5}))
    factors = lr_factors(cfg.optimizer.schedule, 50)
    assert factors is not None
    assert factors.tolist() == pytest.approx([1 / math.sqrt(t + 1) for t in range(50)])
    cfg = load_config(None, _overrides("warmup_cosine", {"warmup_steps": 10, "min_factor": 0.2}))
    factors = lr_factors(cfg.optimizer.schedule, 110)
    assert factors is not None
    want = [
        t / 10 if t < 10 else 0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * (t - 10) / 100))
        for t in range(110)
    ]
    assert factors.tolist() == pytest.approx(want, abs=1e-12)
    assert lr_factors(load_config().optimizer.schedule, 10) is None  # constant: no table


def test_a_cosine_schedule_gives_the_hand_written_iterates() -> None:
    """The lesson in float64 under cosine annealing: the iterates of plain gradient descent
    written out with the closed form η_t = η_min + (η − η_min)(1 + cos(πt/T))/2."""
    cfg = load_config(
        None,
        ["device=cpu", "train.dtype=float64", "optimizer.lr=0.02", "train.max_iter=100",
         *_overrides("cosine", {"min_factor": 0.05})],
    )  # fmt: skip
    ds = load_dataset(cfg)
    result = train(ds, cfg)
    x, y = ds.x.double().reshape(-1), ds.y.double().reshape(-1)
    w = b = 0.0
    history, rates = [], []
    for t in range(100):
        lr = 0.001 + (0.02 - 0.001) * (1 + math.cos(math.pi * t / 100)) / 2
        residual = w * x + b - y
        history.append((w, b))
        rates.append(lr)
        w, b = w - lr * float(2 * (residual * x).mean()), b - lr * float(2 * residual.mean())
    theta = result.replica_history(0)["theta"]
    assert np.allclose(theta[:100].numpy(), np.array(history), rtol=1e-10, atol=1e-12)
    assert result.final_theta[0].tolist() == pytest.approx([w, b], rel=1e-10)
    assert result.rates(0, list(range(100))) == pytest.approx(rates, rel=1e-12)


@pytest.mark.parametrize(
    "extra",
    [
        _overrides("cosine", {}),
        [*_overrides("step", {"step_size": 20, "gamma": 0.3}), "optimizer.lr=0.03"],
        [*_overrides("onecycle", {}), "optimizer.momentum=0.8", "optimizer.lr=0.02"],
        [*_overrides("warmup_cosine", {"warmup_steps": 30}), "optimizer.momentum=0.5",
         "optimizer.nesterov=true", "optimizer.lr=0.025"],
        [*_overrides("invscaling", {}), "optimizer.weight_decay=0.5", "optimizer.lr=0.02"],
        [*_overrides("exponential", {"gamma": 1.02}), "optimizer.lr=0.02"],  # grows: diverges
    ],
)  # fmt: skip
def test_the_scheduled_prediction_equals_the_observed_loss(tmp_path, extra: list[str]) -> None:
    """Full batch in float64: the exact scheduled prediction (metrics.csv expected_loss) is
    the loss training observed, and the lr column is the rate each step used."""
    over = ["device=cpu", "train.dtype=float64", "train.max_iter=200", "output.plots=[]", *extra]
    run = fit(load_config(None, [*over, f"output.root={tmp_path}"]), draw=False)
    data = load_run(run.run_dir)
    loss, expected = data.metrics["loss"], data.metrics["expected_loss"]
    finite = np.isfinite(loss) & (loss < 1e12)
    assert finite.sum() > 10
    assert np.allclose(expected[finite], loss[finite], rtol=1e-9, atol=1e-12)
    assert data.metrics["lr"][:5].tolist() == pytest.approx(run.result.rates(0, list(range(5))))
    summary = run.summary
    assert summary["verdict"]["predicted"] == summary["verdict"]["observed"]
    kind = extra[0].split("kind: ")[1].split(",")[0].rstrip("}")
    assert summary["optimizer"]["schedule"]["kind"] == kind


def test_a_decaying_schedule_removes_the_noise_floor() -> None:
    """Mini-batches of 4 on the lesson: at a constant rate E[L] − L* settles at the noise
    floor; under invscaling it keeps falling below it. The scheduled expectation, at factors
    of 1, is the constant-rate one; under the schedule it lies in the Monte-Carlo band."""
    cfg = load_config(None, ["device=cpu", "train.dtype=float64"])
    ds = load_dataset(cfg)
    exact = ds.answer()
    moments = mb.row_moments(ds.chunks(st.CHUNK_ROWS), exact.theta_star)
    zero = torch.zeros(2, dtype=torch.float64)
    rule, steps = mb.Rule(0.01), [0, 10, 100, 1000, 3000]
    constant = mb.expected_losses(moments, exact.loss_star, exact.theta_star, zero, rule, 4, steps)
    ones = mb.expected_losses(moments, exact.loss_star, exact.theta_star, zero, rule, 4, steps,
                              np.ones(3000))  # fmt: skip
    assert ones.expected_loss == pytest.approx(constant.expected_loss, rel=1e-10)
    floor = mb.noise_floor(moments, rule, 4)
    schedule = load_config(None, _overrides("invscaling", {"power_t": 0.7})).optimizer.schedule
    factors = lr_factors(schedule, 3000)
    decayed = mb.expected_losses(moments, exact.loss_star, exact.theta_star, zero, rule, 4,
                                 steps, factors)  # fmt: skip
    assert constant.expected_loss[-1] - exact.loss_star == pytest.approx(floor, rel=1e-3)
    assert decayed.expected_loss[-1] - exact.loss_star < 0.2 * floor
    # Monte-Carlo: 4096 replicas of SGD with replacement under the schedule, by hand
    from test_minibatch import _assert_in_band

    observed = _scheduled_monte_carlo(ds, 0.01, 4, [0, 10, 100, 300], factors)
    short = mb.expected_losses(moments, exact.loss_star, exact.theta_star, zero, rule, 4,
                               [0, 10, 100, 300], factors)  # fmt: skip
    _assert_in_band([0, 10, 100, 300], short.expected_loss, observed, "invscaling")


def _scheduled_monte_carlo(ds, lr, batch, steps, factors, replicas=4096) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    theta = torch.zeros(replicas, 2, dtype=torch.float64)
    out = []
    for t in range(max(steps) + 1):
        if t in steps:
            out.append(((theta @ x.T - y) ** 2).mean(1))
        idx = torch.randint(ds.n, (replicas, batch), generator=gen)
        residual = (x[idx] @ theta.unsqueeze(2)).squeeze(2) - y[idx]
        theta = theta - lr * factors[t] * 2.0 * (residual.unsqueeze(2) * x[idx]).mean(1)
    return torch.stack(out)


@pytest.mark.parametrize(
    "extra",
    [_overrides("cosine", {}), [*_overrides("onecycle", {}), "optimizer.momentum=0.9"]],
)
def test_a_scheduled_run_resumes_exactly(extra: list[str]) -> None:
    cfg = load_config(None, ["device=cpu", "train.max_iter=150", "optimizer.lr=0.02", *extra])
    assert_resume_is_exact(load_dataset(cfg), cfg)


def test_resume_refuses_to_stretch_a_schedule_tied_to_max_iter(tmp_path) -> None:
    from lrtrain.api import load_checkpoint, resume_status

    over = ["device=cpu", "output.plots=[]", f"output.root={tmp_path}", *_overrides("cosine", {})]
    run = fit(load_config(None, over), draw=False)
    longer = load_config(None, [*over, "train.max_iter=300"])
    with pytest.raises(ConfigError, match="t_max"):
        resume_status(load_checkpoint(run.run_dir), longer)
    fixed = [*over[:-1], "optimizer.schedule={kind: cosine, t_max: 100}"]
    run = fit(load_config(None, fixed), draw=False)
    longer = load_config(None, [*fixed, "train.max_iter=300"])
    assert resume_status(load_checkpoint(run.run_dir), longer) is None


def test_lr_auto_is_the_base_rate_a_schedule_scales(tmp_path) -> None:
    over = ["device=cpu", "train.dtype=float64", "optimizer.lr=auto", "train.max_iter=50",
            "output.plots=[]", f"output.root={tmp_path}", *_overrides("cosine", {})]  # fmt: skip
    run = fit(load_config(None, over), draw=False)
    eta = run.analysis.asymptotically_optimal_lr
    factors = lr_factors(run.config.optimizer.schedule, 50)
    assert factors is not None
    lr = load_run(run.run_dir).metrics["lr"]
    assert lr[:50].tolist() == pytest.approx((eta * factors).tolist(), rel=1e-12)
