"""The training loop against independent references: a plain hand-written lesson loop,
finite differences, the closed form and the critical learning rate."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrtrain.config.schema import load_config
from lrtrain.data.devices import resolve_device
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train
from lrtrain.errors import DeviceError
from lrtrain.theory.analysis import analyse


class LessonModel(nn.Module):
    """The lesson's model, written out again independently of lrtrain's."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, d))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.inner(x, self.w) + self.b


def lesson_loop(x, y, steps, dtype=torch.float32, batches=None, **sgd):
    model = LessonModel(x.shape[1]).to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), **sgd)
    losses = []
    for t in range(steps):
        xb, yb = (x, y) if batches is None else (x[batches(t)], y[batches(t)])
        loss = torch.mean((model(xb) - yb) ** 2)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return torch.cat([model.w.detach()[0], model.b.detach()]).double(), losses


def assert_resume_is_exact(ds, cfg, at: int = 61) -> None:
    """A run interrupted at step ``at`` and resumed ends exactly where an uninterrupted one does."""
    whole = train(ds, cfg)
    calls = iter(range(10**6))
    half = train(ds, cfg, should_stop=lambda: next(calls) >= at)
    resumed = train(ds, cfg, resume=half.engine_state())
    assert torch.equal(resumed.final_theta, whole.final_theta)
    assert torch.equal(resumed.loss, whole.loss)


def _setup(*overrides: str):
    cfg = load_config(None, ["device=cpu", *overrides])
    return cfg, load_dataset(cfg)


def test_default_run_reproduces_the_lesson_loop() -> None:
    cfg, ds = _setup()
    result = train(ds, cfg)
    theta, losses = lesson_loop(ds.x, ds.y, 100, lr=1e-3)
    assert result.statuses == ["completed"] and result.stop_steps == [100]
    assert torch.allclose(result.final_theta[0], theta, atol=1e-6, rtol=0)
    history = result.replica_history(0)
    assert len(history["loss"]) == 101
    assert history["loss"][:100].tolist() == pytest.approx(losses, rel=1e-6)


@pytest.mark.parametrize(
    "sgd",
    [
        {"momentum": 0.9},
        {"momentum": 0.5, "nesterov": True},
        {"weight_decay": 0.1},
        {"momentum": 0.8, "weight_decay": 0.05, "nesterov": True},
    ],
)
def test_optimizer_settings_match_torch_sgd(sgd: dict) -> None:
    over = [f"optimizer.{k}={str(v).lower()}" for k, v in sgd.items()]
    cfg, ds = _setup("optimizer.lr=0.004", "train.max_iter=200", "train.dtype=float64", *over)
    result = train(ds, cfg)
    theta, _ = lesson_loop(ds.x, ds.y, 200, torch.float64, lr=0.004, **sgd)
    assert torch.allclose(result.final_theta[0], theta, atol=1e-10, rtol=0)

    cfg, ds = _setup("train.dtype=float64")
    a = analyse(ds.x, ds.y, cfg.optimizer)
    # 5 000 steps from the statistics (test_gradients.py: equal to the autograd steps)
    cfg = load_config(
        None,
        [
            "device=cpu",
            "train.dtype=float64",
            "train.gradient=gram",
            f"optimizer.lr={0.95 * a.critical_lr}",
            "train.max_iter=5000",
        ],
    )
    result = train(ds, cfg)
    err = (result.final_theta[0] - torch.tensor(a.theta_star, dtype=torch.float64)).norm()
    assert float(err) < 1e-3


