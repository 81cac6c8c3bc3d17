"""The mini-batch theory (theory.minibatch) against plain simulations: Monte-Carlo averages of
SGD with replacement written out by hand, the full-batch iteration, and a direct search of the
mean-square stability boundary."""

from __future__ import annotations

import math

import pytest
import torch

from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.load import load_dataset
from lrtrain.theory import minibatch as mb

REPLICAS = 16384
ZERO = torch.zeros(2, dtype=torch.float64)  # θ_0 of the lesson's model


def _lesson(*overrides: str):
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", *overrides])
    ds = load_dataset(cfg)
    exact = ds.answer()
    return ds, exact, mb.row_moments(ds.chunks(st.CHUNK_ROWS), exact.theta_star)


def _monte_carlo(
    ds, lr: float, batch: int, steps: list[int], seed: int = 0, replicas: int = REPLICAS,
    momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
) -> torch.Tensor:  # fmt: skip
    """[len(steps), replicas] full-batch losses of SGD with replacement, by hand: each replica
    draws its own batch of rows each step, uniformly with replacement, from θ_0 = 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    theta = torch.zeros(replicas, x.shape[1], dtype=torch.float64)
    buffer = torch.zeros_like(theta)
    out = []
    for t in range(max(steps) + 1):
        if t in steps:
            out.append(((theta @ x.T - y) ** 2).mean(1))
        idx = torch.randint(ds.n, (replicas, batch), generator=gen)
        xb, yb = x[idx], y[idx]  # [K, B, p], [K, B]
        residual = (xb @ theta.unsqueeze(2)).squeeze(2) - yb
        grad = 2.0 * (residual.unsqueeze(2) * xb).mean(1) + weight_decay * theta
        # torch.optim.SGD's rule, dampening 0: the buffer starts at the first gradient
        buffer = grad if t == 0 else momentum * buffer + grad
        theta = theta - lr * ((grad + momentum * buffer) if nesterov else buffer)
    return torch.stack(out)


def _assert_in_band(
    steps: list[int], predicted: list[float], observed: torch.Tensor, *context: object
) -> None:
    """Each predicted E[L_t] lies within the 99% confidence band of the replicas' mean."""
    for t, want, losses in zip(steps, predicted, observed, strict=True):
        mean, sd = float(losses.mean()), float(losses.std())
        half = 2.576 * sd / math.sqrt(len(losses))
        assert abs(mean - want) <= half + 1e-9 * want, (*context, t, mean, want, half)


def test_the_lesson_numbers() -> None:
    """B = 1 on the lesson: mean-square critical lr ≈ 0.0167 against 2/λ_max ≈ 0.0298; the
    full batch is 2/λ_max, and its expected loss is the lesson's loss (301.111 → 1.23712)."""
    _, exact, moments = _lesson()
    assert mb.critical_lr(moments, 1) == pytest.approx(0.016661, rel=1e-4)
    lam_max = float(torch.linalg.eigvalsh(moments.hessian)[-1])
    assert mb.critical_lr(moments, None) == pytest.approx(2 / lam_max, rel=1e-12)
    critical = [mb.critical_lr(moments, b) for b in (1, 4, 16, 64)]
    assert critical == sorted(critical) and critical[-1] < 2 / lam_max
    run = mb.expected_losses(
        moments, exact.loss_star, exact.theta_star, ZERO, mb.Rule(1e-3), None, [0, 100]
    )
    assert run.expected_loss[0] == pytest.approx(301.111, rel=1e-5)
    assert run.expected_loss[1] == pytest.approx(1.23712, rel=1e-5)


def test_full_batch_is_the_exact_iteration() -> None:
    """1/B = 0: E[L_t] is the loss of the deterministic iteration θ ← θ − ηHe, step by step."""
    ds, exact, moments = _lesson("data.n_samples=40")
    h, theta_star = moments.hessian, exact.theta_star
    theta = torch.zeros_like(theta_star)
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    losses = []
    for _ in range(60):
        losses.append(float(((x @ theta - y) ** 2).mean()))
        theta = theta - 0.02 * (h @ (theta - theta_star))
    run = mb.expected_losses(
        moments, exact.loss_star, theta_star, ZERO, mb.Rule(0.02), None, range(60)
    )
    assert run.expected_loss == pytest.approx(losses, rel=1e-10)


@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.parametrize("factor", [0.5, 0.95, 1.1])
def test_expected_loss_lies_in_the_monte_carlo_band(batch: int, factor: float) -> None:
    """Below, near and above the mean-square critical lr: the prediction lies within the 99%
    confidence band of 16 384 replicas' mean loss at every checked step. Near and above the
    critical lr the losses soon become heavy-tailed (a few paths carry the mean, and a sample
    mean and its spread no longer estimate it: at step 20, 0.95 × critical, B = 1, 4 096
    replicas fall 15 half-bands short), so there the first steps are checked — each applies
    the whole map, fourth moments, cross terms and noise alike; below it, 150 steps."""
    ds, exact, moments = _lesson()
    lr = factor * mb.critical_lr(moments, batch)
    steps = [1, 2, 3, 4, 5] if factor > 0.9 else [1, 2, 5, 20, 60, 150]
    predicted = mb.expected_losses(
        moments, exact.loss_star, exact.theta_star, ZERO, mb.Rule(lr), batch, steps
    )
    observed = _monte_carlo(ds, lr, batch, steps, seed=batch)
    _assert_in_band(steps, predicted.expected_loss, observed)


