"""Mini-batches: drawn from (seed, epoch), every row once per epoch, and the loop on them
equal to a hand-written lesson loop on the same batches."""

from __future__ import annotations

import torch
from test_train import _setup, lesson_loop

from lrtrain.engine.batches import Batches
from lrtrain.engine.train import train


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


def test_batches_drawn_with_replacement() -> None:
    """`train.sampling: replacement`: each step's rows drawn from (seed, step) — the same on
    a rerun, rows may repeat, every row as likely — and the loop on them equals a hand-written
    lesson loop on the same rows; the processes' held rows make up the global batch exactly."""
    batches = Batches(50, 20, 3, torch.device("cpu"), sampling="replacement")
    assert torch.equal(batches.indices(7), Batches(50, 20, 3, torch.device("cpu"),
                                                   sampling="replacement").indices(7))  # fmt: skip
    drawn = torch.cat([batches.indices(t) for t in range(500)])
    assert any(len(set(batches.indices(t).tolist())) < 20 for t in range(10))  # repeats
    counts = torch.bincount(drawn, minlength=50).double()
    assert float(counts.min()) > 0.6 * 200 and float(counts.max()) < 1.4 * 200  # 200 expected
    cfg, ds = _setup(
        "data.n_samples=200", "train.batch_size=16", "train.sampling=replacement",
        "train.max_iter=200", "optimizer.lr=0.005", "train.dtype=float64",
    )  # fmt: skip
    result = train(ds, cfg)
    hand = Batches(200, 16, cfg.seed, torch.device("cpu"), sampling="replacement")
    theta, _ = lesson_loop(ds.x, ds.y, 200, torch.float64, batches=hand.indices, lr=0.005)
    assert torch.allclose(result.final_theta[0], theta, atol=1e-10, rtol=0)
    x = torch.arange(50.0).reshape(50, 1)  # each row holds its global index
    shares = [(0, 20), (20, 30)]
    rows = [
        Batches(50, 20, 3, torch.device("cpu"), first, held, "replacement").batch(
            7, x[first : first + held], x[first : first + held]
        )
        for first, held in shares
    ]
    assert all(r.total == 20 for r in rows)  # each share is weighted by the global batch
    got = sorted(int(v) for r in rows for v in r.x.reshape(-1).tolist())
    assert got == sorted(batches.indices(7).tolist())  # the global batch, split exactly
