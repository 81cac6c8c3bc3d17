"""The model is the lesson's, and K replicas are K independent copies of it."""

from __future__ import annotations

import torch
from torch import nn

from lrtrain.model import MyLinearRegressionModel


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
    assert torch.equal(model(x), torch.inner(x, model.w) + model.b)
    assert torch.allclose(model(x)[:, 0], 3 * x[:, 0] + 0.5)


def test_replicas_are_independent() -> None:
    model = MyLinearRegressionModel(3, replicas=4)
    with torch.no_grad():
        model.w.copy_(torch.randn(4, 3))
        model.b.copy_(torch.randn(4))
    x = torch.randn(10, 3)
    out = model(x)
    assert out.shape == (10, 4)
    for k in range(4):
        assert torch.allclose(out[:, k], x @ model.w[k] + model.b[k])


def test_normal_init_is_seeded_and_shared() -> None:
    a, b = MyLinearRegressionModel(2, replicas=3), MyLinearRegressionModel(2, replicas=3)
    a.init_normal_(7)
    b.init_normal_(7)
    assert (
        torch.equal(a.w, b.w)
        and torch.equal(a.w[0], a.w[2])
        and float(a.w.detach().abs().sum()) > 0
    )