def test_initial_gradient_matches_finite_differences_and_formula() -> None:
    cfg, ds = _setup("train.dtype=float64", "train.max_iter=1")
    result = train(ds, cfg)
    grad = result.initial_grad[0]
    x = torch.cat([ds.x, torch.ones(ds.n, 1, dtype=torch.float64)], 1)
    y = ds.y[:, 0]
    analytic = -2 * (x * (y - x @ torch.zeros(2, dtype=torch.float64)).unsqueeze(1)).mean(0)
    assert torch.allclose(grad, analytic, rtol=1e-12)

    def loss(theta: torch.Tensor) -> float:
        return float(((x @ theta - y) ** 2).mean())

    eps = 1e-6
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = eps
        fd = (loss(e) - loss(-e)) / (2 * eps)
        assert float(grad[i]) == pytest.approx(fd, rel=1e-7)
    history = result.replica_history(0)
    assert float(history["grad_norm"][0]) == pytest.approx(float(grad.norm()))


@pytest.mark.parametrize(
    "extra", [[], ["optimizer.momentum=0.5"], ["optimizer.momentum=0.5", "optimizer.nesterov=true"]]
)
def test_critical_lr_separates_convergence_from_divergence(extra: list[str]) -> None:
    cfg, ds = _setup("train.dtype=float64", *extra)
    crit = analyse(ds.x, ds.y, cfg.optimizer).critical_lr
    below = load_config(
        None,
        [
            "device=cpu",
            "train.dtype=float64",
            "train.max_iter=3000",
            f"optimizer.lr={0.97 * crit}",
            *extra,
        ],
    )
    above = load_config(
        None,
        [
            "device=cpu",
            "train.dtype=float64",
            "train.max_iter=3000",
            f"optimizer.lr={1.03 * crit}",
            *extra,
        ],
    )
    good, bad = train(ds, below), train(ds, above)
    assert good.statuses == ["completed"]
    assert good.final_loss[0] < good.replica_history(0)["loss"][0] * 1e-2
    assert bad.statuses == ["diverged"]


def test_divergence_stops_at_first_bad_step_without_nan() -> None:
    cfg, ds = _setup("optimizer.lr=0.1", "train.max_iter=1000")
    result = train(ds, cfg)
    history = result.replica_history(0)
    stop = result.stop_steps[0]
    assert result.statuses == ["diverged"] and stop < 200
    assert bool(torch.isfinite(history["loss"]).all()) and bool(
        torch.isfinite(history["theta"]).all()
    )
    loss0 = float(history["loss"][0])
    assert float(history["loss"][-1]) > 1e6 * loss0
    assert all(float(v) <= 1e6 * loss0 for v in history["loss"][:-1])
    assert int(history["step"][-1]) == stop


def test_tol_stops_with_converged() -> None:
    cfg, ds = _setup(
        "optimizer.lr=0.02", "train.max_iter=100000", "train.tol=1e-9", "train.dtype=float64"
    )
    result = train(ds, cfg)
    history = result.replica_history(0)
    assert result.statuses == ["converged"] and result.stop_steps[0] < 100000
    assert abs(float(history["loss"][-1] - history["loss"][-2])) < 1e-9
    assert abs(float(history["loss"][-2] - history["loss"][-3])) >= 1e-9


def test_log_every_keeps_every_kth_row_and_the_last() -> None:
    cfg, ds = _setup("train.log_every=7", "train.max_iter=50")
    history = train(ds, cfg).replica_history(0)
    assert history["step"].tolist() == [*range(0, 50, 7), 50]


def test_progress_callback_and_interrupt() -> None:
    cfg, ds = _setup("train.max_iter=500")
    calls = []
    seen = []

    def should_stop() -> bool:
        seen.append(1)
        return len(seen) > 123

    result = train(
        ds, cfg, progress=lambda s, t, losses: calls.append((s, t)), should_stop=should_stop
    )
    assert result.statuses == ["interrupted"] and result.stop_steps == [123]
    assert calls and calls[-1] == (123, 500) and all(t == 500 for _, t in calls)


