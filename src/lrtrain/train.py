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
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from lrtrain.config import Config
from lrtrain.data import Dataset, block_seed
from lrtrain.errors import DeviceError
from lrtrain.model import MyLinearRegressionModel

SYNC_EVERY = 64
DIVERGENCE_FACTOR = 1e6  # loss above this × the initial loss counts as diverged
STATUSES = ("completed", "converged", "diverged", "interrupted")
_COMPLETED, _CONVERGED, _DIVERGED, _INTERRUPTED = range(4)
_SHUFFLE_STREAM = 0x5EED_5A1E  # separates the shuffling seeds from the data seeds

ProgressCallback = Callable[[int, int, list[float]], None]


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
    """Mini-batches by slicing a per-epoch permutation of the preloaded tensors.

    The permutation of epoch e is drawn from (seed, e), so any step's batch can be recomputed
    without saved RNG state (which is what an exact resume needs).
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device) -> None:
        self.n, self.size, self.seed, self.device = n, min(batch_size, n), seed, device
        self.per_epoch = math.ceil(n / self.size)
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(block_seed(self.seed ^ _SHUFFLE_STREAM, epoch))
            self._perm = torch.randperm(self.n, generator=gen).to(self.device)
            self._epoch = epoch
        return self._perm[position * self.size : (position + 1) * self.size]


def train(
    dataset: Dataset,
    config: Config,
    lrs: list[float] | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``len(lrs)`` replicas (default: the config's one lr) and return their histories."""
    lrs = [config.optimizer.lr] if lrs is None else list(lrs)
    device = resolve_device(config.device)
    dtype = torch_dtype(config.train.dtype)
    x = dataset.x.to(device=device, dtype=dtype)
    y = dataset.y.to(device=device, dtype=dtype)
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
    lr = torch.tensor(lrs, dtype=dtype, device=device)
    total, log_every = train_cfg.max_iter, train_cfg.log_every
    rows = (total - 1) // log_every + 1
    hist_steps = torch.arange(0, total, log_every)[:rows]
    hist_loss = torch.zeros(rows, k, dtype=dtype, device=device)
    hist_grad = torch.zeros(rows, k, dtype=dtype, device=device)
    hist_theta = torch.zeros(rows, k, d + 1, dtype=dtype, device=device)

    active = torch.ones(k, dtype=torch.bool, device=device)
    stop_step = torch.full((k,), total, dtype=torch.long, device=device)
    status = torch.full((k,), _COMPLETED, dtype=torch.long, device=device)
    prev_loss = torch.full((k,), math.nan, dtype=dtype, device=device)
    # The finite maximum, not inf, so that an infinite loss fails `loss <= limit` even when the
    # initial loss is 0 (and no multiple of it can serve as a limit).
    limit = torch.full((k,), torch.finfo(dtype).max, dtype=dtype, device=device)
    tol = train_cfg.tol
    batches = (
        _Batches(dataset.n, train_cfg.batch_size, config.seed, device)
        if train_cfg.batch_size is not None and train_cfg.batch_size < dataset.n
        else None
    )
    initial_grad = torch.zeros(k, d + 1, dtype=dtype, device=device)

    start = time.perf_counter()
    for step in range(total):
        if should_stop is not None and should_stop():
            stop_step.masked_fill_(active, step)
            status = torch.where(active, _INTERRUPTED, status)
            active.zero_()
            break
        if batches is not None:
            idx = batches.indices(step)
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        else:
            xb, yb = x, y
        loss, grad_norm = _forward_backward(model, optimizer, xb, yb)
        if step == 0:
            limit = torch.where(loss > 0, loss * DIVERGENCE_FACTOR, limit)
            initial_grad.copy_(_grad_vector(model))
        if step % log_every == 0:
            row = step // log_every
            hist_loss[row] = loss
            hist_grad[row] = grad_norm
            hist_theta[row, :, :d] = model.w.detach()
            hist_theta[row, :, d] = model.b.detach()
        ok = loss <= limit  # False for NaN, ±inf and blow-ups alike
        done = ~ok if tol is None else ~ok | ((loss - prev_loss).abs() < tol)
        newly = active & done
        stop_step.masked_fill_(newly, step)
        status = torch.where(newly, torch.where(ok, _CONVERGED, _DIVERGED), status)
        active &= ~newly
        _sgd_step(model, optimizer, lr, active, opt_cfg.weight_decay, opt_cfg.momentum > 0)
        prev_loss = loss
        if (step + 1) % SYNC_EVERY == 0 or step + 1 == total:
            # One host synchronisation per SYNC_EVERY steps: progress, and stop early once every
            # replica has stopped (the remaining steps would only recompute frozen values).
            still = bool(active.any())
            if progress is not None:
                progress(step + 1, total, loss.tolist())
            if not still:
                break
    final_loss, final_grad = _forward_backward(model, optimizer, x, y)
    theta_final = _theta(model)
    stops = stop_step.tolist()
    steps_run = min(max(stops), total)
    elapsed = time.perf_counter() - start
    if progress is not None:
        progress(steps_run, total, final_loss.tolist())
    f64 = torch.float64
    return TrainResult(
        lrs=lrs,
        steps=hist_steps,
        loss=hist_loss.to("cpu", f64),
        grad_norm=hist_grad.to("cpu", f64),
        theta=hist_theta.to("cpu", f64),
        stop_steps=stops,
        statuses=[STATUSES[s] for s in status.tolist()],
        final_loss=final_loss.to("cpu", f64).tolist(),
        final_grad_norm=final_grad.to("cpu", f64).tolist(),
        final_theta=theta_final.to("cpu", f64),
        initial_grad=initial_grad.to("cpu", f64),
        elapsed_s=elapsed,
        steps_run=steps_run,
        device=str(device),
        model_state={k_: v.detach().cpu() for k_, v in model.state_dict().items()},
        optimizer_state=optimizer.state_dict(),
    )


def _forward_backward(
    model: MyLinearRegressionModel,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lesson's step without the update: per-replica loss and gradient norm at θ."""
    prediction = model(x)  # [n, K]
    loss = ((prediction - y) ** 2).mean(dim=0)  # [K]: the lesson's mean squared error
    optimizer.zero_grad()
    # Replicas are independent, so the gradient of the sum is each replica's own gradient.
    loss.sum().backward()
    return loss.detach(), torch.linalg.vector_norm(_grad_vector(model), dim=1)


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
    optimizer.step()
    if old is not None:
        # Momentum would keep moving a stopped replica: put it back where it stopped.
        model.w.copy_(torch.where(active.unsqueeze(1), model.w, old[0]))
        model.b.copy_(torch.where(active, model.b, old[1]))