@pytest.mark.parametrize("batch", [1, 4])
def test_the_critical_lr_separates_convergence_from_divergence(batch: int) -> None:
    """Replicas' mean loss falls to the noise floor below the critical lr and grows above it."""
    ds, exact, moments = _lesson()
    critical = mb.critical_lr(moments, batch)
    below = _monte_carlo(ds, 0.8 * critical, batch, [0, 400], 1, 1024).mean(1)
    above = _monte_carlo(ds, 1.25 * critical, batch, [0, 400], 2, 1024).mean(1)
    assert below[1] < exact.loss_star + 2 * mb.noise_floor(moments, mb.Rule(0.8 * critical), batch)
    assert above[1] > above[0]


def test_the_critical_lr_table_equals_one_bisection_at_a_time() -> None:
    """critical_lrs (the map as a quadratic in η, linear in 1/B, bisected side by side)."""
    _, _, moments = _lesson()  # the map on U does not depend on the reference point
    settings = [(0.0, False), (0.9, True), (0.5, False)]
    table = mb.critical_lrs(moments, [1, 4, 16], settings, 0.3, tol=1e-10)
    assert len(table) == 9
    for (batch, momentum, nesterov), lr in table.items():
        one = mb.critical_lr(moments, batch, momentum, nesterov, 0.3, tol=1e-10)
        assert lr == pytest.approx(one, rel=1e-8)


def test_the_noise_floor_is_where_the_recursion_settles() -> None:
    """E[L_∞] − L* from the stationary equation equals the recursion run to its end; it grows
    with the lr and shrinks as 1/B."""
    _, exact, moments = _lesson()
    floor = mb.noise_floor(moments, mb.Rule(0.012), 4)
    run = mb.expected_losses(
        moments, exact.loss_star, exact.theta_star, ZERO, mb.Rule(0.012), 4, [6000]
    )
    assert run.expected_loss[0] - exact.loss_star == pytest.approx(floor, rel=1e-6)
    assert mb.noise_floor(moments, mb.Rule(0.005), 4) < floor
    assert mb.noise_floor(moments, mb.Rule(0.012), 16) < floor / 3
    assert mb.noise_floor(moments, mb.Rule(0.012), None) == 0.0
    assert mb.noise_floor(moments, mb.Rule(1.01 * mb.critical_lr(moments, 4)), 4) == math.inf


def test_too_many_parameters_are_refused() -> None:
    x = torch.zeros(4, mb.MAX_PARAMETERS)
    with pytest.raises(ValueError, match="computed up to"):
        mb.row_moments([(x, torch.zeros(4, 1))], torch.zeros(mb.MAX_PARAMETERS + 1))


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("batch", [1, 8])
def test_momentum_is_the_same_recursion_on_the_stacked_state(batch: int, nesterov: bool) -> None:
    """Heavy ball and Nesterov (μ = 0.5): the prediction within the Monte-Carlo band, below
    the critical rate for 60 steps, near it for the first five; full batch gives the known
    limits 2(1 + μ)/λ_max and 2(1 + μ)/((1 + 2μ)λ_max)."""
    ds, exact, moments = _lesson()
    mu = 0.5
    lam_max = float(torch.linalg.eigvalsh(moments.hessian)[-1])
    full = mb.critical_lr(moments, None, mu, nesterov)
    assert full == pytest.approx(2 * (1 + mu) / ((1 + 2 * mu) if nesterov else 1) / lam_max)
    critical = mb.critical_lr(moments, batch, mu, nesterov)
    assert critical < full
    for factor, steps in ((0.5, [1, 2, 5, 20, 60]), (0.95, [1, 2, 3, 4, 5])):
        lr = factor * critical
        rule = mb.Rule(lr, mu, nesterov)
        predicted = mb.expected_losses(moments, exact.loss_star, exact.theta_star, ZERO, rule,
                                       batch, steps)  # fmt: skip
        observed = _monte_carlo(ds, lr, batch, steps, 3, REPLICAS, mu, nesterov)
        _assert_in_band(steps, predicted.expected_loss, observed, factor)


def test_full_batch_momentum_is_the_exact_iteration() -> None:
    """1/B = 0 with Nesterov momentum: the loss of the deterministic iteration, step by step."""
    ds, exact, moments = _lesson("data.n_samples=30")
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    theta, buffer, want = torch.zeros(2, dtype=torch.float64), None, []
    for _ in range(40):
        want.append(float(((x @ theta - y) ** 2).mean()))
        grad = 2.0 * x.T @ (x @ theta - y) / ds.n
        buffer = grad if buffer is None else 0.8 * buffer + grad
        theta = theta - 0.01 * (grad + 0.8 * buffer)
    rule = mb.Rule(0.01, 0.8, True)
    run = mb.expected_losses(
        moments, exact.loss_star, exact.theta_star, ZERO, rule, None, range(40)
    )
    assert run.expected_loss == pytest.approx(want, rel=1e-10)