def test_replicas_equal_separate_runs_and_diverging_one_is_frozen() -> None:
    lrs = [0.0005, 0.005, 0.028, 0.05]
    cfg, ds = _setup("train.max_iter=300", "optimizer.momentum=0.3", "train.dtype=float64")
    together = train(ds, cfg, lrs=lrs)
    for k, lr in enumerate(lrs):
        alone = train(ds, cfg, lrs=[lr])
        assert together.statuses[k] == alone.statuses[0]
        assert together.stop_steps[k] == alone.stop_steps[0]
        assert torch.allclose(together.final_theta[k], alone.final_theta[0], atol=1e-10)
    assert together.statuses[-1] == "diverged"
    assert bool(torch.isfinite(together.final_theta).all())


@pytest.mark.parametrize("gradient", ["autograd", "gram"])
@pytest.mark.parametrize(
    "optimizer", [["optimizer.momentum=0"], ["optimizer.momentum=0.5"], ["optimizer.name=adam"]]
)
def test_a_replica_whose_gradient_overflows_stays_where_it_stopped(
    gradient: str, optimizer: list[str]
) -> None:
    """lr 1e36 throws θ to ~1e38 in one step (float32's largest is 3.4e38; Adam: to ~1e36):
    the loss there is infinite, so that replica stops at step 1, and its gradient is infinite
    at every later step. It must stay at θ_1 — finite, not NaN (inf × 0) — and the others run
    as alone."""
    cfg, ds = _setup("train.max_iter=50", f"train.gradient={gradient}", *optimizer)
    together = train(ds, cfg, lrs=[0.001, 1e36, 0.01])
    assert together.statuses[1] == "diverged" and together.stop_steps[1] == 1
    history = together.replica_history(1)
    thrown = history["theta"][1]  # θ_1, where the replica stopped
    assert bool(torch.isfinite(thrown).all()) and float(thrown.abs().max()) >= 1e35
    assert torch.equal(together.final_theta[1], thrown)
    for k, lr in ((0, 0.001), (2, 0.01)):  # float32 products of 3 replicas, not of 1
        alone = train(ds, cfg, lrs=[lr])
        assert torch.allclose(together.final_theta[k], alone.final_theta[0], rtol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu() -> None:
    cfg, ds = _setup("train.dtype=float64", "train.max_iter=200", "optimizer.lr=0.02")
    cpu = train(ds, cfg)
    gpu = train(
        ds,
        load_config(
            None, ["device=cuda", "train.dtype=float64", "train.max_iter=200", "optimizer.lr=0.02"]
        ),
    )
    assert gpu.device.startswith("cuda")
    assert torch.allclose(cpu.final_theta, gpu.final_theta, atol=1e-10)
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_float64_and_float32_agree() -> None:
    cfg32, ds32 = _setup()
    cfg64, ds64 = _setup("train.dtype=float64")
    a, b = train(ds32, cfg32), train(ds64, cfg64)
    assert math.isclose(a.final_loss[0], b.final_loss[0], rel_tol=1e-5)


# --- automatic settings and train.target_gap --------------------------------------------------


@pytest.mark.parametrize(
    "auto",
    [["optimizer.lr=auto"], ["optimizer.lr=auto", "optimizer.momentum=auto"]],
)
def test_steps_to_target_gap_match_the_theory(auto: list[str]) -> None:
    from lrtrain.api import prepare
    from lrtrain.theory.dynamics import predicted_steps

    cfg = load_config(
        None,
        ["device=cpu", "train.dtype=float64", "train.max_iter=5000", "train.target_gap=1e-6",
         *auto],
    )  # fmt: skip
    cfg, ds, a, settings = prepare(cfg)
    assert settings is not None and cfg.optimizer.lr == settings.lr
    result = train(ds, cfg, loss_ref=a.target_loss)
    assert result.statuses == ["converged"]
    opt = cfg.optimizer
    theory = predicted_steps(a, [0.0, 0.0], opt.lr, opt.momentum, False, 1e-6, 5000)
    assert theory is not None
    assert abs(result.stop_steps[0] - theory) <= 0.1 * theory
    assert (result.final_loss[0] - a.target_loss) / a.target_loss <= 1e-6


def test_nesterov_auto_beats_gradient_descent_at_eta_star() -> None:
    from lrtrain.api import prepare

    steps = {}
    for extra in (
        ["optimizer.lr=auto"],
        ["optimizer.lr=auto", "optimizer.momentum=auto", "optimizer.nesterov=true"],
    ):
        cfg = load_config(
            None, ["device=cpu", "train.dtype=float64", "train.max_iter=5000",
                   "train.target_gap=1e-6", *extra],
        )  # fmt: skip
        cfg, ds, a, _ = prepare(cfg)
        result = train(ds, cfg, loss_ref=a.target_loss)
        assert result.statuses == ["converged"]
        steps[cfg.optimizer.nesterov] = result.stop_steps[0]
    assert steps[True] < steps[False] / 4


def test_target_gap_without_noise_is_relative_to_the_initial_loss() -> None:
    from lrtrain.api import prepare

    cfg = load_config(
        None,
        ["device=cpu", "train.dtype=float64", "data.noise_std=0", "optimizer.lr=auto",
         "train.max_iter=3000", "train.target_gap=1e-8"],
    )  # fmt: skip
    cfg, ds, a, _ = prepare(cfg)
    assert a.target_loss < 1e-20
    result = train(ds, cfg, loss_ref=a.target_loss)
    history = result.replica_history(0)
    assert result.statuses == ["converged"]
    assert result.final_loss[0] <= 1e-8 * float(history["loss"][0])
    assert float(history["loss"][-2]) > 1e-8 * float(history["loss"][0])  # not one step earlier


def test_auto_needs_resolving_and_target_gap_needs_the_optimum() -> None:
    cfg, ds = _setup("optimizer.lr=auto")
    with pytest.raises(ValueError, match="resolved"):
        train(ds, cfg)
    cfg, ds = _setup("train.target_gap=1e-3")
    with pytest.raises(ValueError, match="loss_ref"):
        train(ds, cfg)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    d=st.integers(1, 5),
    scales=st.lists(st.floats(0.1, 10.0), min_size=5, max_size=5),
    mode=st.sampled_from(["plain", "polyak", "nesterov"]),
    seed=st.integers(0, 2**31),
)
def test_auto_never_diverges_on_well_posed_problems(
    d: int, scales: list[float], mode: str, seed: int
) -> None:
    """Random problems with feature scales 0.1 … 10 (κ up to about 10⁴): the automatic
    settings never diverge and end below the initial loss, whichever rule chose them."""
    from lrtrain.data.dataset import Dataset, feature_major
    from lrtrain.theory.analysis import auto_settings

    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    x = (1.0 + torch.randn(60, d, generator=gen, dtype=f64)) * torch.tensor(scales[:d], dtype=f64)
    y = x @ torch.randn(d, 1, generator=gen, dtype=f64) + torch.randn(
        60, 1, generator=gen, dtype=f64
    )
    ds = Dataset(feature_major(x), y, [f"x_{i}" for i in range(d)], "y")
    nesterov = mode == "nesterov"
    cfg = load_config(None, ["device=cpu", "train.dtype=float64", "train.max_iter=300"])
    a = analyse(ds.x, ds.y, cfg.optimizer)
    auto = auto_settings(a, 0.0 if mode == "plain" else None, nesterov)
    opt = cfg.optimizer.model_copy(
        update={
            "lr": auto.lr,
            "momentum": auto.momentum,
            "nesterov": nesterov and auto.momentum > 0,
        }
    )
    # Momentum's transient can raise the loss for a while before the rate wins: run for ~30
    # time constants of the slowest mode, which the rate gives.
    # (Plain gradient descent below 2/λ_max lowers the loss every step: 300 steps will do.)
    steps = 300 if mode == "plain" else min(5_000, math.ceil(30 / (1 - auto.rate)))
    train_cfg = cfg.train.model_copy(update={"max_iter": steps})
    result = train(ds, cfg.model_copy(update={"optimizer": opt, "train": train_cfg}))
    assert result.statuses == ["completed"]
    history = result.replica_history(0)
    assert bool(torch.isfinite(history["loss"]).all())
    assert result.final_loss[0] <= float(history["loss"][0])
    assert auto.rate < 1


