"""The SGD loop: K replicas of the lesson's model trained at once (K = 1 for ``fit``).

Per-replica learning rates are applied by scaling each replica's gradient, then taking one
``torch.optim.SGD`` step with lr = 1. This is exact for plain, momentum and Nesterov SGD (the
momentum buffer is linear in the gradient), and weight decay is folded into the gradient before
the scaling so it stays exact too. A replica that diverges, converges or is interrupted is frozen
where it stopped; the others go on untouched.

The loop never synchronises with the host per step: stopping conditions are tensors on the device,
histories go into preallocated device buffers, and the host looks at them every ``SYNC_EVERY``
steps (to report progress and to end early once every replica has stopped).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lrtrain import startup
from lrtrain.analysis import gap_scale
from lrtrain.config import Config
from lrtrain.data import STREAM_CHUNK_ROWS, Dataset, block_seed
from lrtrain.distributed import SINGLE, World
from lrtrain.errors import DeviceError
from lrtrain.model import MyLinearRegressionModel
from lrtrain.startup import never_imports_dynamo

SYNC_EVERY = 64
CUDA_GRAPHS = True  # full-batch CUDA training replays a captured step (see _GraphedStep)
_GRAPH_WARMUP = 3
# From this many rows on, full-batch steps use the streamed gradient (_streamed_forward_backward).
STREAM_MIN_ROWS = 1 << 16
_STREAM_CHUNK_ROWS = 1 << 16
DIVERGENCE_FACTOR = 1e6  # loss above this × the initial loss counts as diverged
STATUSES = ("completed", "converged", "diverged", "interrupted")
_COMPLETED, _CONVERGED, _DIVERGED, _INTERRUPTED = range(4)
_SHUFFLE_STREAM = 0x5EED_5A1E  # separates the shuffling seeds from the data seeds

ProgressCallback = Callable[[int, int, list[float]], None]


@dataclass
class Rows:
    """The rows one step's loss is the mean over, as this process holds them: tensors on the
    device (``x`` [n, d], ``y`` [n, 1]) or, when streaming, a data set regenerated chunk by
    chunk. ``total`` counts the rows of every process (the loss's N): a process's share of
    the gradient is weighted by its rows, so unequal shards average correctly."""

    x: torch.Tensor | None
    y: torch.Tensor | None
    total: int
    stream: Dataset | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def chunks(self, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(xᵀ [d, c], yᵀ [1, c]) chunks of these rows on the device: rows as columns."""
        if self.stream is not None:
            for x, y in self.stream.chunks(STREAM_CHUNK_ROWS):
                yield x.to(self.device).t(), y.to(self.device).t()
            return
        assert self.x is not None and self.y is not None
        xt, yt = self.x.t(), self.y.t()
        for lo in range(0, xt.shape[1], size):
            yield xt[:, lo : lo + size], yt[:, lo : lo + size]


# (model, rows) → per-replica loss and gradient norm at θ, the gradients left in .grad
Gradient = Callable[[MyLinearRegressionModel, Rows], tuple[torch.Tensor, torch.Tensor]]


def resolve_device(spec: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; CUDA asked for but absent is a user error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device: '{spec}' was asked for but CUDA is not available on this machine "
            "(no GPU, or a CPU-only PyTorch); use device=cpu or device=auto"
        )
    device = torch.device(spec)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(
            f"device: '{spec}' does not exist; this machine has {count} CUDA device(s) "
            f"(cuda:0 … cuda:{count - 1})"
        )
    return device


def torch_dtype(name: str) -> torch.dtype:
    return torch.float64 if name == "float64" else torch.float32


@dataclass
class TrainResult:
    """Histories and final state of K replicas.

    Rows ``steps`` (every ``log_every``-th step) hold θ_t, the loss and the gradient norm at θ_t
    for every replica; a replica's history is valid up to (not including) its ``stop_steps``
    entry, and its ``final_*`` values are those at θ at ``stop_steps`` (the last row of its
    metrics).
    """

    lrs: list[float]
    steps: torch.Tensor  # [R] int64
    loss: torch.Tensor  # [R, K]
    grad_norm: torch.Tensor  # [R, K]
    theta: torch.Tensor  # [R, K, d+1]
    stop_steps: list[int]
    statuses: list[str]
    final_loss: list[float]
    final_grad_norm: list[float]
    final_theta: torch.Tensor  # [K, d+1]
    initial_grad: torch.Tensor  # [K, d+1], gradient at θ_0
    elapsed_s: float
    steps_run: int
    device: str
    model_state: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer_state: dict[str, object] = field(default_factory=dict)
    loop_state: dict[str, torch.Tensor] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=SINGLE.describe)

    def engine_state(self) -> dict[str, Any]:
        """What ``train(resume=…)`` needs to continue this run exactly: model, optimizer
        (momentum buffers), the step to continue from and the loop's state."""
        return {
            "step": min(self.stop_steps),
            "model": self.model_state,
            "optimizer": self.optimizer_state,
            "loop": self.loop_state,
        }

    def replica_history(self, k: int) -> dict[str, torch.Tensor]:
        """Replica k's rows t = 0 … stop (float64, CPU): step, loss, grad_norm, theta."""
        stop = self.stop_steps[k]
        keep = self.steps < stop
        f64 = torch.float64
        return {
            "step": torch.cat([self.steps[keep], torch.tensor([stop])]),
            "loss": torch.cat([self.loss[keep, k], torch.tensor([self.final_loss[k]], dtype=f64)]),
            "grad_norm": torch.cat(
                [self.grad_norm[keep, k], torch.tensor([self.final_grad_norm[k]], dtype=f64)]
            ),
            "theta": torch.cat([self.theta[keep, k], self.final_theta[k : k + 1]]),
        }


