"""What one training step reads: every row of the data set (:class:`Rows`, on the device) or a
mini-batch of them (:class:`Batches`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from lrtrain.data.dataset import Dataset
from lrtrain.data.synthetic import block_seed

_SHUFFLE_STREAM = 0x5EED_5A1E  # separates the shuffling seeds from the data seeds
_DRAW_STREAM = 0xD4A3_5EED  # and the seeds of batches drawn with replacement
_REPLICA_STREAM = 0x7E91_1CA5  # and those of the other replicas' batches (train.replicas)


@dataclass
class Rows:
    """The rows one step's loss is the mean over, as this process holds them: tensors on the
    device (``x`` [n, d], ``y`` [n, 1]), or none when the data is streamed (its full-batch
    steps use the statistics of one generation pass, gradients.GramGradient). ``total`` counts
    the rows of every process (the loss's N): a process's share of the gradient is weighted by
    its rows, so unequal shards average correctly."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    total: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(xᵀ [d, c], yᵀ [1, c]) chunks of at most ``size`` of these rows: rows as columns."""
        assert self.x is not None and self.y is not None, "streamed rows are not held"
        xt, yt = self.x.t(), self.y.t()
        for lo in range(0, xt.shape[1], size):
            yield xt[:, lo : lo + size], yt[:, lo : lo + size]


def all_rows(dataset: Dataset, device: torch.device, dtype: torch.dtype) -> Rows:
    """Every row of the data set this process trains on, on the device (none when streamed)."""
    if dataset.stream is not None:
        return Rows(None, None, dataset.n, device)
    x = dataset.x.to(device=device, dtype=dtype)
    y = dataset.y.to(device=device, dtype=dtype)
    return Rows(x, y, dataset.n, device)


class Batches:
    """Mini-batches. ``sampling="epoch"``: each epoch the data is permuted once into a buffer,
    and step t's batch is a slice of it — one gather per epoch instead of one per step, and no
    copy per step. ``sampling="replacement"``: step t's batch is ``batch_size`` rows drawn
    independently and uniformly, with replacement (what the mini-batch theory describes).

    The permutation of epoch e is drawn from (seed, e), a drawn batch from (seed, t), so any
    step's batch can be recomputed without saved RNG state (which is what an exact resume
    needs). In a distributed run every process draws the same rows of all N and takes, from
    each global batch, the rows it holds (``first`` … ``first + held``): the processes together
    compute exactly the single-process batch's gradient (weighted by rows, see :class:`Rows`).

    With ``replicas`` K > 1 every replica draws its own batches: replica 0 exactly the stream
    above (so it is the run without replicas), replicas 1 … K−1 from (seed, step) or
    (seed, epoch) of a separate stream; a batch is then ``x`` [K, B, d], ``y`` [K, B, 1].
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        first: int = 0,
        held: int | None = None,
        sampling: str = "epoch",
        replicas: int = 1,
    ) -> None:
        if replicas > 1 and held is not None and held != n:
            raise ValueError("independent batch streams are not split across processes")
        self.sampling, self.replicas = sampling, replicas
        self._others = torch.empty(0, dtype=torch.long)  # replicas 1 … K−1: [K − 1, N] orders
        size = batch_size if sampling == "replacement" else min(batch_size, n)  # rows repeat
        self.n, self.size, self.seed, self.device = n, size, seed, device
        self.first, self.held = first, n if held is None else held
        self.per_epoch = math.ceil(n / self.size)
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)  # global rows, in this epoch's order
        self._mine = torch.empty(0, dtype=torch.long)  # the held ones among them, local index
        self._bounds = torch.empty(0, dtype=torch.long)  # batch p's held rows: [p] … [p + 1]
        self._x = self._y = torch.empty(0)
        self._epoch_others = -1

    def indices(self, step: int) -> torch.Tensor:
        """Rows of the data set in step ``step``'s batch."""
        if self.sampling == "replacement":
            gen = torch.Generator().manual_seed(block_seed(self.seed ^ _DRAW_STREAM, step))
            return torch.randint(self.n, (self.size,), generator=gen)
        epoch, position = divmod(step, self.per_epoch)
        self._draw(epoch)
        return self._perm[position * self.size : (position + 1) * self.size]

    def replica_indices(self, step: int) -> torch.Tensor:
        """[K, B] rows of every replica's batch at ``step`` (row 0: :meth:`indices`)."""
        first = self.indices(step)
        k = self.replicas - 1
        if self.sampling == "replacement":
            seed = block_seed(self.seed ^ _REPLICA_STREAM ^ _DRAW_STREAM, step)
            others = torch.randint(
                self.n, (k, self.size), generator=torch.Generator().manual_seed(seed)
            )
        else:
            epoch, position = divmod(step, self.per_epoch)
            if self._others.shape[0] != k or self._epoch_others != epoch:
                seed = block_seed(self.seed ^ _REPLICA_STREAM ^ _SHUFFLE_STREAM, epoch)
                keys = torch.rand(k, self.n, generator=torch.Generator().manual_seed(seed))
                self._others, self._epoch_others = keys.argsort(dim=1), epoch
            others = self._others[:, position * self.size : (position + 1) * self.size]
        return torch.cat([first.unsqueeze(0), others])

    def batch(self, step: int, x: torch.Tensor, y: torch.Tensor) -> Rows:
        """Step ``step``'s batch: those of the rows :meth:`indices` names that ``x``/``y``
        (this process's rows) hold; with replicas, every replica's own batch."""
        if self.replicas > 1:
            rows = self.replica_indices(step).to(x.device)
            return Rows(x[rows], y[rows], rows.shape[1], x.device)
        if self.sampling == "replacement":
            rows = self.indices(step)
            if self.held != self.n:
                rows = rows[(rows >= self.first) & (rows < self.first + self.held)] - self.first
            rows = rows.to(x.device)
            return Rows(x.index_select(0, rows), y.index_select(0, rows), self.size, x.device)
        epoch, position = divmod(step, self.per_epoch)
        if self._draw(epoch) or self._x.shape[0] != self._mine.shape[0]:
            # Row-major: a batch's rows are then contiguous, whatever the layout of x.
            mine = self._mine.to(x.device)
            self._x = x.index_select(0, mine).contiguous()
            self._y = y.index_select(0, mine)
        lo, hi = int(self._bounds[position]), int(self._bounds[position + 1])
        total = min(self.size, self.n - position * self.size)
        return Rows(self._x[lo:hi], self._y[lo:hi], total, self._x.device)

    def _draw(self, epoch: int) -> bool:
        if epoch == self._epoch:
            return False
        gen = torch.Generator().manual_seed(block_seed(self.seed ^ _SHUFFLE_STREAM, epoch))
        perm = torch.randperm(self.n, generator=gen)
        starts = torch.arange(0, self.n + self.size, self.size).clamp_max(self.n)
        if self.held == self.n:
            self._mine, self._bounds = perm, starts
        else:
            held = (perm >= self.first) & (perm < self.first + self.held)
            self._mine = perm[held] - self.first
            counts = torch.cat([torch.zeros(1, dtype=torch.long), held.cumsum(0)])
            self._bounds = counts[starts]
        self._perm = perm
        self._epoch = epoch
        return True
