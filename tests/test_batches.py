"""Mini-batches: drawn from (seed, epoch), every row once per epoch, and the loop on them
equal to a hand-written lesson loop on the same batches."""

from __future__ import annotations

import torch
from test_train import _setup, lesson_loop

from lrtrain.batches import Batches
from lrtrain.train import train


def test_minibatch_matches_hand_loop_on_same_batches() -> None:
    cfg, ds = _setup(
        "data.n_samples=1000",
        "data.x={kind: normal}",
        "train.batch_size=32",
        "train.max_iter=300",
        "optimizer.lr=0.01",
        "optimizer.momentum=0.9",
        "train.dtype=float64",
    )
    result = train(ds, cfg)
    batches = Batches(1000, 32, cfg.seed, torch.device("cpu"))
    theta, _ = lesson_loop(
        ds.x, ds.y, 300, torch.float64, batches=batches.indices, lr=0.01, momentum=0.9
    )
    assert torch.allclose(result.final_theta[0], theta, atol=1e-10, rtol=0)


def test_minibatch_epochs_cover_every_row_once() -> None:
    batches = Batches(100, 32, 0, torch.device("cpu"))
    assert batches.per_epoch == 4
    epoch = torch.cat([batches.indices(t) for t in range(4)])
    assert sorted(epoch.tolist()) == list(range(100))
    again = torch.cat([batches.indices(t) for t in range(4, 8)])
    assert sorted(again.tolist()) == list(range(100)) and not torch.equal(epoch, again)