class _Batches:
    """Mini-batches: each epoch the data is permuted once into a buffer, and step t's batch is a
    slice of it — one gather per epoch instead of one per step, and no copy per step.

    The permutation of epoch e is drawn from (seed, e), so any step's batch can be recomputed
    without saved RNG state (which is what an exact resume needs). In a distributed run every
    process draws the same permutation of all N rows and takes, from each global batch, the
    rows it holds (``first`` … ``first + held``): the processes together compute exactly the
    single-process batch's gradient (weighted by rows, see :class:`Rows`).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        device: torch.device,
        first: int = 0,
        held: int | None = None,
    ) -> None:
        self.n, self.size, self.seed, self.device = n, min(batch_size, n), seed, device
        self.first, self.held = first, n if held is None else held
        self.per_epoch = math.ceil(n / self.size)
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)  # global rows, in this epoch's order
        self._mine = torch.empty(0, dtype=torch.long)  # the held ones among them, local index
        self._bounds = torch.empty(0, dtype=torch.long)  # batch p's held rows: [p] … [p + 1]
        self._x = self._y = torch.empty(0)

    def indices(self, step: int) -> torch.Tensor:
        """Rows of the data set in step ``step``'s batch."""
        epoch, position = divmod(step, self.per_epoch)
        self._draw(epoch)
        return self._perm[position * self.size : (position + 1) * self.size]

    def batch(self, step: int, x: torch.Tensor, y: torch.Tensor) -> Rows:
        """Step ``step``'s batch: those of the rows :meth:`indices` names that ``x``/``y``
        (this process's rows) hold."""
        epoch, position = divmod(step, self.per_epoch)
        if self._draw(epoch) or self._x.shape[0] != self._mine.shape[0]:
            # Row-major: a batch's rows are then contiguous, whatever the layout of x.
            mine = self._mine.to(x.device)
            self._x = x.index_select(0, mine).contiguous()
            self._y = y.index_select(0, mine)
        lo, hi = int(self._bounds[position]), int(self._bounds[position + 1])
        total = min(self.size, self.n - position * self.size)
        return Rows(self._x[lo:hi], self._y[lo:hi], total)

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


