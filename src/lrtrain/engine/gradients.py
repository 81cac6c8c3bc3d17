"""The gradient paths: per-replica loss and gradient of the mean squared error at θ, returned
as one [K, p] tensor (the update scales it into the parameters' .grad, :mod:`~.updates`).

- :func:`autograd_forward_backward`: the lesson's step (forward, MSE, ``loss.backward()``) over
  the rows: lesson-sized full-batch problems, where reading it is the point.
- :class:`GramGradient`: the same loss and gradient from the float64 statistics of one read of
  the data — L(θ) = L* + (θ − θ*)ᵀ(X̃ᵀX̃/N)(θ − θ*), ∇L = H(θ − θ*) — O(p²) per step whatever N:
  every other full-batch problem (many rows, streamed data, several processes, which then
  never communicate in a step).
- :func:`streamed_forward_backward`: the gradient from one cache-friendly pass over a
  mini-batch's rows (:func:`residual_sums`): fewer operations than autograd's engine per step.
- :class:`DistributedGradient`: that pass inside ``DistributedDataParallel``, for mini-batches
  (and ``train.gradient: autograd``) on several processes.

:func:`choose` picks them (``train.gradient``); each is tested equal to the autograd path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lrtrain.config.schema import Config
from lrtrain.data import stats as st
from lrtrain.data.distributed import World
from lrtrain.engine.batches import Rows
from lrtrain.engine.family import Model
from lrtrain.engine.model import MyLinearRegressionModel

# From this many rows on, `train.gradient: auto` takes full-batch steps from the statistics: an
# autograd step reads all of X several times (3.6–4.8 passes measured at N = 4M), a Gram step
# costs O(K·p²) whatever N; below it the lesson's loop is cheap, and it is what a student reads.
GRAM_MIN_ROWS = 1 << 16
# Steps between two agreements of several processes taking Gram steps on whether to stop: a
# Ctrl-C is honoured within this many steps, at one all-reduce of a flag per this many steps.
AGREE_EVERY = 64
# Rows per chunk of the streamed pass on a CPU, shared by the K replicas: small enough that a
# chunk of X stays in cache between the two products that read it.
CACHE_ROWS = 1 << 16

# (model, θ [K, p] detached, rows) → (per-replica loss [K], gradient [K, p]), both in the
# parameters' dtype or, on the Gram path, in float64 (the loop keeps such losses, and the update
# casts the gradient); θ is the view of the model's table the step reads anyway. The model is
# the family's the path was chosen for (``choose``): typed Any, as each path takes its own.
Gradient = Callable[[Any, torch.Tensor, Rows], tuple[torch.Tensor, torch.Tensor]]


def full_batch_path(mode: str, rows: int, streamed: bool, distributed: bool) -> str:
    """``train.gradient`` resolved for full-batch steps: "autograd" or "gram"."""
    if mode != "auto":
        return mode
    return "gram" if streamed or distributed or rows >= GRAM_MIN_ROWS else "autograd"


def reads_rows(config: Config, rows: int) -> bool:
    """Whether training ``config`` on ``rows`` rows reads the rows themselves — a network's
    forward pass, mini-batches, autograd steps — rather than only their statistics (the linear
    model's full-batch Gram steps): a source that holds its rows anyway then lends them instead
    of copying them into the training dtype (:data:`lrtrain.data.source.Holds`)."""
    if config.model.kind != "linear" or not config.train.full_batch(rows):
        return True
    return full_batch_path(config.train.gradient, rows, False, False) == "autograd"


def choose(
    model: Model,
    data: Rows,
    exact: Callable[[], st.Exact],
    mode: str,
    minibatch: bool,
    world: World,
    should_stop: Callable[[], bool] | None,
) -> tuple[Gradient, Gradient, Callable[[], bool] | None, str]:
    """(the gradient of a step, the full-batch gradient of the final values, the stop check,
    the name of the path the steps take). Several processes agree on stopping: through the
    gradient's all-reduce with DDP, every ``AGREE_EVERY`` steps otherwise. A network's steps
    always run autograd over their rows (:func:`network_forward_backward`); the Gram, streamed
    and DDP paths are least squares', the linear model's alone."""
    if not isinstance(model, MyLinearRegressionModel):
        if world.distributed:
            shared = DistributedGradient(model, world, should_stop)
            return shared, shared, shared.agreed_stop, "distributed network autograd (DDP)"
        path = "mini-batch (network autograd)" if minibatch else "network autograd"
        return network_forward_backward, network_forward_backward, should_stop, path
    full_path = full_batch_path(mode, data.total, data.x is None, world.distributed)
    if world.distributed and (minibatch or full_path == "autograd"):
        shared = DistributedGradient(model, world, should_stop)
        return shared, shared, shared.agreed_stop, "distributed autograd (DDP)"
    full: Gradient = (
        GramGradient(exact(), data.device) if full_path == "gram" else autograd_forward_backward
    )
    if world.distributed:  # Gram steps: nothing to communicate but the decision to stop
        should_stop = AgreedStop(world, should_stop, data.device)
    if minibatch:
        return streamed_forward_backward, full, should_stop, "mini-batch (streamed pass)"
    return full, full, should_stop, full_path


class GramGradient:
    """The full-batch loss and gradient from the data's float64 statistics (computed once, in
    one pass, combined across processes): per replica, with e = θ − θ*,

        L(θ) = L* + eᵀ A e,   ∇L = 2 A e,   A = X̃ᵀX̃/N  (H = 2A),

    exact for least squares. Written about θ*, not as θᵀAθ − 2θᵀX̃ᵀy/N + yᵀy/N, so that no
    large terms cancel near the optimum. The loss and gradient are computed in float64 and
    returned so (the update scales the gradient and casts it to the parameters' dtype in one
    operation); in float32 they are the data's as given, not its float32 rounding's."""

    def __init__(self, exact: st.Exact, device: torch.device) -> None:
        stats = exact.stats
        f64 = torch.float64
        self.hessian = (stats.xtx * (2.0 / stats.n)).to(device)  # H = 2A
        self.theta_star = exact.theta_star.to(device)
        self.loss_star = torch.tensor(float(exact.loss_star), dtype=f64, device=device)
        self.halves = torch.full((len(self.theta_star),), 0.5, dtype=f64, device=device)

    def __call__(
        self, model: MyLinearRegressionModel, theta: torch.Tensor, rows: Rows
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Few operations: with many replicas (a sweep) and no data to read, a step is as fast
        # as its count of small tensor operations (~5–10 µs each on a CPU, whatever their size).
        e = torch.sub(theta, self.theta_star)  # [K, p], float64 by type promotion
        # ∇ = H e per replica, as (H eᵀ)ᵀ: θ is the model's feature-major table, so eᵀ is
        # contiguous and the [p, K] product is the shape MKL computes fastest (~15 against
        # ~30 µs for e @ H at K = 1 000, p = 9). One replica's row is both layouts at once,
        # and e @ H spares it the two transposes (~2 against ~4 µs, every step of a fit).
        one = e.shape[0] == 1
        grad = torch.mm(e, self.hessian) if one else torch.mm(self.hessian, e.t()).t()
        # L* + ½ e·∇ per row as one matrix-vector product: a sum over rows of 9 and an add
        # measured ~10 µs slower at K = 1 000 (linalg.vecdot slower still).
        loss = torch.addmv(self.loss_star, e * grad, self.halves)
        # Both stay float64: the loop keeps this path's losses so (LoopState.start), and the
        # update casts the gradient once, as it writes the parameters' .grad.
        return loss, grad


class AgreedStop:
    """Several processes taking Gram steps never communicate in a step; every ``every`` steps
    they agree whether any of them was asked to stop (Ctrl-C, SIGTERM), so all stop at the same
    step, as a collective run must."""

    def __init__(
        self,
        world: World,
        local: Callable[[], bool] | None,
        device: torch.device,
        every: int = AGREE_EVERY,
    ) -> None:
        self.world, self.local, self.device, self.every = world, local, device, every
        self.calls, self.stopped = 0, False

    def __call__(self) -> bool:
        self.calls += 1
        if not self.stopped and self.calls % self.every == 0:
            asked = float(self.local is not None and self.local())
            flag = torch.tensor([asked], device=self.device)  # NCCL reduces device tensors
            self.stopped = bool(self.world.all_max(flag)[0] > 0)
        return self.stopped


def autograd_forward_backward(
    model: MyLinearRegressionModel, theta: torch.Tensor, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lesson's step without the update: per-replica loss at θ and its gradient (autograd
    on for them: the training loop runs without it)."""
    assert batch.x is not None and batch.y is not None
    with torch.enable_grad():
        prediction = model(batch.x)  # [n, K]
        loss = ((prediction - batch.y) ** 2).mean(dim=0)  # [K]: the lesson's mean squared error
        model.w.grad = model.b.grad = None  # optimizer.zero_grad(), without its overhead
        # Replicas are independent, so the gradient of the sum is each replica's own gradient.
        loss.sum().backward()
    return loss.detach(), grad_vector(model)


