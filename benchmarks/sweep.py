"""Sweep benchmark: 32 learning rates × 1000 steps on the lecture data, lrtrain's vectorised
sweep against 32 sequential lesson loops written the way the lesson writes them.

    python -m benchmarks.sweep [--repeats 5] [--quick]

Prints median and spread of each, and the speed-up; both run in this one process, alternately.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from lrtrain.config import load_config
from lrtrain.data import load_dataset
from lrtrain.train import train


class MyLinearRegressionModel(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, d))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.inner(x, self.w) + self.b


def lesson_loops(x: torch.Tensor, y: torch.Tensor, lrs: list[float], steps: int) -> None:
    for lr in lrs:
        model = MyLinearRegressionModel(1)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(steps):
            loss = torch.mean((model(x) - y) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 100 steps (smoke run)")
    args = parser.parse_args()
    steps = 100 if args.quick else 1000
    repeats = 1 if args.quick else args.repeats
    cfg = load_config(None, ["device=cpu", f"train.max_iter={steps}"])
    ds = load_dataset(cfg)
    lrs = [0.0005 * (0.03 / 0.0005) ** (i / 31) for i in range(32)]
    base, ours = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        lesson_loops(ds.x, ds.y, lrs, steps)
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        train(ds, cfg, lrs=lrs)
        ours.append(time.perf_counter() - t0)
    b, o = statistics.median(base), statistics.median(ours)
    print(
        f"case: sweep, 32 lrs x {steps} steps, lecture data, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"  32 sequential lesson loops: median {b:.3f} s (min {min(base):.3f}, max {max(base):.3f})"
    )
    print(
        f"  lrtrain vectorised sweep:   median {o:.3f} s (min {min(ours):.3f}, max {max(ours):.3f})"
    )
    print(f"  speed-up: {b / o:.1f}x (target >= 15x)")


if __name__ == "__main__":
    main()
