"""The captured CUDA-graph step computes what the eager step computes."""

from __future__ import annotations

import pytest
import torch
from test_train import _setup

import lrtrain.engine.cuda_graph as cuda_graph
import lrtrain.engine.train as engine
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train


@pytest.mark.parametrize(
    "extra",
    [
        ["train.log_every=1"],
        ["train.log_every=7", "optimizer.momentum=0.9", "train.tol=1e-9"],
    ],
)
def test_device_counter_step_equals_host_step(monkeypatch, extra: list[str]) -> None:
    """The step a CUDA graph captures takes its step number from a device tensor. Replayed
    eagerly on the CPU (the capture itself needs a GPU, see test_cuda_graph_equals_eager) it
    gives what the host-driven loop gives: histories, stops, statuses and parameters."""

    class EagerReplay(cuda_graph.GraphedStep):
        def run(self, step: int) -> torch.Tensor:
            if step < cuda_graph._GRAPH_WARMUP:
                return self.step_at(step, self.data)
            if self.graph is None:
                self.counter.fill_(step)
                self.graph = True  # type: ignore[assignment]
            self._body()
            return self.loss

    cfg, ds = _setup("train.dtype=float64", "train.max_iter=300", *extra)
    lrs = [0.001, 0.02, 0.0297, 0.08]
    host = train(ds, cfg, lrs=lrs)
    monkeypatch.setattr(engine, "GraphedStep", EagerReplay)
    monkeypatch.setattr(engine, "use_graph", lambda *_: True)
    device = train(ds, cfg, lrs=lrs)
    assert device.statuses == host.statuses and "diverged" in host.statuses
    assert device.stop_steps == host.stop_steps
    assert torch.equal(device.final_theta, host.final_theta)
    assert torch.equal(device.loss.nan_to_num(), host.loss.nan_to_num())
    assert torch.equal(device.theta.nan_to_num(), host.theta.nan_to_num())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "extra",
    [[], ["train.log_every=7", "optimizer.momentum=0.9", "train.tol=1e-9"]],
)
def test_cuda_graph_equals_eager(monkeypatch, extra: list[str]) -> None:
    cfg = load_config(None, ["device=cuda", "train.dtype=float64", "train.max_iter=300", *extra])
    ds = load_dataset(cfg)
    lrs = [0.001, 0.02, 0.0297, 0.08]
    graphed = train(ds, cfg, lrs=lrs)
    monkeypatch.setattr(cuda_graph, "CUDA_GRAPHS", False)
    eager = train(ds, cfg, lrs=lrs)
    assert graphed.statuses == eager.statuses and "diverged" in eager.statuses
    assert graphed.stop_steps == eager.stop_steps
    assert torch.allclose(graphed.final_theta, eager.final_theta, rtol=1e-12, atol=0)
    assert torch.allclose(graphed.loss.nan_to_num(), eager.loss.nan_to_num(), rtol=1e-12)
    cpu = train(ds, load_config(None, ["device=cpu", "train.dtype=float64",
                                       "train.max_iter=300", *extra]), lrs=lrs)  # fmt: skip
    assert torch.allclose(graphed.final_theta, cpu.final_theta, rtol=1e-9, atol=1e-12)