# --- interruption and exact resume -------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["optimizer.momentum=0.9", "optimizer.lr=0.002"],
        ["train.batch_size=16", "optimizer.momentum=0.5", "optimizer.nesterov=true"],
        ["train.batch_size=7", "train.log_every=3", "optimizer.weight_decay=0.01"],
        # the Gram path's loop runs in inference mode: nothing it hands over may be an
        # inference tensor (a resume updates the momentum buffers in place)
        ["train.gradient=gram", "optimizer.momentum=0.9", "optimizer.lr=0.002"],
    ],
)
def test_interrupted_then_resumed_equals_uninterrupted_bit_for_bit(extra: list[str]) -> None:
    cfg, ds = _setup("train.max_iter=150", *extra)
    whole = train(ds, cfg)
    assert not any(t.is_inference() for t in _tensors(whole.engine_state()))
    calls = iter(range(10**6))
    half = train(ds, cfg, should_stop=lambda: next(calls) >= 61)
    assert half.statuses == ["interrupted"] and half.stop_steps == [61]
    state = half.engine_state()
    assert state["step"] == 61
    resumed = train(ds, cfg, resume=state)
    assert resumed.statuses == whole.statuses and resumed.stop_steps == whole.stop_steps
    assert torch.equal(resumed.final_theta, whole.final_theta)
    assert torch.equal(resumed.loss, whole.loss) and torch.equal(resumed.theta, whole.theta)
    assert torch.equal(resumed.grad_norm, whole.grad_norm)
    assert resumed.final_loss == whole.final_loss
    assert torch.equal(resumed.initial_grad, whole.initial_grad)


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