@never_imports_dynamo  # lrtrain never compiles: building SGD need not import torch._dynamo
def train(
    dataset: Dataset,
    config: Config,
    lrs: list[float] | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    loss_ref: float | None = None,
    resume: dict[str, Any] | None = None,
    world: World = SINGLE,
    gap_floor: float = 0.0,
) -> TrainResult:
    """Train ``len(lrs)`` replicas (default: the config's one lr) and return their histories.

    ``loss_ref`` is the loss the optimizer converges to (the closed form's); ``train.target_gap``
    stops a replica once (loss − loss_ref)/loss_ref is at most the target, or at most
    ``gap_floor`` when the target lies below it (what the dtype can resolve). ``resume`` is a
    checkpoint's ``engine`` entry (:meth:`TrainResult.engine_state`): training continues from
    its step with its model, optimizer (momentum buffers) and loop state, and on the CPU ends
    bit for bit where an uninterrupted run would (mini-batches are drawn from (seed, epoch),
    so no RNG state is needed).

    With a distributed ``world`` the dataset is this process's shard, the model is wrapped in
    ``DistributedDataParallel`` and every process ends with the same parameters: those of the
    single-process run, up to the order of floating-point sums.
    """
    lrs = [config.optimizer.lr] if lrs is None else list(lrs)
    if not all(isinstance(lr, float | int) for lr in lrs):
        raise ValueError("optimizer.lr: auto must be resolved (api.prepare) before training")
    if config.train.target_gap is not None and loss_ref is None:
        raise ValueError("train.target_gap needs loss_ref, the closed form's loss")
    device = _process_device(config.device, world)
    dtype = torch_dtype(config.train.dtype)
    data = _rows(dataset, device, dtype)
    k, d = len(lrs), dataset.d
    opt_cfg, train_cfg = config.optimizer, config.train

    model = MyLinearRegressionModel(d, replicas=k, dtype=dtype).to(device)
    if config.model.init == "normal":
        model.init_normal_(config.seed)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=1.0,
        momentum=opt_cfg.momentum,
        nesterov=opt_cfg.nesterov,
        weight_decay=0.0,
    )
    total, log_every = train_cfg.max_iter, train_cfg.log_every
    rows = (total - 1) // log_every + 1
    loop = _Loop.start(k, d, rows, total, dtype, device, lrs)
    if train_cfg.target_gap is not None:
        loop.target_gap = max(train_cfg.target_gap, gap_floor)
    loop.loss_ref = loss_ref or 0.0
    first = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        loop.restore(resume["loop"], total)
        first = int(resume["step"])
    batches = (
        _Batches(
            dataset.n, train_cfg.batch_size, config.seed, device, dataset.offset, dataset.local_rows
        )
        if train_cfg.batch_size is not None and train_cfg.batch_size < dataset.n
        else None
    )

    # The lesson's autograd step for small full-batch problems; the streamed gradient where the
    # per-step cost matters: many rows, or many small mini-batch steps; DDP over processes.
    if world.distributed:
        shared = _DistributedGradient(model, world, should_stop)
        gradient: Gradient = shared
        full_gradient: Gradient = shared
        should_stop = shared.agreed_stop
    else:
        large = dataset.n >= STREAM_MIN_ROWS or data.stream is not None
        full_gradient = _streamed_forward_backward if large else _autograd_forward_backward
        gradient = _streamed_forward_backward if batches is not None else full_gradient

    def step_at(step: int | torch.Tensor, batch: Rows) -> torch.Tensor:
        return _step(loop, model, optimizer, gradient, batch, step, config)

    use_graph = _use_graph(device, batches, total - first, data, world)
    graphed = _GraphedStep(step_at, data, loop) if use_graph else None
    check_every = 1 if device.type == "cpu" else SYNC_EVERY
    start = time.perf_counter()
    for step in range(first, total):
        if should_stop is not None and should_stop():
            loop.interrupt(step)
            break
        if graphed is not None:
            loss = graphed.run(step)
        elif batches is not None:
            assert data.x is not None and data.y is not None
            loss = step_at(step, batches.batch(step, data.x, data.y))
        else:
            loss = step_at(step, data)
        last = step + 1 == total
        if (step + 1) % check_every == 0 or last:
            # Stop early once every replica has stopped (the remaining steps would only recompute
            # frozen values). On a GPU that read synchronises with the host, so it happens every
            # SYNC_EVERY steps; on the CPU it is a cheap read, done every step.
            still = bool(loop.active.any())
            if progress is not None and ((step + 1) % SYNC_EVERY == 0 or last or not still):
                progress(step + 1, total, loss.tolist())
            if not still:
                break
    final_loss, final_grad = full_gradient(model, data)
    theta_final = _theta(model)
    stops = loop.stop_step.tolist()
    steps_run = min(max(stops), total)
    elapsed = time.perf_counter() - start
    if progress is not None:
        progress(steps_run, total, final_loss.tolist())
    f64 = torch.float64
    return TrainResult(
        lrs=lrs,
        steps=torch.arange(0, total, log_every)[:rows],
        loss=loop.hist_loss[:rows].to("cpu", f64),
        grad_norm=loop.hist_grad[:rows].to("cpu", f64),
        theta=loop.hist_theta[:rows].to("cpu", f64),
        stop_steps=stops,
        statuses=[STATUSES[s] for s in loop.status.tolist()],
        final_loss=final_loss.to("cpu", f64).tolist(),
        final_grad_norm=final_grad.to("cpu", f64).tolist(),
        final_theta=theta_final.to("cpu", f64),
        initial_grad=loop.initial_grad.to("cpu", f64),
        elapsed_s=elapsed,
        steps_run=steps_run,
        device=str(device),
        model_state={k_: v.detach().cpu() for k_, v in model.state_dict().items()},
        optimizer_state=_cpu(optimizer.state_dict()),
        loop_state=loop.state(),
        world=world.describe(),
    )


