"""The lecture's next model: "layers of linear models with non-linear activation" — an MLP
d → hidden₁ → … → 1 — as K independent replicas that share one forward pass (a sweep's rates).

Every replica's parameters are one row of a single [K, P] parameter θ, laid out layer by layer
as ``nn.Linear`` stores them (weight [out, in] row-major, then bias [out]): θ is what the
training loop reads, scales and updates, exactly as it does the linear model's (w, b), and the
same θ row loads into an ``nn.Sequential`` of ``nn.Linear`` layers (:meth:`MLP.sequential`).
A forward pass is a batched matrix product per layer over the K replicas — what vmap of
``torch.func.functional_call`` over stacked parameters computes, without its dispatch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from lrtrain.engine.batches import Rows

# torch's activations by the config's names (model.activation)
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": nn.functional.gelu,
    "sigmoid": torch.sigmoid,
}
MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def layer_shapes(d: int, hidden: Sequence[int]) -> list[tuple[int, int]]:
    """(out, in) of every layer: d → hidden… → 1."""
    widths = [d, *hidden, 1]
    return [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]


def parameter_count(d: int, hidden: Sequence[int]) -> int:
    """P: the weights and biases of every layer."""
    return sum(out * inp + out for out, inp in layer_shapes(d, hidden))


class MLP(nn.Module):
    """K replicas of d → hidden… → 1 with ``activation`` after every hidden layer.

    ``forward(x)`` is [N, K] like the linear model's (column k is replica k's prediction);
    x may also be [K, B, d] (each replica its own batch), giving [B, K].
    """

    def __init__(
        self,
        d: int,
        hidden: Sequence[int],
        activation: str,
        replicas: int = 1,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.d, self.hidden, self.activation = d, list(hidden), activation
        self.shapes = layer_shapes(d, hidden)
        p = parameter_count(d, hidden)
        self.flat = nn.Parameter(torch.zeros(replicas, p, dtype=dtype, device=device))

    @property
    def replicas(self) -> int:
        return int(self.flat.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.flat.shape[1])

    def theta(self) -> torch.Tensor:
        """θ of every replica, [K, P], detached: the parameter itself, which in-place updates
        keep current."""
        return self.flat.detach()

    def parameter_views(self, table: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Each parameter with its columns of a [K, P] table (θ's layout): here one."""
        return [(self.flat, table)]

    def layers(self, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight [K, out, in], bias [K, 1, out]) of every layer, views of θ [K, P]."""
        k, at, out = theta.shape[0], 0, []
        for rows, cols in self.shapes:
            weight = theta[:, at : at + rows * cols].view(k, rows, cols)
            at += rows * cols
            bias = theta[:, at : at + rows].view(k, 1, rows)
            at += rows
            out.append((weight, bias))
        return out

    def outputs(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Every replica's prediction at θ [K, P] (any θ, not only the parameter's: what the
        Hessian-vector products differentiate), [K, N] for x [N, d] or [K, B, d]."""
        act = ACTIVATIONS[self.activation]
        h = x
        layers = self.layers(theta)
        for i, (weight, bias) in enumerate(layers):
            # [N, in] or [K, N, in] @ [K, in, out] → [K, N, out]: one batched product a layer
            h = torch.baddbmm(bias, h.expand(theta.shape[0], *h.shape[-2:]), weight.transpose(1, 2))
            if i + 1 < len(layers):
                h = act(h)
        return h.squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outputs(self.flat, x).t()

    def loss_at(self, theta: torch.Tensor, rows: Rows) -> torch.Tensor:
        """The mean squared error of every replica at θ [K, P] over ``rows``, [K]."""
        assert rows.x is not None and rows.y is not None, "a network reads its rows"
        y = rows.y[..., 0] if rows.y.dim() == 3 else rows.y.t()  # [K, n] or [1, n]
        residual = self.outputs(theta, rows.x) - y
        return (residual * residual).sum(dim=1) / rows.total

    def init_torch_(self, seed: int) -> None:
        """As ``nn.Linear`` initialises its layers (Kaiming-uniform weights, uniform biases in
        ±1/√fan_in), drawn from ``seed`` in order, the same for every replica (a sweep
        compares rates from one start): equal to ``torch.manual_seed(seed)`` followed by
        :meth:`sequential`'s layers built afresh."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = [nn.Linear(i, o, dtype=self.flat.dtype) for o, i in self.shapes]
        tensors = [t for layer in layers for t in (layer.weight, layer.bias)]
        start = torch.cat([t.detach().reshape(-1) for t in tensors])
        with torch.no_grad():
            self.flat.copy_(start.expand_as(self.flat))

    def init_normal_(self, seed: int, std: float = 0.01) -> None:
        """Small N(0, std²) weights and biases from the seed (``model.init: normal``), the same
        for every replica."""
        gen = torch.Generator().manual_seed(seed)
        start = torch.randn(self.n_params, generator=gen, dtype=torch.float64) * std
        with torch.no_grad():
            self.flat.copy_(start.expand_as(self.flat))

    def sequential(self, k: int = 0) -> nn.Sequential:
        """Replica k as the ``nn.Sequential`` of ``nn.Linear`` and activation modules a user
        would write (model.pt loads into it; the tests check it computes the same)."""
        modules: list[nn.Module] = []
        layers = self.layers(self.flat.detach()[k : k + 1])
        for i, (weight, bias) in enumerate(layers):
            out, inp = weight.shape[1:]
            linear = nn.Linear(inp, out, dtype=weight.dtype, device=weight.device)
            with torch.no_grad():
                linear.weight.copy_(weight[0])
                linear.bias.copy_(bias[0, 0])
            modules.append(linear)
            if i + 1 < len(layers):
                modules.append(MODULES[self.activation]())
        return nn.Sequential(*modules)
