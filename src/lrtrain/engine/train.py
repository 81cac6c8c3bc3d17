"""The training loop: K replicas of the lesson's model trained at once (K = 1 for ``fit``).

Per-replica learning rates: for SGD each replica's gradient is scaled by its rate and one
``torch.optim.SGD`` step is taken at lr = 1 — exact for plain, momentum and Nesterov SGD (the
momentum buffer is linear in the gradient; weight decay is folded in before the scaling). The
adaptive optimizers (Adam, AdamW, RMSprop, Adagrad) normalise the gradient, so a scaled gradient
would change nothing: they step at lr = 1 and each replica's displacement is scaled by its rate
instead — exact too, since their state never depends on the rate and their step is linear in it.
A schedule sets the optimizer's own rate to the step's factor f_t (:mod:`lrtrain.theory.schedules`),
so a replica moves by its rate × f_t × the optimizer's step — as torch's schedulers do, momentum
included (the buffer accumulates unscaled by f_t).
A replica that diverges, converges or is interrupted is frozen where it stopped; the others go
on untouched.

The loop never synchronises with the host per step: stopping conditions are tensors on the device,
histories go into preallocated device buffers, and the host looks at them every ``SYNC_EVERY``
steps (to report progress and to end early once every replica has stopped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lrtrain.config.schema import Config
from lrtrain.data.dataset import Dataset
from lrtrain.data.devices import process_device, torch_dtype
from lrtrain.data.distributed import SINGLE, World
from lrtrain.engine.batches import Batches, Rows, all_rows
from lrtrain.engine.cuda_graph import GraphedStep, use_graph
from lrtrain.engine.family import Model, build_model, keeps_path
from lrtrain.engine.gradients import Gradient, choose, theta_of, theta_reader
from lrtrain.engine.loop_state import STATUSES, LoopState, grad_norms, record, stop_checks
from lrtrain.engine.measuring import tracker_for
from lrtrain.engine.model import MyLinearRegressionModel
from lrtrain.engine.sharpness import Tracker
from lrtrain.engine.updates import GradSlot, build_optimizer, forget_momentum, scaled_step, sgd_step
from lrtrain.theory import startup
from lrtrain.theory.analysis import gap_scale
from lrtrain.theory.schedules import lr_factors
from lrtrain.theory.startup import never_imports_dynamo

SYNC_EVERY = 64
DIVERGENCE_FACTOR = 1e6  # loss above this × the initial loss counts as diverged

# progress(step, max_iter, per-replica losses), called every SYNC_EVERY steps and at the end
ProgressCallback = Callable[[int, int, list[float]], None]


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
    gradient: str = "autograd"  # the path the steps took (gradients.choose)
    lr_factors: np.ndarray | None = None  # the schedule's f_t, t < max_iter (None: constant)
    # train.sharpness_every: the steps measured, the top eigenvalues there [S, K, TOP], the
    # Hessian-vector products each measurement took, their seconds in all, and the last
    # measurement's top vectors [K, TOP, P] (None: not measured)
    sharpness_steps: list[int] = field(default_factory=list)
    sharpness: np.ndarray | None = None
    sharpness_products: list[int] = field(default_factory=list)
    sharpness_seconds: float = 0.0
    sharpness_vectors: np.ndarray | None = None
    top_projection: np.ndarray | None = None  # [R, K]: θ along the latest top vector
    # the gradient noise at the measured steps: tr Σ and |G|², [S, 2, K] (NaN: rows not held)
    noise: np.ndarray | None = None
    sharpness_state: dict[str, torch.Tensor] | None = None

    def engine_state(self) -> dict[str, Any]:
        """What ``train(resume=…)`` needs to continue this run exactly: model, optimizer
        (momentum buffers), the step to continue from, the loop's state (and the sharpness
        measured so far)."""
        state = {
            "step": min(self.stop_steps),
            "model": self.model_state,
            "optimizer": self.optimizer_state,
            "loop": self.loop_state,
        }
        if self.sharpness_state is not None:
            state["sharpness"] = self.sharpness_state
        return state

    def rates(self, k: int, steps: list[int]) -> list[float]:
        """The rate replica k used at each of ``steps``: its lr × the schedule's factor (the
        last factor at max_iter, where no step is taken)."""
        lr, factors = self.lrs[k], self.lr_factors
        if factors is None:
            return [lr] * len(steps)
        last = len(factors) - 1
        return [lr * float(factors[min(step, last)]) for step in steps]

    def replica_history(self, k: int) -> dict[str, torch.Tensor]:
        """Replica k's rows t = 0 … stop (float64, CPU): step, loss, grad_norm, theta ([R, 0]
        where the path was not kept)."""
        stop = self.stop_steps[k]
        keep = self.steps < stop
        f64 = torch.float64
        return {
            "step": torch.cat([self.steps[keep], torch.tensor([stop])]),
            "loss": torch.cat([self.loss[keep, k], torch.tensor([self.final_loss[k]], dtype=f64)]),
            "grad_norm": torch.cat(
                [self.grad_norm[keep, k], torch.tensor([self.final_grad_norm[k]], dtype=f64)]
            ),
            # a path not kept (a network's) stays [R, 0]
            "theta": torch.cat(
                [self.theta[keep, k], self.final_theta[k : k + 1, : self.theta.shape[2]]]
            ),
        }


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
    """Train ``len(lrs)`` replicas (default: the config's lr, once per ``train.replicas``
    batch stream) and return their histories: setup, the loop, the result.

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
    lrs = [config.optimizer.lr_value] * config.train.replicas if lrs is None else list(lrs)
    device = process_device(config.device, world)
    data = all_rows(dataset, device, torch_dtype(config.train.dtype))
    factors = lr_factors(config.optimizer.schedule, config.train.max_iter)
    training = _setup(dataset, config, lrs, data, _batches(dataset, config, device), factors,
                      should_stop, loss_ref, resume, world, gap_floor)  # fmt: skip
    return _result(training, _loop(training, progress), progress)