def concat_results(parts: list[TrainResult], world: dict[str, Any]) -> TrainResult:
    """One result from the groups of learning rates that processes trained (dealt out by
    ``distributed.deal``), replicas back in their original order. Sweeps are not resumed, so
    optimizer and loop states are not kept."""
    from lrtrain.distributed import undeal

    order = undeal([[(r, k) for k in range(len(part.lrs))] for r, part in enumerate(parts)])

    def pick(get: Callable[[TrainResult], torch.Tensor], dim: int) -> torch.Tensor:
        return torch.stack([get(parts[r]).select(dim, k) for r, k in order], dim=dim)

    def each(get: Callable[[TrainResult], list[Any]]) -> list[Any]:
        return [get(parts[r])[k] for r, k in order]

    first = parts[0]
    return TrainResult(
        lrs=each(lambda p: p.lrs),
        steps=first.steps,
        loss=pick(lambda p: p.loss, 1),
        grad_norm=pick(lambda p: p.grad_norm, 1),
        theta=pick(lambda p: p.theta, 1),
        stop_steps=each(lambda p: p.stop_steps),
        statuses=each(lambda p: p.statuses),
        final_loss=each(lambda p: p.final_loss),
        final_grad_norm=each(lambda p: p.final_grad_norm),
        final_theta=pick(lambda p: p.final_theta, 0),
        initial_grad=pick(lambda p: p.initial_grad, 0),
        elapsed_s=max(p.elapsed_s for p in parts),
        steps_run=max(p.steps_run for p in parts),
        device=first.device,
        model_state={
            name: pick(lambda p, name=name: p.model_state[name], 0) for name in first.model_state
        },
        world=world,
    )


def _process_device(spec: str, world: World) -> torch.device:
    """The config's device; in a distributed run on CUDA, this process's GPU (LOCAL_RANK)."""
    device = resolve_device(spec)
    if world.distributed and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def _rows(dataset: Dataset, device: torch.device, dtype: torch.dtype) -> Rows:
    """Every row of the data set this process trains on: on the device, or streamed."""
    if dataset.stream is not None:
        return Rows(None, None, dataset.n, dataset, device)
    x = dataset.x.to(device=device, dtype=dtype)
    y = dataset.y.to(device=device, dtype=dtype)
    return Rows(x, y, dataset.n)


