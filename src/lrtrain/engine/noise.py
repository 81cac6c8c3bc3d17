"""The gradient noise scale (McCandlish et al., 2018, "An Empirical Model of Large-Batch
Training"): B_simple = tr(Σ)/|G|², Σ the covariance of the per-example gradients and G their
mean, the full-batch gradient — the batch size around which a larger batch stops buying a
proportionally larger step. Measured from per-example gradients (``torch.func.vmap`` of
``torch.func.grad`` over the rows, every replica at once), at the steps the sharpness is measured.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import grad, vmap

from lrtrain.data.distributed import SINGLE, World
from lrtrain.engine.batches import Rows

CHUNK_NUMBERS = 1 << 22  # per-example gradients held at once (replicas × rows × parameters)


def gradient_noise(
    loss_at: Callable[[torch.Tensor, Rows], torch.Tensor],
    theta: torch.Tensor,
    rows: Rows,
    world: World = SINGLE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(tr Σ [K], |G|² [K]) at θ [K, P] over ``rows``, the per-example loss being the model's
    squared error on one row; the rows are read in chunks of at most CHUNK_NUMBERS gradients.
    In a distributed ``world`` each process sums over its shard and the sums are combined."""
    assert rows.x is not None and rows.y is not None, "per-example gradients read the rows"
    x, y = rows.x, rows.y
    k, p = theta.shape
    n = rows.total  # every process's rows

    def one(t: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss_at(t.unsqueeze(0), Rows(xi.unsqueeze(0), yi.unsqueeze(0), 1))[0]

    per_replica = vmap(vmap(grad(one), in_dims=(None, 0, 0)), in_dims=(0, None, None))
    step = max(1, CHUNK_NUMBERS // (k * p))
    # the loop may run in inference mode (the Gram path), where nothing is differentiable
    with torch.inference_mode(False), torch.enable_grad():
        point = theta.detach().clone()
        mean, squares = torch.zeros_like(point), point.new_zeros(k)
        for lo in range(0, x.shape[0], step):
            g = per_replica(point, x[lo : lo + step], y[lo : lo + step]).detach()  # [K, c, P]
            mean += g.sum(dim=1)
            squares += (g * g).sum(dim=(1, 2))
    world.all_sum(mean)
    world.all_sum(squares)
    mean /= n
    grad_sq = (mean * mean).sum(dim=1)
    return squares / n - grad_sq, grad_sq
