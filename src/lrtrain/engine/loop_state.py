"""The training loop's state (``train``): everything a step reads and writes besides the model
and the optimizer — per-replica rates, which replicas are still training and why the others
stopped, the histories — kept on the device and updated in place, and the two pieces of
bookkeeping every step does with it: recording the logged rows and the stop checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

STATUSES = ("completed", "converged", "diverged", "interrupted")
COMPLETED, CONVERGED, DIVERGED, INTERRUPTED = range(4)


@dataclass
class LoopState:
    """The loop's state, all on the device and updated in place, so that one step can be
    captured as a CUDA graph and replayed. Histories have one spare row at the end: a captured
    step writes every step, and steps that are not logged write to the spare row. Losses,
    gradient norms and the rates that scale gradients are kept in the dtype the gradient path
    computes in (float64 for the Gram path, whatever the parameters'), so that no step casts
    them: an operation on mixed dtypes takes PyTorch's slow element-by-element path (~3×)."""

    lr: torch.Tensor  # [K]
    active: torch.Tensor  # [K] bool
    stop_step: torch.Tensor  # [K] long: the step each replica stopped at (max_iter if not)
    status: torch.Tensor  # [K] long: index into STATUSES
    prev_loss: torch.Tensor  # [K]
    limit: torch.Tensor  # [K]: a loss above this is divergence
    initial_grad: torch.Tensor  # [K, d + 1]
    hist_loss: torch.Tensor  # [rows + 1, K]
    hist_grad: torch.Tensor  # [rows + 1, K]
    hist_theta: torch.Tensor  # [rows + 1, K, p], or [rows + 1, K, 0] when the path is not kept
    goal: torch.Tensor  # [K]: a loss at or below this reaches train.target_gap (-inf: no goal)
    target_gap: float | None = None
    loss_ref: float = 0.0
    # Host-side, on the CPU: whether a replica stopped since the loop last looked (a GPU
    # never tells the host, and the loop reads ``active`` every SYNC_EVERY steps instead).
    stopped_unseen: bool = True
    # Whether each step's gradient comes from a different batch of rows, so that a stopped
    # replica's gradient changes although its θ does not (set by ``train``)
    gradients_vary: bool = False
    # Host-side, on the CPU: whether a stopped replica's gradient is, or may become, infinite
    # or NaN, which its rate of 0 would turn into NaN; until then no update needs masking. On
    # full batches a stopped replica's θ, hence its gradient, never changes, so a finite one
    # stays finite; on mini-batches it may not. A GPU never asks, and always masks.
    nonfinite_stopped: bool = False
    # whether the state lives on the CPU, where the host may look every step (a device's type,
    # looked up, costs a step ~1 µs)
    on_cpu: bool = field(init=False)
    # [K, 1] views of lr and active, to scale and mask [K, p] gradients: made once (both are
    # only ever updated in place)
    lr_col: torch.Tensor = field(init=False)
    active_col: torch.Tensor = field(init=False)
    # [K, 1]: each replica's rate while active, 0 once stopped (the update's scale), in the
    # gradient path's dtype (that of the losses)
    rate_col: torch.Tensor = field(init=False)
    # [K] all False: what a step that stops nobody compares equal to (torch.equal answers on
    # the host in one call, ~2 against ~4.5 µs for any() and its read)
    nobody: torch.Tensor = field(init=False)
    # [K] each, on the CPU: the losses that stop no replica — above its goal and at most its
    # limit while active, anything once stopped — so that a step that stops nobody says so in
    # two operations (a clamp and torch.equal) instead of five
    band_low: torch.Tensor = field(init=False)
    band_high: torch.Tensor = field(init=False)
    # [K] +inf: where the goal's next float is looked for (made once, like the band)
    infinity: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.on_cpu = self.lr.device.type == "cpu"
        self.lr_col, self.active_col = self.lr.unsqueeze(1), self.active.unsqueeze(1)
        self.rate_col = self.lr_col.to(self.limit.dtype, copy=True)
        self.nobody = torch.zeros_like(self.active)
        self.band_low, self.band_high = torch.empty_like(self.goal), torch.empty_like(self.limit)
        self.infinity = torch.full_like(self.goal, math.inf)
        self._set_band()

    def set_bounds(
        self, limit: torch.Tensor | None = None, goal: torch.Tensor | None = None
    ) -> None:
        """Set the divergence limit and the target's goal [K] (known at step 0)."""
        if limit is not None:
            self.limit.copy_(limit)
        if goal is not None:
            self.goal.copy_(goal)
        self._set_band()

    def _set_band(self) -> None:
        if not self.on_cpu:  # a GPU never asks the host whether anybody stopped
            return
        # loss > goal ⟺ loss ≥ the next float above the goal: the band's ends are both closed
        above_goal = torch.nextafter(self.goal, self.infinity)
        self.band_low.copy_(torch.where(self.active, above_goal, -math.inf))
        self.band_high.copy_(torch.where(self.active, self.limit, self.infinity))

    def masking(self) -> bool:
        """Whether a stopped replica's gradient may be infinite or NaN, so the update must
        mask it: on the CPU once one's was; on a GPU, which never asks the host, always."""
        return self.nonfinite_stopped or not self.on_cpu

    def active_changed(self) -> None:
        """``active`` changed: stopped replicas' rates become 0, and any loss stops them no
        more."""
        self.rate_col.copy_(torch.where(self.active_col, self.lr_col, 0.0))
        self._set_band()

    def any_active(self) -> bool:
        """Whether any replica is still training, read on the host now."""
        return bool(self.active.any())

    def still_active(self) -> bool:
        """Whether any replica is still training (read on the host)."""
        if self.on_cpu and not self.stopped_unseen:
            return True
        self.stopped_unseen = False
        return self.any_active()

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
        path_dtype: torch.dtype | None = None,
        params: int | None = None,
        keep_path: bool = True,
    ) -> LoopState:
        """The state of ``k`` replicas of ``d`` features before step 0; losses, gradient
        norms and rates in ``path_dtype``, the gradient path's (default: ``dtype``, the
        parameters'). ``params``: θ's columns (default d + 1, the linear model's);
        ``keep_path`` False: θ is not kept at the logged steps (a network's)."""
        losses = dtype if path_dtype is None else path_dtype
        p = d + 1 if params is None else params

        def full(shape: tuple[int, ...], value: float, kind: torch.dtype = dtype) -> torch.Tensor:
            return torch.full(shape, value, dtype=kind, device=device)

        return cls(
            lr=torch.tensor(lrs, dtype=dtype, device=device),
            active=full((k,), True, torch.bool),
            stop_step=full((k,), total, torch.long),
            status=full((k,), COMPLETED, torch.long),
            prev_loss=full((k,), math.nan, losses),
            # The finite maximum, not inf, so that an infinite loss fails `loss <= limit` even
            # when the initial loss is 0 (and no multiple of it can serve as a limit).
            limit=full((k,), torch.finfo(losses).max, losses),
            initial_grad=full((k, p), 0.0),
            hist_loss=full((rows + 1, k), 0.0, losses),
            hist_grad=full((rows + 1, k), 0.0, losses),
            hist_theta=full((rows + 1, k, p if keep_path else 0), 0.0),
            goal=full((k,), -math.inf, losses),
        )

    def interrupt(self, step: int) -> None:
        self.stop_step.masked_fill_(self.active, step)
        self.status.masked_fill_(self.active, INTERRUPTED)
        self.active.zero_()
        self.stopped_unseen = True
        self.active_changed()

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors a resume needs (on the CPU), histories included: taken when the loop
        is over, so they are handed over, not copied (histories have max_iter rows, however
        early the run stopped)."""
        return {name: getattr(self, name).detach().cpu() for name in LOOP_TENSORS}

    def restore(self, state: dict[str, torch.Tensor], total: int) -> None:
        """Continue from ``state``: interrupted and completed replicas become active again
        (stopping at this run's max_iter); histories are copied row by row, so max_iter may
        grow."""
        for name in LOOP_TENSORS:
            mine, saved = getattr(self, name), state[name].to(getattr(self, name).device)
            if name.startswith("hist_"):
                rows = min(mine.shape[0], saved.shape[0]) - 1  # the spare row stays spare
                mine[:rows] = saved[:rows]
            else:
                mine.copy_(saved)
        # Interrupted replicas, and completed ones (which ran out of steps), go on.
        going_on = (self.status == INTERRUPTED) | (self.status == COMPLETED)
        self.active.copy_(going_on)
        self.stop_step.masked_fill_(going_on, total)
        self.status.masked_fill_(going_on, COMPLETED)
        # the saved state does not say whether a stopped replica's gradient was finite
        self.stopped_unseen, self.nonfinite_stopped = True, not bool(going_on.all())
        self.active_changed()


LOOP_TENSORS = (
    "lr", "active", "stop_step", "status", "prev_loss", "limit", "initial_grad",
    "hist_loss", "hist_grad", "hist_theta", "goal",
)  # fmt: skip


def stop_checks(
    loop: LoopState,
    loss: torch.Tensor,
    grad: torch.Tensor,
    step: int | torch.Tensor,
    tol: float | None,
) -> bool:
    """Freeze the replicas that diverged, reached the target or stalled at this step (loss
    and gradient [K, p] at θ_t); whether any may have (on a GPU, which never asks the host:
    always)."""
    if loop.on_cpu and tol is None and torch.equal(loss.clamp(loop.band_low, loop.band_high), loss):
        return False  # every loss inside its band (a NaN never is): nobody stops
    ok = loss <= loop.limit  # False for NaN, ±inf and blow-ups alike
    going = ok  # the replicas this step gives no reason to stop
    if loop.target_gap is not None:
        going = going & (loss > loop.goal)
    if tol is not None:
        going = going & ~((loss - loop.prev_loss).abs() < tol)  # NaN at step 0: no stall
        loop.prev_loss.copy_(loss)
    newly = torch.gt(loop.active, going)  # active and not going, in one operation
    # On the CPU a look at the host is cheap, and most steps stop nobody: skip the bookkeeping.
    # A GPU never waits for the host here (nor may a CUDA graph).
    if loop.on_cpu:
        if torch.equal(newly, loop.nobody):
            return False
        loop.stopped_unseen = True
        if not loop.nonfinite_stopped:
            # Finite in the parameters' dtype, where the update will hold it, and for good: the
            # newly stopped rows kept by torch.where, not selected by the mask (whose nonzero
            # costs more than the rest of a stopping step)
            kept = torch.where(newly.unsqueeze(1), grad, 0.0)
            finite = bool(kept.to(loop.lr.dtype).isfinite().all())
            loop.nonfinite_stopped = loop.gradients_vary or not finite
    # torch.where, not masked_fill_: with a tensor value masked_fill_ reads it on the host.
    loop.stop_step.copy_(torch.where(newly, step, loop.stop_step))
    loop.status.copy_(torch.where(newly, torch.where(ok, CONVERGED, DIVERGED), loop.status))
    loop.active.logical_and_(~newly)
    loop.active_changed()
    return True


def record(
    loop: LoopState,
    theta: torch.Tensor,
    grad: torch.Tensor,
    step: int | torch.Tensor,
    loss: torch.Tensor,
    log_every: int,
) -> None:
    if isinstance(step, int):
        if step % log_every == 0:
            row = step // log_every
            loop.hist_loss[row] = loss
            grad_norms(grad, out=loop.hist_grad[row])
            if loop.hist_theta.shape[2]:  # the path is kept (LoopState.start)
                loop.hist_theta[row] = theta
        return
    # On the device, without a host decision: unlogged steps go to the spare last row.
    spare = loop.hist_loss.shape[0] - 1
    rows = torch.where(step % log_every == 0, step // log_every, spare).view(1)
    loop.hist_loss.index_copy_(0, rows, loss.unsqueeze(0))
    # the gradient is in the histories' dtype (the path's, LoopState.start), as the eager rows
    # above rely on too
    loop.hist_grad.index_copy_(0, rows, grad_norms(grad).unsqueeze(0))
    if loop.hist_theta.shape[2]:
        loop.hist_theta.index_copy_(0, rows, theta.unsqueeze(0))


def grad_norms(grad: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Each replica's gradient norm, for grad [K, p] in either layout (into ``out`` [K], of
    grad's dtype, if given: a history row, written without a copy). vector_norm along
    strided rows (the Gram path's feature-major gradient) takes PyTorch's slow reduction,
    ~210 µs at K = 1 000; √(g·g) takes ~17 µs there, but two operations (~9 against ~5 µs
    for vector_norm at K = 1, which a fit pays every step)."""
    if grad.stride(1) == 1:  # rows in memory order (and any single replica)
        return torch.linalg.vector_norm(grad, dim=1, out=out)
    return torch.sqrt(torch.linalg.vecdot(grad, grad), out=out)