@dataclass
class _Loop:
    """The loop's state, all on the device and updated in place, so that one step can be
    captured as a CUDA graph and replayed. Histories have one spare row at the end: a captured
    step writes every step, and steps that are not logged write to the spare row."""

    lr: torch.Tensor  # [K]
    active: torch.Tensor  # [K] bool
    stop_step: torch.Tensor  # [K] long: the step each replica stopped at (max_iter if not)
    status: torch.Tensor  # [K] long: index into STATUSES
    prev_loss: torch.Tensor  # [K]
    limit: torch.Tensor  # [K]: a loss above this is divergence
    initial_grad: torch.Tensor  # [K, d + 1]
    hist_loss: torch.Tensor  # [rows + 1, K]
    hist_grad: torch.Tensor  # [rows + 1, K]
    hist_theta: torch.Tensor  # [rows + 1, K, d + 1]
    goal: torch.Tensor  # [K]: a loss at or below this reaches train.target_gap (-inf: no goal)
    target_gap: float | None = None
    loss_ref: float = 0.0

    @classmethod
    def start(
        cls,
        k: int,
        d: int,
        rows: int,
        total: int,
        dtype: torch.dtype,
        device: torch.device,
        lrs: list[float],
    ) -> _Loop:
        def full(shape: tuple[int, ...], value: float, kind: torch.dtype = dtype) -> torch.Tensor:
            return torch.full(shape, value, dtype=kind, device=device)

        return cls(
            lr=torch.tensor(lrs, dtype=dtype, device=device),
            active=full((k,), True, torch.bool),
            stop_step=full((k,), total, torch.long),
            status=full((k,), _COMPLETED, torch.long),
            prev_loss=full((k,), math.nan),
            # The finite maximum, not inf, so that an infinite loss fails `loss <= limit` even
            # when the initial loss is 0 (and no multiple of it can serve as a limit).
            limit=full((k,), torch.finfo(dtype).max),
            initial_grad=full((k, d + 1), 0.0),
            hist_loss=full((rows + 1, k), 0.0),
            hist_grad=full((rows + 1, k), 0.0),
            hist_theta=full((rows + 1, k, d + 1), 0.0),
            goal=full((k,), -math.inf),
        )

    def interrupt(self, step: int) -> None:
        self.stop_step.masked_fill_(self.active, step)
        self.status.masked_fill_(self.active, _INTERRUPTED)
        self.active.zero_()

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors a resume needs (on the CPU), histories included."""
        return {name: getattr(self, name).detach().cpu().clone() for name in _LOOP_TENSORS}

    def restore(self, state: dict[str, torch.Tensor], total: int) -> None:
        """Continue from ``state``: interrupted and completed replicas become active again
        (stopping at this run's max_iter); histories are copied row by row, so max_iter may
        grow."""
        for name in _LOOP_TENSORS:
            mine, saved = getattr(self, name), state[name].to(getattr(self, name).device)
            if name.startswith("hist_"):
                rows = min(mine.shape[0], saved.shape[0]) - 1  # the spare row stays spare
                mine[:rows] = saved[:rows]
            else:
                mine.copy_(saved)
        # Interrupted replicas, and completed ones (which ran out of steps), go on.
        going_on = (self.status == _INTERRUPTED) | (self.status == _COMPLETED)
        self.active.copy_(going_on)
        self.stop_step.masked_fill_(going_on, total)
        self.status.masked_fill_(going_on, _COMPLETED)


_LOOP_TENSORS = (
    "lr", "active", "stop_step", "status", "prev_loss", "limit", "initial_grad",
    "hist_loss", "hist_grad", "hist_theta", "goal",
)  # fmt: skip


def _step(
    loop: _Loop,
    model: MyLinearRegressionModel,
    optimizer: torch.optim.Optimizer,
    gradient: Gradient,
    batch: Rows,
    step: int | torch.Tensor,
    config: Config,
) -> torch.Tensor:
    """One step of every replica: loss and gradient at θ_t, history, stop checks, SGD update.

    ``step`` is a Python int when run eagerly, or a device tensor inside a CUDA graph (where
    nothing may depend on the host).
    """
    loss, grad_norm = gradient(model, batch)
    if isinstance(step, int) and step == 0:
        loop.limit.copy_(torch.where(loss > 0, loss * DIVERGENCE_FACTOR, loop.limit))
        loop.initial_grad.copy_(_grad_vector(model))
        if loop.target_gap is not None:
            scale = [gap_scale(loop.loss_ref, float(loss0)) for loss0 in loss.tolist()]
            goal = [loop.loss_ref + loop.target_gap * s for s in scale]
            loop.goal.copy_(torch.tensor(goal, dtype=loss.dtype))
    _record(loop, model, step, loss, grad_norm, config.train.log_every)
    ok = loss <= loop.limit  # False for NaN, ±inf and blow-ups alike
    tol = config.train.tol
    done = ~ok | (loss <= loop.goal)
    if tol is not None:
        done |= (loss - loop.prev_loss).abs() < tol
    newly = loop.active & done
    # torch.where, not masked_fill_: with a tensor value masked_fill_ reads it on the host.
    loop.stop_step.copy_(torch.where(newly, step, loop.stop_step))
    loop.status.copy_(torch.where(newly, torch.where(ok, _CONVERGED, _DIVERGED), loop.status))
    loop.active.logical_and_(~newly)
    opt = config.optimizer
    _sgd_step(model, optimizer, loop.lr, loop.active, opt.weight_decay, opt.momentum > 0)
    loop.prev_loss.copy_(loss)
    return loss


def _record(
    loop: _Loop,
    model: MyLinearRegressionModel,
    step: int | torch.Tensor,
    loss: torch.Tensor,
    grad_norm: torch.Tensor,
    log_every: int,
) -> None:
    if isinstance(step, int):
        if step % log_every == 0:
            row = step // log_every
            loop.hist_loss[row] = loss
            loop.hist_grad[row] = grad_norm
            loop.hist_theta[row] = _theta(model)
        return
    # On the device, without a host decision: unlogged steps go to the spare last row.
    spare = loop.hist_loss.shape[0] - 1
    rows = torch.where(step % log_every == 0, step // log_every, spare).view(1)
    loop.hist_loss.index_copy_(0, rows, loss.unsqueeze(0))
    loop.hist_grad.index_copy_(0, rows, grad_norm.unsqueeze(0))
    loop.hist_theta.index_copy_(0, rows, _theta(model).unsqueeze(0))


class _GraphedStep:
    """The whole training step captured once as a CUDA graph and replayed: one launch per step
    instead of dozens, which is what bounds small problems on a GPU. The first
    ``_GRAPH_WARMUP`` steps run eagerly on a side stream (PyTorch's recipe for whole-network
    capture; they also create SGD's momentum buffers); the graph then computes exactly what
    the eager step would, its step counter living on the device."""

    def __init__(
        self,
        step_at: Callable[[int | torch.Tensor, Rows], torch.Tensor],
        data: Rows,
        loop: _Loop,
    ) -> None:
        assert data.x is not None
        self.step_at, self.data, self.loop = step_at, data, loop
        self.device = data.x.device
        self.graph: torch.cuda.CUDAGraph | None = None
        self.counter = torch.zeros((), dtype=torch.long, device=self.device)
        self.calls = 0
        self.loss = torch.empty(0)

    def run(self, step: int) -> torch.Tensor:
        self.calls += 1
        if self.calls <= _GRAPH_WARMUP:  # the first steps of this run (a resume too)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                loss = self.step_at(step, self.data)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return loss
        if self.graph is None:
            self._capture(step)
        assert self.graph is not None
        self.graph.replay()
        return self.loss

    def _capture(self, step: int) -> None:
        self.counter.fill_(step)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._body()
        self.graph = graph

    def _body(self) -> None:
        self.loss = self.step_at(self.counter, self.data)
        self.counter.add_(1)


def _use_graph(
    device: torch.device, batches: _Batches | None, total: int, data: Rows, world: World
) -> bool:
    # Full batch in memory, one process: mini-batches change shape at the end of an epoch, a
    # streamed step runs host code per chunk, and collectives stay outside captured graphs.
    return (
        CUDA_GRAPHS
        and device.type == "cuda"
        and batches is None
        and data.stream is None
        and not world.distributed
        and total > _GRAPH_WARMUP
    )


def _cpu(value: Any) -> Any:
    """A copy of a state dict with every tensor on the CPU (checkpoints load anywhere)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value


def _autograd_forward_backward(
    model: MyLinearRegressionModel, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lesson's step without the update: per-replica loss and gradient norm at θ."""
    assert batch.x is not None and batch.y is not None
    prediction = model(batch.x)  # [n, K]
    loss = ((prediction - batch.y) ** 2).mean(dim=0)  # [K]: the lesson's mean squared error
    model.w.grad = model.b.grad = None  # optimizer.zero_grad(), without its per-call overhead
    # Replicas are independent, so the gradient of the sum is each replica's own gradient.
    loss.sum().backward()
    return loss.detach(), torch.linalg.vector_norm(_grad_vector(model), dim=1)


def _streamed_forward_backward(
    model: MyLinearRegressionModel, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly the gradient autograd derives for the lesson's loss, from :func:`_squares`
    (tested equal to the autograd step, test_train.py)."""
    squares, residual_x, residual_sum = _squares(model.w.detach(), model.b.detach(), batch)
    n = batch.total
    model.w.grad = residual_x.mul_(2.0 / n)  # ∂/∂w mean(r²) = (2/N) rᵀX
    model.b.grad = residual_sum.mul_(2.0 / n)
    return squares.div_(n), torch.linalg.vector_norm(_grad_vector(model), dim=1)


@torch.no_grad()
def _squares(
    w: torch.Tensor, b: torch.Tensor, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Σ r², rᵀX and Σ r over the batch's rows (r = Xwᵀ + b − y), per replica — the loss
    and, times 2, its gradient — accumulated over row chunks small enough to stay in cache.
    Each chunk of X is read from memory once, and no N-sized temporary is ever made (the
    autograd graph of the lesson's step makes several). On a small mini-batch it is simply
    fewer operations than autograd's engine runs per step."""
    k = w.shape[0]
    # A GPU streams the whole of X at full bandwidth in one go; a CPU core wants chunks that
    # stay in its cache between the two products.
    on_gpu = w.device.type == "cuda"
    chunk = 1 << 62 if on_gpu else max(4096, _STREAM_CHUNK_ROWS // k)
    residual_x, residual_sum = torch.zeros_like(w), torch.zeros_like(b)
    total = torch.zeros_like(b)
    bias = b.unsqueeze(1)
    for x_chunk, y_chunk in batch.chunks(chunk):  # rows as columns: residuals come out [K, c]
        residual = torch.mm(w, x_chunk).add_(bias).sub_(y_chunk)
        residual_x.addmm_(residual, x_chunk.t())
        residual_sum.add_(residual.sum(dim=1))
        total.add_((residual * residual).sum(dim=1))
    return total, residual_x, residual_sum


class _SquaredResiduals(torch.autograd.Function):
    """Σ r² per replica as an autograd function whose backward hands back the streamed
    gradient: what lets DistributedDataParallel all-reduce it (its hooks fire on backward)."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, b: torch.Tensor, batch: Rows) -> torch.Tensor:
        squares, residual_x, residual_sum = _squares(w.detach(), b.detach(), batch)
        ctx.save_for_backward(residual_x, residual_sum)
        return squares

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        residual_x, residual_sum = ctx.saved_tensors
        twice = 2.0 * upstream  # ∂(Σ r²) = 2 rᵀX, 2 Σ r
        return twice.unsqueeze(1) * residual_x, twice * residual_sum, None


class _ShardLoss(nn.Module):
    """This process's share of the loss, ``(world size / N) · Σ r²`` over the rows it holds:
    DDP averages gradients over processes, so the average is exactly (1/N) Σ over all rows
    of the gradient, however unequal the shards."""

    def __init__(self, model: MyLinearRegressionModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Rows, scale: float) -> torch.Tensor:
        squares = _SquaredResiduals.apply(self.model.w, self.model.b, batch)
        return squares * scale


class _DistributedGradient:
    """The gradient of the global mean loss through ``DistributedDataParallel``, with the loss
    and every process's request to stop riding in the same all-reduce (a DDP communication
    hook appends them to the gradient bucket): one collective of (d + 2)·K numbers per step,
    whose latency, not its size, is what a step pays for being distributed. All processes
    therefore see the same loss and stop at the same step, as a collective run must."""

    def __init__(
        self,
        model: MyLinearRegressionModel,
        world: World,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.world, self.local_stop, self.stopped = world, should_stop, False
        self.extra = self.reduced_extra = torch.empty(0)
        with world.collective("start (DistributedDataParallel broadcasts the model)"):
            self.ddp = DistributedDataParallel(_ShardLoss(model))
        # A lambda: DDP checks a hook's annotations, and this module's are strings.
        self.ddp.register_comm_hook(None, lambda state, bucket: self._all_reduce(bucket))

    def agreed_stop(self) -> bool:
        """Whether any process asked to stop, as of the last step (the same on every one)."""
        return self.stopped

    def _all_reduce(self, bucket: Any) -> torch.futures.Future[torch.Tensor]:
        """DDP's allreduce hook (sum, then divide by the world size), with ``self.extra``
        appended to the last bucket and its sum kept in ``self.reduced_extra``."""
        import torch.distributed as dist

        gradients = bucket.buffer()
        last = bucket.is_last()
        packed = torch.cat([gradients, self.extra.to(gradients)]) if last else gradients
        future = dist.all_reduce(packed, async_op=True).get_future()

        def unpack(done: torch.futures.Future[list[torch.Tensor]]) -> torch.Tensor:
            summed = done.value()[0]
            if last:
                self.reduced_extra = summed[gradients.numel() :].clone()
                summed = summed[: gradients.numel()]
            return summed.div_(self.world.size)

        return future.then(unpack)

    def __call__(
        self, model: MyLinearRegressionModel, batch: Rows
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.world.size / batch.total
        model.w.grad = model.b.grad = None
        with self.world.collective("training step"):
            share = self.ddp(batch, scale)
            asked = float(self.local_stop is not None and self.local_stop())
            self.extra = torch.cat([share.detach() / scale, share.new_tensor([asked])])
            share.sum().backward()  # the hook all-reduces gradients, squares and stop flags
        self.stopped = bool(self.reduced_extra[-1] > 0)
        loss = self.reduced_extra[:-1].to(share.dtype) / batch.total
        return loss, torch.linalg.vector_norm(_grad_vector(model), dim=1)


def _grad_vector(model: MyLinearRegressionModel) -> torch.Tensor:
    return torch.cat([model.w.grad, model.b.grad.unsqueeze(1)], dim=1)


def _theta(model: MyLinearRegressionModel) -> torch.Tensor:
    return torch.cat([model.w.detach(), model.b.detach().unsqueeze(1)], dim=1)


@torch.no_grad()
def _sgd_step(
    model: MyLinearRegressionModel,
    optimizer: torch.optim.Optimizer,
    lr: torch.Tensor,
    active: torch.Tensor,
    weight_decay: float,
    momentum: bool,
) -> None:
    inactive = ~active
    old = (model.w.clone(), model.b.clone()) if momentum else None
    for param, rate, frozen in (
        (model.w, lr.unsqueeze(1), inactive.unsqueeze(1)),
        (model.b, lr, inactive),
    ):
        grad = param.grad
        if weight_decay:
            grad.add_(param, alpha=weight_decay)
        # Zero a stopped replica's gradient outright: it may be infinite, and inf·0 is NaN.
        grad.mul_(rate).masked_fill_(frozen, 0.0)
    startup.step(optimizer)  # optimizer.step(), without importing torch._dynamo
    if old is not None:
        # Momentum would keep moving a stopped replica: put it back where it stopped.
        model.w.copy_(torch.where(active.unsqueeze(1), model.w, old[0]))
        model.b.copy_(torch.where(active, model.b, old[1]))
