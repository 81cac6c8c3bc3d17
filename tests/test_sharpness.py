"""The sharpness (engine.sharpness) against the explicit Hessian's eigenvalues
(torch.func.hessian + eigvalsh) on networks, and against the closed form on the linear model."""

from __future__ import annotations

import pytest
import torch

from lrtrain.config.schema import load_config
from lrtrain.data.distributed import SINGLE
from lrtrain.data.load import load_dataset
from lrtrain.engine.batches import Rows
from lrtrain.engine.network import MLP
from lrtrain.engine.sharpness import hessian_operator, top_eigenvalues
from lrtrain.engine.train import train

F64 = torch.float64


def explicit_top(model: MLP, theta: torch.Tensor, rows: Rows) -> torch.Tensor:
    """eigvalsh of the P × P Hessian torch.func builds, per replica, descending."""
    tops = []
    for k in range(theta.shape[0]):
        hessian = torch.func.hessian(lambda t: model.loss_at(t.unsqueeze(0), rows)[0])(theta[k])
        tops.append(torch.linalg.eigvalsh(hessian).flip(0)[:2])
    return torch.stack(tops)


def data(d: int = 1, n: int = 60) -> Rows:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, dtype=F64, generator=gen)
    y = torch.sin(2 * x.sum(dim=1, keepdim=True)) + 0.1 * torch.randn(
        n, 1, dtype=F64, generator=gen
    )
    return Rows(x, y, n)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid"])
@pytest.mark.parametrize(("d", "hidden"), [(1, [3, 4, 2]), (3, [16, 8])])
def test_lanczos_equals_the_explicit_hessians_top_eigenvalues(d, hidden, activation) -> None:
    model = MLP(d, hidden, activation, replicas=3, dtype=F64)
    model.init_torch_(0)
    gen = torch.Generator().manual_seed(2)
    theta = model.theta() + 0.5 * torch.randn(model.theta().shape, dtype=F64, generator=gen)
    rows = data(d)
    start = torch.randn(theta.shape, dtype=F64, generator=gen)
    estimate = top_eigenvalues(hessian_operator(model.loss_at, theta, rows), start, pairs=2)
    want = explicit_top(model, theta, rows)
    assert torch.allclose(estimate.values, want, rtol=1e-6, atol=0), (estimate.values, want)
    # the vectors are unit eigenvectors: H u = λ u
    for k in range(3):
        hessian = torch.func.hessian(lambda t: model.loss_at(t.unsqueeze(0), rows)[0])(theta[k])
        u = estimate.vectors[k, 0]
        assert torch.allclose(hessian @ u, estimate.values[k, 0] * u, atol=1e-6 * want[k, 0])


@pytest.mark.slow
def test_a_network_of_a_few_thousand_parameters() -> None:
    model = MLP(2, [48, 48], "tanh", replicas=1, dtype=F64)  # P = 2 545
    model.init_torch_(3)
    rows = data(2, 200)
    start = torch.randn(model.theta().shape, dtype=F64)
    apply = hessian_operator(model.loss_at, model.theta(), rows)
    estimate = top_eigenvalues(apply, start, pairs=2)
    want = explicit_top(model, model.theta(), rows)  # the 2 545 × 2 545 Hessian, ~3 s
    assert model.n_params == 2545
    assert torch.allclose(estimate.values[0], want[0], rtol=1e-6, atol=0)
    assert estimate.products < 100  # Lanczos, not P products


def test_warm_start_and_an_exact_eigenvector_as_start() -> None:
    model = MLP(1, [8], "tanh", replicas=2, dtype=F64)
    model.init_torch_(0)
    rows = data()
    apply = hessian_operator(model.loss_at, model.theta(), rows)
    cold = top_eigenvalues(apply, torch.randn(model.theta().shape, dtype=F64), pairs=2)
    # starting on the top eigenvector itself: an invariant subspace at once, continued from a
    # fresh direction, and the second pair found too
    warm = top_eigenvalues(apply, cold.vectors[:, 0].clone(), pairs=2)
    assert torch.allclose(warm.values, cold.values, rtol=1e-9)
    assert top_eigenvalues(apply, cold.vectors[:, 0].clone()).products <= 2


def test_a_replica_that_is_not_finite_leaves_the_others_alone() -> None:
    model = MLP(1, [4], "relu", replicas=3, dtype=F64)
    model.init_torch_(0)
    theta = model.theta().clone()
    theta[1] = float("nan")
    rows = data()
    estimate = top_eigenvalues(hessian_operator(model.loss_at, theta, rows),
                               torch.randn(theta.shape, dtype=F64))  # fmt: skip
    assert torch.isnan(estimate.values[1]).all()
    want = explicit_top(model, theta[[0, 2]], rows)
    assert torch.allclose(estimate.values[[0, 2], 0], want[:, 0], rtol=1e-6)


def test_a_replica_whose_products_overflow_float32_leaves_the_others_alone() -> None:
    """A diverged replica in float32 (`sweep-lr model.kind=mlp --lrs 1e-12,100`): its products
    are finite, their sums are not, and LAPACK's eigh failed for the whole batch."""
    rows = data()
    assert rows.x is not None and rows.y is not None
    rows = Rows(rows.x.float(), rows.y.float(), rows.total)
    model = MLP(1, [4], "relu", replicas=3, dtype=torch.float32)
    model.init_torch_(0)
    theta = model.theta().clone()
    start = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2))
    calm = top_eigenvalues(hessian_operator(model.loss_at, theta, rows), start)
    theta[1] *= 1e10
    estimate = top_eigenvalues(hessian_operator(model.loss_at, theta, rows), start)
    assert torch.isnan(estimate.values[1]).all()
    assert torch.allclose(estimate.values[[0, 2], 0], calm.values[[0, 2], 0], rtol=1e-4)


@pytest.mark.parametrize(
    "extra",
    [
        ["train.dtype=float64"],
        ["train.dtype=float64", "train.batch_size=10"],  # the full batch's, not the batch's
        ["train.dtype=float64", "data.n_samples=70000", "train.gradient=gram", "optimizer.lr=1e-9"],
        ["train.dtype=float64", "data.n_samples=70000", "data.stream=true", "optimizer.lr=1e-9"],
    ],
)
def test_the_linear_models_sharpness_is_the_closed_forms_at_every_step(extra) -> None:
    config = load_config("lecture", ["train.sharpness_every=7", "train.max_iter=30", *extra])
    dataset = load_dataset(config, SINGLE)
    result = train(dataset, config)
    exact = dataset.answer()
    lam_max = float(torch.linalg.eigvalsh(exact.stats.xtx * (2.0 / exact.stats.n))[-1])
    assert result.sharpness is not None
    assert result.sharpness_steps == [0, 7, 14, 21, 28, 30]
    assert abs(result.sharpness[:, 0, 0] / lam_max - 1).max() < 1e-9


def test_a_network_is_measured_at_theta0_and_the_end_even_when_not_asked() -> None:
    config = load_config("lecture", ["model.kind=mlp", "train.max_iter=25"])
    result = train(load_dataset(config, SINGLE), config, lrs=[0.001, 0.01])
    assert result.sharpness_steps == [0, 25]
    assert result.sharpness is not None and result.sharpness.shape == (2, 2, 2)
    assert result.top_projection is not None and result.top_projection.shape[1] == 2
    # one start for every rate: the same λ_max(θ₀)
    assert result.sharpness[0, 0, 0] == pytest.approx(result.sharpness[0, 1, 0], rel=1e-5)