@never_imports_dynamo
def train_range_test(
    dataset: Dataset, config: Config, lrs: list[float], factors: np.ndarray, rows: Rows | None
) -> TrainResult:
    """find-lr's range tests: the rate ``lrs[k] × factors[t]`` at step t (the ramp as a table
    of factors), and with ``rows`` every replica its own full data set (x [K, N, d]: the
    repeats over the data's noise, read by the per-replica pass of the mini-batch gradient);
    without, the config's data and batches as :func:`train` reads them."""
    device = process_device(config.device, SINGLE)
    if rows is None:
        data = all_rows(dataset, device, torch_dtype(config.train.dtype))
        batches = _batches(dataset, config, device)
    else:
        data, batches = rows, None
    training = _setup(dataset, config, list(lrs), data, batches, factors, None, None, None,
                      SINGLE, 0.0, per_replica=rows is not None)  # fmt: skip
    return _result(training, _loop(training, None), None)


@dataclass
class _Training:
    """One run between its setup and its result: what the loop reads and writes."""

    config: Config
    lrs: list[float]
    device: torch.device
    world: World
    data: Rows
    batches: Batches | None
    model: Model
    optimizer: torch.optim.Optimizer
    loop: LoopState
    full_gradient: Gradient
    path: str
    factors: np.ndarray | None
    first: int  # the step training starts from (a resumed run's)
    should_stop: Callable[[], bool] | None
    step_at: Callable[[int | torch.Tensor, Rows], torch.Tensor]
    graphed: GraphedStep | None
    sharpness: Tracker | None


def _setup(
    dataset: Dataset,
    config: Config,
    lrs: list[float],
    data: Rows,
    batches: Batches | None,
    factors: np.ndarray | None,
    should_stop: Callable[[], bool] | None,
    loss_ref: float | None,
    resume: dict[str, Any] | None,
    world: World,
    gap_floor: float,
    per_replica: bool = False,
) -> _Training:
    """The rows, the model and its optimizer, the gradient path, the loop's state on the
    device (restored when resuming), the step — captured as a CUDA graph where it can be."""
    if config.train.target_gap is not None and loss_ref is None:
        raise ValueError("train.target_gap needs loss_ref, the closed form's loss")
    device = process_device(config.device, world)
    dtype = torch_dtype(config.train.dtype)
    model, optimizer = _model_and_optimizer(config, dataset.d, len(lrs), dtype, device)
    total = config.train.max_iter
    gradient, full_gradient, should_stop, path = choose(
        model, data, dataset.answer, config.train.gradient, batches is not None or per_replica,
        world, should_stop,
    )  # fmt: skip
    if per_replica:  # the final values on each replica's own data too
        full_gradient = gradient
    # the Gram path computes in float64 (gradients.GramGradient): the loop keeps its losses so
    path_dtype = torch.float64 if path == "gram" else dtype
    loop = LoopState.start(len(lrs), dataset.d, _rows_logged(config), total, dtype, device, lrs,
                           path_dtype, model.n_params, keeps_path(model, config))  # fmt: skip
    loop.gradients_vary = batches is not None
    if config.train.target_gap is not None:
        loop.target_gap = max(config.train.target_gap, gap_floor)
    loop.loss_ref = loss_ref or 0.0
    tracker = tracker_for(config, model, data, full_gradient, per_replica, world)
    first = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        loop.restore(resume["loop"], total)
        forget_momentum(optimizer, model, loop.active_col)  # replicas that stopped stay put
        first = int(resume["step"])
        if tracker is not None and "sharpness" in resume:
            tracker.restore(resume["sharpness"], device)

    take_step = startup.stepper(optimizer)  # optimizer.step(), without importing torch._dynamo
    read_theta, slot = theta_reader(model), GradSlot(model)

    def step_at(step: int | torch.Tensor, batch: Rows) -> torch.Tensor:
        theta = read_theta()
        return _step(loop, slot, theta, optimizer, take_step, gradient, batch, step, config)

    # a schedule sets the optimizer's rate from the host each step, and a sharpness measurement
    # runs between steps: no CUDA graph; nor for a network, whose backward is autograd's
    graphed = (
        GraphedStep(step_at, data)
        if factors is None and tracker is None and isinstance(model, MyLinearRegressionModel)
        and use_graph(device, batches, total - first, data, world)
        else None
    )  # fmt: skip
    return _Training(config, lrs, device, world, data, batches, model, optimizer, loop,
                     full_gradient, path, factors, first, should_stop, step_at,
                     graphed, tracker)  # fmt: skip