def network_forward_backward(
    model: Model, theta: torch.Tensor, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """A network's step without the update: every replica's mean squared error over the rows
    (its own batch with ``x`` [K, B, d]) and its gradient, by autograd through the layers. The
    replicas are independent, so the gradient of the sum is each one's own gradient. θ is the
    model's one [K, P] parameter (a family of several parameters would gather their grads)."""
    ((param, _),) = model.parameter_views(theta)
    with torch.enable_grad():
        loss = model.loss_at(param, batch)
        param.grad = None
        loss.sum().backward()
    assert param.grad is not None
    return loss.detach(), param.grad


def streamed_forward_backward(
    model: MyLinearRegressionModel, theta: torch.Tensor, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exactly the gradient autograd derives for the lesson's loss, from :func:`residual_sums`
    (tested equal to the autograd step, test_gradients.py); with a batch per replica
    (``x`` [K, B, d], train.replicas) by batched products instead."""
    if batch.x is not None and batch.x.dim() == 3:
        return _own_batches_forward_backward(model, batch)
    squares, residual_x, residual_sum = residual_sums(model.w.detach(), model.b.detach(), batch)
    n = batch.total
    # ∂/∂w mean(r²) = (2/N) rᵀX, ∂/∂b = (2/N) Σ r
    grad = torch.cat([residual_x, residual_sum.unsqueeze(1)], dim=1).mul_(2.0 / n)
    return squares.div_(n), grad


@torch.no_grad()
def _own_batches_forward_backward(
    model: MyLinearRegressionModel, batch: Rows
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replica k's loss and gradient on its own batch x[k] [B, d], y[k] [B, 1]."""
    assert batch.x is not None and batch.y is not None
    w, b = model.w.detach(), model.b.detach()
    residual = torch.bmm(batch.x, w.unsqueeze(2)).add_(b.view(-1, 1, 1)).sub_(batch.y)  # [K, B, 1]
    n = batch.total
    grad_w = torch.bmm(residual.transpose(1, 2), batch.x).squeeze(1)
    grad = torch.cat([grad_w, residual.sum(dim=1)], dim=1).mul_(2.0 / n)
    return (residual * residual).sum(dim=(1, 2)).div_(n), grad


@torch.no_grad()
def residual_sums(
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
    chunk = 1 << 62 if on_gpu else max(4096, CACHE_ROWS // k)
    residual_x, residual_sum = torch.zeros_like(w), torch.zeros_like(b)
    total = torch.zeros_like(b)
    bias = b.unsqueeze(1)
    for x_chunk, y_chunk in batch.chunks(chunk):  # rows as columns: residuals come out [K, c]
        residual = torch.mm(w, x_chunk).add_(bias).sub_(y_chunk)
        residual_x.addmm_(residual, x_chunk.t())
        residual_sum.add_(residual.sum(dim=1))
        total.add_((residual * residual).sum(dim=1))
    return total, residual_x, residual_sum


class SquaredResiduals(torch.autograd.Function):
    """Σ r² per replica as an autograd function whose backward hands back the streamed
    gradient: what lets DistributedDataParallel all-reduce it (its hooks fire on backward)."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor, b: torch.Tensor, batch: Rows) -> torch.Tensor:
        squares, residual_x, residual_sum = residual_sums(w.detach(), b.detach(), batch)
        ctx.save_for_backward(residual_x, residual_sum)
        return squares

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        residual_x, residual_sum = ctx.saved_tensors
        twice = 2.0 * upstream  # ∂(Σ r²) = 2 rᵀX, 2 Σ r
        return twice.unsqueeze(1) * residual_x, twice * residual_sum, None


class ShardLoss(nn.Module):
    """This process's share of the loss, ``(world size / N) · Σ r²`` over the rows it holds:
    DDP averages gradients over processes, so the average is exactly (1/N) Σ over all rows
    of the gradient, however unequal the shards. The linear model's Σ r² comes from the
    streamed pass; any other family's from autograd through its ``loss_at``."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Rows, scale: float) -> torch.Tensor:
        model = self.model
        if isinstance(model, MyLinearRegressionModel):
            squares = SquaredResiduals.apply(model.w, model.b, batch)
        else:  # loss_at is the mean over all N rows: its shard's part times N is Σ r² here
            ((param, _),) = model.parameter_views(model.theta())
            squares = model.loss_at(param, batch) * batch.total
        return squares * scale


class DistributedGradient:
    """The gradient of the global mean loss through ``DistributedDataParallel``, with the loss
    and every process's request to stop riding in the same all-reduce (a DDP communication
    hook appends them to the gradient bucket): one collective of (d + 2)·K numbers per step,
    whose latency, not its size, is what a step pays for being distributed. All processes
    therefore see the same loss and stop at the same step, as a collective run must."""

    def __init__(
        self,
        model: Model,
        world: World,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.world, self.local_stop, self.stopped = world, should_stop, False
        self.extra = self.reduced_extra = torch.empty(0)
        with world.collective("start (DistributedDataParallel broadcasts the model)"):
            self.ddp = DistributedDataParallel(ShardLoss(model))
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
        self, model: Model, theta: torch.Tensor, batch: Rows
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.world.size / batch.total
        for param in model.parameters():
            param.grad = None
        with self.world.collective("training step"), torch.enable_grad():
            share = self.ddp(batch, scale)
            asked = float(self.local_stop is not None and self.local_stop())
            self.extra = torch.cat([share.detach() / scale, share.new_tensor([asked])])
            share.sum().backward()  # the hook all-reduces gradients, squares and stop flags
        self.stopped = bool(self.reduced_extra[-1] > 0)
        return self.reduced_extra[:-1].to(share.dtype) / batch.total, grad_vector(model)


def grad_vector(model: Model) -> torch.Tensor:
    """The gradient autograd (or DDP) left in .grad, as one [K, p] tensor laid out as θ."""
    if isinstance(model, MyLinearRegressionModel):  # one operation: every lesson step takes it
        assert model.w.grad is not None and model.b.grad is not None
        return torch.cat([model.w.grad, model.b.grad.unsqueeze(1)], dim=1)
    out = torch.empty_like(model.theta())
    for param, view in model.parameter_views(out):
        assert param.grad is not None
        view.copy_(param.grad)
    return out


def theta_reader(model: Model) -> Callable[[], torch.Tensor]:
    """A function returning θ = (w, b) as one [K, p] tensor, as a step reads it: the view
    :meth:`MyLinearRegressionModel.theta` made once, which the optimizer's in-place updates
    keep current — no operation a step (a concatenation if the module was moved)."""
    if not isinstance(model, MyLinearRegressionModel) or model.one_table():
        theta = model.theta()
        return lambda: theta
    return model.theta


def theta_of(model: Model) -> torch.Tensor:
    """θ now, as a [K, p] copy of its own (later updates leave it as it is)."""
    return model.theta().clone(memory_format=torch.contiguous_format)