def test_resume_can_extend_max_iter() -> None:
    cfg, ds = _setup("train.max_iter=100", "optimizer.momentum=0.9")
    longer = load_config(None, ["device=cpu", "train.max_iter=250", "optimizer.momentum=0.9"])
    whole = train(ds, longer)
    first = train(ds, cfg)
    assert first.statuses == ["completed"]
    resumed = train(ds, longer, resume=first.engine_state())
    assert resumed.stop_steps == whole.stop_steps == [250]
    assert torch.equal(resumed.final_theta, whole.final_theta)
    assert torch.equal(resumed.loss, whole.loss)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_target_gap_and_resume() -> None:
    """On the GPU (captured step): target_gap stops where the CPU does, and a resumed run ends
    where an uninterrupted one does."""
    from lrtrain.api import prepare

    over = ["train.dtype=float64", "train.max_iter=3000", "train.target_gap=1e-6",
            "optimizer.lr=auto", "optimizer.momentum=auto"]  # fmt: skip
    results = {}
    for device in ("cpu", "cuda"):
        cfg, ds, a, _ = prepare(load_config(None, [f"device={device}", *over]))
        results[device] = train(ds, cfg, loss_ref=a.target_loss)
    assert results["cuda"].statuses == ["converged"]
    assert results["cuda"].stop_steps == results["cpu"].stop_steps
    cfg, ds = _setup("device=cuda", "train.dtype=float64", "train.max_iter=400",
                     "optimizer.momentum=0.9", "optimizer.lr=0.002")  # fmt: skip
    whole = train(ds, cfg)
    calls = iter(range(10**6))
    half = train(ds, cfg, should_stop=lambda: next(calls) >= 150)
    resumed = train(ds, cfg, resume=half.engine_state())
    assert torch.allclose(resumed.final_theta, whole.final_theta, rtol=1e-12, atol=0)
    assert torch.allclose(resumed.loss, whole.loss, rtol=1e-12, atol=0)
