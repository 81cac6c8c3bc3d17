"""Analysis against independent references: numpy least squares, a hand Hessian, direct
evaluation of the loss over the data, and the lesson's own numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from lrtrain.config.schema import OptimizerConfig, load_config
from lrtrain.data.load import load_dataset
from lrtrain.theory.analysis import analyse, analyse_dataset, lr_limits, observed_verdict
from lrtrain.theory.surface import plane_axes, plane_loss, project


def _lesson():
    cfg = load_config(None, ["train.dtype=float64"])
    ds = load_dataset(cfg)
    return ds, analyse(ds.x, ds.y, cfg.optimizer)


def test_lesson_spectrum_and_critical_lr() -> None:
    _, a = _lesson()
    # H = 2 [[mean x², mean x], [mean x, 1]] with x = 0 … 9.9: mean x² = 32.835, mean x = 4.95.
    h = 2 * np.array([[32.835, 4.95], [4.95, 1.0]])
    lam = np.linalg.eigvalsh(h)
    assert a.eigenvalues == pytest.approx(lam.tolist(), rel=1e-9)
    assert a.eigenvalues[-1] == pytest.approx(67.17, abs=0.01)
    assert a.critical_lr == pytest.approx(0.02977, abs=1e-5)
    assert a.monotone_lr_limit == pytest.approx(1 / lam[-1])
    assert a.asymptotically_optimal_lr == pytest.approx(2 / (lam[0] + lam[-1]))
    assert a.condition_number == pytest.approx(lam[-1] / lam[0])
    assert [a.predict(lr) for lr in (0.0005, 0.001, 0.005, 0.025, 0.028, 0.03)] == [
        "monotone",
        "monotone",
        "monotone",
        "oscillating",
        "oscillating",
        "diverged",
    ]


def test_closed_form_matches_numpy_lstsq() -> None:
    ds, a = _lesson()
    x = np.c_[ds.x.numpy(), np.ones(ds.n)]
    theta, *_ = np.linalg.lstsq(x, ds.y.numpy()[:, 0], rcond=None)
    assert a.theta_star == pytest.approx(theta.tolist(), rel=1e-10)
    assert a.loss_star == pytest.approx(float(np.mean((x @ theta - ds.y.numpy()[:, 0]) ** 2)))


def test_closed_form_with_large_offset_is_accurate() -> None:
    # x ≈ 1e6 ± 1: the uncentred normal equations would lose most digits.
    x = torch.linspace(1e6 - 1, 1e6 + 1, 50, dtype=torch.float64).unsqueeze(1)
    y = 2.5 * (x - 1e6) + 7.0
    a = analyse(x, y, OptimizerConfig())
    assert a.theta_star[0] == pytest.approx(2.5, rel=1e-9)
    assert a.theta_star[1] == pytest.approx(7.0 - 2.5e6, rel=1e-9)


def test_singular_problem_uses_pseudo_inverse() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    a = analyse(x, y, OptimizerConfig())
    assert a.singular and math.isinf(a.condition_number) and "pseudo-inverse" in a.method
    xt = np.c_[x.numpy(), np.ones(3)]
    expected = np.linalg.pinv(xt) @ y.numpy()[:, 0]
    assert a.theta_star == pytest.approx(expected.tolist(), abs=1e-10)
    assert a.to_json()["condition_number"] is None


def test_lr_limits_forms() -> None:
    assert lr_limits(1, 10) == pytest.approx((0.1, 0.2, 2 / 11))
    mono, crit, _ = lr_limits(1, 10, momentum=0.5)
    assert crit == pytest.approx(2 * 1.5 / 10) and mono == pytest.approx((1 - 0.5**0.5) ** 2 / 10)
    mono, crit, _ = lr_limits(1, 10, momentum=0.5, nesterov=True)
    assert crit == pytest.approx(2 * 1.5 / (2 * 10)) and mono == pytest.approx(
        (0.5 / 1.5) ** 2 / 10
    )


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.6, False), (0.6, True)])
def test_critical_lr_is_the_spectral_radius_edge(momentum: float, nesterov: bool) -> None:
    """The iteration matrix of each mode has spectral radius 1 exactly at the critical lr."""
    lam = 67.17
    _, crit, _ = lr_limits(0.5, lam, momentum, nesterov)

    def radius(lr: float) -> float:
        a, mu = lr * lam, momentum
        if nesterov:
            m = np.array([[(1 + mu) * (1 - a), -mu * (1 - a)], [1, 0]])
        else:
            m = np.array([[1 + mu - a, -mu], [1, 0]])
        return max(abs(np.linalg.eigvals(m)))

    assert radius(crit * 0.999) < 1 < radius(crit * 1.001)


def test_weight_decay_targets_ridge() -> None:
    cfg = load_config(None, ["train.dtype=float64", "optimizer.weight_decay=0.5"])
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    x = np.c_[ds.x.numpy(), np.ones(ds.n)]
    h = 2 * x.T @ x / ds.n
    ridge = np.linalg.solve(h + 0.5 * np.eye(2), 2 * x.T @ ds.y.numpy()[:, 0] / ds.n)
    assert a.target_theta == pytest.approx(ridge.tolist(), rel=1e-9)
    assert a.critical_lr == pytest.approx(2 / (np.linalg.eigvalsh(h)[-1] + 0.5))


@pytest.mark.parametrize("d", [1, 3])
def test_surface_equals_direct_evaluation(d: int) -> None:
    over = ["train.dtype=float64", "data.n_samples=3000"]
    if d == 3:
        over += ["data.x={kind: normal, mean: 2, std: 3}", "data.true_w=[1,-2,0.5]"]
    cfg = load_config(None, over)
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    origin, e1, e2, _ = plane_axes(a.theta_star, a.hessian)
    s, t = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-3, 3, 5))
    fast = plane_loss(s, t, origin, e1, e2, a.theta_star, a.loss_star, a.hessian)
    x = np.c_[ds.x.numpy(), np.ones(ds.n)]
    y = ds.y.numpy()[:, 0]
    for i in range(s.shape[0]):
        for j in range(s.shape[1]):
            theta = origin + s[i, j] * e1 + t[i, j] * e2
            assert fast[i, j] == pytest.approx(np.mean((x @ theta - y) ** 2), rel=1e-10)
    ps, pt = project(np.array([origin + 0.3 * e1 - 0.2 * e2]), origin, e1, e2)
    assert (ps[0], pt[0]) == pytest.approx((0.3, -0.2))


def test_observed_verdicts_from_hand_trajectories() -> None:
    h = np.array([1.0, 0.0])  # H = diag(2, 1): its top eigenvector is the first coordinate
    steps = torch.arange(20, dtype=torch.float64)
    mono = torch.stack([0.5**steps, 0.9**steps], 1)
    osc = torch.stack([(-0.5) ** steps, 0.9**steps], 1)
    loss = 1 + 0.9 ** (2 * steps)
    assert observed_verdict(loss, mono, "completed", h) == "monotone"
    assert observed_verdict(loss, osc, "completed", h) == "oscillating"
    assert observed_verdict(loss.flip(0), osc, "completed", h) == "diverged"
    assert observed_verdict(loss, mono, "diverged", h) == "diverged"
    # κ = 1 and the top eigenvector a direction training does not move in (a centred target's
    # bias): its updates are rounding noise, flipping sign; the run is monotone, as it was
    # read when the noise was measured against its own largest update ("oscillating")
    noise = 1e-15 * torch.tensor([(-1.0) ** k * (1 + k % 3) for k in range(20)])
    still = torch.stack([1 - 0.9**steps, noise], 1)
    assert observed_verdict(loss, still, "completed", np.array([0.0, 1.0])) == "monotone"


# --- automatic step size and momentum -------------------------------------------------------


def test_auto_settings_equal_the_formulas() -> None:
    from lrtrain.theory.analysis import auto_settings

    _, a = _lesson()
    lo, hi = a.eigenvalues
    kappa = hi / lo
    plain = auto_settings(a, 0.0, False)
    assert plain.lr == pytest.approx(2 / (lo + hi), rel=1e-12) and plain.momentum == 0
    assert plain.rate == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-9)
    polyak = auto_settings(a, None, False)
    assert polyak.lr == pytest.approx(4 / (math.sqrt(hi) + math.sqrt(lo)) ** 2, rel=1e-12)
    root = math.sqrt(kappa)
    assert polyak.momentum == pytest.approx(((root - 1) / (root + 1)) ** 2, rel=1e-12)
    # Polyak's settings reach the first-order lower bound (√κ − 1)/(√κ + 1).
    assert polyak.rate == pytest.approx((root - 1) / (root + 1), rel=1e-6)
    nesterov = auto_settings(a, None, True)
    assert nesterov.lr == pytest.approx(1 / hi, rel=1e-12)
    assert nesterov.momentum == pytest.approx((root - 1) / (root + 1), rel=1e-12)
    # The textbook Nesterov setting converges faster than the best plain gradient descent.
    assert nesterov.rate < plain.rate
    assert nesterov.rate == pytest.approx(1 - 1 / root, abs=0.01)


def test_mode_rate_matches_the_iteration_it_describes() -> None:
    """The spectral radius is the long-run error factor of PyTorch's update on one mode,
    checked by running that update (heavy ball and Nesterov) on a 1-D quadratic."""
    from lrtrain.theory.analysis import mode_rate

    lam, lr = 3.0, 0.2
    for momentum, nesterov in ((0.0, False), (0.5, False), (0.6, True), (0.9, False)):
        theta = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([theta], lr=lr, momentum=momentum, nesterov=nesterov)
        errors = []
        for _ in range(400):
            opt.zero_grad()
            (0.5 * lam * theta**2).sum().backward()
            opt.step()
            errors.append(abs(float(theta.detach())))
        observed = (errors[-1] / errors[-201]) ** (1 / 200)
        assert observed == pytest.approx(mode_rate(lr * lam, lam, lr, momentum, nesterov), rel=2e-2)


def test_mode_rate_is_the_spectral_radius_of_the_mode_matrix() -> None:
    """The closed form against LAPACK's eigenvalues of the same 2 × 2 iteration matrices, over
    rates on both sides of the monotone limit, the optimum and the edge of stability (real,
    double and complex roots)."""
    from lrtrain.theory.analysis import mode_rate

    rng = np.random.default_rng(5)
    for _ in range(500):
        lam, lr = float(rng.uniform(0.1, 10)), float(rng.uniform(0.0, 1.0))
        mu, nesterov = float(rng.choice([0.0, rng.uniform(0, 0.999)])), bool(rng.integers(2))
        a = lr * lam
        if nesterov:
            matrix = [[1 - a * (1 + mu), -lr * mu * mu], [lam, mu]]
        else:
            matrix = [[1 - a, -lr * mu], [lam, mu]]
        expected = np.abs(np.linalg.eigvals(np.array(matrix))).max() if mu else abs(1 - a)
        # a double root is ill-conditioned for LAPACK (error ~√ε), not for the closed form
        assert mode_rate(a, lam, lr, mu, nesterov) == pytest.approx(expected, rel=1e-7, abs=1e-7)
    # Polyak's setting: both extreme modes at the double root √μ
    lam_min, lam_max = 1.0, 100.0
    lr, mu = 4 / (math.sqrt(lam_max) + 1) ** 2, (9 / 11) ** 2
    for lam in (lam_min, lam_max):
        assert mode_rate(lr * lam, lam, lr, mu, False) == pytest.approx(9 / 11, rel=1e-7)


def test_auto_lr_for_a_fixed_momentum_minimises_the_worst_rate() -> None:
    from lrtrain.theory.analysis import auto_settings, convergence_rate

    _, a = _lesson()
    for momentum, nesterov in ((0.5, False), (0.9, False), (0.5, True)):
        best = auto_settings(a, momentum, nesterov)
        for factor in (0.9, 1.1):
            other = convergence_rate(best.lr * factor, a.eigenvalues, momentum, nesterov)
            assert best.rate <= other + 1e-12


def test_eta_star_at_the_monotone_limit_is_monotone(tmp_path) -> None:
    """κ = 1 (one standardised feature): η* = 2/(λ_min + λ_max) is 1/λ_max, up to the
    eigenvalues' rounding, and takes every direction to the optimum in one step. It was
    predicted "oscillating" (lr ≥ the limit by an ulp) while observed monotone."""
    from lrtrain.api import fit

    cfg = load_config(None, ["data.standardize=true", "optimizer.lr=auto", "train.max_iter=5"])
    summary = fit(cfg, out=tmp_path / "r", draw=False).summary
    analysis = summary["analysis"]
    lr = summary["optimizer"]["lr"]
    assert lr == pytest.approx(analysis["monotone_lr_limit"], rel=1e-12)
    assert summary["verdict"]["predicted"] == summary["verdict"]["observed"] == "monotone"


def test_predicted_steps_of_the_lesson() -> None:
    """The figures the issue quotes for the lesson data in float64 (about 650 steps at η*,
    about 86 with Polyak's heavy ball, to a relative gap of 1e-6)."""
    from lrtrain.theory.analysis import auto_settings
    from lrtrain.theory.dynamics import predicted_steps

    _, a = _lesson()
    plain, polyak = auto_settings(a, 0.0, False), auto_settings(a, None, False)
    at_eta = predicted_steps(a, [0.0, 0.0], plain.lr, 0.0, False, 1e-6, 100_000)
    heavy = predicted_steps(a, [0.0, 0.0], polyak.lr, polyak.momentum, False, 1e-6, 100_000)
    assert at_eta is not None and 600 <= at_eta <= 700
    assert heavy is not None and 80 <= heavy <= 92
    assert predicted_steps(a, [0.0, 0.0], 1e-3, 0.0, False, 1e-6, 1000) is None


# --- ill-conditioned problems and extreme scales -----------------------------------------------


def _closed_form_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """numpy least squares on centred features (independent of lrtrain's code paths)."""
    xm, ym = x.mean(0), y.mean()
    w = np.linalg.lstsq(x - xm, y - ym, rcond=None)[0]
    return np.append(w, ym - xm @ w)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_offset_features_kappa_beyond_1e8(dtype: str) -> None:
    """x ≈ 10⁴ + U(0, 1): κ ≈ 10¹⁷. λ_min is checked against the 2 × 2 identity
    λ_min = det(H)/λ_max = 4·Σ(x − x̄)²/(N·λ_max), which has no cancellation."""
    cfg = load_config(
        None,
        ["data.x={kind: uniform, low: 10000.0, high: 10001.0}", "data.n_samples=500",
         f"train.dtype={dtype}"],
    )  # fmt: skip
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    x = ds.x.double().numpy()
    y = ds.y.double().numpy().ravel()
    n = len(y)
    lam_max = a.eigenvalues[-1]
    lam_min = 4 * ((x - x.mean()) ** 2).sum() / (n * lam_max)
    assert a.eigenvalues[0] == pytest.approx(lam_min, rel=1e-6)
    assert a.condition_number == pytest.approx(lam_max / lam_min, rel=1e-6)
    assert a.condition_number > 1e8 and not a.singular
    np.testing.assert_allclose(a.theta_star, _closed_form_reference(x, y), rtol=1e-8)


@pytest.mark.parametrize("scale", [1e-4, 1e4])
def test_tiny_and_huge_feature_scales(scale: float) -> None:
    cfg = load_config(
        None,
        ["data.x={kind: normal, mean: 0.0, std: 1.0}", "data.true_w=[1.0, -2.0, 0.5]",
         "train.dtype=float64", "data.n_samples=400"],
    )  # fmt: skip
    ds = load_dataset(cfg)
    ds.x = ds.x * torch.tensor([scale, 1.0, 1.0], dtype=torch.float64)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    x, y = ds.x.numpy(), ds.y.numpy().ravel()
    np.testing.assert_allclose(a.theta_star, _closed_form_reference(x, y), rtol=1e-7)
    xt = np.hstack([x, np.ones((len(y), 1))])
    reference = np.linalg.eigvalsh(2 / len(y) * xt.T @ xt)
    np.testing.assert_allclose(a.eigenvalues, reference, rtol=1e-6)


def test_hopeless_kappa_warns_and_standardize_cures_it(tmp_path) -> None:
    from lrtrain.api import fit

    over = ["device=cpu", "data.x={kind: uniform, low: 10000.0, high: 10001.0}",
            "train.max_iter=5", "optimizer.lr=1e-9"]  # fmt: skip
    run = fit(load_config(None, over), out=tmp_path / "raw", draw=False)
    (warning,) = run.summary["warnings"]
    assert "hopeless" in warning and "set data.standardize: true" in warning
    cured = fit(
        load_config(None, [*over, "data.standardize=true"]), out=tmp_path / "std", draw=False
    )
    assert cured.summary["warnings"] == []
    before = cured.summary["standardization"]["condition_number_before"]
    assert before == pytest.approx(run.summary["analysis"]["condition_number"], rel=1e-6)
    assert cured.summary["analysis"]["condition_number"] < 10
    original = cured.summary["closed_form_original"]
    raw = run.summary["closed_form"]
    assert original["w"][0] == pytest.approx(raw["w"][0], rel=1e-6)
    assert original["b"] == pytest.approx(raw["b"], rel=1e-6)


# NIST StRD certified values (tests/data/README.md): [w_1 … w_d, b] and the residual sum of squares
CERTIFIED = {
    "norris": ([1.00211681802045, -0.262323073774029], 26.6173985294224),
    "longley": (
        [15.0618722713733, -0.358191792925910e-01, -2.02022980381683, -1.03322686717359,
         -0.511041056535807e-01, 1829.15146461355, -3482258.63459582],
        836424.055505915,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", ["norris", "longley"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("standardize", ["false", "true"])
def test_certified_answer_whatever_the_training_dtype(
    name: str, dtype: str, standardize: str
) -> None:
    """issue 13: the closed form came from the float32 training copy, missing the certified
    values by 1e-5; the answer is now computed from the float64 values of the file."""
    from pathlib import Path

    from lrtrain.theory.analysis import analyse_dataset

    csv_path = Path(__file__).parent / "data" / f"{name}.csv"
    over = [f"data.path={csv_path}", f"train.dtype={dtype}", f"data.standardize={standardize}"]
    cfg = load_config(None, ["data.source=csv", *over])
    ds = load_dataset(cfg)
    assert ds.x.dtype == getattr(torch, dtype)  # the training copy stays in its dtype
    a = analyse_dataset(ds, cfg.optimizer)
    theta = a.theta_star
    if ds.standardization is not None:
        w, b = ds.standardization.original(theta[:-1], theta[-1])
        theta = [*w, b]
    expected, rss = CERTIFIED[name]
    assert theta == pytest.approx(expected, rel=1e-9)
    assert a.loss_star * ds.n == pytest.approx(rss, rel=1e-10)


def test_synthetic_answer_is_that_of_the_generated_float64_rows() -> None:
    from lrtrain.data.synthetic import synthetic_rows
    from lrtrain.theory.analysis import analyse_dataset

    answers = []
    for dtype in ("float32", "float64"):
        cfg = load_config(None, [f"train.dtype={dtype}", "data.x.start=1000"])
        answers.append(analyse_dataset(load_dataset(cfg), cfg.optimizer))
    x, y = synthetic_rows(cfg.data, cfg.seed, 0, cfg.data.n_samples)  # float64, independent
    design = np.c_[x.numpy(), np.ones(len(x))]
    theta, *_ = np.linalg.lstsq(design, y[:, 0].numpy(), rcond=None)
    loss = float(np.mean((design @ theta - y[:, 0].numpy()) ** 2))
    for a in answers:
        assert a.theta_star == pytest.approx(theta.tolist(), rel=1e-9)
        assert a.loss_star == pytest.approx(loss, rel=1e-10)
        assert a.eigenvalues == pytest.approx(answers[1].eigenvalues, rel=1e-12)


def test_float32_reports_the_gap_floor_instead_of_running_to_max_iter(tmp_path) -> None:
    from lrtrain.api import fit

    over = ["device=cpu", "optimizer.lr=auto", "optimizer.momentum=auto",
            "train.target_gap=1e-12", "train.max_iter=5000", "output.plots=[]"]  # fmt: skip
    run32 = fit(load_config(None, over), out=tmp_path / "f32", draw=False)
    floor = run32.summary["analysis"]["gap_floor"]
    assert 1e-8 < floor < 1e-4
    assert any("lies below what float32 can resolve" in w for w in run32.summary["warnings"])
    assert run32.summary["status"] == "converged" and run32.summary["steps"] < 5000
    assert run32.summary["optimality_gap"]["relative"] <= floor
    run64 = fit(load_config(None, [*over, "train.dtype=float64"]), out=tmp_path / "f64", draw=False)
    assert run64.summary["analysis"]["gap_floor"] < 1e-12
    assert run64.summary["warnings"] == []
    assert run64.summary["optimality_gap"]["relative"] <= 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_noiseless_data_trains_to_the_target_not_to_a_floor_over_a_zero_loss(
    tmp_path, dtype: str
) -> None:
    """y = 3x exactly: loss* is rounding (~1e-31), so the gap is relative to the initial loss
    (gap_scale), for the floor and the summary as for the stopping rule. Relative to loss*
    alone, the floor came out ~1e18 and the fit "converged" after 0 steps at the start."""
    from lrtrain.api import fit

    over = ["device=cpu", "data.noise_std=0", "optimizer.lr=auto", "optimizer.momentum=auto",
            "train.target_gap=1e-6", "output.plots=[]", f"train.dtype={dtype}"]  # fmt: skip
    run = fit(load_config(None, over), out=tmp_path / "exact", draw=False)
    s = run.summary
    assert s["closed_form"]["loss"] < 1e-20 and s["analysis"]["gap_floor"] < 1e-6
    assert not any("can resolve" in w for w in s["warnings"])
    assert s["status"] == "converged" and s["steps"] == s["theory"]["predicted_steps"]
    initial = s["initial"]["loss"]
    assert s["optimality_gap"]["relative"] == pytest.approx(s["final"]["loss"] / initial, rel=1e-6)
    assert s["optimality_gap"]["relative"] <= 1e-6
    # a gap of 1e-6 of the initial loss: |θ − θ*| ≲ √(1e-6 · loss0 / λ_min)
    assert s["final"]["w"][0] == pytest.approx(3.0, abs=5e-3)


def test_nist_norris_certified_values(tmp_path) -> None:
    """NIST StRD 'Norris': the closed form, and a run of lrtrain itself (standardised, auto
    settings, float64), against the certified regression statistics."""
    from pathlib import Path

    from lrtrain.api import fit

    csv_path = Path(__file__).parent / "data" / "norris.csv"
    over = ["device=cpu", "data.source=csv", f"data.path={csv_path}", "train.dtype=float64"]
    cfg = load_config(None, over)
    ds = load_dataset(cfg)
    a = analyse(ds.x, ds.y, cfg.optimizer)
    b0, b1, rss = -0.262323073774029, 1.00211681802045, 26.6173985294224
    assert a.theta_star == pytest.approx([b1, b0], rel=1e-11)
    assert a.loss_star * 36 == pytest.approx(rss, rel=1e-11)
    auto = ["data.standardize=true", "optimizer.lr=auto", "optimizer.momentum=auto",
            "train.target_gap=1e-14", "train.max_iter=500"]  # fmt: skip
    run = fit(load_config(None, [*over, *auto]), out=tmp_path / "norris", draw=False)
    final = run.summary["final_original"]
    assert final["w"][0] == pytest.approx(b1, rel=1e-8)
    assert final["b"] == pytest.approx(b0, rel=1e-5)
    ss_tot = float(((ds.y - ds.y.mean()) ** 2).sum())
    assert 1 - rss / ss_tot == pytest.approx(0.999993745883712, rel=1e-12)
    # in the default dtype, float32: the same certified closed form, and a fit as close to it
    # as float32 parameters go
    run32 = fit(load_config(None, [*over[:-1], *auto]), out=tmp_path / "norris32", draw=False)
    assert run32.summary["closed_form_original"]["w"][0] == pytest.approx(b1, rel=1e-11)
    assert run32.summary["closed_form_original"]["b"] == pytest.approx(b0, rel=1e-11)
    assert run32.summary["final_original"]["w"][0] == pytest.approx(b1, rel=1e-6)
    assert run32.summary["final_original"]["b"] == pytest.approx(b0, rel=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_the_gap_floor_bound_holds_on_offset_and_badly_scaled_rows(seed: int) -> None:
    """gap_floor_bound, from the statistics alone, lies above the floor measured on the rows
    (float32 and float64, standardised or not, offsets up to 1e6) — so skipping the read
    where it lies below the target never hides a floor that would have moved it."""
    from lrtrain.data.dataset import dataset_from_rows
    from lrtrain.theory.analysis import gap_floor, gap_floor_bound, gap_scale

    gen = np.random.default_rng(seed)
    n, d = int(gen.integers(50, 100_000)), int(gen.integers(1, 6))
    x = gen.standard_normal((n, d)) * 10 ** gen.uniform(-3, 3, d) + 10 ** gen.uniform(-2, 6)
    noise = 10 ** gen.uniform(-6, 1) * gen.standard_normal(n)
    y = x @ gen.standard_normal(d) + 10 ** gen.uniform(-2, 5) + noise
    for dtype in (torch.float32, torch.float64):
        for standardize in (False, True):
            rows = torch.from_numpy(x), torch.from_numpy(y).reshape(-1, 1)
            names = [f"x{i}" for i in range(d)]
            ds = dataset_from_rows(*rows, names, "y", dtype, standardize, "rows")
            analysis = analyse_dataset(ds, load_config(None, []).optimizer)
            measured = gap_floor(ds, analysis)  # target 0: always read
            stats = ds.answer().stats
            scale = gap_scale(analysis.target_loss, float(stats.yty) / stats.n)
            bound = gap_floor_bound(stats, analysis, dtype) / scale
            assert measured <= max(bound, 2 * torch.finfo(dtype).eps)


def test_a_gap_floor_below_the_target_is_bounded_without_reading_a_row() -> None:
    from lrtrain.data.dataset import StreamSpec
    from lrtrain.theory.analysis import gap_floor

    ds = load_dataset(load_config(None, ["train.dtype=float64"]))
    analysis = analyse_dataset(ds, load_config(None, []).optimizer)

    def unread(chunk: int, start: int, stop: int) -> Any:
        raise AssertionError("a row was read")

    ds.stream = StreamSpec(unread, 0, ds.n)
    assert 0 < gap_floor(ds, analysis, target_gap=1e-6) < 1e-12
    with pytest.raises(AssertionError, match="a row was read"):
        gap_floor(ds, analysis, target_gap=1e-20)


def test_a_target_below_float64s_floor_does_not_suggest_float64() -> None:
    from dataclasses import replace

    from lrtrain.theory.analysis import warnings_for

    ds = load_dataset(load_config(None, ["train.dtype=float64"]))
    analysis = replace(analyse_dataset(ds, load_config(None, []).optimizer), gap_floor=4e-16)
    said = " ".join(warnings_for(analysis, False, 1e-300, "float64"))
    assert "lies below what float64 can resolve" in said and "set train.dtype" not in said
    assert "no dtype resolves further" in said
    said32 = " ".join(warnings_for(replace(analysis, gap_floor=1e-7), False, 1e-12, "float32"))
    assert "set train.dtype: float64 to go further" in said32


def test_a_far_start_does_not_make_a_true_loss_star_count_as_zero() -> None:
    """y ≈ 1e8 trained from θ = 0: an initial loss of 1e16 against a loss* of ~25. With loss*
    counted as zero below 1e-12 of the initial loss, the gap was taken relative to 1e16 and
    the fit "converged" at a loss 5 000 × loss*, its coefficients 5.6e-4 off. (Standardised,
    the target is now centred too, so training starts at its variance: the gap is what it
    says, and the coefficients are as near as a relative gap of 1e-9 puts them.)"""
    from sklearn.linear_model import LinearRegression

    from lrtrain import GDRegressor
    from lrtrain.theory.analysis import gap_scale

    assert gap_scale(24.0, 1e16) == 24.0 and gap_scale(1e-31, 300.0) == 300.0
    gen = np.random.default_rng(0)
    x = gen.standard_normal((5000, 3)) * [1, 10, 100] + [0, 50, 1000]
    y = x @ [3.0, -2.0, 0.5] + 1e8 + 5 * gen.standard_normal(5000)
    model = GDRegressor(dtype="float64").fit(x, y)
    reference = LinearRegression().fit(x, y)
    assert model.summary_["status"] == "converged"
    assert model.summary_["final"]["loss"] <= model.closed_form_["loss"] * (1 + 1e-6)
    assert model.coef_ == pytest.approx(reference.coef_, rel=1e-5)