def _loop(training: _Training, progress: ProgressCallback | None) -> float:
    """One step of every replica at a time, to ``train.max_iter`` or until every replica has
    stopped; the host looks every ``check_every`` steps. Returns the seconds it took."""
    t, total = training, training.config.train.max_iter
    # bound once: a step reads locals, not the record's attributes (a step costs µs)
    loop, data, batches, factors = t.loop, t.data, t.batches, t.factors
    should_stop, graphed, step_at, groups, tracker = (
        t.should_stop,
        t.graphed,
        t.step_at,
        t.optimizer.param_groups,
        t.sharpness,
    )
    check_every = 1 if t.device.type == "cpu" else SYNC_EVERY
    start = time.perf_counter()
    # The loop's arithmetic never needs autograd (the optimizer's step runs without it too);
    # the autograd paths turn it on for their own forward and backward. The Gram path never
    # does, and inference mode spares each of its small operations autograd's bookkeeping
    # (~18% of a step); nothing made in it outlives the loop but copies.
    with torch.inference_mode() if t.path == "gram" else torch.no_grad():
        for step in range(t.first, total):
            if should_stop is not None and should_stop():
                loop.interrupt(step)
                break
            if factors is not None:  # the schedule's factor: the optimizer's rate (base 1)
                for group in groups:
                    group["lr"] = float(factors[step])
            if tracker is not None:
                tracker.after(step, t.model.theta())
            if graphed is not None:
                loss = graphed.run(step)
            elif batches is not None:
                assert data.x is not None and data.y is not None
                loss = step_at(step, batches.batch(step, data.x, data.y))
            else:
                loss = step_at(step, data)
            last = step + 1 == total
            if (step + 1) % check_every == 0 or last:
                # Stop early once every replica has stopped (the remaining steps would only
                # recompute frozen values). On a GPU that read synchronises with the host, so it
                # happens every SYNC_EVERY steps; on the CPU the step's stop checks know whether
                # anyone stopped.
                still = loop.still_active()
                if progress is not None and ((step + 1) % SYNC_EVERY == 0 or last or not still):
                    progress(step + 1, total, loss.tolist())
                if not still:
                    break
    return time.perf_counter() - start


def _result(training: _Training, elapsed: float, progress: ProgressCallback | None) -> TrainResult:
    """The histories, and the full-batch loss and gradient where each replica stopped."""
    t = training
    final_loss, final_gradient = t.full_gradient(t.model, theta_of(t.model), t.data)
    final_grad = grad_norms(final_gradient)
    result = _histories(t.config, t.lrs, t.loop, t.model, t.optimizer, final_loss, final_grad,
                        elapsed)  # fmt: skip
    result.device, result.world, result.gradient = str(t.device), t.world.describe(), t.path
    result.lr_factors = t.factors
    if t.sharpness is not None:
        _sharpness_result(result, t.sharpness, t.model)
    if progress is not None:
        progress(result.steps_run, t.config.train.max_iter, result.final_loss)
    return result


def _sharpness_result(result: TrainResult, tracker: Tracker, model: Model) -> None:
    """The sharpness measured, with a last measurement where the run ended (every replica's
    own final θ, frozen where it stopped) that resolves the top two pairs. A resumed run goes
    on from the state before that last one, as the run would have without the interruption."""
    result.sharpness_state = tracker.state()
    tracker.measure(result.steps_run, model.theta(), pairs=2)
    result.sharpness_steps = list(tracker.steps)
    result.sharpness = torch.stack(tracker.values).numpy()
    result.sharpness_products = list(tracker.products)
    result.noise = torch.stack(tracker.noise).numpy()
    result.sharpness_seconds = tracker.seconds
    assert tracker.vectors is not None
    result.sharpness_vectors = tracker.vectors.to("cpu", torch.float64).numpy()
    if tracker.projection is not None:
        result.top_projection = tracker.projection.to("cpu", torch.float64).numpy()


