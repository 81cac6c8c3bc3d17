"""Every gradient path gives the lesson's autograd numbers."""

from __future__ import annotations

import pytest
import torch
from test_train import _setup

import lrtrain.gradients as gradients
from lrtrain.train import train


@pytest.mark.parametrize(
    "extra",
    [[], ["optimizer.momentum=0.9", "optimizer.weight_decay=0.01"]],
)
def test_streamed_step_equals_autograd_step(monkeypatch, extra: list[str]) -> None:
    """The chunked, hand-derived gradient used for large CPU problems gives the numbers of the
    lesson's autograd step (float64, to 1e-10), replicas and a diverging replica included."""
    cfg, ds = _setup(
        "data.n_samples=20000",
        "data.x={kind: uniform, low: -2, high: 3}",
        "data.true_w=[1.5, -2.0, 0.5]",
        "train.dtype=float64",
        "train.max_iter=150",
        *extra,
    )
    assert ds.x.stride() == (1, ds.n)  # feature-major, as the streamed path expects
    lrs = [0.01, 0.1, 0.3, 5.0]
    plain = train(ds, cfg, lrs=lrs)
    monkeypatch.setattr(gradients, "STREAM_MIN_ROWS", 1)
    monkeypatch.setattr(gradients, "CACHE_ROWS", 4096 * len(lrs))  # 5 chunks, the last short
    streamed = train(ds, cfg, lrs=lrs)
    assert streamed.statuses == plain.statuses and streamed.statuses[-1] == "diverged"
    assert streamed.stop_steps == plain.stop_steps
    assert torch.allclose(streamed.final_theta, plain.final_theta, rtol=1e-10, atol=1e-12)
    finite = torch.isfinite(plain.loss)
    assert torch.allclose(streamed.loss[finite], plain.loss[finite], rtol=1e-10, atol=0)
    assert torch.allclose(streamed.initial_grad, plain.initial_grad, rtol=1e-10, atol=1e-12)
