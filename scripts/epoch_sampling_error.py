"""How far shuffled epochs (`train.sampling: epoch`) are from the mini-batch theory, which draws
batches with replacement: K independent shuffles in a plain loop (PyTorch's SGD rule written
out), their mean excess loss E[L] − L* at a few steps against the prediction, with the 99% band.

    python scripts/epoch_sampling_error.py minibatch 256
    python scripts/epoch_sampling_error.py lecture 4096 train.batch_size=10 optimizer.lr=0.005 \
        train.max_iter=300

Its results are quoted in docs/mathematics.md ("Shuffled epochs").
"""

from __future__ import annotations

import math
import sys

import torch

from lrtrain.config.schema import load_config
from lrtrain.data import stats as st
from lrtrain.data.load import load_dataset
from lrtrain.theory import minibatch as mb

F64 = torch.float64


def main(name: str, replicas: int, overrides: list[str]) -> None:
    cfg = load_config(name, ["device=cpu", "train.dtype=float64", *overrides])
    ds = load_dataset(cfg)
    exact = ds.answer()
    batch, opt, total = cfg.train.batch_size, cfg.optimizer, cfg.train.max_iter
    assert batch is not None, "the config trains on mini-batches (train.batch_size)"
    lr, mu, nesterov, wd = opt.lr_value, opt.momentum_value, opt.nesterov, opt.weight_decay
    x = torch.cat([ds.x.to(F64), torch.ones(ds.n, 1, dtype=F64)], 1)
    y = ds.y.to(F64).reshape(-1)
    p = x.shape[1]
    checks = sorted({1, 10, 100, total // 10, total // 2, total})
    observed = _epochs(x, y, batch, lr, mu, nesterov, wd, replicas, checks)
    h, g = exact.stats.xtx * (2.0 / ds.n), exact.stats.xty * (2.0 / ds.n)
    reference = torch.linalg.solve(h + wd * torch.eye(p, dtype=F64), g)  # θ*, or the ridge one
    moments = mb.row_moments(ds.chunks(st.CHUNK_ROWS), reference)
    rule = mb.Rule(lr, mu, nesterov, wd)
    start = torch.zeros(p, dtype=F64)
    predicted = mb.expected_losses(
        moments, exact.loss_star, exact.theta_star, start, rule, batch, checks
    ).expected_loss
    for step, want in zip(checks, predicted, strict=True):
        losses = observed[step]
        mean = float(losses.mean()) - exact.loss_star
        band = 2.576 * float(losses.std()) / math.sqrt(replicas)
        excess = want - exact.loss_star
        print(
            f"{name} step {step:6d}: E[L] − L* predicted {excess:.4g}, epochs {mean:.4g} "
            f"± {band:.2g} (99%), ratio {mean / excess:.3f}"
        )


def _epochs(
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
    replicas: int,
    checks: list[int],
) -> dict[int, torch.Tensor]:
    """Full-data losses at the ``checks`` of ``replicas`` runs, each shuffling on its own."""
    n = x.shape[0]
    gen = torch.Generator().manual_seed(0)
    theta = torch.zeros(replicas, x.shape[1], dtype=F64)
    buffer = torch.zeros_like(theta)
    per_epoch = math.ceil(n / batch)
    order = torch.empty(0, dtype=torch.long)
    out = {}
    for t in range(max(checks) + 1):
        if t in checks:
            out[t] = ((theta @ x.T - y) ** 2).mean(1)
        position = t % per_epoch
        if position == 0:
            order = torch.argsort(torch.rand(replicas, n, generator=gen), dim=1)
        rows = order[:, position * batch : (position + 1) * batch]
        xb, yb = x[rows], y[rows]
        residual = (xb @ theta.unsqueeze(2)).squeeze(2) - yb
        grad = 2.0 * (residual.unsqueeze(2) * xb).mean(1) + weight_decay * theta
        buffer = grad if t == 0 else momentum * buffer + grad
        theta = theta - lr * ((grad + momentum * buffer) if nesterov else buffer)
    return out


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