def _model_and_optimizer(
    config: Config, d: int, replicas: int, dtype: torch.dtype, device: torch.device
) -> tuple[Model, torch.optim.Optimizer]:
    """The config's model (K replicas) and its optimizer at lr = 1: the replicas' rates scale
    SGD's gradients, or the adaptive optimizers' steps (:func:`_step`)."""
    model = build_model(config, d, replicas, dtype, device)
    return model, build_optimizer(config.optimizer, model.parameters())


def _rows_logged(config: Config) -> int:
    return (config.train.max_iter - 1) // config.train.log_every + 1


def _batches(dataset: Dataset, config: Config, device: torch.device) -> Batches | None:
    size = config.train.batch_size
    if size is None or config.train.full_batch(dataset.n):
        return None
    return Batches(dataset.n, size, config.seed, device, dataset.offset, dataset.local_rows,
                   config.train.sampling, config.train.replicas)  # fmt: skip


def _histories(
    config: Config,
    lrs: list[float],
    loop: LoopState,
    model: Model,
    optimizer: torch.optim.Optimizer,
    final_loss: torch.Tensor,
    final_grad: torch.Tensor,
    elapsed: float,
) -> TrainResult:
    rows, total = _rows_logged(config), config.train.max_iter
    stops = loop.stop_step.tolist()
    f64 = torch.float64
    return TrainResult(
        lrs=lrs,
        steps=torch.arange(0, total, config.train.log_every)[:rows],
        loss=loop.hist_loss[:rows].to("cpu", f64),
        grad_norm=loop.hist_grad[:rows].to("cpu", f64),
        theta=loop.hist_theta[:rows].to("cpu", f64),
        stop_steps=stops,
        statuses=[STATUSES[s] for s in loop.status.tolist()],
        final_loss=final_loss.to("cpu", f64).tolist(),
        final_grad_norm=final_grad.to("cpu", f64).tolist(),
        final_theta=theta_of(model).to("cpu", f64),
        initial_grad=loop.initial_grad.to("cpu", f64),
        elapsed_s=elapsed,
        steps_run=min(max(stops), total),
        device="",
        model_state={name: v.detach().cpu() for name, v in model.state_dict().items()},
        optimizer_state=_cpu(optimizer.state_dict()),
        loop_state=loop.state(),
    )


def _step(
    loop: LoopState,
    slot: GradSlot,
    theta: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    take_step: Callable[[], None],
    gradient: Gradient,
    batch: Rows,
    step: int | torch.Tensor,
    config: Config,
) -> torch.Tensor:
    """One step of every replica: loss and gradient at θ_t (``theta`` [K, p], which serves
    the gradient, the history and the update), history, stop checks, update.

    ``step`` is a Python int when run eagerly, or a device tensor inside a CUDA graph (where
    nothing may depend on the host).
    """
    loss, grad = gradient(slot.model, theta, batch)
    if isinstance(step, int) and step == 0:
        loop.initial_grad.copy_(grad)
        goal = None
        if loop.target_gap is not None:
            scale = [gap_scale(loop.loss_ref, float(loss0)) for loss0 in loss.tolist()]
            goals = [loop.loss_ref + loop.target_gap * s for s in scale]
            goal = torch.tensor(goals, dtype=loss.dtype)
        loop.set_bounds(torch.where(loss > 0, loss * DIVERGENCE_FACTOR, loop.limit), goal)
    record(loop, theta, grad, step, loss, config.train.log_every)
    stopped = stop_checks(loop, loss, grad, step, config.train.tol)
    if stopped and loop.on_cpu and not loop.any_active():
        # every replica has stopped, so the loop ends after this step: the update would move
        # nobody (emptied momentum, zero rates), and a stopped replica's buffers are emptied
        # again when a run resumes (as an interrupted run's are kept)
        return loss
    opt = config.optimizer
    if opt.name == "sgd":
        if stopped and opt.momentum_value > 0:
            forget_momentum(optimizer, slot.model, loop.active_col)
        sgd_step(slot, take_step, theta, grad, loop.rate_col, loop.masking(), opt.weight_decay)
    else:
        mask = loop.active_col if loop.masking() else None
        scaled_step(slot, take_step, theta, grad, loop.rate_col, mask)
    return loss


def _cpu(value: Any) -> Any:
    """A copy of a state dict with every tensor on the CPU (checkpoints load anywhere)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cpu(v) for v in value]
    return value
