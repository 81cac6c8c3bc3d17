"""CUDA cases: the captured (CUDA-graph) step against the eager one on the lecture problem, and
the sweep and full-batch cases on the GPU. Run by ``python -m benchmarks`` when a GPU is present.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import lrtrain.engine.cuda_graph as cuda_graph
import lrtrain.engine.train as engine
from benchmarks.cases import full_batch, sweep
from benchmarks.common import CaseResult, time_pair
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset


def graph_vs_eager(quick: bool, repeats: int) -> CaseResult:
    steps = 200 if quick else 1000
    cfg = load_config(None, ["device=cuda", f"train.max_iter={steps}"])
    ds = load_dataset(cfg)

    def run(graphs: bool) -> engine.TrainResult:
        cuda_graph.CUDA_GRAPHS = graphs
        try:
            return engine.train(ds, cfg)
        finally:
            cuda_graph.CUDA_GRAPHS = True

    eager, graphed = time_pair(lambda: run(False), lambda: run(True), repeats)
    same = torch.equal(run(False).final_theta, run(True).final_theta)
    ratio = eager.median / graphed.median
    return CaseResult(
        name=f"lecture problem, {steps} steps, CUDA graph vs eager",
        baseline="lrtrain's eager CUDA step",
        target="≥ 3× faster to keep the captured step",
        met=ratio >= 3 and same,
        ratio=ratio,
        baseline_time=eager,
        lrtrain_time=graphed,
        figures={"identical_parameters": same, "graph_steps_per_s": steps / graphed.median},
        notes=[
            f"captured step: {steps / graphed.median:,.0f} steps/s, eager "
            f"{steps / eager.median:,.0f} steps/s; identical final parameters: {same}"
        ],
    )


def cuda_cases(quick: bool, repeats: int) -> list[tuple[str, Callable[[], CaseResult]]]:
    return [
        ("cuda graph", lambda: graph_vs_eager(quick, repeats)),
        ("cuda sweep", lambda: sweep(quick, repeats, device="cuda")),
        ("cuda full-batch", lambda: full_batch(quick, repeats, device="cuda")),
    ]
