"""The gradient noise scale (engine.noise) against per-example gradients taken one row at a
time with autograd, and on the linear model against its exact value from the rows' moments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lrtrain import api
from lrtrain.config.schema import load_config
from lrtrain.engine import noise
from lrtrain.engine.batches import Rows
from lrtrain.engine.network import MLP

F64 = torch.float64


def by_hand(model: MLP, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """tr Σ and |G|² from each row's gradient by loss.backward(), one row at a time."""
    out = []
    for k in range(theta.shape[0]):
        grads = []
        for i in range(len(x)):
            t = theta[k].clone().requires_grad_(True)
            loss = model.loss_at(t.unsqueeze(0), Rows(x[i : i + 1], y[i : i + 1], 1))[0]
            loss.backward()
            grads.append(t.grad)
        g = torch.stack(grads)
        mean = g.mean(dim=0)
        covariance = ((g - mean).T @ (g - mean)) / len(x)
        out.append((torch.trace(covariance), mean @ mean))
    return out


@pytest.mark.parametrize("chunk", [noise.CHUNK_NUMBERS, 70])  # whole, and in chunks of rows
def test_per_example_gradients_equal_one_backward_per_row(monkeypatch, chunk) -> None:
    monkeypatch.setattr(noise, "CHUNK_NUMBERS", chunk)
    model = MLP(2, [5, 3], "tanh", replicas=2, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(2, model.n_params, dtype=F64, generator=gen)
    x = torch.randn(23, 2, dtype=F64, generator=gen)
    y = torch.randn(23, 1, dtype=F64, generator=gen)
    trace, grad_sq = noise.gradient_noise(model.loss_at, theta, Rows(x, y, 23))
    for k, (want_trace, want_sq) in enumerate(by_hand(model, theta, x, y)):
        assert float(trace[k]) == pytest.approx(float(want_trace), rel=1e-10)
        assert float(grad_sq[k]) == pytest.approx(float(want_sq), rel=1e-10)


@pytest.mark.parametrize(
    ("name", "extra"),
    [("lecture", []), ("minibatch", ["data.n_samples=20000", "train.max_iter=200"])],
)
def test_the_linear_models_noise_scale_is_its_exact_value(tmp_path: Path, name, extra) -> None:
    config = load_config(name, ["train.sharpness_every=25", "train.dtype=float64", *extra])
    run = api.fit(config, out=tmp_path / "run", draw=False)
    summary = json.loads((run.run_dir / "summary.json").read_text())
    scale = summary["noise_scale"]
    assert scale["exact_b_simple"] is not None
    assert scale["b_simple"] == pytest.approx(scale["exact_b_simple"], rel=1e-9)
    # mini-batches: the exact critical batch size of the mini-batch theory beside it
    assert (scale["critical_batch_size"] is not None) == (name == "minibatch")


def test_a_network_fit_reports_its_noise_scale(tmp_path: Path) -> None:
    run = api.fit(load_config("mlp", ["train.max_iter=40"]), out=tmp_path / "run", draw=False)
    scale = run.summary["noise_scale"]
    assert scale["steps"] == run.summary["sharpness"]["steps"]
    assert all(v is not None and v > 0 for v in scale["b_simple"])
    assert scale["exact_b_simple"] is None