def test_a_minibatch_fit_predicts_for_minibatches(tmp_path) -> None:
    """`lrtrain fit -c minibatch` (heavy ball, B = 64): theory.minibatch in summary.json, the
    expected loss in metrics.csv (at step 0 the loss at θ_0), and a report whose prediction is
    for mini-batches and agrees with what it observed."""
    import csv
    import json

    from typer.testing import CliRunner

    from lrtrain.cli.app import app

    out = tmp_path / "mb"
    done = CliRunner().invoke(app, ["fit", "-c", "minibatch", "--device", "cpu", "--out",
                                    str(out), "train.max_iter=600", "output.plots=[]"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "full-batch prediction" not in done.output
    assert "monotone (predicted for mini-batches: converges)" in " ".join(done.output.split())
    theory = json.loads((out / "summary.json").read_text())["theory"]["minibatch"]
    assert theory["available"] and theory["approximation"] and theory["batch_size"] == 64
    assert theory["critical_lr"] < theory["full_batch_critical_lr"]
    assert theory["verdict"] == "converges" and theory["noise_floor"] > 0
    with (out / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    cfg = load_config("minibatch", ["device=cpu"])
    ds = load_dataset(cfg)
    at_start = float((ds.y.double() ** 2).mean())  # θ_0 = 0
    assert float(rows[0]["expected_loss"]) == pytest.approx(at_start, rel=1e-9)
    assert float(rows[-1]["expected_loss"]) == pytest.approx(theory["expected_final_loss"])
    # the observed full-data loss at the end lies near the prediction: the noise floor is the
    # scale of its spread (one sample of a random variable, not a mean)
    gap = theory["observed_final_loss"] - theory["expected_final_loss"]
    assert abs(gap) < 3 * theory["noise_floor"]


def _ridge(ds, wd: float) -> torch.Tensor:
    """The ridge solution gradient descent with weight decay converges to: (H + wd·I)θ = g."""
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    h, g = 2.0 * x.T @ x / ds.n, 2.0 * x.T @ y / ds.n
    return torch.linalg.solve(h + wd * torch.eye(2, dtype=torch.float64), g)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_weight_decay_about_the_ridge_solution(momentum: float) -> None:
    """Weight decay 0.5 (the ridge solution far from θ*): Monte-Carlo band for B = 4 below and
    near the critical rate; full batch is the deterministic iteration; the noise floor (with
    the ridge bias) is where the recursion settles."""
    ds, exact, _ = _lesson()
    wd = 0.5
    ridge = _ridge(ds, wd)
    moments = mb.row_moments(ds.chunks(st.CHUNK_ROWS), ridge)
    critical = mb.critical_lr(moments, 4, momentum, False, wd)
    for factor, steps in ((0.5, [1, 2, 5, 20, 60]), (0.95, [1, 2, 3, 4, 5])):
        rule = mb.Rule(factor * critical, momentum, False, wd)
        predicted = mb.expected_losses(moments, exact.loss_star, exact.theta_star, ZERO, rule,
                                       4, steps)  # fmt: skip
        observed = _monte_carlo(ds, rule.lr, 4, steps, 4, REPLICAS, momentum, False, wd)
        _assert_in_band(steps, predicted.expected_loss, observed, factor)
    # full batch: the deterministic iteration with PyTorch's weight decay
    x = torch.cat([ds.x.double(), torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y.double().reshape(-1)
    theta, buffer, want = torch.zeros(2, dtype=torch.float64), None, []
    for _ in range(50):
        want.append(float(((x @ theta - y) ** 2).mean()))
        grad = 2.0 * x.T @ (x @ theta - y) / ds.n + wd * theta
        buffer = grad if buffer is None else momentum * buffer + grad
        theta = theta - 0.01 * buffer
    rule = mb.Rule(0.01, momentum, False, wd)
    run = mb.expected_losses(moments, exact.loss_star, exact.theta_star, ZERO, rule, None,
                             range(50))  # fmt: skip
    assert run.expected_loss == pytest.approx(want, rel=1e-10)
    rule = mb.Rule(0.6 * critical, momentum, False, wd)
    floor = mb.noise_floor(moments, rule, 4, exact.theta_star)
    settled = mb.expected_losses(moments, exact.loss_star, exact.theta_star, ZERO, rule, 4,
                                 [5000]).expected_loss[0]  # fmt: skip
    assert settled - exact.loss_star == pytest.approx(floor, rel=1e-6)
    bias = mb.noise_floor(moments, rule, None, exact.theta_star)
    assert 0 < bias < floor  # the ridge bias alone, and the batches' noise above it
