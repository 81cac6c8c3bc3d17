"""The baselines, written plainly the way the lesson and the PyTorch tutorials write them.

Nothing here is handicapped: each is the idiomatic code a student or engineer would write for the
same job, run on the same tensors as lrtrain.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

M = TypeVar("M", bound=nn.Module)


class MyLinearRegressionModel(nn.Module):
    """The lesson's model, verbatim."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1, d))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.inner(x, self.w) + self.b


def lesson_loop(x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> MyLinearRegressionModel:
    """The lesson's training loop: forward, zero_grad, backward, step."""
    model = MyLinearRegressionModel(x.shape[1]).to(device=x.device, dtype=x.dtype)
    return training_loop(model, x, y, lr, steps)


def training_loop(model: M, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> M:
    """torch.optim.SGD on the mean squared error: forward, zero_grad, backward, step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = torch.mean((model(x) - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def sequential_sweep(x: torch.Tensor, y: torch.Tensor, lrs: list[float], steps: int) -> None:
    """A learning-rate study the lesson's way: one training loop per learning rate."""
    for lr in lrs:
        lesson_loop(x, y, lr, steps)


def dataloader_epoch(x: torch.Tensor, y: torch.Tensor, lr: float, batch_size: int) -> None:
    """One epoch of mini-batch SGD the PyTorch tutorials' way."""
    model = MyLinearRegressionModel(x.shape[1]).to(dtype=x.dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    for xb, yb in loader:
        loss = torch.mean((model(xb) - yb) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def grid_loss(
    x: torch.Tensor, y: torch.Tensor, ws: list[float], bs: list[float]
) -> list[list[float]]:
    """The loss surface by evaluating the loss over the data at each grid point."""
    return [[float(torch.mean((w * x + b - y) ** 2)) for b in bs] for w in ws]


def mlp(d: int, hidden: list[int], seed: int) -> nn.Sequential:
    """The lecture's network the way a user writes it: nn.Linear layers with ReLU between."""
    torch.manual_seed(seed)
    widths = [d, *hidden, 1]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mlp_sweep(
    x: torch.Tensor, y: torch.Tensor, hidden: list[int], lrs: list[float], steps: int
) -> None:
    """A learning-rate study of a network the usual way: one training loop per rate."""
    for lr in lrs:
        training_loop(mlp(x.shape[1], hidden, 0), x, y, lr, steps)
