"""Several processes, through PyTorch's own ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

A :class:`World` says which process this is and carries the few collectives the core needs;
the single-process world (:data:`SINGLE`) makes every collective a no-op, so the core has one
code path. Processes are started by ``torchrun`` (or ``lrtrain fit --nproc N``, which calls
``torch.distributed.run``); :func:`setup` joins the process group torchrun describes in the
environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` …).

Rows are shared out evenly (process r of W holds rows ⌊rN/W⌋ … ⌊(r+1)N/W⌋ − 1; a process
regenerates the synthetic blocks its rows fall in and keeps its rows of them), and every loss and
gradient is weighted by rows, never by process.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from lrtrain.errors import ConfigError, DistributedError, PeerFailed

T = TypeVar("T")

# how long a process waits for the others before giving up (--dist-timeout)
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` processes (``backend`` None: a single process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run directory, prints and draws."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def machine_share(self) -> float:
        """About the part of the rows this machine's processes hold together."""
        here = int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if self.distributed else 1
        return min(1.0, here / self.size)

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.size, "backend": self.backend}

    def all_sum(self, tensor: Any) -> Any:
        """``tensor`` summed over every process (in place; returned for convenience)."""
        if self.distributed:
            import torch.distributed as dist

            self._all_reduce(tensor, dist.ReduceOp.SUM, "sum")
        return tensor

    def all_max(self, tensor: Any) -> Any:
        if self.distributed:
            import torch.distributed as dist

            self._all_reduce(tensor, dist.ReduceOp.MAX, "max")
        return tensor

    def _all_reduce(self, tensor: Any, op: Any, what: str) -> None:
        import torch.distributed as dist

        wire = self.on_wire(tensor)
        with self.collective(what):
            dist.all_reduce(wire, op=op)
        if wire is not tensor:
            tensor.copy_(wire)

    def on_wire(self, tensor: Any) -> Any:
        """``tensor`` where the backend can reduce it: NCCL takes only CUDA tensors, so a CPU
        tensor (the range check's peaks, the float64 statistics) travels through this
        process's GPU; gloo takes either."""
        if self.backend == "nccl" and tensor.device.type == "cpu":
            return tensor.to(f"cuda:{self.local_rank}")
        return tensor

    def all_gather(self, tensor: Any) -> list[Any]:
        """Every process's ``tensor`` (all the same shape), in rank order."""
        if not self.distributed:
            return [tensor]
        import torch
        import torch.distributed as dist

        wire = self.on_wire(tensor)
        parts = [torch.empty_like(wire) for _ in range(self.size)]
        with self.collective("gather"):
            dist.all_gather(parts, wire)
        return parts if wire is tensor else [part.to(tensor.device) for part in parts]

    def gather_objects(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj`` on rank 0 (in rank order), None elsewhere."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.size if self.is_main else None
        with self.collective("gather of results"):
            dist.gather_object(obj, out, dst=0)
        return out

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        with self.collective("broadcast"):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, action: Callable[[], T]) -> T | None:
        """Run ``action`` on rank 0 only and tell every process whether it worked: a failure
        there (an output directory that exists, say) is re-raised on rank 0 and ends the
        others quietly, instead of leaving them waiting for rank 0 in the next collective."""
        failure: BaseException | None = None
        value: T | None = None
        if self.is_main:
            try:
                value = action()
            except Exception as exc:  # re-raised below, after telling the others
                failure = exc
        if self.share(failure is not None):
            if failure is not None:
                raise failure
            raise PeerFailed("rank 0 stopped (its message says why)")
        return value

    @contextmanager
    def collective(self, what: str) -> Iterator[None]:
        """Turn a failed or timed-out collective (a process died, or hangs) into one clear
        error instead of a hang or a backend traceback."""
        try:
            yield
        except RuntimeError as exc:  # DistBackendError and gloo/NCCL errors derive from it
            raise DistributedError(self.lost(what, exc)) from None

    def lost(self, what: str, exc: BaseException) -> str:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"rank {self.rank} of {self.size}: lost the other processes during a {what} "
            f"({reason[:160]}); a process died or stopped answering within "
            f"{self.timeout_s:g} s — check its output, then rerun"
        )


SINGLE = World()
_current = SINGLE


def current() -> World:
    """The world :func:`setup` joined (the single process if none)."""
    return _current


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group torchrun describes (NCCL when training on CUDA, else gloo)."""
    global _current
    if not launched():
        return SINGLE
    if _current.distributed:
        return _current
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
    if cuda:
        check_gpus(int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1)))
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"torch.distributed: cannot join the process group ({str(exc).splitlines()[0]}); "
            "check torchrun's --rdzv-endpoint/--nnodes and that every machine can reach it"
        ) from None
    _current = World(dist.get_rank(), dist.get_world_size(), local_rank, backend, timeout_s)
    return _current


def check_gpus(processes: int) -> None:
    """On CUDA every process of a machine needs a GPU of its own (NCCL refuses to share one)."""
    import torch

    count = torch.cuda.device_count()
    if processes > count:
        raise ConfigError(
            f"{processes} processes on CUDA need {processes} GPUs (one each) but this machine "
            f"has {count}; use --nproc {count}, or device=cpu for more processes"
        )


def teardown() -> None:
    """Leave the process group (at exit), so that torchrun sees a clean end."""
    global _current
    if _current.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _current = SINGLE


def check_world_size(n_rows: int, size: int) -> None:
    """Refuse more processes than rows: some would hold none at all."""
    if size > n_rows:
        raise ConfigError(
            f"{size} processes for {n_rows:,} rows: each process needs at least one row; "
            f"use at most {n_rows} process(es) (--nproc {n_rows}), or more rows"
        )


def shard(n_rows: int, world: World) -> tuple[int, int]:
    """The rows [start, stop) process ``world.rank`` holds: ⌊rN/W⌋ … ⌊(r+1)N/W⌋, so shards
    differ by at most one row (the lesson's 100 points on 2 processes: 50 and 50)."""
    check_world_size(n_rows, world.size)
    return world.rank * n_rows // world.size, (world.rank + 1) * n_rows // world.size


def check_sweep_size(count: int, size: int) -> None:
    if size > count:
        raise ConfigError(
            f"{size} processes for {count} learning rates: each process trains at least one; "
            f"use at most {count} process(es), or more learning rates"
        )


def deal(items: list[Any], world: World) -> list[Any]:
    """This process's share of ``items``: item i goes to rank i mod W (neighbouring learning
    rates, which stop at similar times, end up on different processes)."""
    return items[world.rank :: world.size]


def undeal(parts: list[list[Any]]) -> list[Any]:
    """The inverse of :func:`deal`: the items back in their original order."""
    out: list[Any] = [None] * sum(len(p) for p in parts)
    for rank, part in enumerate(parts):
        out[rank :: len(parts)] = part
    return out
