"""The lesson's model, and K independent replicas of it for learning-rate sweeps."""

from __future__ import annotations

import torch
from torch import nn


class MyLinearRegressionModel(nn.Module):
    """``forward(x) = torch.inner(x, w) + b``, exactly as the lesson writes it.

    With ``replicas=1`` (the default) ``w`` has shape [1, d] and ``b`` shape [1]: the lesson's
    model. With ``replicas=K``, ``w`` is [K, d] and ``b`` is [K]: K independent models that share
    one forward pass, whose output is [N, K] (column k is model k's prediction).
    """

    def __init__(self, d: int, replicas: int = 1, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(replicas, d, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(replicas, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.inner(x, self.w) + self.b

    @property
    def replicas(self) -> int:
        return int(self.w.shape[0])

    def init_normal_(self, seed: int, std: float = 0.01) -> None:
        """Small random weights drawn from the seed (``model.init: normal``), the same for
        every replica so a sweep compares learning rates from one starting point."""
        d = self.w.shape[1]
        start = normal_start(d, seed, std)
        with torch.no_grad():
            self.w.copy_(start[:d].expand_as(self.w))
            self.b.copy_(start[d].expand_as(self.b))


def normal_start(d: int, seed: int, std: float = 0.01) -> torch.Tensor:
    """θ₀ = (w, b) of ``model.init: normal``: d + 1 draws of N(0, std²) from the seed, float64."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(d + 1, generator=gen, dtype=torch.float64) * std
