"""The model is the lesson's, and K replicas are K independent copies of it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrtrain.engine.model import MyLinearRegressionModel


def test_lesson_shapes_and_forward() -> None:
    model = MyLinearRegressionModel(1)
    assert isinstance(model.w, nn.Parameter) and model.w.shape == (1, 1)
    assert (
        model.b.shape == (1,)
        and float(model.w.detach().abs().sum() + model.b.detach().abs().sum()) == 0
    )
    with torch.no_grad():
        model.w.fill_(3.0)
        model.b.fill_(0.5)
    x = torch.arange(0.0, 1.0, 0.25).unsqueeze(1)
    # 3x + 0.5 at x = 0, 0.25, 0.5, 0.75, worked out by hand (exact in binary)
    assert model(x).tolist() == [[0.5], [1.25], [2.0], [2.75]]


def test_replicas_are_independent() -> None:
    model = MyLinearRegressionModel(3, replicas=4)
    with torch.no_grad():
        model.w.copy_(torch.randn(4, 3))
        model.b.copy_(torch.randn(4))
    x = torch.randn(10, 3)
    out = model(x)
    assert out.shape == (10, 4)
    # each column is its own model, checked in float64 numpy, one row and weight at a time
    xs, ws, bs = x.double().numpy(), model.w.detach().double().numpy(), model.b.detach().numpy()
    for k in range(4):
        expected = [sum(xs[i, j] * ws[k, j] for j in range(3)) + bs[k] for i in range(10)]
        assert out[:, k].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_normal_init_is_seeded_and_shared() -> None:
    a, b = MyLinearRegressionModel(2, replicas=3), MyLinearRegressionModel(2, replicas=3)
    a.init_normal_(7)
    b.init_normal_(7)
    assert (
        torch.equal(a.w, b.w)
        and torch.equal(a.w[0], a.w[2])
        and float(a.w.detach().abs().sum()) > 0
    )


def test_theta_is_a_live_view_of_both_parameters() -> None:
    model = MyLinearRegressionModel(3, replicas=4, dtype=torch.float64)
    with torch.no_grad():
        model.w.copy_(torch.randn(4, 3, dtype=torch.float64))
        model.b.copy_(torch.randn(4, dtype=torch.float64))
    theta = model.theta()
    assert model.one_table() and theta.shape == (4, 4)
    assert torch.equal(theta, torch.cat([model.w.detach(), model.b.detach().unsqueeze(1)], 1))
    # an optimizer's in-place step shows through the view, and a loaded state lands in it
    model.w.grad, model.b.grad = torch.ones(4, 3, dtype=torch.float64), torch.ones(4).double()
    before = theta.clone()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    assert torch.equal(theta, before - 0.5)
    state = {name: value * 2 for name, value in model.state_dict().items()}
    model.load_state_dict(state)
    assert torch.equal(theta, (before - 0.5) * 2) and model.one_table()


def test_theta_of_a_moved_model_is_its_parameters_side_by_side() -> None:
    model = MyLinearRegressionModel(2, replicas=3)
    with torch.no_grad():
        model.w.copy_(torch.randn(3, 2))
        model.b.copy_(torch.randn(3))
    moved = model.double()  # .to() gives each parameter a tensor of its own
    assert not moved.one_table()
    expected = torch.cat([moved.w.detach(), moved.b.detach().unsqueeze(1)], 1)
    assert torch.equal(moved.theta(), expected)
