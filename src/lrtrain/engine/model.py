"""The lesson's model, and K independent replicas of it for learning-rate sweeps."""

from __future__ import annotations

import torch
from torch import nn

from lrtrain.engine.batches import Rows


class MyLinearRegressionModel(nn.Module):
    """``forward(x) = torch.inner(x, w) + b``, exactly as the lesson writes it.

    With ``replicas=1`` (the default) ``w`` has shape [1, d] and ``b`` shape [1]: the lesson's
    model. With ``replicas=K``, ``w`` is [K, d] and ``b`` is [K]: K independent models that share
    one forward pass, whose output is [N, K] (column k is model k's prediction).
    """

    def __init__(
        self,
        d: int,
        replicas: int = 1,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        # w and b are views of one (d + 1) × K tensor, feature-major: θ = (w, b) of every
        # replica is then one tensor without a copy (:meth:`theta`), in the layout whose
        # products a full-batch step computes fastest. The parameters are the lesson's.
        table = torch.zeros(d + 1, replicas, dtype=dtype, device=device)
        self.w = nn.Parameter(table[:d].t())
        self.b = nn.Parameter(table[d])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.inner(x, self.w) + self.b

    @property
    def replicas(self) -> int:
        return int(self.w.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.w.shape[1]) + 1

    def parameter_views(self, table: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Each parameter with its columns of a [K, d + 1] table (θ's layout): w the first d,
        b the last."""
        d = self.w.shape[1]
        return [(self.w, table[:, :d]), (self.b, table[:, d])]

    def loss_at(self, theta: torch.Tensor, rows: Rows) -> torch.Tensor:
        """The mean squared error of every replica at θ = (w, b) [K, d + 1] over ``rows``
        (any θ, not only the parameters': what Hessian-vector products differentiate), [K]."""
        assert rows.x is not None and rows.y is not None, "streamed rows are not held"
        d = self.w.shape[1]
        residual = torch.inner(rows.x, theta[:, :d]) + theta[:, d] - rows.y  # [n, K]
        return (residual * residual).sum(dim=0) / rows.total

    def theta(self) -> torch.Tensor:
        """θ = (w, b) of every replica as one detached [K, d + 1] tensor: a view of the table
        both parameters view, which in-place updates keep current — or, once the module has
        been moved (``.to()`` gives each parameter its own tensor), their concatenation."""
        w, b = self.w.detach(), self.b.detach()
        k, d = w.shape
        if self.one_table():
            return w.as_strided((k, d + 1), (1, k))
        return torch.cat([w, b.unsqueeze(1)], dim=1)

    def one_table(self) -> bool:
        """Whether w [K, d] and b [K] are still the columns of one feature-major table."""
        w, b = self.w, self.b
        k, d = w.shape
        return (
            _storage_address(w) == _storage_address(b)
            and b.storage_offset() == w.storage_offset() + d * k
            and (k == 1 or (w.stride(0) == 1 and b.stride(0) == 1))
            and (d == 1 or w.stride(1) == k)
        )

    def init_normal_(self, seed: int, std: float = 0.01) -> None:
        """Small random weights drawn from the seed (``model.init: normal``), the same for
        every replica so a sweep compares learning rates from one starting point."""
        d = self.w.shape[1]
        start = normal_start(d, seed, std)
        with torch.no_grad():
            self.w.copy_(start[:d].expand_as(self.w))
            self.b.copy_(start[d].expand_as(self.b))

    def init_torch_(self, seed: int) -> None:
        """As ``nn.Linear(d, 1)`` initialises itself after ``torch.manual_seed(seed)``
        (``model.init: torch``), the same for every replica."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layer = nn.Linear(self.w.shape[1], 1, dtype=self.w.dtype)
        with torch.no_grad():
            self.w.copy_(layer.weight.detach().expand_as(self.w))
            self.b.copy_(layer.bias.detach().expand_as(self.b))


def _storage_address(tensor: torch.Tensor) -> int:
    """Where the tensor's storage begins: equal for two tensors exactly when they share it
    (asking for the storage object itself costs ~20 µs)."""
    return tensor.data_ptr() - int(tensor.storage_offset()) * tensor.element_size()


def normal_start(d: int, seed: int, std: float = 0.01) -> torch.Tensor:
    """θ₀ = (w, b) of ``model.init: normal``: d + 1 draws of N(0, std²) from the seed, float64."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(d + 1, generator=gen, dtype=torch.float64) * std
