"""A whole training step captured once as a CUDA graph and replayed (full batch on one GPU)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lrtrain.data.distributed import World
from lrtrain.engine.batches import Batches, Rows

CUDA_GRAPHS = True  # full-batch CUDA training replays a captured step (see GraphedStep)
_GRAPH_WARMUP = 3


class GraphedStep:
    """The whole training step captured once as a CUDA graph and replayed: one launch per step
    instead of dozens, which is what bounds small problems on a GPU. The first
    ``_GRAPH_WARMUP`` steps run eagerly on a side stream (PyTorch's recipe for whole-network
    capture; they also create SGD's momentum buffers); the graph then computes exactly what
    the eager step would, its step counter living on the device."""

    def __init__(
        self,
        step_at: Callable[[int | torch.Tensor, Rows], torch.Tensor],
        data: Rows,
    ) -> None:
        self.step_at, self.data = step_at, data
        self.device = data.device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.counter = torch.zeros((), dtype=torch.long, device=self.device)
        self.calls = 0
        self.loss = torch.empty(0)

    def run(self, step: int) -> torch.Tensor:
        self.calls += 1
        if self.calls <= _GRAPH_WARMUP:  # the first steps of this run (a resume too)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self.step_at(step, self.data)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss
        if self.graph is None:
            self._capture(step)
        assert self.graph is not None
        self.graph.replay()
        return self.loss

    def _capture(self, step: int) -> None:
        self.counter.fill_(step)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body()
        self.graph = graph

    def _body(self) -> None:
        self.loss = self.step_at(self.counter, self.data)
        self.counter.add_(1)


def use_graph(
    device: torch.device, batches: Batches | None, total: int, data: Rows, world: World
) -> bool:
    # Full batch, one process: mini-batches change shape at the end of an epoch, and
    # collectives stay outside captured graphs.
    return (
        CUDA_GRAPHS
        and device.type == "cuda"
        and batches is None
        and not world.distributed
        and total > _GRAPH_WARMUP
    )
